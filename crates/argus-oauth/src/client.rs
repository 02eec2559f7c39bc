//! Client registrations and the redirect-URI matching rule.

use serde::{Deserialize, Serialize};

use crate::scope::Scopes;

/// A registered OAuth client (an app).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// The public identifier the app sends as `client_id`.
    pub client_id: String,
    /// The name shown to users on the consent page.
    pub name: String,
    /// The redirect URIs, compared exactly (loopback ports excepted, see [`redirect_uri_matches`]).
    pub redirect_uris: Vec<String>,
    /// The scopes the app may ask for.
    pub allowed_scopes: Vec<String>,
    /// A public client (`token_endpoint_auth_method` `none`): it holds no secret and must use PKCE, which Argus
    /// requires of every client anyway. Only public clients can use the token endpoint in this version.
    pub public: bool,
}

/// Why a client registration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("client_id must be 1..=128 visible ASCII characters")]
    BadClientId,
    #[error("name must be 1..=200 characters")]
    BadName,
    #[error("at least one redirect URI is required")]
    NoRedirectUri,
    #[error("redirect URI {0:?} must be an absolute URL without fragment")]
    BadRedirectUri(String),
    #[error("scope {0:?} is not a valid scope token")]
    BadScope(String),
}

impl ClientRegistration {
    /// Check the registration before it is stored.
    pub fn validate(&self) -> Result<(), ClientError> {
        let id_ok = (1..=128).contains(&self.client_id.len()) && self.client_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(ClientError::BadClientId);
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(ClientError::BadName);
        }
        if self.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in &self.redirect_uris {
            let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
            if !ok || uri.contains('#') {
                return Err(ClientError::BadRedirectUri(uri.clone()));
            }
        }
        for s in &self.allowed_scopes {
            if !Scopes::is_valid_token(s) {
                return Err(ClientError::BadScope(s.clone()));
            }
        }
        Ok(())
    }

    /// Whether `presented` is one of this client's redirect URIs.
    pub fn accepts_redirect_uri(&self, presented: &str) -> bool {
        self.redirect_uris.iter().any(|r| redirect_uri_matches(r, presented))
    }

    /// The scopes this client may ask for.
    pub fn allowed(&self) -> Scopes {
        Scopes::from_tokens(self.allowed_scopes.iter().cloned())
    }
}

/// The loopback hosts for which any port is accepted (RFC 8252 §7.3). `localhost` is deliberately not one
/// (RFC 8252 §8.3: it may resolve elsewhere).
const LOOPBACK_ORIGINS: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// Whether a presented redirect URI matches a registered one: exact string equality, except that a registered
/// `http://127.0.0.1/...` or `http://[::1]/...` URI matches the same URI with any port. Nothing else may vary:
/// not the scheme, host, path, query or case.
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    LOOPBACK_ORIGINS.iter().any(|origin| loopback_match(origin, registered, presented))
}

fn loopback_match(origin: &str, registered: &str, presented: &str) -> bool {
    let (Some(reg_rest), Some(pre_rest)) = (registered.strip_prefix(origin), presented.strip_prefix(origin)) else {
        return false;
    };
    let (Some(reg_path), Some(pre_path)) = (strip_port(reg_rest), strip_port(pre_rest)) else {
        return false;
    };
    reg_path.starts_with('/') && reg_path == pre_path
}

/// What follows an optional `:port` right after the host; `None` if the port is malformed.
fn strip_port(rest: &str) -> Option<&str> {
    let Some(after_colon) = rest.strip_prefix(':') else {
        return Some(rest);
    };
    let end = after_colon.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_colon.len());
    let (port, path) = after_colon.split_at(end);
    let valid = (1..=5).contains(&port.len()) && port.parse::<u16>().is_ok_and(|p| p != 0);
    valid.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> ClientRegistration {
        ClientRegistration {
            client_id: "demo-app".into(),
            name: "Demo".into(),
            redirect_uris: vec![
                "http://127.0.0.1/callback".into(),
                "http://[::1]/callback".into(),
                "https://app.example/cb".into(),
            ],
            allowed_scopes: vec!["openid".into(), "accounts:read".into()],
            public: true,
        }
    }

    #[test]
    fn exact_match_and_loopback_ports() {
        let c = demo();
        assert!(c.accepts_redirect_uri("https://app.example/cb"));
        assert!(c.accepts_redirect_uri("http://127.0.0.1/callback"));
        assert!(c.accepts_redirect_uri("http://127.0.0.1:53123/callback"));
        assert!(c.accepts_redirect_uri("http://[::1]:8080/callback"));
    }

    #[test]
    fn everything_else_must_match_exactly() {
        let c = demo();
        for bad in [
            "https://app.example/cc",
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example:8443/cb",
            "http://app.example/cb",
            "HTTPS://app.example/cb",
            "http://localhost:5000/callback",
            "http://127.0.0.1:5000/callbacks",
            "http://127.0.0.1:5000/callback?x=1",
            "https://127.0.0.1:5000/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:5000@evil.example/callback",
            "http://127.0.0.1.evil.example/callback",
            "http://[::1]:80/Callback",
            "",
        ] {
            assert!(!c.accepts_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn validation() {
        assert_eq!(demo().validate(), Ok(()));
        let mut c = demo();
        c.redirect_uris = vec!["https://a.example/cb#frag".into()];
        assert!(matches!(c.validate(), Err(ClientError::BadRedirectUri(_))));
        let mut c = demo();
        c.redirect_uris = vec!["/relative".into()];
        assert!(matches!(c.validate(), Err(ClientError::BadRedirectUri(_))));
        let mut c = demo();
        c.allowed_scopes = vec!["two words".into()];
        assert!(matches!(c.validate(), Err(ClientError::BadScope(_))));
        let mut c = demo();
        c.client_id = "has space".into();
        assert_eq!(c.validate(), Err(ClientError::BadClientId));
    }
}
