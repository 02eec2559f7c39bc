//! The `[issuer]` table of `argus.toml`.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The issuer's configuration: the `[issuer]` table of `argus.toml`. Every field has a safe default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Address the issuer (token server, login and consent pages) listens on. Default `127.0.0.1:7400`.
    pub listen: SocketAddr,
    /// The issuer's public base URL (its `iss`), e.g. `https://login.example.com`. Default: derived from the
    /// bound address (`http://127.0.0.1:7400`). Cookies are marked `Secure` when it is `https`.
    pub public_url: Option<String>,
    /// Lifetime of access tokens, in seconds. Default 300 (5 minutes): short, because a stolen access token is
    /// usable until it expires unless it is revoked at the gate.
    pub access_token_ttl_secs: u64,
    /// Lifetime of id_tokens, in seconds. Default 300.
    pub id_token_ttl_secs: u64,
    /// Absolute lifetime of a refresh-token family, in seconds, counted from the sign-in; rotation does not extend
    /// it. Default 2,592,000 (30 days).
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of authorization codes, in seconds. Default 60.
    pub code_ttl_secs: u64,
    /// Lifetime of a sign-in session at the issuer (the session cookie), in seconds. Default 43,200 (12 hours).
    pub session_ttl_secs: u64,
    /// How long a user has to sign in and consent after the app sent them to `/authorize`, in seconds.
    /// Default 600 (10 minutes).
    pub authorization_request_ttl_secs: u64,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7400)),
            public_url: None,
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            session_ttl_secs: 12 * 3600,
            authorization_request_ttl_secs: 600,
        }
    }
}

impl IssuerConfig {
    /// Check the values: every lifetime must be at least one second and at most ten years.
    pub fn validate(&self) -> Result<(), String> {
        const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;
        for (name, v) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("id_token_ttl_secs", self.id_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("code_ttl_secs", self.code_ttl_secs),
            ("session_ttl_secs", self.session_ttl_secs),
            ("authorization_request_ttl_secs", self.authorization_request_ttl_secs),
        ] {
            if v == 0 || v > TEN_YEARS {
                return Err(format!("issuer.{name} must be between 1 and {TEN_YEARS} seconds, not {v}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c: IssuerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, IssuerConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:7400");
        assert_eq!(c.validate(), Ok(()));
        let c: IssuerConfig = serde_json::from_str(r#"{"code_ttl_secs": 30}"#).unwrap();
        assert_eq!(c.code_ttl_secs, 30);
        assert!(serde_json::from_str::<IssuerConfig>(r#"{"code_ttl": 30}"#).is_err());
        let c = IssuerConfig { access_token_ttl_secs: 0, ..IssuerConfig::default() };
        assert!(c.validate().unwrap_err().contains("access_token_ttl_secs"));
    }
}
