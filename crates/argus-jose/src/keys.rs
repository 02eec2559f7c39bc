use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Why a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("the stored key is not a valid PKCS#8 P-256 key")]
    InvalidKey,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A private signing key (ES256 for now) with its id and public JWK.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    pkcs8_der: Vec<u8>,
    encoding: EncodingKey,
    public: Jwk,
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

    /// Load a stored ES256 key. With `kid` `None` the thumbprint is used.
    pub fn from_pkcs8_der(kid: Option<String>, pkcs8_der: Vec<u8>) -> Result<Self, KeyError> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8_der).map_err(|_| KeyError::InvalidKey)?;
        let encoding = EncodingKey::from_ec_der(&pkcs8_der);
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|_| KeyError::InvalidKey)?;
        let kid = match kid {
            Some(k) => k,
            None => jwk_thumbprint(&public).ok_or(KeyError::InvalidKey)?,
        };
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        public.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self { kid, alg: Algorithm::ES256, pkcs8_der, encoding, public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS `alg` name (`ES256`).
    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::EdDSA => "EdDSA",
            _ => "ES256",
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
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
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
    }
}
