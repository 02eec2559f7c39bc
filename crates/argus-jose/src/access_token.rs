//! RFC 9068 JWT access tokens: the claims Argus issues and the checks a resource server makes.

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The `typ` header of an access token (RFC 9068 §2.1). Checking it stops an id_token being replayed as an access
/// token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew allowed on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// The claims of an Argus access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// The issuer's sign-in session; absent for tokens not tied to a user session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user signed in (RFC 9068 §2.2.1), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication context class that sign-in satisfied (RFC 9068 §2.2.1, OIDC Core §2): what step-up
    /// requirements (RFC 9470) compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods of that sign-in (RFC 8176 values, e.g. `pwd`, `otp`, `mfa`; RFC 9068 §2.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The key the token is bound to (RFC 9449 §6.1); a token with `cnf.jkt` is only usable with a DPoP proof of
    /// that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Private claim: the refresh-token family the token was issued in, so a gate can refuse every token of a
    /// revoked family without knowing their `jti`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    /// Private claim: the device (browser) the user signed in on, so "sign out this device" reaches live tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
}

/// The `cnf` (confirmation) claim (RFC 7800), as DPoP uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the DPoP public key, base64url.
    pub jkt: String,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }

    /// The keys a revocation matches on.
    pub fn revocation_keys(&self) -> argus_model::TokenKeys<'_> {
        argus_model::TokenKeys {
            jti: &self.jti,
            sub: &self.sub,
            client_id: &self.client_id,
            sid: self.sid.as_deref(),
            iat_secs: self.iat,
            family: self.fid.as_deref(),
            device: self.did.as_deref(),
        }
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// Why an access token was refused. Every variant maps to RFC 6750 `invalid_token`; the detail is for logs and
/// events, never for the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("not an access token (typ)")]
    WrongType,
    #[error("algorithm not accepted")]
    WrongAlgorithm,
    #[error("signing key not known")]
    UnknownKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
}

impl TokenError {
    /// A short stable name for events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongType => "wrong_type",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

/// The `kid` of a compact JWS, without verifying anything. Used to decide whether the JWKS must be refetched.
pub fn peek_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// Verify an access token: `typ`, algorithm, signature by a key of `jwks` named by `kid`, then `iss`, `aud`, `exp`
/// and `iat` against `now_secs`.
pub fn verify_access_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let jwk = jwks.find(&kid).ok_or(TokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey)?;
    // The key must be of the algorithm the header names; never let the token choose.
    if jwk.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{:?}", header.alg)) {
        return Err(TokenError::WrongAlgorithm);
    }

    let mut validation = Validation::new(header.alg);
    // Time and claims are checked below with the injected clock and precise errors.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
            _ => TokenError::Malformed,
        }
    })?;
    let claims: AccessClaims = serde_json::from_value(data.claims).map_err(|_| TokenError::Malformed)?;

    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !claims.aud.contains(audience) {
        return Err(TokenError::WrongAudience);
    }
    if claims.exp + LEEWAY_SECS <= now_secs {
        return Err(TokenError::Expired);
    }
    if claims.iat - LEEWAY_SECS > now_secs {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    const ISS: &str = "http://127.0.0.1:7400";
    const AUD: &str = "http://127.0.0.1:7480";

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "alice".into(),
            aud: Audience::One(AUD.into()),
            exp: now + 300,
            iat: now,
            jti: "j1".into(),
            client_id: "demo-app".into(),
            scope: "openid accounts:read".into(),
            sid: Some("s1".into()),
            auth_time: Some(now),
            acr: Some("urn:argus:acr:pwd".into()),
            amr: Some(vec!["pwd".into()]),
            cnf: None,
            fid: None,
            did: None,
        }
    }

    fn jwks(k: &SigningKey) -> JwkSet {
        JwkSet { keys: vec![k.public_jwk().clone()] }
    }

    #[test]
    fn good_token_verifies() {
        let k = SigningKey::generate_es256().unwrap();
        let t = k.sign(ACCESS_TOKEN_TYP, &claims(1000)).unwrap();
        let c = verify_access_token(&t, &jwks(&k), ISS, AUD, 1010).unwrap();
        assert_eq!(c, claims(1000));
        assert!(c.has_scope("accounts:read"));
        assert!(!c.has_scope("accounts"));
        assert_eq!(peek_kid(&t).as_deref(), Some(k.kid()));
    }

    #[test]
    fn each_bad_token_gets_its_reason() {
        let k = SigningKey::generate_es256().unwrap();
        let other = SigningKey::generate_es256().unwrap();
        let set = jwks(&k);
        let ok = |c: &AccessClaims| k.sign(ACCESS_TOKEN_TYP, c).unwrap();
        let verify = |t: &str| verify_access_token(t, &set, ISS, AUD, 1000);

        assert_eq!(verify("not-a-jwt"), Err(TokenError::Malformed));
        assert_eq!(verify(&k.sign("JWT", &claims(1000)).unwrap()), Err(TokenError::WrongType));
        assert_eq!(verify(&other.sign(ACCESS_TOKEN_TYP, &claims(1000)).unwrap()), Err(TokenError::UnknownKey));

        let mut c = claims(1000);
        c.iss = "http://evil".into();
        assert_eq!(verify(&ok(&c)), Err(TokenError::WrongIssuer));
        let mut c = claims(1000);
        c.aud = Audience::Many(vec!["other".into()]);
        assert_eq!(verify(&ok(&c)), Err(TokenError::WrongAudience));
        assert_eq!(verify(&ok(&claims(500))), Err(TokenError::Expired));
        assert_eq!(verify(&ok(&claims(2000))), Err(TokenError::NotYetValid));

        // A token signed by another key but claiming our kid: signature fails.
        let forged = {
            let t = other.sign(ACCESS_TOKEN_TYP, &claims(1000)).unwrap();
            let mut parts: Vec<&str> = t.split('.').collect();
            let good = ok(&claims(1000));
            let good_header = good.split('.').next().unwrap().to_owned();
            parts[0] = &good_header;
            parts.join(".")
        };
        assert_eq!(verify(&forged), Err(TokenError::BadSignature));

        // alg=none is never accepted.
        let none = format!(
            "{}.{}.",
            base64_url(r#"{"alg":"none","typ":"at+jwt","kid":"x"}"#),
            base64_url(&serde_json::to_string(&claims(1000)).unwrap())
        );
        assert!(verify(&none).is_err());
    }

    fn base64_url(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }
}
