//! The TOTP second factor (RFC 6238) and its recovery codes: checking a code (SHA-1, 6 digits, 30 s steps, one step
//! of skew either way), refusing a code of a step already used (RFC 6238 §5.2), the `otpauth://` URI an
//! authenticator app reads, the format of single-use recovery codes, and the storage the issuer needs for them.
//!
//! Pure: the time arrives as an argument, the randomness as bytes.

use argus_model::Timestamp;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::store::StorageError;

/// Length of a TOTP secret in bytes: 160 bits, as RFC 4226 §4 recommends.
pub const TOTP_SECRET_LEN: usize = 20;
/// Digits of a code.
const DIGITS: u8 = 6;
/// Seconds of a time step.
const STEP_SECS: u64 = 30;
/// Steps of clock drift accepted either way (RFC 6238 §5.2 recommends one).
const SKEW: u16 = 1;

/// Wrong second-factor codes one sign-in may send before it ends and must start again at the password.
pub const MAX_SECOND_FACTOR_FAILURES: u32 = 5;

/// Recovery codes issued at once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Random bytes behind a recovery code: 80 bits, too many to guess, so a plain SHA-256 is a safe way to store it.
pub const RECOVERY_CODE_BYTES: usize = 10;

/// RFC 8176 `amr` values.
pub const AMR_PASSWORD: &str = "pwd";
pub const AMR_OTP: &str = "otp";
pub const AMR_MFA: &str = "mfa";

/// The outcome of checking a TOTP code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpCheck {
    /// Good for this time step, never used before: record it as the last used step.
    Accepted { step: u64 },
    /// Good, but for a step at or before the last one used: a code seen before (or an older one), refused.
    Replayed,
    /// Not a code of any step in the window (or not a code at all).
    Wrong,
}

/// Check `code` against `secret` at `now`. `last_step` is the step of the last code accepted, if any: a code of that
/// step or an earlier one is refused, so each code works once, and a code older than one already used never works.
pub fn check_totp(secret: &[u8], code: &str, now: Timestamp, last_step: Option<u64>) -> TotpCheck {
    let Some(code) = normalize_digits(code) else {
        return TotpCheck::Wrong;
    };
    let Some(totp) = totp(secret) else {
        return TotpCheck::Wrong;
    };
    let Ok(now) = u64::try_from(now.as_secs()) else {
        return TotpCheck::Wrong;
    };
    let origin = now / STEP_SECS;
    let window = origin.saturating_sub(u64::from(SKEW))..=origin.saturating_add(u64::from(SKEW));
    // Every step of the window is computed and compared in constant time, so timing does not tell which one matched.
    let mut matched: Option<u64> = None;
    for step in window {
        let expected = totp.generate(step * STEP_SECS).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    match matched {
        None => TotpCheck::Wrong,
        Some(step) if last_step.is_some_and(|last| step <= last) => TotpCheck::Replayed,
        Some(step) => TotpCheck::Accepted { step },
    }
}

/// The code as typed, without the spaces apps show in the middle: exactly [`DIGITS`] ASCII digits.
fn normalize_digits(code: &str) -> Option<String> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    (code.len() == usize::from(DIGITS) && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::new(secret.into()))
        .build()
        .ok()
}

/// The secret as an authenticator app takes it typed in: base32 without padding.
pub fn totp_secret_base32(secret: &[u8]) -> String {
    Secret::new(secret.into()).to_base32().trim_end_matches('=').to_owned()
}

/// The `otpauth://totp/` URI of the Key URI Format that authenticator apps read from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{}:{}", encode(issuer), encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        totp_secret_base32(secret),
        encode(issuer)
    )
}

/// Percent-encode everything but unreserved characters (RFC 3986 §2.3).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A recovery code as shown to the user: the random bytes in lowercase base32, in groups of four for reading.
pub fn format_recovery_code(random: &[u8; RECOVERY_CODE_BYTES]) -> String {
    let plain = totp_secret_base32(random).to_ascii_lowercase();
    let groups: Vec<&str> = plain.as_bytes().chunks(4).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    groups.join("-")
}

/// A recovery code as typed, in the one form that is hashed and stored: lowercase, without separators. `None` if it
/// cannot be a recovery code (so it is not looked up at all).
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let plain: String = input.chars().filter(|c| *c != '-' && *c != ' ').map(|c| c.to_ascii_lowercase()).collect();
    // 80 bits in base32: 16 characters of a-z, 2-7.
    let ok = plain.len() == 16 && plain.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    ok.then_some(plain)
}

