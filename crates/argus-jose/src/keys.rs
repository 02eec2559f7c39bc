use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, Signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

/// The JWS `alg` of ES256 keys (ECDSA P-256 with SHA-256).
pub const ES256: &str = "ES256";
/// The JWS `alg` of Ed25519 keys (RFC 8037).
pub const EDDSA: &str = "EdDSA";
/// The algorithms Argus signs with, by JWS name.
pub const SIGNING_ALGORITHMS: [&str; 2] = [ES256, EDDSA];

/// Why a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("the stored key is not a valid PKCS#8 key of its algorithm")]
    InvalidKey,
    #[error("signing algorithm {0:?} is not supported (use ES256 or EdDSA)")]
    UnsupportedAlgorithm(String),
    #[error("signing failed: {0}")]
    Sign(&'static str),
}

/// A private signing key (ES256 or EdDSA/Ed25519) with its id and public JWK.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pkcs8_der: Vec<u8>,
    /// The parsed key pair, kept: parsing PKCS#8 checks the key, which costs about as much as a signature, and
    /// `jsonwebtoken::encode` would do it on every call.
    pair: KeyPair,
    rng: SystemRandom,
    public: Jwk,
}

/// A parsed private key, ready to sign.
enum KeyPair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// The JOSE header Argus signs with; field order as jsonwebtoken writes it.
#[derive(Serialize)]
struct JwsHeader<'a> {
    typ: &'a str,
    alg: &'static str,
    kid: &'a str,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh ES256 (P-256) key. Its `kid` is its RFC 7638 thumbprint.
    pub fn generate_es256() -> Result<Self, KeyError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(None, doc.as_ref().to_vec())
    }

    /// A fresh Ed25519 key (JWS `EdDSA`, RFC 8037). Its `kid` is its RFC 7638 thumbprint.
    pub fn generate_ed25519() -> Result<Self, KeyError> {
        let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        Self::from_ed25519_pkcs8_der(None, doc.as_ref().to_vec())
    }

    /// A fresh key of the named JWS algorithm (`ES256` or `EdDSA`).
    pub fn generate(alg: &str) -> Result<Self, KeyError> {
        match alg {
            ES256 => Self::generate_es256(),
            EDDSA => Self::generate_ed25519(),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
        }
    }

    /// Load a stored key of the named JWS algorithm (`ES256` or `EdDSA`). With `kid` `None` the thumbprint is used.
    pub fn from_stored(kid: Option<String>, alg: &str, pkcs8_der: Vec<u8>) -> Result<Self, KeyError> {
        match alg {
            ES256 => Self::from_pkcs8_der(kid, pkcs8_der),
            EDDSA => Self::from_ed25519_pkcs8_der(kid, pkcs8_der),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
        }
    }

    /// Load a stored ES256 key. With `kid` `None` the thumbprint is used.
    pub fn from_pkcs8_der(kid: Option<String>, pkcs8_der: Vec<u8>) -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8_der).map_err(|_| KeyError::InvalidKey)?;
        let encoding = EncodingKey::from_ec_der(&pkcs8_der);
        Self::assemble(kid, Algorithm::ES256, pkcs8_der, &encoding, KeyPair::Es256(pair))
    }

    /// Load a stored Ed25519 key, PKCS#8 v1 or v2. It is kept as v1: that is the form jsonwebtoken derives the
    /// public JWK from.
    pub fn from_ed25519_pkcs8_der(kid: Option<String>, pkcs8_der: Vec<u8>) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8_der).map_err(|_| KeyError::InvalidKey)?;
        let v1 = pair.to_pkcs8v1().map_err(|_| KeyError::InvalidKey)?.as_ref().to_vec();
        let encoding = EncodingKey::from_ed_der(&v1);
        Self::assemble(kid, Algorithm::EdDSA, v1, &encoding, KeyPair::Ed25519(pair))
    }

    /// The public JWK (`kid`, `use: sig`, `alg`) of a validated private key.
    fn assemble(
        kid: Option<String>,
        alg: Algorithm,
        pkcs8_der: Vec<u8>,
        encoding: &EncodingKey,
        pair: KeyPair,
    ) -> Result<Self, KeyError> {
        let mut public = Jwk::from_encoding_key(encoding, alg).map_err(|_| KeyError::InvalidKey)?;
        let kid = match kid {
            Some(k) => k,
            None => jwk_thumbprint(&public).ok_or(KeyError::InvalidKey)?,
        };
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        public.common.key_algorithm =
            Some(if alg == Algorithm::EdDSA { KeyAlgorithm::EdDSA } else { KeyAlgorithm::ES256 });
        Ok(Self { kid, alg, pkcs8_der, pair, rng: SystemRandom::new(), public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS `alg` name (`ES256` or `EdDSA`).
    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::EdDSA => EDDSA,
            _ => ES256,
        }
    }

    /// The private key, PKCS#8 DER, for the store.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// The public key as published in the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// Sign `claims` as a compact JWS with this key's `kid` and the given `typ` header (`at+jwt`, `JWT`, ...).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let header = JwsHeader { typ, alg: self.alg_name(), kid: &self.kid };
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign("header"))?;
        let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign("claims are not JSON"))?;
        let mut jws = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 96);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jws);
        let signature = self.sign_bytes(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }

    /// The JWS signature of the signing input: ES256 as the fixed-size `r || s` of RFC 7518 §3.4.
    fn sign_bytes(&self, input: &[u8]) -> Result<Signature, KeyError> {
        match &self.pair {
            KeyPair::Es256(pair) => pair.sign(&self.rng, input).map_err(|_| KeyError::Sign("ECDSA signing failed")),
            KeyPair::Ed25519(pair) => Ok(pair.sign(input)),
        }
    }
}

