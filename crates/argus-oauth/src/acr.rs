//! Step-up at the issuer (OIDC Core §3.1.2.1 `max_age` and `acr_values`, RFC 9470 §4): what an authorization
//! request asks of the user's sign-in, whether a session's sign-in meets it, and the `acr` the tokens state.
//!
//! The issuer knows a ladder of authentication levels, weakest first ([`AuthLevel`]); a stronger level satisfies a
//! request for a weaker one: the password, then the password with a second factor (TOTP).

use argus_model::Timestamp;

use crate::authorize::MAX_STATE_LEN;
use crate::error::OAuthError;
use crate::totp::{AMR_MFA, AMR_OTP, AMR_PASSWORD};

/// The `acr` of a sign-in with a password (and nothing else).
pub const ACR_PASSWORD: &str = "urn:argus:acr:pwd";
/// The `acr` of a sign-in with a password and a second factor.
pub const ACR_MFA: &str = "urn:argus:acr:mfa";

/// An authentication level this issuer can deliver, ordered weakest first: a level satisfies a request for itself
/// or any weaker one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    /// User name and password ([`ACR_PASSWORD`]).
    Password,
    /// Password and a second factor: a TOTP code or a recovery code ([`ACR_MFA`]).
    Mfa,
}

impl AuthLevel {
    /// Every level, weakest first: what discovery advertises as `acr_values_supported`.
    pub const ALL: [AuthLevel; 2] = [AuthLevel::Password, AuthLevel::Mfa];

    /// The `acr` value of this level.
    pub fn acr(self) -> &'static str {
        match self {
            AuthLevel::Password => ACR_PASSWORD,
            AuthLevel::Mfa => ACR_MFA,
        }
    }

    /// The RFC 8176 `amr` values of a sign-in at this level.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            AuthLevel::Password => &[AMR_PASSWORD],
            AuthLevel::Mfa => &[AMR_PASSWORD, AMR_OTP, AMR_MFA],
        }
    }

    /// The level an `acr` value names, if it is one of ours.
    pub fn from_acr(acr: &str) -> Option<AuthLevel> {
        AuthLevel::ALL.into_iter().find(|l| l.acr() == acr)
    }

    /// The `acr_values_supported` of discovery.
    pub fn supported_acr_values() -> Vec<&'static str> {
        AuthLevel::ALL.iter().map(|l| l.acr()).collect()
    }
}

/// The `amr` claim of tokens that state `acr`: the methods of that level (`None` for a level this issuer does not
/// know, which it does not describe). Tokens state the level the request asked for when the sign-in met it
/// ([`AuthRequirement::acr_claim`]), and their `amr` agrees with their `acr`, so it never says more than the `acr`.
pub fn amr_for_acr(acr: &str) -> Option<Vec<String>> {
    AuthLevel::from_acr(acr).map(|l| l.amr().iter().map(|m| (*m).to_owned()).collect())
}

/// A sign-in as a session remembers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authentication<'a> {
    /// When the user signed in (`auth_time`).
    pub auth_time: Timestamp,
    /// The level the sign-in reached, as its `acr` value.
    pub acr: &'a str,
}

/// What an authorization request asks of the user's sign-in. The default asks nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthRequirement {
    /// `max_age`: the sign-in must be at most this many seconds old; `0` asks for a sign-in now.
    pub max_age: Option<u64>,
    /// `acr_values`, in the client's order of preference, without repeats.
    pub acr_values: Vec<String>,
}

