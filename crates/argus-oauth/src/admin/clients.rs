//! Clients (apps) as the admin API creates, shows and changes them. Secrets are generated here, shown once and
//! stored only as their hash.

use argus_jose::JwkSet;
use serde::{Deserialize, Deserializer, Serialize};

use super::AdminError;
use crate::client::{ClientRegistration, GrantType, TokenEndpointAuthMethod, hash_client_secret, new_client_secret};

/// `POST /admin/v1/clients`. Unset fields take the registration defaults; `client_id` is generated when absent;
/// `grant_types` defaults to the code flow with refresh tokens, or to `client_credentials` for a confidential
/// client without redirect URIs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    #[serde(default)]
    pub grant_types: Option<Vec<GrantType>>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub refresh_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
}

impl NewClient {
    /// The registration to store, validated, with `client_id` (the requested one or `generated_id`) and, for a
    /// secret-based method, a fresh secret: returned in the clear to be shown once, stored as its hash.
    pub fn into_registration(self, generated_id: String) -> Result<(ClientRegistration, Option<String>), AdminError> {
        let method = self.token_endpoint_auth_method;
        let secret = method.uses_secret().then(new_client_secret);
        let grant_types = self.grant_types.unwrap_or_else(|| default_grant_types(method, &self.redirect_uris));
        let client = ClientRegistration {
            client_id: self.client_id.unwrap_or(generated_id),
            name: self.name,
            redirect_uris: self.redirect_uris,
            allowed_scopes: self.allowed_scopes,
            public: method == TokenEndpointAuthMethod::None,
            token_endpoint_auth_method: method,
            client_secret_hash: secret.as_deref().map(hash_client_secret),
            jwks: self.jwks,
            grant_types,
            access_token_ttl_secs: self.access_token_ttl_secs,
            refresh_token_ttl_secs: self.refresh_token_ttl_secs,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            disabled: false,
        };
        client.validate().map_err(|e| AdminError::Invalid(e.to_string()))?;
        Ok((client, secret))
    }
}

/// The code flow with refresh tokens, except for a confidential client without redirect URIs: a service, which
/// can only use `client_credentials`.
fn default_grant_types(method: TokenEndpointAuthMethod, redirect_uris: &[String]) -> Vec<GrantType> {
    if method != TokenEndpointAuthMethod::None && redirect_uris.is_empty() {
        vec![GrantType::ClientCredentials]
    } else {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    }
}

/// `PATCH /admin/v1/clients/{id}`: each field present is changed; `null` clears an optional one (`jwks`, the
/// lifetimes). `disabled: true` disables the client as `POST .../disable` does.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Option<JwkSet>>,
    #[serde(default)]
    pub grant_types: Option<Vec<GrantType>>,
    #[serde(default, deserialize_with = "present")]
    pub access_token_ttl_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub refresh_token_ttl_secs: Option<Option<u64>>,
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<bool>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A field that is present (possibly `null`) becomes `Some(value)`; an absent one stays `None` by `default`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A patch applied to a registration.
#[derive(Clone, Debug)]
pub struct PatchOutcome {
    /// The new registration, validated.
    pub client: ClientRegistration,
    /// The names of the fields that changed, for the audit event.
    pub fields: Vec<String>,
    /// A new secret, when the patch switched the client to a secret-based method: show it once.
    pub new_secret: Option<String>,
    /// The patch disables a client that was enabled: the caller revokes its tokens.
    pub disables: bool,
}

