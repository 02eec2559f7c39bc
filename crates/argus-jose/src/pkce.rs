//! PKCE (RFC 7636), S256 only: `plain` is refused everywhere (RFC 9700 §2.1.1).

use crate::{ct_eq, sha256_b64url};

/// A verifier is 43..=128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn pkce_verifier_is_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge_s256(verifier: &str) -> String {
    sha256_b64url(verifier.as_bytes())
}

/// Whether `verifier` answers `challenge` (S256), compared in constant time.
pub fn verify_pkce_s256(verifier: &str, challenge: &str) -> bool {
    pkce_verifier_is_well_formed(verifier) && ct_eq(pkce_challenge_s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(pkce_challenge_s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify_pkce_s256(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify_pkce_s256(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
    }

    #[test]
    fn malformed_verifiers() {
        assert!(!pkce_verifier_is_well_formed("short"));
        assert!(!pkce_verifier_is_well_formed(&"a".repeat(129)));
        assert!(!pkce_verifier_is_well_formed(&format!("{}+", "a".repeat(43))));
        assert!(pkce_verifier_is_well_formed(&"a~._-".repeat(9)));
    }
}
