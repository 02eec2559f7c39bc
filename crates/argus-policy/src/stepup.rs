//! Step-up authentication (RFC 9470): an operation's `x-argus-step-up` requirement, the decision for a token, and
//! the `insufficient_user_authentication` challenge that tells the client how to get a token that meets it.
//!
//! ```yaml
//! x-argus-step-up: {acr: "urn:argus:acr:mfa", max_age: 300}
//! ```

use std::fmt::Write;

use argus_model::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A malformed `x-argus-step-up`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepUpError {
    #[error("expected {{acr: \"...\" | [\"...\"], max_age: seconds}}: {0}")]
    Malformed(String),
    #[error("name an acr value, a max_age, or both")]
    Empty,
    #[error("acr value {0:?} must be non-empty visible ASCII without spaces, quotes or backslashes")]
    BadAcr(String),
}

/// What an operation requires of the user's authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepUpPolicy {
    /// Acceptable `acr` values, any one of which satisfies; empty means any.
    acr: Vec<String>,
    /// `acr` joined with spaces, as `acr_values` in the challenge and the authorization request carries it.
    acr_values: Option<String>,
    /// Maximum seconds since `auth_time`.
    max_age: Option<u64>,
}

/// The claims step-up looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepUpClaims<'a> {
    /// `acr`: the authentication context class the user signed in with.
    pub acr: Option<&'a str>,
    /// `auth_time`, in seconds since the epoch.
    pub auth_time: Option<i64>,
}

impl<'a> StepUpClaims<'a> {
    /// Read `acr` and `auth_time` from verified claims; claims of the wrong type count as absent.
    pub fn from_claims(claims: &'a Map<String, Value>) -> Self {
        Self {
            acr: claims.get("acr").and_then(Value::as_str),
            auth_time: claims.get("auth_time").and_then(Value::as_i64),
        }
    }
}

/// The step-up decision for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepUpDecision<'p> {
    /// The token's authentication meets the requirement.
    Satisfied,
    /// It does not: answer 401 with [`StepUpChallenge::www_authenticate`].
    Required(StepUpChallenge<'p>),
}

/// What is wrong with the token's authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmet {
    /// `acr` is missing or not one of the required values.
    Acr,
    /// `auth_time` is missing or older than `max_age`.
    MaxAge,
}

/// An RFC 9470 challenge: the requirement the client must meet when it asks for a new token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepUpChallenge<'p> {
    policy: &'p StepUpPolicy,
    unmet: Unmet,
}

/// The scheme of the challenge, the one the token was presented with (RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeScheme<'a> {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP`, naming the accepted proof algorithms.
    Dpop { algs: &'a [&'a str] },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepUp {
    #[serde(default)]
    acr: Option<OneOrMany>,
    #[serde(default)]
    max_age: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl StepUpPolicy {
    /// A requirement: any of `acr` (empty for any), authenticated at most `max_age` seconds ago.
    pub fn new(acr: Vec<String>, max_age: Option<u64>) -> Result<Self, StepUpError> {
        if acr.is_empty() && max_age.is_none() {
            return Err(StepUpError::Empty);
        }
        if let Some(bad) = acr.iter().find(|a| !is_acr_token(a)) {
            return Err(StepUpError::BadAcr(bad.clone()));
        }
        let acr_values = (!acr.is_empty()).then(|| acr.join(" "));
        Ok(Self { acr, acr_values, max_age })
    }

    /// A requirement of a recent sign-in only: at most `max_age` seconds ago, any `acr`.
    pub fn max_age_only(max_age: u64) -> Self {
        Self { acr: Vec::new(), acr_values: None, max_age: Some(max_age) }
    }

    /// Parse the `x-argus-step-up` value.
    pub fn from_extension(value: &Value) -> Result<Self, StepUpError> {
        let raw = RawStepUp::deserialize(value).map_err(|e| StepUpError::Malformed(e.to_string()))?;
        let acr = match raw.acr {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(list)) => list,
        };
        Self::new(acr, raw.max_age)
    }

    /// The acceptable `acr` values; empty means any.
    pub fn acr(&self) -> &[String] {
        &self.acr
    }

    /// The maximum authentication age, in seconds.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// Whether a token with these claims may call the operation at `now`.
    pub fn decide(&self, claims: StepUpClaims<'_>, now: Timestamp) -> StepUpDecision<'_> {
        let acr_ok = self.acr.is_empty() || claims.acr.is_some_and(|acr| self.acr.iter().any(|a| a == acr));
        if !acr_ok {
            return StepUpDecision::Required(StepUpChallenge { policy: self, unmet: Unmet::Acr });
        }
        if let Some(max_age) = self.max_age {
            // An auth_time ahead of our clock (skew) counts as "just now", never as negative age.
            let fresh =
                claims.auth_time.is_some_and(|t| now.as_secs().saturating_sub(t).max(0).unsigned_abs() <= max_age);
            if !fresh {
                return StepUpDecision::Required(StepUpChallenge { policy: self, unmet: Unmet::MaxAge });
            }
        }
        StepUpDecision::Satisfied
    }
}

impl StepUpPolicy {
    /// This requirement's challenge whatever a token says: for a step-up the gate was told to demand (a configured
    /// trigger's `StepUpDemand`), which it decides on its own rather than with [`Self::decide`].
    pub fn challenge(&self) -> StepUpChallenge<'_> {
        let unmet = if self.max_age.is_some() { Unmet::MaxAge } else { Unmet::Acr };
        StepUpChallenge { policy: self, unmet }
    }
}