impl ClientPatch {
    /// Apply the patch to `current`. Switching to `client_secret_basic`/`_post` from a method without a secret
    /// generates one; switching away drops the stored hash; `public` follows the method.
    pub fn apply(&self, current: &ClientRegistration) -> Result<PatchOutcome, AdminError> {
        let mut c = current.clone();
        let mut fields = Vec::new();
        let mut mark = |name: &str| fields.push(name.to_owned());
        if let Some(v) = &self.name {
            c.name = v.clone();
            mark("name");
        }
        if let Some(v) = &self.redirect_uris {
            c.redirect_uris = v.clone();
            mark("redirect_uris");
        }
        if let Some(v) = &self.allowed_scopes {
            c.allowed_scopes = v.clone();
            mark("allowed_scopes");
        }
        if let Some(v) = &self.jwks {
            c.jwks = v.clone();
            mark("jwks");
        }
        if let Some(v) = &self.grant_types {
            c.grant_types = v.clone();
            mark("grant_types");
        }
        if let Some(v) = self.access_token_ttl_secs {
            c.access_token_ttl_secs = v;
            mark("access_token_ttl_secs");
        }
        if let Some(v) = self.refresh_token_ttl_secs {
            c.refresh_token_ttl_secs = v;
            mark("refresh_token_ttl_secs");
        }
        if let Some(v) = self.require_pushed_authorization_requests {
            c.require_pushed_authorization_requests = v;
            mark("require_pushed_authorization_requests");
        }
        if let Some(v) = self.dpop_bound_access_tokens {
            c.dpop_bound_access_tokens = v;
            mark("dpop_bound_access_tokens");
        }
        if let Some(v) = self.disabled {
            c.disabled = v;
            mark("disabled");
        }
        let mut new_secret = None;
        if let Some(method) = self.token_endpoint_auth_method {
            c.token_endpoint_auth_method = method;
            c.public = method == TokenEndpointAuthMethod::None;
            if !method.uses_secret() {
                c.client_secret_hash = None;
            } else if c.client_secret_hash.is_none() {
                let secret = new_client_secret();
                c.client_secret_hash = Some(hash_client_secret(&secret));
                new_secret = Some(secret);
            }
            mark("token_endpoint_auth_method");
        }
        if fields.is_empty() {
            return Err(AdminError::Invalid("nothing to change".into()));
        }
        c.validate().map_err(|e| AdminError::Invalid(e.to_string()))?;
        let disables = c.disabled && !current.disabled;
        Ok(PatchOutcome { client: c, fields, new_secret, disables })
    }
}

/// A new secret for a client of a secret-based method: the registration with its hash, and the secret to show once.
/// The old secret stops working as soon as the registration is stored.
pub fn rotate_client_secret(current: &ClientRegistration) -> Result<(ClientRegistration, String), AdminError> {
    if !current.token_endpoint_auth_method.uses_secret() {
        return Err(AdminError::Invalid(format!(
            "the client authenticates with {}, not a secret",
            current.token_endpoint_auth_method.as_str()
        )));
    }
    let secret = new_client_secret();
    let client = ClientRegistration { client_secret_hash: Some(hash_client_secret(&secret)), ..current.clone() };
    Ok((client, secret))
}

/// A client as the admin API shows it: everything but the secret hash, of which only its existence is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub public: bool,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub has_secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    pub grant_types: Vec<GrantType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_secs: Option<u64>,
    pub require_pushed_authorization_requests: bool,
    pub dpop_bound_access_tokens: bool,
    pub disabled: bool,
}

