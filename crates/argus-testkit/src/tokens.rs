use std::time::Duration;

use argus_jose::{ACCESS_TOKEN_TYP, AccessClaims, Audience, SigningKey};
use argus_model::Timestamp;
use argus_model::id::new_id;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The issuer tokens name when a test does not care.
pub const TEST_ISSUER: &str = "http://127.0.0.1:7400";
/// The audience tokens name when a test does not care.
pub const TEST_AUDIENCE: &str = "http://127.0.0.1:7480";

/// A fresh ES256 signing key.
///
/// # Panics
/// If key generation fails.
pub fn test_key() -> SigningKey {
    SigningKey::generate_es256().expect("generate an ES256 test key")
}

/// Claims of a five-minute access token for user `alice` of client `demo-app`, issued at `now`, with scopes
/// `openid accounts:read`, a fresh `jti` and a fresh `sid`. Change the public fields as a test needs.
pub fn access_claims(issuer: &str, audience: &str, now: Timestamp) -> AccessClaims {
    AccessClaims {
        iss: issuer.to_owned(),
        sub: "alice".to_owned(),
        aud: Audience::One(audience.to_owned()),
        exp: now.plus(Duration::from_secs(300)).as_secs(),
        iat: now.as_secs(),
        jti: new_id(),
        client_id: "demo-app".to_owned(),
        scope: "openid accounts:read".to_owned(),
        sid: Some(new_id()),
        auth_time: Some(now.as_secs()),
        acr: None,
        amr: None,
        cnf: None,
        fid: None,
        did: None,
    }
}

/// An access token (`typ: at+jwt`) signed by `key`.
///
/// # Panics
/// If signing fails.
pub fn mint_access_token(key: &SigningKey, claims: &AccessClaims) -> String {
    mint_with_typ(key, ACCESS_TOKEN_TYP, claims)
}

/// A token with another `typ` header, e.g. `JWT` to pose an id_token as an access token.
///
/// # Panics
/// If signing fails.
pub fn mint_with_typ(key: &SigningKey, typ: &str, claims: &AccessClaims) -> String {
    key.sign(typ, claims).expect("sign a test token")
}

/// An unsecured JWS (`alg: none`, empty signature) naming `kid`.
pub fn unsigned_token(kid: &str, claims: &AccessClaims) -> String {
    let header = serde_json::json!({ "alg": "none", "typ": ACCESS_TOKEN_TYP, "kid": kid });
    let payload = serde_json::to_vec(claims).expect("serialize claims");
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload))
}

/// A correctly formed token signed by `attacker` whose header names `kid` (a key the verifier knows): the
/// signature is valid for the attacker's key only.
///
/// # Panics
/// If the attacker's key cannot be reloaded or signing fails.
pub fn forge_with_kid(attacker: &SigningKey, kid: &str, claims: &AccessClaims) -> String {
    let posing = SigningKey::from_pkcs8_der(Some(kid.to_owned()), attacker.pkcs8_der().to_vec())
        .expect("reload the attacker key");
    mint_access_token(&posing, claims)
}

#[cfg(test)]
mod tests {
    use argus_jose::{JwkSet, TokenError, verify_access_token};

    use super::*;
    use crate::TEST_EPOCH;

    #[test]
    fn minted_tokens_verify_and_forgeries_do_not() {
        let key = test_key();
        let jwks = JwkSet { keys: vec![key.public_jwk().clone()] };
        let claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        let now = TEST_EPOCH.as_secs();
        let verify = |t: &str| verify_access_token(t, &jwks, TEST_ISSUER, TEST_AUDIENCE, now);

        assert_eq!(verify(&mint_access_token(&key, &claims)), Ok(claims.clone()));
        assert_eq!(verify(&mint_with_typ(&key, "JWT", &claims)), Err(TokenError::WrongType));
        assert_eq!(verify(&forge_with_kid(&test_key(), key.kid(), &claims)), Err(TokenError::BadSignature));
        assert!(verify(&unsigned_token(key.kid(), &claims)).is_err());
        assert_ne!(claims.jti, access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH).jti);
    }
}