impl StepUpChallenge<'_> {
    /// What the token lacks.
    pub fn unmet(&self) -> Unmet {
        self.unmet
    }

    /// `acr_values` for the new authorization request (space-separated), if the operation names any.
    pub fn acr_values(&self) -> Option<&str> {
        self.policy.acr_values.as_deref()
    }

    /// `max_age` for the new authorization request, if the operation sets one.
    pub fn max_age(&self) -> Option<u64> {
        self.policy.max_age
    }

    /// The `error_description` of the challenge.
    pub fn description(&self) -> &'static str {
        match self.unmet {
            Unmet::Acr => "A different authentication level is required",
            Unmet::MaxAge => "More recent authentication is required",
        }
    }

    /// The `WWW-Authenticate` field value (RFC 9470 §3), for example
    /// `Bearer realm="argus", error="insufficient_user_authentication", error_description="...", acr_values="urn:x",
    /// max_age=300`. Both requirements are always named, so that one re-authorization meets them together. A DPoP
    /// challenge ends with the accepted `algs`, like the gate's other DPoP challenges.
    pub fn www_authenticate(&self, scheme: ChallengeScheme<'_>, realm: &str) -> String {
        let scheme_name = match scheme {
            ChallengeScheme::Bearer => "Bearer",
            ChallengeScheme::Dpop { .. } => "DPoP",
        };
        let mut out = format!(
            r#"{scheme_name} realm="{}", error="insufficient_user_authentication", error_description="{}""#,
            quoted_string_content(realm),
            self.description()
        );
        if let Some(acr_values) = self.acr_values() {
            // Checked at load to contain no quote or backslash.
            let _ = write!(out, r#", acr_values="{acr_values}""#);
        }
        if let Some(max_age) = self.max_age() {
            // An auth-param value may be a token (RFC 9110 §11.2); digits are one.
            let _ = write!(out, ", max_age={max_age}");
        }
        if let ChallengeScheme::Dpop { algs } = scheme {
            let _ = write!(out, r#", algs="{}""#, algs.join(" "));
        }
        out
    }
}

/// An `acr` value that can go inside the quoted, space-separated `acr_values`.
fn is_acr_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Escape `"` and `\` for a quoted-string (RFC 9110 §5.6.4) and drop control characters.
fn quoted_string_content(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_max_age_alone_is_the_requirement_new_builds() {
        assert_eq!(StepUpPolicy::max_age_only(60), StepUpPolicy::new(Vec::new(), Some(60)).unwrap());
    }

    const NOW: i64 = 1_700_000_000;
    const MFA: &str = "urn:argus:acr:mfa";

    fn now() -> Timestamp {
        Timestamp::from_secs(NOW)
    }

    fn policy(value: Value) -> StepUpPolicy {
        StepUpPolicy::from_extension(&value).unwrap()
    }

    fn claims(acr: Option<&str>, auth_time: Option<i64>) -> StepUpClaims<'_> {
        StepUpClaims { acr, auth_time }
    }

    #[test]
    fn acr_mismatch_requires_step_up() {
        let p = policy(json!({"acr": MFA}));
        assert_eq!(p.decide(claims(Some(MFA), None), now()), StepUpDecision::Satisfied);
        for c in [claims(Some("urn:argus:acr:pwd"), Some(NOW)), claims(None, Some(NOW))] {
            let StepUpDecision::Required(ch) = p.decide(c, now()) else { panic!("{c:?} satisfied") };
            assert_eq!((ch.unmet(), ch.acr_values(), ch.max_age()), (Unmet::Acr, Some(MFA), None));
        }
        // Any value of a list satisfies.
        let p = policy(json!({"acr": ["a", "b"]}));
        assert_eq!(p.decide(claims(Some("b"), None), now()), StepUpDecision::Satisfied);
        assert!(matches!(p.decide(claims(Some("c"), None), now()), StepUpDecision::Required(_)));
    }

    #[test]
    fn max_age_boundary_and_missing_auth_time() {
        let p = policy(json!({"max_age": 300}));
        assert_eq!(p.decide(claims(None, Some(NOW - 300)), now()), StepUpDecision::Satisfied);
        // Clock skew: an auth_time slightly ahead counts as fresh.
        assert_eq!(p.decide(claims(None, Some(NOW + 5)), now()), StepUpDecision::Satisfied);
        for c in [claims(None, Some(NOW - 301)), claims(None, None)] {
            let StepUpDecision::Required(ch) = p.decide(c, now()) else { panic!("{c:?} satisfied") };
            assert_eq!(ch.unmet(), Unmet::MaxAge);
        }
    }

    #[test]
    fn both_requirements() {
        let p = policy(json!({"acr": MFA, "max_age": 60}));
        assert_eq!(p.decide(claims(Some(MFA), Some(NOW - 10)), now()), StepUpDecision::Satisfied);
        let StepUpDecision::Required(ch) = p.decide(claims(Some(MFA), Some(NOW - 61)), now()) else { panic!() };
        assert_eq!(ch.unmet(), Unmet::MaxAge);
        let StepUpDecision::Required(ch) = p.decide(claims(Some("pwd"), Some(NOW)), now()) else { panic!() };
        assert_eq!(ch.unmet(), Unmet::Acr);
    }

    #[test]
    fn challenge_syntax() {
        let p = policy(json!({"acr": [MFA, "urn:x:hwk"], "max_age": 300}));
        let StepUpDecision::Required(ch) = p.decide(claims(None, None), now()) else { panic!() };
        assert_eq!(
            ch.www_authenticate(ChallengeScheme::Bearer, "argus"),
            r#"Bearer realm="argus", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:argus:acr:mfa urn:x:hwk", max_age=300"#
        );
        let p = policy(json!({"max_age": 5}));
        let StepUpDecision::Required(ch) = p.decide(claims(None, Some(NOW - 6)), now()) else { panic!() };
        assert_eq!(
            ch.www_authenticate(ChallengeScheme::Dpop { algs: &["ES256", "EdDSA"] }, "a\"b"),
            r#"DPoP realm="a\"b", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age=5, algs="ES256 EdDSA""#
        );
    }

    #[test]
    fn a_demanded_challenge_names_max_age() {
        let p = StepUpPolicy::new(Vec::new(), Some(0)).unwrap();
        assert_eq!(
            p.challenge().www_authenticate(ChallengeScheme::Bearer, "argus"),
            r#"Bearer realm="argus", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age=0"#
        );
    }

    #[test]
    fn malformed_extensions_are_refused() {
        for bad in [
            json!({}),
            json!({"acr": []}),
            json!({"acr": "has space"}),
            json!({"acr": "q\"uote"}),
            json!({"acr": ""}),
            json!({"max_age": -1}),
            json!({"max_age": "300"}),
            json!({"acr": MFA, "maxage": 3}),
            json!("urn:argus:acr:mfa"),
            json!({"acr": 7}),
        ] {
            assert!(StepUpPolicy::from_extension(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claims_of_the_wrong_type_count_as_absent() {
        let map = json!({"acr": 3, "auth_time": "yesterday"});
        let c = StepUpClaims::from_claims(map.as_object().unwrap());
        assert_eq!(c, StepUpClaims::default());
        let map = json!({"acr": MFA, "auth_time": NOW});
        assert_eq!(StepUpClaims::from_claims(map.as_object().unwrap()), claims(Some(MFA), Some(NOW)));
    }
}