impl From<&ClientRegistration> for ClientView {
    fn from(c: &ClientRegistration) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
            public: c.public,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            has_secret: c.client_secret_hash.is_some(),
            jwks: c.jwks.clone(),
            grant_types: c.grant_types.clone(),
            access_token_ttl_secs: c.access_token_ttl_secs,
            refresh_token_ttl_secs: c.refresh_token_ttl_secs,
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            disabled: c.disabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: &str) -> NewClient {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_confidential_service_gets_a_secret_once_and_client_credentials() {
        let (c, secret) = service(
            r#"{"client_id":"reporting","name":"Reporting","allowed_scopes":["argus:admin"],
                "token_endpoint_auth_method":"client_secret_basic"}"#,
        )
        .into_registration("generated".into())
        .unwrap();
        let secret = secret.unwrap();
        assert_eq!(c.client_id, "reporting");
        assert!(!c.public);
        assert_eq!(c.grant_types, [GrantType::ClientCredentials]);
        assert_eq!(c.client_secret_hash.as_deref(), Some(hash_client_secret(&secret).as_str()));
        let view = serde_json::to_value(ClientView::from(&c)).unwrap();
        assert_eq!(view["has_secret"], true);
        assert!(!view.to_string().contains(c.client_secret_hash.as_deref().unwrap()), "the hash is never shown");
    }

    #[test]
    fn a_public_app_gets_an_id_and_no_secret() {
        let (c, secret) = service(r#"{"name":"SPA","redirect_uris":["https://spa.example/cb"]}"#)
            .into_registration("0190-id".into())
            .unwrap();
        assert_eq!((c.client_id.as_str(), c.public, secret), ("0190-id", true, None));
        assert_eq!(c.grant_types, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
    }

    #[test]
    fn invalid_registrations_are_refused_with_the_reason() {
        let err = service(r#"{"name":"x"}"#).into_registration("id".into()).unwrap_err();
        assert!(matches!(&err, AdminError::Invalid(m) if m.contains("redirect URI")), "{err}");
        assert!(serde_json::from_str::<NewClient>(r#"{"name":"x","client_secret_hash":"abc"}"#).is_err());
        assert!(serde_json::from_str::<NewClient>(r#"{"name":"x","public":true}"#).is_err());
    }

    fn spa() -> ClientRegistration {
        service(r#"{"client_id":"spa","name":"SPA","redirect_uris":["https://spa.example/cb"]}"#)
            .into_registration(String::new())
            .unwrap()
            .0
    }

    #[test]
    fn patches_change_named_fields_and_secrets_follow_the_method() {
        let patch: ClientPatch = serde_json::from_str(
            r#"{"name":"Web","token_endpoint_auth_method":"client_secret_post","access_token_ttl_secs":60}"#,
        )
        .unwrap();
        let out = patch.apply(&spa()).unwrap();
        assert_eq!(out.fields, ["name", "access_token_ttl_secs", "token_endpoint_auth_method"]);
        assert!(!out.client.public);
        let secret = out.new_secret.unwrap();
        assert_eq!(out.client.client_secret_hash, Some(hash_client_secret(&secret)));
        assert!(!out.disables);

        let back: ClientPatch =
            serde_json::from_str(r#"{"token_endpoint_auth_method":"none","access_token_ttl_secs":null}"#).unwrap();
        let out = back.apply(&out.client).unwrap();
        assert!(out.client.public && out.client.client_secret_hash.is_none() && out.new_secret.is_none());
        assert_eq!(out.client.access_token_ttl_secs, None);
    }

    #[test]
    fn bad_or_empty_patches_change_nothing() {
        assert!(ClientPatch::default().apply(&spa()).is_err());
        let bad: ClientPatch = serde_json::from_str(r#"{"redirect_uris":[]}"#).unwrap();
        assert!(matches!(bad.apply(&spa()), Err(AdminError::Invalid(_))));
        assert!(serde_json::from_str::<ClientPatch>(r#"{"client_id":"other"}"#).is_err());
        let disable: ClientPatch = serde_json::from_str(r#"{"disabled":true}"#).unwrap();
        let out = disable.apply(&spa()).unwrap();
        assert!(out.disables);
        assert!(!disable.apply(&out.client).unwrap().disables, "already disabled");
    }

    #[test]
    fn secrets_rotate_only_for_secret_methods() {
        assert!(rotate_client_secret(&spa()).is_err());
        let (c, _) = service(r#"{"name":"S","token_endpoint_auth_method":"client_secret_basic"}"#)
            .into_registration("s".into())
            .unwrap();
        let (rotated, secret) = rotate_client_secret(&c).unwrap();
        assert_ne!(rotated.client_secret_hash, c.client_secret_hash);
        assert_eq!(rotated.client_secret_hash, Some(hash_client_secret(&secret)));
    }
}