/// A user's TOTP credential as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub sub: String,
    /// The shared secret ([`TOTP_SECRET_LEN`] bytes). Needed in the clear to compute codes.
    pub secret: Vec<u8>,
    pub created_at: Timestamp,
    /// When the user proved their app has it; an unconfirmed credential is no second factor yet.
    pub confirmed_at: Option<Timestamp>,
    /// The time step of the last code accepted.
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TotpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCredential")
            .field("sub", &self.sub)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// The storage of second factors and of sign-ins waiting for one. Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait SecondFactorStore: Send + Sync {
    async fn totp_credential(&self, sub: &str) -> Result<Option<TotpCredential>, StorageError>;
    /// Store a new, unconfirmed credential for `cred.sub`, replacing an unconfirmed one; `false`, and nothing
    /// changed, if the user already has a confirmed one.
    async fn put_unconfirmed_totp(&self, cred: &TotpCredential) -> Result<bool, StorageError>;
    /// Confirm the unconfirmed credential of `sub` with its first accepted step and replace the user's recovery
    /// codes with `recovery_hashes`, at once; `false`, and nothing changed, if there is no unconfirmed credential.
    async fn confirm_totp(
        &self,
        sub: &str,
        step: u64,
        recovery_hashes: &[String],
        now: Timestamp,
    ) -> Result<bool, StorageError>;
    /// Record `step` as the last used step of `sub`'s confirmed credential, only if it is later than the one
    /// recorded: `false` if it is not (another request used this step or a later one meanwhile).
    async fn use_totp_step(&self, sub: &str, step: u64) -> Result<bool, StorageError>;
    /// Mark the unused recovery code with this hash used; `true` if this call did.
    async fn use_recovery_code(&self, sub: &str, code_hash: &str, now: Timestamp) -> Result<bool, StorageError>;

    /// A password accepted for the pending request `handle_hash`, waiting for `sub`'s second factor until
    /// `expires_at`.
    async fn insert_second_factor_wait(
        &self,
        handle_hash: &str,
        sub: &str,
        expires_at: Timestamp,
    ) -> Result<(), StorageError>;
    /// The user a pending request waits for a second factor of, if unexpired at `now`.
    async fn second_factor_wait(&self, handle_hash: &str, now: Timestamp) -> Result<Option<String>, StorageError>;
    /// Count one wrong code against the wait and return the failures so far.
    async fn fail_second_factor(&self, handle_hash: &str) -> Result<u32, StorageError>;
    /// End the wait (the second factor was given, or too many wrong codes).
    async fn end_second_factor_wait(&self, handle_hash: &str) -> Result<(), StorageError>;
    /// Remove `sub`'s TOTP credential (confirmed or not) and every recovery code of theirs, at once (an admin's
    /// reset, a deleted user); `true` if there was a credential.
    async fn delete_totp(&self, sub: &str) -> Result<bool, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    fn code_at(secs: u64) -> String {
        totp(SECRET).unwrap().generate(secs).to_string()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn rfc_6238_vector_and_window() {
        // RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 in 8 digits, so 287082 in 6.
        assert_eq!(code_at(59), "287082");
        assert_eq!(check_totp(SECRET, "287082", at(59), None), TotpCheck::Accepted { step: 1 });
        assert_eq!(check_totp(SECRET, "287 082", at(59), None), TotpCheck::Accepted { step: 1 });
        // One step either way is accepted, two are not.
        assert_eq!(check_totp(SECRET, "287082", at(89), None), TotpCheck::Accepted { step: 1 });
        assert_eq!(check_totp(SECRET, "287082", at(0), None), TotpCheck::Accepted { step: 1 });
        assert_eq!(check_totp(SECRET, "287082", at(90), None), TotpCheck::Wrong);
        for bad in ["", "28708", "2870820", "28708a", "-87082", "２８７０８２"] {
            assert_eq!(check_totp(SECRET, bad, at(59), None), TotpCheck::Wrong, "{bad:?}");
        }
        assert_eq!(check_totp(SECRET, "287082", at(-5), None), TotpCheck::Wrong);
        assert_eq!(check_totp(b"short", "287082", at(59), None), TotpCheck::Wrong, "a secret under 128 bits");
    }

    #[test]
    fn a_used_step_or_an_earlier_one_is_refused() {
        let now = 1_700_000_000;
        let step = now / 30;
        let code = code_at(now);
        assert_eq!(check_totp(SECRET, &code, at(now as i64), None), TotpCheck::Accepted { step });
        assert_eq!(check_totp(SECRET, &code, at(now as i64), Some(step)), TotpCheck::Replayed);
        assert_eq!(check_totp(SECRET, &code, at(now as i64), Some(step + 1)), TotpCheck::Replayed);
        assert_eq!(check_totp(SECRET, &code, at(now as i64), Some(step - 1)), TotpCheck::Accepted { step });
        // The previous step's code, after the current one was used: older, refused.
        let previous = code_at(now - 30);
        assert_eq!(check_totp(SECRET, &previous, at(now as i64), Some(step)), TotpCheck::Replayed);
    }

    #[test]
    fn otpauth_uri_and_base32() {
        assert_eq!(totp_secret_base32(SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            otpauth_uri("Argus Bank", "al ice@x", SECRET),
            "otpauth://totp/Argus%20Bank:al%20ice%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Argus%20Bank\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_read_back_in_one_form() {
        let code = format_recovery_code(&[0xff; RECOVERY_CODE_BYTES]);
        assert_eq!(code, "7777-7777-7777-7777");
        let code = format_recovery_code(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let plain = normalize_recovery_code(&code).unwrap();
        assert_eq!(normalize_recovery_code(&code.to_ascii_uppercase().replace('-', " ")), Some(plain.clone()));
        assert_eq!(plain.len(), 16);
        for bad in ["", "123456", "7777-7777-7777-777", "7777-7777-7777-77771", "1111-1111-1111-1111", "é"] {
            assert_eq!(normalize_recovery_code(bad), None, "{bad:?}");
        }
    }
}