impl AuthRequirement {
    /// Read the `max_age` and `acr_values` parameters as sent (absent or empty for none).
    pub fn parse(max_age: Option<&str>, acr_values: Option<&str>) -> Result<AuthRequirement, OAuthError> {
        let max_age = match max_age.filter(|v| !v.is_empty()) {
            None => None,
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits that overflow are a span no sign-in can exceed: no limit, as OIDC would read it.
                Some(v.parse::<u64>().unwrap_or(u64::MAX))
            }
            Some(_) => return Err(OAuthError::invalid_request("max_age must be a number of seconds")),
        };
        Ok(AuthRequirement { max_age, acr_values: parse_acr_values(acr_values.unwrap_or(""))? })
    }

    /// The requirement as stored with a pending or pushed request: `(max_age, acr_values)`.
    pub fn to_stored(&self) -> (Option<u64>, Option<String>) {
        (self.max_age, (!self.acr_values.is_empty()).then(|| self.acr_values.join(" ")))
    }

    /// The requirement of a request stored by [`AuthRequirement::to_stored`]. Stored values were checked when the
    /// request came; one that no longer reads asks nothing rather than failing the sign-in.
    pub fn from_stored(max_age: Option<u64>, acr_values: Option<&str>) -> AuthRequirement {
        let acr_values = parse_acr_values(acr_values.unwrap_or("")).unwrap_or_default();
        AuthRequirement { max_age, acr_values }
    }

    /// The requirement as far as a user who can reach at most `best` can meet it: `acr_values` above `best` are
    /// left out. `acr_values` are voluntary (OIDC Core §3.1.2.1): a user without a second factor who is asked for
    /// one is served at the level they have — signing in again could not deliver more — and the tokens' `acr`
    /// says so; the resource server decides whether that is enough (RFC 9470).
    pub fn within_reach(&self, best: AuthLevel) -> AuthRequirement {
        let acr_values =
            self.acr_values.iter().filter(|v| AuthLevel::from_acr(v).is_none_or(|l| l <= best)).cloned().collect();
        AuthRequirement { max_age: self.max_age, acr_values }
    }

    /// Whether `auth` meets the requirement at `now`; if not, the user must sign in again.
    ///
    /// Age is counted in whole seconds of `auth_time`, as the `auth_time` claim and the gate's step-up check count
    /// it, so a session the gate found too old is found too old here too.
    ///
    /// `acr_values` are voluntary (OIDC Core §3.1.2.1): only values this issuer can deliver ask for a sign-in. A
    /// request that names none of them is served with the sign-in there is, and the token's `acr` says which it
    /// was (the resource server decides whether that is enough); signing in again could not deliver more.
    pub fn is_met_by(&self, auth: Authentication<'_>, now: Timestamp) -> bool {
        self.fresh_enough(auth.auth_time, now) && self.level_met(auth.acr)
    }

    fn fresh_enough(&self, auth_time: Timestamp, now: Timestamp) -> bool {
        match self.max_age {
            None => true,
            // OIDC: max_age=0 is prompt=login: a sign-in from before this request never counts.
            Some(0) => false,
            Some(max_age) => {
                // A sign-in ahead of our clock (another node's skew) counts as just now, never as a negative age.
                let age = now.as_secs().saturating_sub(auth_time.as_secs()).max(0).unsigned_abs();
                age <= max_age
            }
        }
    }

    fn level_met(&self, acr: &str) -> bool {
        let mut wanted = self.deliverable().peekable();
        if wanted.peek().is_none() {
            return true;
        }
        let have = AuthLevel::from_acr(acr);
        wanted.any(|want| have.is_some_and(|have| have >= want))
    }

    /// The requested levels this issuer can deliver, in the client's order.
    fn deliverable(&self) -> impl Iterator<Item = AuthLevel> + '_ {
        self.acr_values.iter().filter_map(|v| AuthLevel::from_acr(v))
    }

    /// The `acr` claim of tokens issued for this request from a sign-in that reached `acr`: the first requested
    /// value it satisfies (OIDC Core §2: the class the authentication satisfied), so a resource server that asked
    /// for a value gets that value; otherwise what the sign-in reached.
    pub fn acr_claim(&self, acr: &str) -> String {
        let have = AuthLevel::from_acr(acr);
        self.acr_values
            .iter()
            .find(|v| AuthLevel::from_acr(v).zip(have).is_some_and(|(want, have)| have >= want))
            .cloned()
            .unwrap_or_else(|| acr.to_owned())
    }
}

