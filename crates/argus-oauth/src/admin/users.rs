//! End users as the admin API creates, shows and changes them.

use serde::{Deserialize, Serialize};

use super::AdminError;
use crate::store::UserRecord;

/// The longest user name accepted, in bytes (as the login form looks up).
const MAX_USERNAME_BYTES: usize = 256;
/// The longest password accepted, in bytes. argon2 hashes any length, but the admin API should not hash megabytes
/// on request; a passphrase of 1 KiB is more than anyone types.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// `POST /admin/v1/users`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    /// Where notices are e-mailed (when SMTP is configured). Optional.
    #[serde(default)]
    pub email: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("NewUser").field("username", &self.username).finish_non_exhaustive()
    }
}

impl NewUser {
    /// Check the user name and the password before anything is hashed or stored.
    pub fn validate(&self) -> Result<(), AdminError> {
        validate_username(&self.username)?;
        validate_password(&self.password)?;
        self.email.as_deref().map_or(Ok(()), validate_email)
    }
}

/// `PATCH /admin/v1/users/{sub}`: each field present is changed.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    /// A new address for notices; `""` removes it.
    #[serde(default)]
    pub email: Option<String>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("disabled", &self.disabled)
            .field("email", &self.email)
            .finish()
    }
}

impl UserPatch {
    /// Check the patch: at least one field, and a valid password if one is given.
    pub fn validate(&self) -> Result<(), AdminError> {
        if self.password.is_none() && self.disabled.is_none() && self.email.is_none() {
            return Err(AdminError::Invalid("nothing to change: give password, disabled and/or email".into()));
        }
        self.email.as_deref().filter(|e| !e.is_empty()).map_or(Ok(()), validate_email)?;
        self.password.as_deref().map_or(Ok(()), validate_password)
    }

    /// The names of the fields this patch changes, for the audit event (never their values).
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.password.is_some() {
            out.push("password".to_owned());
        }
        if self.disabled.is_some() {
            out.push("disabled".to_owned());
        }
        if self.email.is_some() {
            out.push("email".to_owned());
        }
        out
    }
}

/// A user as the admin API shows it: never the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub sub: String,
    pub username: String,
    pub disabled: bool,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self { sub: u.sub.clone(), username: u.username.clone(), disabled: u.disabled }
    }
}

/// A user name is 1..=256 bytes without control characters (what the login form can look up).
pub fn validate_username(username: &str) -> Result<(), AdminError> {
    let ok = !username.is_empty() && username.len() <= MAX_USERNAME_BYTES && !username.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!("username must be 1..={MAX_USERNAME_BYTES} bytes without control characters")))
    }
}

/// An e-mail address for notices: `local@domain`, at most 254 bytes (RFC 5321), no spaces or control characters.
/// The SMTP server has the last word; this keeps obvious junk (and header injection) out.
pub fn validate_email(email: &str) -> Result<(), AdminError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok { Ok(()) } else { Err(AdminError::Invalid("email must be an address like name@example.com".into())) }
}

/// A password is 1..=1024 bytes.
pub fn validate_password(password: &str) -> Result<(), AdminError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(AdminError::Invalid(format!("password must be 1..={MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(validate_email("alice@example.com").is_ok());
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@localhost",
            "a b@example.com",
            "a@example.com\r\nBcc: x@y.z",
            "a@b@example.com",
            "<a@example.com>",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_users_are_checked_and_passwords_never_printed() {
        let u = NewUser { username: "carol".into(), password: "s3cret-pass".into(), email: None };
        assert!(u.validate().is_ok());
        assert!(!format!("{u:?}").contains("s3cret"));
        for (name, pw) in [("", "x"), ("a\u{7}b", "x"), ("carol", ""), ("carol", &"p".repeat(1025))] {
            let u = NewUser { username: name.into(), password: pw.into(), email: None };
            assert!(matches!(u.validate(), Err(AdminError::Invalid(_))), "{name:?}");
        }
        let unknown = serde_json::from_str::<NewUser>(r#"{"username":"a","password":"b","admin":true}"#);
        assert!(unknown.is_err(), "unknown fields are refused");
    }

    #[test]
    fn patches_name_their_fields_only() {
        let p: UserPatch = serde_json::from_str(r#"{"password":"new-secret","disabled":true}"#).unwrap();
        assert!(p.validate().is_ok());
        assert_eq!(p.fields(), ["password", "disabled"]);
        assert!(!format!("{p:?}").contains("new-secret"));
        assert!(UserPatch::default().validate().is_err());
        assert!(UserPatch { password: Some(String::new()), disabled: None, email: None }.validate().is_err());
    }

    #[test]
    fn the_view_has_no_hash() {
        let r =
            UserRecord { sub: "s".into(), username: "u".into(), password_hash: "$argon2id$x".into(), disabled: true };
        let json = serde_json::to_value(UserView::from(&r)).unwrap();
        assert_eq!(json, serde_json::json!({"sub": "s", "username": "u", "disabled": true}));
    }
}
