//! The floor of a token endpoint: the least a token server must do per request, and nothing else, on the same
//! HTTP stack (hyper through axum, tokio, mimalloc) and the same signature (aws-lc ES256) as Argus.
//!
//! - client_credentials: read the form, check the client's `client_secret_basic` credentials against a stored hash
//!   (in constant time), sign an RFC 9068 ES256 access token with a fresh `jti`, answer the JSON of RFC 6749 §5.1.
//! - refresh_token: read the form, sign an access token, draw a new random refresh token and hash it (what a server
//!   that stores hashes must do), answer. It stores and checks nothing: any refresh token is accepted. A real server
//!   must at least find the presented token and durably record its rotation; this one does neither.
//!
//! No registry, no events, no audit, no storage: what no implementation of the grants can skip.
//!
//! `bench/token-endpoint/run.sh` runs it beside Argus and oidc-provider, pinned to the same core: its rate over the
//! peer's is the highest ratio any server on this HTTP stack and this signature could reach on this machine, so the
//! ratios of Argus read against it.
//!
//!     cargo run --release -p argus --example token_floor -- [client_id:client_secret]
//!
//! Prints `listening http://127.0.0.1:PORT` once it accepts.

use std::sync::Arc;

use argus_jose::{ACCESS_TOKEN_TYP, SigningKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor {
    key: SigningKey,
    issuer: String,
    client_id: String,
    secret_hash: [u8; 32],
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
}

fn main() -> anyhow::Result<()> {
    let credentials = std::env::args().nth(1).unwrap_or_else(|| "bench-service:bench-service-secret".to_owned());
    let (client_id, secret) = credentials.split_once(':').ok_or_else(|| anyhow::anyhow!("want id:secret"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let floor = Floor {
            key: SigningKey::generate("ES256")?,
            issuer: url.clone(),
            client_id: client_id.to_owned(),
            secret_hash: Sha256::digest(secret.as_bytes()).into(),
        };
        let app = Router::new().route("/token", post(token)).with_state(Arc::new(floor));
        println!("listening {url}");
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn token(State(floor): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&floor, &headers, &body) {
        Some(json) => {
            ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], json).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#).into_response(),
    }
}

fn issue(floor: &Floor, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match param("grant_type")? {
        "client_credentials" => client_credentials(floor, headers, param("scope").unwrap_or("")),
        "refresh_token" => refresh(floor, param("client_id")?, param("refresh_token")?),
        _ => None,
    }
}

fn client_credentials(floor: &Floor, headers: &HeaderMap, scope: &str) -> Option<String> {
    let basic = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    if id != floor.client_id || !argus_jose::ct_eq(&hash, &floor.secret_hash) {
        return None;
    }
    let token = sign(floor, id, id, scope)?;
    let answer = serde_json::json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": scope,
    });
    Some(answer.to_string())
}

fn refresh(floor: &Floor, client_id: &str, presented: &str) -> Option<String> {
    // What a server storing hashes computes for the presented token and for the new one.
    std::hint::black_box(Sha256::digest(presented.as_bytes()));
    let scope = "openid accounts:read";
    let token = sign(floor, "alice", client_id, scope)?;
    let next = argus_model::id::random_secret(32);
    std::hint::black_box(Sha256::digest(next.as_bytes()));
    let answer = serde_json::json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 300, "refresh_token": next, "scope": scope,
    });
    Some(answer.to_string())
}

fn sign(floor: &Floor, sub: &str, client_id: &str, scope: &str) -> Option<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let claims = Claims {
        iss: &floor.issuer,
        sub,
        aud: "http://127.0.0.1:7480",
        exp: now + 300,
        iat: now,
        jti: argus_model::id::new_id(),
        client_id,
        scope,
    };
    floor.key.sign(ACCESS_TOKEN_TYP, &claims).ok()
}