/// The RFC 7638 SHA-256 thumbprint of a JWK, base64url; `None` for a key type it cannot be computed for.
pub fn jwk_thumbprint(jwk: &Jwk) -> Option<String> {
    jwk.thumbprint(ThumbprintHash::SHA256).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_der() {
        let k = SigningKey::generate_es256().unwrap();
        let again = SigningKey::from_pkcs8_der(Some(k.kid().into()), k.pkcs8_der().to_vec()).unwrap();
        assert_eq!(k.public_jwk(), again.public_jwk());
        assert_eq!(k.kid().len(), 43, "kid is a SHA-256 thumbprint");
        let json = serde_json::to_value(k.public_jwk()).unwrap();
        assert_eq!(json["kty"], "EC");
        assert_eq!(json["crv"], "P-256");
        assert_eq!(json["alg"], "ES256");
        assert_eq!(json["use"], "sig");
        assert!(json.get("d").is_none(), "no private part in the public JWK");
        assert!(!format!("{k:?}").contains("pkcs8"));
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(SigningKey::from_pkcs8_der(None, vec![1, 2, 3]), Err(KeyError::InvalidKey)));
        assert!(matches!(SigningKey::from_stored(None, EDDSA, vec![1, 2, 3]), Err(KeyError::InvalidKey)));
        assert!(matches!(SigningKey::generate("RS256"), Err(KeyError::UnsupportedAlgorithm(_))));
        // A key stored under the wrong algorithm does not load.
        let es = SigningKey::generate_es256().unwrap();
        assert!(SigningKey::from_stored(None, EDDSA, es.pkcs8_der().to_vec()).is_err());
        let ed = SigningKey::generate_ed25519().unwrap();
        assert!(SigningKey::from_stored(None, ES256, ed.pkcs8_der().to_vec()).is_err());
    }

    #[test]
    fn ed25519_key_round_trips_and_publishes_an_okp_jwk() {
        let k = SigningKey::generate(EDDSA).unwrap();
        assert_eq!(k.alg_name(), "EdDSA");
        let again = SigningKey::from_stored(Some(k.kid().into()), EDDSA, k.pkcs8_der().to_vec()).unwrap();
        assert_eq!(k.public_jwk(), again.public_jwk());
        assert_eq!(k.kid().len(), 43, "kid is a SHA-256 thumbprint");
        let json = serde_json::to_value(k.public_jwk()).unwrap();
        assert_eq!(json["kty"], "OKP");
        assert_eq!(json["crv"], "Ed25519");
        assert_eq!(json["alg"], "EdDSA");
        assert_eq!(json["use"], "sig");
        assert!(json.get("d").is_none(), "no private part in the public JWK");
    }

    #[test]
    fn eddsa_access_tokens_verify_beside_es256_keys() {
        use crate::{ACCESS_TOKEN_TYP, AccessClaims, Audience, JwkSet, TokenError, verify_access_token};
        let ed = SigningKey::generate_ed25519().unwrap();
        let es = SigningKey::generate_es256().unwrap();
        let jwks = JwkSet { keys: vec![es.public_jwk().clone(), ed.public_jwk().clone()] };
        let claims = AccessClaims {
            iss: "http://iss".into(),
            sub: "alice".into(),
            aud: Audience::One("http://aud".into()),
            exp: 1300,
            iat: 1000,
            jti: "j1".into(),
            client_id: "app".into(),
            scope: "openid".into(),
            sid: None,
            auth_time: None,
            acr: None,
            amr: None,
            cnf: None,
            fid: Some("f1".into()),
            did: Some("d1".into()),
        };
        let token = ed.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
        let verified = verify_access_token(&token, &jwks, "http://iss", "http://aud", 1010).unwrap();
        assert_eq!(verified, claims);
        let keys = verified.revocation_keys();
        assert_eq!((keys.family, keys.device), (Some("f1"), Some("d1")));

        // An Ed25519 signature presented under the ES256 key's kid is refused, whatever the header says.
        let posing = SigningKey::from_ed25519_pkcs8_der(Some(es.kid().into()), ed.pkcs8_der().to_vec()).unwrap();
        let forged = posing.sign(ACCESS_TOKEN_TYP, &claims).unwrap();
        assert!(matches!(
            verify_access_token(&forged, &jwks, "http://iss", "http://aud", 1010),
            Err(TokenError::WrongAlgorithm | TokenError::BadSignature)
        ));
    }

    #[test]
    fn signed_tokens_are_compact_jws_with_our_header_and_verify_with_jsonwebtoken() {
        use base64::Engine;
        for key in [SigningKey::generate_es256().unwrap(), SigningKey::generate_ed25519().unwrap()] {
            let jws = key.sign("at+jwt", &serde_json::json!({"sub": "alice", "n": 1})).unwrap();
            let parts: Vec<&str> = jws.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header, serde_json::json!({"typ": "at+jwt", "alg": key.alg_name(), "kid": key.kid()}));
            let sig_len = URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len();
            assert_eq!(sig_len, 64, "ES256 r||s and Ed25519 signatures are both 64 bytes");
            // An independent verifier accepts it.
            let jwk = key.public_jwk();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(key.alg);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&jws, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "alice");
        }
    }

    #[test]
    fn ed25519_pkcs8_v2_is_accepted_and_kept_as_v1() {
        let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let k = SigningKey::from_ed25519_pkcs8_der(None, v2.as_ref().to_vec()).unwrap();
        assert_eq!(k.pkcs8_der().len(), 48, "PKCS#8 v1: 16-byte header and the 32-byte seed");
    }
}
