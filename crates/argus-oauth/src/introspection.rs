//! Token introspection (RFC 7662): who may learn about which token, and what the answer says.

use argus_jose::{AccessClaims, Audience, Confirmation};
use argus_model::Timestamp;
use serde::Serialize;

use crate::client::{ClientRegistration, GrantType};
use crate::store::RefreshToken;

/// The scope that makes a confidential client a resource server allowed to introspect every client's tokens.
pub const INTROSPECT_SCOPE: &str = "argus:introspect";

/// Whether the authenticated `caller` may learn about a token issued to `token_client_id`.
///
/// A client may introspect its own tokens. A resource server — a confidential client registered for
/// `client_credentials` with the [`INTROSPECT_SCOPE`] scope — may introspect any token. Everyone else hears
/// `active: false`, exactly as for an unknown token, so introspection tells no client about another's tokens.
/// Public clients cannot authenticate, so they never get this far.
pub fn may_introspect(caller: &ClientRegistration, token_client_id: &str) -> bool {
    let resource_server = !caller.public
        && caller.allows_grant(GrantType::ClientCredentials)
        && caller.allowed_scopes.iter().any(|s| s == INTROSPECT_SCOPE);
    caller.client_id == token_client_id || resource_server
}

/// An introspection answer (RFC 7662 §2.2). An inactive token gets `{"active": false}` and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer` or `DPoP` for access tokens (RFC 9449 §6.2); absent for refresh tokens, which have no type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The DPoP key the token (or the refresh family) is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The sign-in the token comes from, where known: when (seconds) and at which level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl Introspection {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// A live access token, from its verified claims.
    pub fn of_access_token(claims: &AccessClaims) -> Self {
        Self {
            active: true,
            scope: Some(claims.scope.clone()),
            client_id: Some(claims.client_id.clone()),
            sub: Some(claims.sub.clone()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            token_type: Some(if claims.cnf.is_some() { "DPoP" } else { "Bearer" }),
            cnf: claims.cnf.clone(),
            sid: claims.sid.clone(),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            jti: Some(claims.jti.clone()),
            auth_time: claims.auth_time,
            acr: claims.acr.clone(),
        }
    }

    /// A live refresh token of ours.
    pub fn of_refresh_token(token: &RefreshToken, issuer: &str) -> Self {
        Self {
            active: true,
            scope: Some(token.scope.clone()),
            client_id: Some(token.client_id.clone()),
            sub: Some(token.sub.clone()),
            exp: Some(token.expires_at.min(token.family_expires_at).as_secs()),
            iat: Some(token.created_at.as_secs()),
            token_type: None,
            cnf: token.jkt.clone().map(|jkt| Confirmation { jkt }),
            sid: token.sid.clone(),
            aud: None,
            iss: Some(issuer.to_owned()),
            jti: None,
            auth_time: token.auth_time.map(Timestamp::as_secs),
            acr: token.acr.clone(),
        }
    }
}

/// Whether a refresh token would still be accepted at `now`: not rotated, its family not revoked, within its idle
/// and absolute lifetimes. (A just-rotated token within the reuse leeway is not active: it yields nothing.)
pub fn refresh_token_is_active(token: &RefreshToken, now: Timestamp) -> bool {
    token.consumed_at.is_none()
        && token.family_revoked_at.is_none()
        && now < token.expires_at
        && now < token.family_expires_at
}

