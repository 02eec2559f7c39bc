//! Identifiers and secrets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A new time-ordered unique id (UUIDv7), used for events, alerts and token ids (`jti`).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A new unguessable secret of `bytes` random bytes, base64url without padding. 32 bytes (256 bits) is the default
/// for codes, refresh tokens, session cookies and CSRF tokens.
pub fn random_secret(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// `n` bytes from the operating system's CSPRNG.
///
/// # Panics
/// If the OS random source fails, which leaves no safe way to continue.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the OS random source failed");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_distinct() {
        let a = random_secret(32);
        let b = random_secret(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(new_id(), new_id());
    }
}
