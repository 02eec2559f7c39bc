//! Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive tokens.

use std::fmt;

/// A set of scope tokens, without duplicates, in the order first given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parse a scope string. `None` if a token contains a character RFC 6749 §3.3 does not allow.
    pub fn parse(s: &str) -> Option<Self> {
        let mut out: Vec<String> = Vec::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_scope_char) {
                return None;
            }
            if !out.iter().any(|t| t == token) {
                out.push(token.to_owned());
            }
        }
        Some(Self(out))
    }

    /// Build from tokens already known to be valid (e.g. a client's registration).
    pub fn from_tokens<I: IntoIterator<Item = S>, S: Into<String>>(tokens: I) -> Self {
        let mut out: Vec<String> = Vec::new();
        for t in tokens {
            let t = t.into();
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
        Self(out)
    }

    /// Whether `token` is one valid scope token.
    pub fn is_valid_token(token: &str) -> bool {
        !token.is_empty() && token.bytes().all(is_scope_char)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The scopes of both, `self`'s first.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes::from_tokens(self.0.iter().chain(other.0.iter()).cloned())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: visible ASCII except `"` and `\`.
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dedupes_and_refuses_bad_characters() {
        let s = Scopes::parse("openid  accounts:read openid").unwrap();
        assert_eq!(s.to_string(), "openid accounts:read");
        assert!(Scopes::parse("a\"b").is_none());
        assert!(Scopes::parse("a\\b").is_none());
        assert!(Scopes::parse("caf\u{e9}").is_none());
        assert!(Scopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn subset_and_union() {
        let all = Scopes::from_tokens(["openid", "profile", "accounts:read"]);
        let some = Scopes::parse("profile openid").unwrap();
        assert!(some.is_subset_of(&all));
        assert!(!all.is_subset_of(&some));
        assert_eq!(some.union(&Scopes::parse("x openid").unwrap()).to_string(), "profile openid x");
    }
}
