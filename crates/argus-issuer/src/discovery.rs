//! Discovery (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS.

use argus_jose::DPOP_ALGORITHMS;
use argus_oauth::{AuthLevel, CLIENT_ASSERTION_ALGORITHMS, GrantType, TokenEndpointAuthMethod};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::Shared;

/// Scopes every issuer offers, before the clients' own.
const BASE_SCOPES: [&str; 2] = ["openid", "profile"];

/// Claims that can appear in id_tokens and userinfo answers.
const CLAIMS: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "sid",
    "azp",
    "at_hash",
    "preferred_username",
];

/// `GET /.well-known/openid-configuration` and `GET /.well-known/oauth-authorization-server`.
pub(crate) async fn metadata(State(s): State<Shared>) -> Response {
    let clients = match s.store.clients().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "discovery: cannot list clients");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut scopes: Vec<String> = BASE_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    for scope in clients.iter().flat_map(|c| c.allowed_scopes.iter()) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let all_methods: Vec<&str> = TokenEndpointAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    // Introspection is for clients that can authenticate: never `none`.
    let confidential_methods: Vec<&str> = all_methods.iter().copied().filter(|m| *m != "none").collect();
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    let body = json!({
        "issuer": s.issuer_url,
        "authorization_endpoint": s.endpoint("/authorize"),
        "token_endpoint": s.endpoint("/token"),
        "jwks_uri": s.endpoint("/jwks"),
        "userinfo_endpoint": s.endpoint("/userinfo"),
        "revocation_endpoint": s.endpoint("/revoke"),
        "introspection_endpoint": s.endpoint("/introspect"),
        "pushed_authorization_request_endpoint": s.endpoint("/par"),
        "require_pushed_authorization_requests": s.config.require_pushed_authorization_requests,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": all_methods,
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": all_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": confidential_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGORITHMS,
        "dpop_signing_alg_values_supported": DPOP_ALGORITHMS,
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": s.keys.algorithms(),
        "authorization_response_iss_parameter_supported": true,
        // Only pushed request_uri values (RFC 9126); OIDC Discovery's default for this is true.
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
        "claims_supported": CLAIMS,
        // The levels a sign-in can reach, weakest first; `max_age` is honoured too (OIDC Core §3.1.2.1).
        "acr_values_supported": AuthLevel::supported_acr_values(),
        "prompt_values_supported": ["none", "login", "consent"],
    });
    (short_cache(), Json(body)).into_response()
}

/// `GET /jwks`: the public keys that verify the issuer's tokens.
pub(crate) async fn jwks(State(s): State<Shared>) -> Response {
    (short_cache(), Json(&*s.keys.jwks())).into_response()
}

/// Metadata and keys change rarely, but a new key must reach verifiers soon: five minutes.
fn short_cache() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"))]
}