/// `acr_values`: space-separated values, each visible ASCII without quotes or backslashes (so it can be echoed in a
/// quoted `WWW-Authenticate` parameter), repeats dropped, at most [`MAX_STATE_LEN`] bytes in all.
fn parse_acr_values(raw: &str) -> Result<Vec<String>, OAuthError> {
    const BAD: OAuthError = OAuthError::invalid_request("acr_values is malformed");
    if raw.len() > MAX_STATE_LEN {
        return Err(BAD);
    }
    let mut values: Vec<String> = Vec::new();
    for value in raw.split(' ').filter(|v| !v.is_empty()) {
        if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            return Err(BAD);
        }
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const MFA: &str = ACR_MFA;

    fn req(max_age: Option<&str>, acr_values: Option<&str>) -> AuthRequirement {
        AuthRequirement::parse(max_age, acr_values).unwrap()
    }

    fn pwd_at(secs: i64) -> Authentication<'static> {
        Authentication { auth_time: Timestamp::from_secs(secs), acr: ACR_PASSWORD }
    }

    fn now() -> Timestamp {
        Timestamp::from_secs(NOW)
    }

    #[test]
    fn nothing_asked_is_always_met() {
        let r = req(None, None);
        assert_eq!(r, AuthRequirement::default());
        assert!(r.is_met_by(pwd_at(0), now()));
        assert!(r.is_met_by(Authentication { acr: "urn:other", ..pwd_at(NOW) }, now()));
        assert_eq!(r.acr_claim(ACR_PASSWORD), ACR_PASSWORD);
    }

    #[test]
    fn max_age_counts_whole_seconds_and_zero_means_now() {
        let r = req(Some("300"), None);
        assert!(r.is_met_by(pwd_at(NOW - 300), now()), "exactly max_age old");
        assert!(!r.is_met_by(pwd_at(NOW - 301), now()));
        assert!(r.is_met_by(pwd_at(NOW + 5), now()), "skew ahead counts as now");
        // Within one second: 299.9 s counts as 299, like the gate's `auth_time` check.
        let almost = Authentication { auth_time: Timestamp::from_millis((NOW - 300) * 1000 + 900), ..pwd_at(0) };
        assert!(r.is_met_by(almost, now()));
        let zero = req(Some("0"), None);
        assert!(!zero.is_met_by(pwd_at(NOW), now()), "max_age=0: always sign in again");
        assert_eq!(req(Some("99999999999999999999999"), None).max_age, Some(u64::MAX));
        assert!(req(Some("99999999999999999999999"), None).is_met_by(pwd_at(0), now()));
    }

    #[test]
    fn a_stronger_level_satisfies_a_weaker_one_and_unknown_values_are_voluntary() {
        let r = req(None, Some(ACR_PASSWORD));
        assert!(r.is_met_by(pwd_at(0), now()));
        // A session whose level this issuer does not know (a value from a newer version, say) meets nothing.
        assert!(!r.is_met_by(Authentication { acr: "urn:other", ..pwd_at(NOW) }, now()));
        // Nothing deliverable asked for: a new sign-in could not do better, so the session serves.
        let unknown = req(None, Some("urn:x:hwk urn:y"));
        assert!(unknown.is_met_by(pwd_at(0), now()));
        assert_eq!(unknown.acr_claim(ACR_PASSWORD), ACR_PASSWORD, "the claim says what the sign-in was");
        // Any deliverable value of the list will do.
        let either = req(None, Some(&format!("{MFA} {ACR_PASSWORD}")));
        assert!(either.is_met_by(pwd_at(0), now()));
        assert_eq!(either.acr_claim(ACR_PASSWORD), ACR_PASSWORD);
    }

    #[test]
    fn mfa_is_above_the_password_and_out_of_reach_of_a_password_only_user() {
        let mfa = req(Some("60"), Some(MFA));
        assert!(!mfa.is_met_by(pwd_at(NOW), now()), "a password sign-in does not meet mfa");
        let mfa_at = Authentication { acr: MFA, ..pwd_at(NOW) };
        assert!(mfa.is_met_by(mfa_at, now()));
        assert!(req(None, Some(ACR_PASSWORD)).is_met_by(mfa_at, now()), "mfa satisfies pwd");
        assert_eq!(req(None, Some(ACR_PASSWORD)).acr_claim(MFA), ACR_PASSWORD);
        // A user without a second factor: mfa is voluntary, the rest of the requirement still holds.
        let reach = mfa.within_reach(AuthLevel::Password);
        assert_eq!(reach.acr_values, Vec::<String>::new());
        assert_eq!(reach.max_age, Some(60));
        assert!(reach.is_met_by(pwd_at(NOW), now()));
        assert!(!reach.is_met_by(pwd_at(NOW - 61), now()));
        assert_eq!(mfa.within_reach(AuthLevel::Mfa), mfa);
        let mixed = req(None, Some(&format!("urn:x {MFA} {ACR_PASSWORD}"))).within_reach(AuthLevel::Password);
        assert_eq!(mixed.acr_values, ["urn:x", ACR_PASSWORD]);
    }

    #[test]
    fn amr_follows_the_stated_level() {
        assert_eq!(amr_for_acr(ACR_PASSWORD), Some(vec!["pwd".to_owned()]));
        assert_eq!(amr_for_acr(MFA), Some(vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()]));
        assert_eq!(amr_for_acr("urn:other"), None);
    }

    #[test]
    fn both_requirements_must_hold() {
        let r = req(Some("60"), Some(ACR_PASSWORD));
        assert!(r.is_met_by(pwd_at(NOW - 10), now()));
        assert!(!r.is_met_by(pwd_at(NOW - 61), now()));
        assert!(!r.is_met_by(Authentication { acr: "urn:other", ..pwd_at(NOW) }, now()));
    }

    #[test]
    fn the_claim_is_the_first_requested_value_the_sign_in_satisfies() {
        let r = req(None, Some(&format!("urn:x {ACR_PASSWORD} {ACR_PASSWORD}")));
        assert_eq!(r.acr_values, ["urn:x", ACR_PASSWORD], "repeats dropped, order kept");
        assert_eq!(r.acr_claim(ACR_PASSWORD), ACR_PASSWORD);
        assert_eq!(r.acr_claim("urn:other"), "urn:other", "an unknown sign-in level is stated as it is");
        assert_eq!(AuthLevel::supported_acr_values(), [ACR_PASSWORD, ACR_MFA]);
        assert!(AuthLevel::ALL.windows(2).all(|w| w[0] < w[1]), "weakest first");
    }

    #[test]
    fn malformed_parameters_are_invalid_requests() {
        for (max_age, acr) in [
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some(" 5"), None),
            (Some("5s"), None),
            (None, Some("a\"b")),
            (None, Some("a\\b")),
            (None, Some("a\tb")),
            (None, Some("é")),
        ] {
            let e = AuthRequirement::parse(max_age, acr).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_request", "{max_age:?} {acr:?}");
        }
        let long = "a".repeat(MAX_STATE_LEN + 1);
        assert!(AuthRequirement::parse(None, Some(&long)).is_err());
        assert_eq!(req(None, Some("  ")).acr_values, Vec::<String>::new());
    }

    #[test]
    fn stored_form_round_trips() {
        let r = req(Some("0"), Some(&format!("{MFA} {ACR_PASSWORD}")));
        let (max_age, acr) = r.to_stored();
        assert_eq!((max_age, acr.as_deref()), (Some(0), Some(&*format!("{MFA} {ACR_PASSWORD}"))));
        assert_eq!(AuthRequirement::from_stored(max_age, acr.as_deref()), r);
        assert_eq!(AuthRequirement::default().to_stored(), (None, None));
        assert_eq!(AuthRequirement::from_stored(None, Some("bad\"")), AuthRequirement::default());
    }
}
