//! DPoP (RFC 9449) proofs for tests: a client key and a builder that makes good proofs and, through overrides,
//! every kind of bad one.

use argus_jose::{DPOP_TYP, Jwk, jwk_thumbprint, sha256_b64url};
use argus_model::id::new_id;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

/// A DPoP client key pair (what a browser app would keep in IndexedDB).
pub struct DpopKey {
    alg: Algorithm,
    signer: Signer,
    public: Jwk,
}

enum Signer {
    Jwt(EncodingKey),
    // jsonwebtoken signs RSA only from PKCS#1, which aws-lc-rs does not export: sign with aws-lc-rs directly.
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey").field("alg", &self.alg).field("jkt", &self.jkt()).finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh P-256 key (`ES256`), the algorithm most clients use.
    ///
    /// # Panics
    /// If key generation fails.
    pub fn es256() -> Self {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("generate a P-256 key");
        Self::from_encoding(Algorithm::ES256, EncodingKey::from_ec_der(doc.as_ref()))
    }

    /// A fresh P-384 key (`ES384`).
    ///
    /// # Panics
    /// If key generation fails.
    pub fn es384() -> Self {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
            .expect("generate a P-384 key");
        Self::from_encoding(Algorithm::ES384, EncodingKey::from_ec_der(doc.as_ref()))
    }

    /// A fresh Ed25519 key (`EdDSA`).
    ///
    /// # Panics
    /// If key generation fails.
    pub fn ed25519() -> Self {
        // jsonwebtoken derives the public JWK from a PKCS#8 v1 document only.
        let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).expect("generate an Ed25519 key");
        Self::from_encoding(Algorithm::EdDSA, EncodingKey::from_ed_der(doc.as_ref()))
    }

    /// A fresh RSA-2048 key used with `RS256`.
    ///
    /// # Panics
    /// If key generation fails.
    pub fn rs256() -> Self {
        Self::rsa(Algorithm::RS256)
    }

    /// A fresh RSA-2048 key used with `PS256`.
    ///
    /// # Panics
    /// If key generation fails.
    pub fn ps256() -> Self {
        Self::rsa(Algorithm::PS256)
    }

    fn rsa(alg: Algorithm) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let public: Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        }))
        .expect("an RSA JWK");
        Self { alg, signer: Signer::Rsa(pair), public }
    }

    fn from_encoding(alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut public = Jwk::from_encoding_key(&encoding, alg).expect("derive the public JWK");
        // Clients send a bare public key; `alg` in the JWK is optional and most leave it out.
        public.common.key_algorithm = None;
        Self { alg, signer: Signer::Jwt(encoding), public }
    }

    fn sign(&self, message: &[u8]) -> String {
        match &self.signer {
            Signer::Jwt(encoding) => {
                jsonwebtoken::crypto::sign(message, encoding, self.alg).expect("sign a DPoP proof")
            }
            Signer::Rsa(pair) => {
                let padding = if self.alg == Algorithm::PS256 { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut signature).expect("sign a DPoP proof");
                URL_SAFE_NO_PAD.encode(signature)
            }
        }
    }

    /// The public key as it goes into the proof header.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// The public key as JSON, to tamper with (add a private `d`, change the curve ...).
    pub fn public_jwk_json(&self) -> Value {
        serde_json::to_value(&self.public).expect("serialize a JWK")
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn jkt(&self) -> String {
        jwk_thumbprint(&self.public).expect("thumbprint of a public key")
    }

    /// The JWS `alg` name of this key.
    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            _ => "ES256",
        }
    }

    /// A proof builder for `htm` and `htu` at time `iat` (seconds), with a fresh `jti`.
    pub fn proof(&self, htm: &str, htu: &str, iat: i64) -> DpopProofBuilder<'_> {
        DpopProofBuilder::new(self, htm, htu, iat)
    }
}

