//! Client registrations: who a client is, how it authenticates, what it may do, and the redirect-URI matching rule.

use argus_jose::JwkSet;
use serde::{Deserialize, Serialize};

use crate::scope::Scopes;

/// The longest lifetime a client override may set, in seconds (ten years), as for the issuer's own lifetimes.
pub const MAX_CLIENT_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// How a client authenticates at the token, PAR, introspection and revocation endpoints (RFC 7591 §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client: it sends its `client_id` and holds no secret (native and browser apps).
    #[default]
    None,
    /// `client_id` and secret in an HTTP Basic `Authorization` header (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed by a key of the client's registered `jwks` (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// Every method, in the order discovery lists them.
    pub const ALL: [Self; 4] = [Self::None, Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt];

    /// The name as registered and advertised (`client_secret_basic`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Whether the method authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// The grants a client may use. Implicit and password grants do not exist here (RFC 9700 §2.1.2, §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    /// Every grant, in the order discovery lists them.
    pub const ALL: [Self; 3] = [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials];

    /// The `grant_type` value (`authorization_code`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant named `name`, if it is one this issuer has.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// A registered OAuth client (an app).
///
/// Build one with `..ClientRegistration::default()` for the fields you do not set: the default is an enabled public
/// client of the authorization code flow with refresh tokens and no overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// The public identifier the app sends as `client_id`.
    pub client_id: String,
    /// The name shown to users on the consent page.
    pub name: String,
    /// The redirect URIs, compared exactly (loopback ports excepted, see [`redirect_uri_matches`]). Required when
    /// the client uses the authorization code grant.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The scopes the app may ask for.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// A public client: it holds no secret and must use PKCE (which Argus requires of every client anyway).
    /// Always equal to `token_endpoint_auth_method == none`; [`ClientRegistration::validate`] refuses a mismatch.
    pub public: bool,
    /// How the client authenticates.
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// SHA-256 of the client secret, base64url ([`hash_client_secret`]), for `client_secret_basic` and
    /// `client_secret_post`. The secret itself is never stored: it is generated high-entropy
    /// ([`new_client_secret`]), so a fast hash compared in constant time is enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    /// The client's public keys, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// The grants the client may use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Access-token lifetime for this client, in seconds, instead of the issuer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    /// Absolute refresh-token (family) lifetime for this client, in seconds, instead of the issuer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// The client must push its authorization requests (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Every token request of this client must carry a DPoP proof, so every access token it gets is
    /// sender-constrained (RFC 9449 §5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// A disabled client cannot authenticate, start a sign-in or refresh; its tokens are refused by introspection.
    #[serde(default)]
    pub disabled: bool,
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

impl Default for ClientRegistration {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            name: String::new(),
            redirect_uris: Vec::new(),
            allowed_scopes: Vec::new(),
            public: true,
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            client_secret_hash: None,
            jwks: None,
            grant_types: default_grant_types(),
            access_token_ttl_secs: None,
            refresh_token_ttl_secs: None,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            disabled: false,
        }
    }
}

/// A new client secret: 256 random bits, base64url. Show it to the operator once; store only
/// [`hash_client_secret`] of it.
pub fn new_client_secret() -> String {
    argus_model::id::random_secret(32)
}

/// The stored form of a client secret (SHA-256, base64url).
pub fn hash_client_secret(secret: &str) -> String {
    crate::token::hash_secret(secret)
}

