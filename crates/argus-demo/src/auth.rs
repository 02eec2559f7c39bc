//! Who is calling: the `sub` of the bearer token the gate forwarded.
//!
//! The signature is deliberately NOT verified here. The demo plays an upstream that trusts the gate in front of it —
//! the gate has already checked signature, issuer, audience, expiry, revocation and scopes — which is how many real
//! APIs behind an API gateway work. The demo still refuses a call that carries no token at all, so a direct call that
//! bypasses the gate does not silently act as nobody. (That trust is only sound when the upstream is reachable
//! through the gate alone; `argus up --demo` binds it to loopback.)

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::problem::{Kind, Problem};

/// Longest `sub` accepted; OpenID Connect caps it at 255 ASCII characters (Core §5.1).
const MAX_SUB_LEN: usize = 255;

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub` claim.
    pub sub: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_from_headers(&parts.headers)
    }
}

/// Find the caller in the request headers: exactly one `Authorization: Bearer <JWS>` whose payload has a `sub`.
pub fn caller_from_headers(headers: &HeaderMap) -> Result<Caller, Problem> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Problem::new(Kind::MissingToken, "send the access token as Authorization: Bearer <token>"));
    };
    if values.next().is_some() {
        return Err(invalid_token());
    }
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(invalid_token)?;
    sub_of_unverified_jwt(token).map(|sub| Caller { sub }).ok_or_else(invalid_token)
}

fn invalid_token() -> Problem {
    Problem::new(Kind::InvalidToken, "the bearer token is malformed or names no subject")
}

/// The token of an `Authorization` value with the `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1) scheme,
/// case-insensitive (RFC 9110 §11.1). The gate has verified the DPoP proof; the demo only needs the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop");
    (known && !token.is_empty()).then_some(token)
}

/// The `sub` claim of a compact JWS, read without checking the signature (see the module comment for why).
fn sub_of_unverified_jwt(token: &str) -> Option<String> {
    let mut segments = token.split('.');
    let (_header, payload, _signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    let acceptable = !sub.is_empty() && sub.len() <= MAX_SUB_LEN && !sub.chars().any(char::is_control);
    acceptable.then(|| sub.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn dpop_scheme_is_read_like_bearer() {
        assert_eq!(bearer_token("DPoP abc"), Some("abc"));
        assert_eq!(bearer_token("dpop abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("DPoP "), None);
    }

    fn jwt_with_payload(payload: &str) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#), URL_SAFE_NO_PAD.encode(payload))
    }

    fn headers_with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn reads_sub_from_a_bearer_jwt_with_any_scheme_case() {
        let token = jwt_with_payload(r#"{"sub":"user-1","scope":"accounts:read"}"#);
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let caller = caller_from_headers(&headers_with(&[&format!("{scheme} {token}")])).unwrap();
            assert_eq!(caller.sub, "user-1");
        }
    }

    #[test]
    fn no_header_is_a_missing_token() {
        let err = caller_from_headers(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.kind(), Kind::MissingToken);
    }

    #[test]
    fn unusable_tokens_are_invalid() {
        let good = jwt_with_payload(r#"{"sub":"u"}"#);
        let cases = [
            format!("Basic {good}"),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            "Bearer not-a-jwt".to_owned(),
            format!("Bearer {good}.extra"),
            format!("Bearer {}", jwt_with_payload(r#"{"scope":"x"}"#)),
            format!("Bearer {}", jwt_with_payload(r#"{"sub":""}"#)),
            format!("Bearer {}", jwt_with_payload(r#"{"sub":42}"#)),
            format!("Bearer {}", jwt_with_payload(r#"{"sub":"a\nb"}"#)),
            format!("Bearer {}", jwt_with_payload(&format!(r#"{{"sub":"{}"}}"#, "a".repeat(256)))),
            format!("Bearer {}", jwt_with_payload("[1,2]")),
            "Bearer a.%%%.c".to_owned(),
        ];
        for case in &cases {
            let err = caller_from_headers(&headers_with(&[case])).unwrap_err();
            assert_eq!(err.kind(), Kind::InvalidToken, "{case}");
        }
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let a = format!("Bearer {}", jwt_with_payload(r#"{"sub":"a"}"#));
        let b = format!("Bearer {}", jwt_with_payload(r#"{"sub":"b"}"#));
        let err = caller_from_headers(&headers_with(&[&a, &b])).unwrap_err();
        assert_eq!(err.kind(), Kind::InvalidToken);
    }
}
