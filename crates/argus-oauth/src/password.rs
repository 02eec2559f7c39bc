//! Password hashing with argon2id.
//!
//! Parameters: argon2id, m = 19 MiB (19,456 KiB), t = 2 iterations, p = 1 lane — the first of OWASP's
//! equivalent recommended configurations (Password Storage Cheat Sheet, "Argon2id"), which is also the `argon2`
//! crate's default. Verification always uses the parameters stored in the PHC string, so raising them later
//! only affects new hashes.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use argus_model::{LoginFailure, LoginOutcome};

/// A hash of a random password with the current parameters. Verifying against it when the user does not exist costs
/// the same as a real verification, so the response time does not reveal which user names exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bnrFZ+4EH2qCSOGoN6k4aw$n3XW1Q+m8J4V2HDpNpZyh7PD8nXUO7Ag6oLu1rsnPoQ";

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must not be empty")]
    Empty,
    #[error("password hashing failed")]
    Hash,
}

fn hasher() -> Argon2<'static> {
    // Argon2::default() is argon2id v19 with m=19456, t=2, p=1 (see the module doc).
    Argon2::default()
}

/// Hash a password to a PHC string (`$argon2id$v=19$...`) with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let hash = hasher().hash_password(password.as_bytes()).map_err(|_| PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

/// Spend the time of one verification without a user, and answer `false`.
pub fn verify_password_against_dummy(password: &str) -> bool {
    // The result is computed and discarded on purpose: only the time it takes matters.
    let _ = verify_password(password, DUMMY_HASH);
    false
}

/// The outcome of a sign-in attempt. The password is judged before the account state, so a disabled account is
/// only reported (to watch, never to the user) when the right password was given.
pub fn login_outcome(user_known: bool, password_ok: bool, disabled: bool) -> LoginOutcome {
    match (user_known, password_ok, disabled) {
        (false, _, _) => LoginOutcome::Failure(LoginFailure::UnknownUser),
        (true, false, _) => LoginOutcome::Failure(LoginFailure::BadPassword),
        (true, true, true) => LoginOutcome::Failure(LoginFailure::Disabled),
        (true, true, false) => LoginOutcome::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        use LoginFailure::*;
        assert_eq!(login_outcome(false, true, false), LoginOutcome::Failure(UnknownUser));
        assert_eq!(login_outcome(true, false, true), LoginOutcome::Failure(BadPassword));
        assert_eq!(login_outcome(true, true, true), LoginOutcome::Failure(Disabled));
        assert_eq!(login_outcome(true, true, false), LoginOutcome::Success);
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsf", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(matches!(hash_password(""), Err(PasswordError::Empty)));
    }

    #[test]
    fn dummy_hash_has_current_parameters_and_never_matches() {
        let h = hash_password("anything").unwrap();
        let params = |s: &str| s.split('$').nth(3).map(str::to_owned);
        assert_eq!(params(DUMMY_HASH), params(&h));
        // It must parse, or verification would return early and the timing would differ.
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password_against_dummy("anything"));
        assert!(!verify_password_against_dummy(""));
    }
}