/// Whether an access token stands for a user (rather than a client acting for itself): a user's token carries the
/// sign-in session, a client credentials token has the client as its subject and no session.
pub fn is_user_token(claims: &AccessClaims) -> bool {
    claims.sid.is_some() || claims.sub != claims.client_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::TokenEndpointAuthMethod;
    use crate::store::IssuedAccess;

    fn client(id: &str, grants: Vec<GrantType>, scopes: &[&str]) -> ClientRegistration {
        ClientRegistration {
            client_id: id.into(),
            public: false,
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            grant_types: grants,
            allowed_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..ClientRegistration::default()
        }
    }

    #[test]
    fn own_tokens_or_a_resource_server() {
        let app = client("app", vec![GrantType::AuthorizationCode], &["openid"]);
        assert!(may_introspect(&app, "app"));
        assert!(!may_introspect(&app, "other"));
        let rs = client("rs", vec![GrantType::ClientCredentials], &[INTROSPECT_SCOPE]);
        assert!(may_introspect(&rs, "other"));
        let no_scope = client("svc", vec![GrantType::ClientCredentials], &["accounts:read"]);
        assert!(!may_introspect(&no_scope, "other"));
        let scope_no_grant = client("web", vec![GrantType::AuthorizationCode], &[INTROSPECT_SCOPE]);
        assert!(!may_introspect(&scope_no_grant, "other"));
    }

    fn claims(cnf: Option<&str>) -> AccessClaims {
        AccessClaims {
            iss: "https://id".into(),
            sub: "u1".into(),
            aud: Audience::One("https://api".into()),
            exp: 400,
            iat: 100,
            jti: "j1".into(),
            client_id: "app".into(),
            scope: "openid".into(),
            sid: Some("s1".into()),
            auth_time: Some(90),
            acr: Some(crate::ACR_PASSWORD.into()),
            amr: None,
            cnf: cnf.map(|jkt| Confirmation { jkt: jkt.into() }),
            fid: None,
            did: None,
        }
    }

    #[test]
    fn answers_have_the_rfc_7662_shape() {
        assert_eq!(serde_json::to_value(Introspection::inactive()).unwrap(), serde_json::json!({"active": false}));
        let a = serde_json::to_value(Introspection::of_access_token(&claims(None))).unwrap();
        assert_eq!(a["token_type"], "Bearer");
        assert_eq!(
            (a["exp"].as_i64(), a["iat"].as_i64(), a["aud"].as_str()),
            (Some(400), Some(100), Some("https://api"))
        );
        assert!(a.get("cnf").is_none());
        assert_eq!((a["auth_time"].as_i64(), a["acr"].as_str()), (Some(90), Some(crate::ACR_PASSWORD)));
        let d = serde_json::to_value(Introspection::of_access_token(&claims(Some("k")))).unwrap();
        assert_eq!((d["token_type"].as_str(), d["cnf"]["jkt"].as_str()), (Some("DPoP"), Some("k")));
    }

    fn refresh() -> RefreshToken {
        RefreshToken {
            token_hash: "h".into(),
            family_id: "f".into(),
            client_id: "app".into(),
            sub: "u1".into(),
            sid: None,
            scope: "openid".into(),
            auth_time: None,
            created_at: Timestamp::from_secs(10),
            expires_at: Timestamp::from_secs(100),
            family_expires_at: Timestamp::from_secs(1000),
            jkt: Some("k".into()),
            consumed_at: None,
            family_revoked_at: None,
            device: None,
            acr: None,
            resources: Vec::new(),
            access: IssuedAccess { jti: "j".into(), expires_at: Timestamp::from_secs(50) },
        }
    }

    #[test]
    fn refresh_tokens() {
        let now = Timestamp::from_secs(50);
        assert!(refresh_token_is_active(&refresh(), now));
        assert!(!refresh_token_is_active(&refresh(), Timestamp::from_secs(100)));
        assert!(!refresh_token_is_active(&RefreshToken { consumed_at: Some(now), ..refresh() }, now));
        assert!(!refresh_token_is_active(&RefreshToken { family_revoked_at: Some(now), ..refresh() }, now));
        let i = Introspection::of_refresh_token(&refresh(), "https://id");
        assert_eq!((i.exp, i.iat, i.token_type, i.cnf.map(|c| c.jkt)), (Some(100), Some(10), None, Some("k".into())));
        let signed_in = RefreshToken { auth_time: Some(Timestamp::from_secs(5)), acr: Some("a".into()), ..refresh() };
        let j = serde_json::to_value(Introspection::of_refresh_token(&signed_in, "https://id")).unwrap();
        assert_eq!((j["auth_time"].as_i64(), j["acr"].as_str()), (Some(5), Some("a")));
        let unknown = serde_json::to_value(Introspection::of_refresh_token(&refresh(), "https://id")).unwrap();
        assert!(unknown.get("acr").is_none() && unknown.get("auth_time").is_none());
    }

    #[test]
    fn user_and_client_tokens() {
        assert!(is_user_token(&claims(None)));
        let cc = AccessClaims { sub: "app".into(), sid: None, ..claims(None) };
        assert!(!is_user_token(&cc));
    }
}