/// Why a client registration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("client_id must be 1..=128 visible ASCII characters")]
    BadClientId,
    #[error("name must be 1..=200 characters")]
    BadName,
    #[error("at least one redirect URI is required for the authorization_code grant")]
    NoRedirectUri,
    #[error("redirect URI {0:?} must be an absolute URL without fragment")]
    BadRedirectUri(String),
    #[error("scope {0:?} is not a valid scope token")]
    BadScope(String),
    #[error("public must be true exactly when token_endpoint_auth_method is none")]
    PublicMismatch,
    #[error(
        "client_secret_basic and client_secret_post need a client_secret_hash (SHA-256, base64url), other methods none"
    )]
    BadSecretHash,
    #[error("private_key_jwt needs a jwks of public signature keys (EC, RSA or OKP); other methods must not have one")]
    BadJwks,
    #[error("grant_types must name at least one grant, without repeats")]
    NoGrantType,
    #[error("refresh_token is only issued with authorization_code")]
    RefreshWithoutCode,
    #[error("client_credentials is only for confidential clients")]
    PublicClientCredentials,
    #[error("{0} must be between 1 and {MAX_CLIENT_TTL_SECS} seconds")]
    BadLifetime(&'static str),
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
        self.validate_redirect_uris()?;
        for s in &self.allowed_scopes {
            if !Scopes::is_valid_token(s) {
                return Err(ClientError::BadScope(s.clone()));
            }
        }
        self.validate_authentication()?;
        self.validate_grants()?;
        for (name, ttl) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
        ] {
            if ttl.is_some_and(|t| t == 0 || t > MAX_CLIENT_TTL_SECS) {
                return Err(ClientError::BadLifetime(name));
            }
        }
        Ok(())
    }

    fn validate_redirect_uris(&self) -> Result<(), ClientError> {
        if self.redirect_uris.is_empty() && self.allows_grant(GrantType::AuthorizationCode) {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in &self.redirect_uris {
            let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
            if !ok || uri.contains('#') {
                return Err(ClientError::BadRedirectUri(uri.clone()));
            }
        }
        Ok(())
    }

    fn validate_authentication(&self) -> Result<(), ClientError> {
        let method = self.token_endpoint_auth_method;
        if self.public != (method == TokenEndpointAuthMethod::None) {
            return Err(ClientError::PublicMismatch);
        }
        let hash_ok = match &self.client_secret_hash {
            Some(h) => method.uses_secret() && is_sha256_b64url(h),
            None => !method.uses_secret(),
        };
        if !hash_ok {
            return Err(ClientError::BadSecretHash);
        }
        let jwks_ok = match &self.jwks {
            Some(set) => method == TokenEndpointAuthMethod::PrivateKeyJwt && jwks_are_public_signature_keys(set),
            None => method != TokenEndpointAuthMethod::PrivateKeyJwt,
        };
        if !jwks_ok {
            return Err(ClientError::BadJwks);
        }
        Ok(())
    }

    fn validate_grants(&self) -> Result<(), ClientError> {
        let distinct = self.grant_types.iter().enumerate().all(|(i, g)| !self.grant_types[..i].contains(g));
        if self.grant_types.is_empty() || !distinct {
            return Err(ClientError::NoGrantType);
        }
        if self.allows_grant(GrantType::RefreshToken) && !self.allows_grant(GrantType::AuthorizationCode) {
            return Err(ClientError::RefreshWithoutCode);
        }
        if self.public && self.allows_grant(GrantType::ClientCredentials) {
            return Err(ClientError::PublicClientCredentials);
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

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The access-token lifetime for this client: its override or the issuer's `default_secs`.
    pub fn access_token_ttl(&self, default_secs: u64) -> u64 {
        self.access_token_ttl_secs.unwrap_or(default_secs)
    }

    /// The absolute refresh-token lifetime for this client: its override or the issuer's `default_secs`.
    pub fn refresh_token_ttl(&self, default_secs: u64) -> u64 {
        self.refresh_token_ttl_secs.unwrap_or(default_secs)
    }
}

/// A SHA-256 digest in base64url without padding: 43 characters of the URL-safe alphabet.
fn is_sha256_b64url(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// At least one key, each an asymmetric key that can verify signatures (no `oct` secret, no encryption-only key).
fn jwks_are_public_signature_keys(set: &JwkSet) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    !set.keys.is_empty()
        && set.keys.iter().all(|k| {
            let asymmetric = !matches!(k.algorithm, AlgorithmParameters::OctetKey(_));
            let for_signing = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
            asymmetric && for_signing
        })
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
            ..ClientRegistration::default()
        }
    }

    fn service() -> ClientRegistration {
        ClientRegistration {
            client_id: "svc".into(),
            name: "Service".into(),
            public: false,
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            client_secret_hash: Some(hash_client_secret("s3cret")),
            grant_types: vec![GrantType::ClientCredentials],
            allowed_scopes: vec!["argus:introspect".into()],
            ..ClientRegistration::default()
        }
    }

    fn jwks() -> JwkSet {
        serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }]}))
        .unwrap()
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

    #[test]
    fn authentication_must_be_consistent() {
        assert_eq!(service().validate(), Ok(()));
        assert!(service().redirect_uris.is_empty(), "no redirect URI needed without the code grant");
        let public_secret = ClientRegistration { public: true, ..service() };
        assert_eq!(public_secret.validate(), Err(ClientError::PublicMismatch));
        let no_hash = ClientRegistration { client_secret_hash: None, ..service() };
        assert_eq!(no_hash.validate(), Err(ClientError::BadSecretHash));
        let raw_secret = ClientRegistration { client_secret_hash: Some("s3cret".into()), ..service() };
        assert_eq!(raw_secret.validate(), Err(ClientError::BadSecretHash));
        let public_with_hash = ClientRegistration { client_secret_hash: Some(hash_client_secret("x")), ..demo() };
        assert_eq!(public_with_hash.validate(), Err(ClientError::BadSecretHash));

        let jwt = ClientRegistration {
            token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
            client_secret_hash: None,
            jwks: Some(jwks()),
            ..service()
        };
        assert_eq!(jwt.validate(), Ok(()));
        let no_keys = ClientRegistration { jwks: Some(JwkSet { keys: vec![] }), ..jwt.clone() };
        assert_eq!(no_keys.validate(), Err(ClientError::BadJwks));
        let symmetric: JwkSet =
            serde_json::from_value(serde_json::json!({"keys": [{"kty": "oct", "k": "AAAA"}]})).unwrap();
        assert_eq!(ClientRegistration { jwks: Some(symmetric), ..jwt.clone() }.validate(), Err(ClientError::BadJwks));
        assert_eq!(ClientRegistration { jwks: Some(jwks()), ..service() }.validate(), Err(ClientError::BadJwks));
    }

    #[test]
    fn grants_must_make_sense() {
        let public_cc = ClientRegistration { grant_types: vec![GrantType::ClientCredentials], ..demo() };
        assert_eq!(public_cc.validate(), Err(ClientError::PublicClientCredentials));
        let refresh_only = ClientRegistration { grant_types: vec![GrantType::RefreshToken], ..demo() };
        assert_eq!(refresh_only.validate(), Err(ClientError::RefreshWithoutCode));
        assert_eq!(ClientRegistration { grant_types: vec![], ..demo() }.validate(), Err(ClientError::NoGrantType));
        let twice = vec![GrantType::AuthorizationCode, GrantType::AuthorizationCode];
        assert_eq!(ClientRegistration { grant_types: twice, ..demo() }.validate(), Err(ClientError::NoGrantType));
        let code_without_redirect =
            ClientRegistration { grant_types: vec![GrantType::AuthorizationCode], redirect_uris: vec![], ..demo() };
        assert_eq!(code_without_redirect.validate(), Err(ClientError::NoRedirectUri));
        assert_eq!(
            ClientRegistration { access_token_ttl_secs: Some(0), ..demo() }.validate(),
            Err(ClientError::BadLifetime("access_token_ttl_secs"))
        );
        let c = ClientRegistration { access_token_ttl_secs: Some(60), ..demo() };
        assert_eq!((c.access_token_ttl(300), c.refresh_token_ttl(900)), (60, 900));
    }

    #[test]
    fn names_round_trip_and_old_json_still_reads() {
        for m in TokenEndpointAuthMethod::ALL {
            assert_eq!(TokenEndpointAuthMethod::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::parse("password"), None);
        let old: ClientRegistration = serde_json::from_value(serde_json::json!({
            "client_id": "demo-app", "name": "Demo", "redirect_uris": ["http://127.0.0.1/callback"],
            "allowed_scopes": ["openid"], "public": true
        }))
        .unwrap();
        assert_eq!(old.grant_types, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
        assert_eq!(old.validate(), Ok(()));
    }
}