/// Builds a DPoP proof signed by a [`DpopKey`]. The defaults make a valid proof; each setter changes one thing.
#[derive(Clone, Debug)]
pub struct DpopProofBuilder<'k> {
    key: &'k DpopKey,
    claims: Map<String, Value>,
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Value>,
    unsigned: bool,
    tamper_signature: bool,
}

impl<'k> DpopProofBuilder<'k> {
    /// A valid proof of `key` for a `htm` request to `htu` issued at `iat`, with a fresh `jti`.
    pub fn new(key: &'k DpopKey, htm: &str, htu: &str, iat: i64) -> Self {
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(new_id()));
        claims.insert("htm".into(), json!(htm));
        claims.insert("htu".into(), json!(htu));
        claims.insert("iat".into(), json!(iat));
        Self { key, claims, typ: None, alg: None, jwk: None, unsigned: false, tamper_signature: false }
    }

    /// Set `jti` (to replay one, or to share one across keys).
    pub fn jti(mut self, jti: &str) -> Self {
        self.claims.insert("jti".into(), json!(jti));
        self
    }

    /// Set `ath` to the hash of `access_token`, as a client presenting that token does.
    pub fn ath_for(self, access_token: &str) -> Self {
        let ath = sha256_b64url(access_token.as_bytes());
        self.claim("ath", json!(ath))
    }

    /// Set `nonce` (a server nonce from `DPoP-Nonce`).
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", json!(nonce))
    }

    /// Set any claim to any JSON value (e.g. `iat` as a string, to make a malformed proof).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    /// Leave a claim out.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Override the `typ` header (the default is `dpop+jwt`).
    pub fn typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Override the `alg` header. The signature is still made with the key's own algorithm.
    pub fn alg(mut self, alg: &str) -> Self {
        self.alg = Some(alg.into());
        self
    }

    /// Override the `jwk` header (another key, a private key, a symmetric key, `null` ...).
    pub fn jwk(mut self, jwk: Value) -> Self {
        self.jwk = Some(jwk);
        self
    }

    /// Make an unsecured JWS: `alg: none` and an empty signature.
    pub fn unsigned(mut self) -> Self {
        self.unsigned = true;
        self.alg = Some("none".into());
        self
    }

    /// Flip a bit of the signature, so it no longer verifies.
    pub fn tamper_signature(mut self) -> Self {
        self.tamper_signature = true;
        self
    }

    /// The compact JWS.
    ///
    /// # Panics
    /// If signing fails.
    pub fn build(&self) -> String {
        let header = json!({
            "typ": self.typ.as_deref().unwrap_or(DPOP_TYP),
            "alg": self.alg.as_deref().unwrap_or(self.key.alg_name()),
            "jwk": self.jwk.clone().unwrap_or_else(|| self.key.public_jwk_json()),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(self.claims.clone()).to_string())
        );
        if self.unsigned {
            return format!("{signing_input}.");
        }
        let signature = self.key.sign(signing_input.as_bytes());
        let signature = if self.tamper_signature { flip_first_bit(&signature) } else { signature };
        format!("{signing_input}.{signature}")
    }
}

fn flip_first_bit(b64: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(b64).expect("base64url signature");
    if let Some(b) = bytes.first_mut() {
        *b ^= 1;
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use argus_jose::{DpopCheck, verify_dpop_proof};

    use super::*;

    #[test]
    fn built_proofs_verify_with_each_key_type() {
        for key in [DpopKey::es256(), DpopKey::es384(), DpopKey::ed25519(), DpopKey::rs256(), DpopKey::ps256()] {
            let proof = key.proof("GET", "https://api.example/r", 1000).ath_for("tok").nonce("n1").build();
            let check = DpopCheck {
                method: "GET",
                url: "https://api.example/r",
                now_secs: 1000,
                max_age_secs: 60,
                access_token: Some("tok"),
            };
            let verified = verify_dpop_proof(&proof, &check).unwrap_or_else(|e| panic!("{}: {e}", key.alg_name()));
            assert_eq!(verified.jkt, key.jkt());
            assert_eq!(verified.nonce.as_deref(), Some("n1"));
        }
    }
}
