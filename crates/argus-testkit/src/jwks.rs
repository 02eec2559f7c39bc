use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use argus_jose::{Jwk, JwkSet};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A stand-in issuer for resource-server tests: serves OIDC discovery at `/.well-known/openid-configuration`
/// (its `jwks_uri` is `/jwks`) and the JWKS, counts fetches, and can swap keys or go unavailable mid-test.
/// Stops when dropped.
pub struct JwksServer {
    issuer: String,
    state: Arc<JwksState>,
    task: JoinHandle<()>,
}

struct JwksState {
    issuer: String,
    keys: RwLock<Vec<Jwk>>,
    available: AtomicBool,
    discovery_fetches: AtomicU64,
    jwks_fetches: AtomicU64,
}

impl JwksServer {
    /// Start serving `keys` on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start(keys: Vec<Jwk>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the JWKS server");
        let issuer = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(JwksState {
            issuer: issuer.clone(),
            keys: RwLock::new(keys),
            available: AtomicBool::new(true),
            discovery_fetches: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { issuer, state, task }
    }

    /// The issuer URL (`http://127.0.0.1:<port>`), as tokens must name it in `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Serve these keys from now on (key rotation).
    pub fn set_keys(&self, keys: Vec<Jwk>) {
        *self.state.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// While unavailable, both documents answer 503.
    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// How many times the JWKS was served.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was served.
    pub fn discovery_fetches(&self) -> u64 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(state): State<Arc<JwksState>>) -> Response {
    if !state.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(serde_json::json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<JwksState>>) -> Response {
    if !state.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = state.keys.read().unwrap_or_else(PoisonError::into_inner).clone();
    axum::Json(JwkSet { keys }).into_response()
}

#[cfg(test)]
mod tests {
    use crate::test_key;
    use crate::upstream::tests::get;

    use super::*;

    #[tokio::test]
    async fn serves_discovery_and_rotated_keys() {
        let first = test_key();
        let server = JwksServer::start(vec![first.public_jwk().clone()]).await;
        let (status, body) = get(&format!("{}/.well-known/openid-configuration", server.issuer())).await;
        assert_eq!(status, 200);
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["issuer"], server.issuer());
        let jwks_uri = doc["jwks_uri"].as_str().unwrap().to_owned();

        let (_, body) = get(&jwks_uri).await;
        let set: JwkSet = serde_json::from_slice(&body).unwrap();
        assert!(set.find(first.kid()).is_some());

        let second = test_key();
        server.set_keys(vec![first.public_jwk().clone(), second.public_jwk().clone()]);
        let (_, body) = get(&jwks_uri).await;
        let set: JwkSet = serde_json::from_slice(&body).unwrap();
        assert!(set.find(second.kid()).is_some());
        assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 2));

        server.set_available(false);
        assert_eq!(get(&jwks_uri).await.0, 503);
        assert_eq!(server.jwks_fetches(), 2, "refused fetches are not counted");
    }
}
