//! Revocation by scope: one token, one session, one refresh family, one device, a user, an app, or one user's grant
//! to one app. The store revokes what it holds ([`super::AdminStore::revoke_scope`]); the gates refuse the live
//! access tokens, by the [`Revocation`] built here.

use std::time::Duration;

use argus_jose::LEEWAY_SECS;
use argus_model::id::new_id;
use argus_model::{Revocation, RevocationScope, Timestamp};

use super::AdminError;
use crate::store::IssuedAccess;
use crate::token::token_revocation;

/// The longest identifier a scope may name. Ids Argus makes are UUIDs or 43-character thumbprints.
const MAX_ID_BYTES: usize = 256;

/// Check the identifiers a scope names: each non-empty, at most 256 bytes, without control characters.
pub fn validate_revocation_scope(scope: &RevocationScope) -> Result<(), AdminError> {
    let ids: Vec<(&str, &str)> = match scope {
        RevocationScope::Token { jti } => vec![("jti", jti)],
        RevocationScope::Session { sid } => vec![("sid", sid)],
        RevocationScope::User { sub } => vec![("sub", sub)],
        RevocationScope::Client { client_id } => vec![("client_id", client_id)],
        RevocationScope::Grant { sub, client_id } => vec![("sub", sub), ("client_id", client_id)],
        RevocationScope::Family { family } => vec![("family", family)],
        RevocationScope::Device { device } => vec![("device", device)],
    };
    for (name, value) in ids {
        let ok = !value.is_empty() && value.len() <= MAX_ID_BYTES && !value.chars().any(char::is_control);
        if !ok {
            return Err(AdminError::Invalid(format!(
                "scope.{name} must be 1..={MAX_ID_BYTES} bytes without control characters"
            )));
        }
    }
    Ok(())
}

/// The revocation every gate applies for `scope`: it covers the tokens in scope issued up to `now` and is kept
/// until the longest-lived of them would have expired (`now` + the longest access-token lifetime + the verifiers'
/// clock leeway). A token's own `exp` is not known here, so a single-token revocation is kept as long.
pub fn admin_revocation(scope: RevocationScope, now: Timestamp, longest_access_ttl: Duration) -> Revocation {
    let leeway = Duration::from_secs(LEEWAY_SECS.unsigned_abs());
    Revocation { id: new_id(), scope, at: now, until: now.plus(longest_access_ttl).plus(leeway) }
}

/// One-token revocations that back up a `family` or `device` revocation: gates match those scopes on the `fid` and
/// `did` claims, which tokens issued before those claims existed lack. The store knows the `jti` of every access
/// token issued with a refresh token, so each live one is revoked by its id too. Other scopes key on claims every
/// token carries (`sub`, `client_id`; `sid` for tokens of a sign-in) and need no backup.
pub fn backstop_revocations(scope: &RevocationScope, live: &[IssuedAccess], now: Timestamp) -> Vec<Revocation> {
    match scope {
        RevocationScope::Family { .. } | RevocationScope::Device { .. } => {
            live.iter().filter_map(|a| token_revocation(&a.jti, a.expires_at, now)).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        let ok = RevocationScope::Grant { sub: "u1".into(), client_id: "app".into() };
        assert!(validate_revocation_scope(&ok).is_ok());
        for bad in [
            RevocationScope::Token { jti: String::new() },
            RevocationScope::Session { sid: "a\nb".into() },
            RevocationScope::Device { device: "x".repeat(257) },
            RevocationScope::Grant { sub: "u1".into(), client_id: String::new() },
        ] {
            let err = validate_revocation_scope(&bad).unwrap_err();
            assert!(matches!(err, AdminError::Invalid(m) if m.starts_with("scope.")), "{bad:?}");
        }
    }

    #[test]
    fn kept_until_the_longest_token_is_dead() {
        let now = Timestamp::from_secs(1000);
        let r = admin_revocation(RevocationScope::User { sub: "u".into() }, now, Duration::from_secs(300));
        assert_eq!(r.at, now);
        assert_eq!(r.until, Timestamp::from_secs(1000 + 300 + LEEWAY_SECS));
        let again = admin_revocation(RevocationScope::User { sub: "u".into() }, now, Duration::from_secs(300));
        assert_ne!(r.id, again.id);
    }

    #[test]
    fn backstops_only_for_claims_a_token_may_lack() {
        let now = Timestamp::from_secs(1000);
        let live = [
            IssuedAccess { jti: "j1".into(), expires_at: Timestamp::from_secs(1200) },
            IssuedAccess { jti: "dead".into(), expires_at: Timestamp::from_secs(900) },
        ];
        let family = backstop_revocations(&RevocationScope::Family { family: "f".into() }, &live, now);
        assert_eq!(family.len(), 1);
        assert_eq!(family[0].scope, RevocationScope::Token { jti: "j1".into() });
        assert_eq!(backstop_revocations(&RevocationScope::Device { device: "d".into() }, &live, now).len(), 1);
        assert!(backstop_revocations(&RevocationScope::User { sub: "u".into() }, &live, now).is_empty());
        assert!(backstop_revocations(&RevocationScope::Session { sid: "s".into() }, &live, now).is_empty());
    }
}
