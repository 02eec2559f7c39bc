//! JOSE for Argus: signing keys and JWKS, RFC 9068 access tokens, id tokens, PKCE and RFC 7638 thumbprints.
//!
//! Pure: no I/O. Time comes in as an argument so expiry is testable without sleeping.
#![forbid(unsafe_code)]

mod access_token;
mod credentials;
mod dpop;
mod keys;
mod pkce;

pub use access_token::{
    ACCESS_TOKEN_TYP, AccessClaims, Audience, Confirmation, LEEWAY_SECS, TokenError, peek_kid, verify_access_token,
};
pub use credentials::{CredentialsError, PresentedScheme, presented_token};
pub use dpop::{
    DPOP_ALGORITHMS, DPOP_IAT_LEEWAY_SECS, DPOP_TYP, DpopCheck, DpopError, DpopProof, NonceIssuer, normalize_htu,
    verify_dpop_proof,
};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keys::{EDDSA, ES256, KeyError, SIGNING_ALGORITHMS, SigningKey, jwk_thumbprint};
pub use pkce::{pkce_challenge_s256, pkce_verifier_is_well_formed, verify_pkce_s256};

/// SHA-256 of `input`, base64url without padding (PKCE S256, `at_hash`, token hashes).
pub fn sha256_b64url(input: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(input))
}

/// HMAC-SHA256 under `key` of `parts`, concatenated (aws-lc, as the DPoP nonces; any key length).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use aws_lc_rs::hmac;
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
