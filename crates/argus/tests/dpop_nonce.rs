//! DPoP server nonces (RFC 9449 §8, §9) outlive the process that handed them out: the secret they are derived from
//! is kept in the store, so a second Argus over the same data directory, and an Argus started again over it,
//! accept the nonces of the first at the issuer's token endpoint and at the gate.

use argus::{Config, Running, UpOptions};
use argus_oauth::{ClientRegistration, GrantType, TokenEndpointAuthMethod, hash_client_secret};
use argus_testkit::DpopKey;
use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// One audience for every instance: tokens of one are good at the gate of another.
const AUDIENCE: &str = "https://api.test";
const CLIENT: &str = "nonce-svc";
const SECRET: &str = "x7Yh2Kq9Lm4Np1Rs6Tv8Wz3Ab5Cd0Ef2Gh4Jk6Mn8Pq";

type Http = Client<HttpConnector, Full<Bytes>>;

async fn start(data_dir: &std::path::Path) -> Running {
    let config = Config::parse(
        &format!(
            "[issuer]\nlisten = \"127.0.0.1:0\"\n[gate]\nlisten = \"127.0.0.1:0\"\naudience = \"{AUDIENCE}\"\n\
             [watch]\nlisten = \"127.0.0.1:0\"\n[demo]\nlisten = \"127.0.0.1:0\"\n"
        ),
        "test",
    )
    .unwrap();
    let opts = UpOptions { data_dir: data_dir.to_owned(), demo: true, demo_password: None, metrics: None };
    argus::start(config, opts).await.unwrap()
}

struct Reply {
    status: StatusCode,
    body: serde_json::Value,
    nonce: Option<String>,
    challenge: String,
}

async fn send(http: &Http, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = http.request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, nonce, challenge) = (resp.status(), header("dpop-nonce"), header("www-authenticate"));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or_default(),
        nonce,
        challenge: challenge.unwrap_or_default(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().try_into().unwrap()
}

/// A client-credentials token request at `up`'s issuer with a DPoP proof of `key`, carrying `nonce` if given.
async fn token(http: &Http, up: &Running, key: &DpopKey, nonce: Option<&str>) -> Reply {
    let url = format!("{}/token", up.issuer_url);
    let mut proof = key.proof("POST", &url, now());
    if let Some(n) = nonce {
        proof = proof.nonce(n);
    }
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}")));
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
        ("dpop", &proof.build()),
    ];
    send(http, "POST", &url, &headers, "grant_type=client_credentials&scope=accounts%3Aread").await
}

/// `GET /accounts` at `up`'s gate with a DPoP-bound `access_token` and a proof carrying `nonce` if given.
async fn gate(http: &Http, up: &Running, key: &DpopKey, access_token: &str, nonce: Option<&str>) -> Reply {
    let url = format!("{}/accounts", up.gate_url);
    // The gate's public URL is its audience here: `htu` names that, wherever the gate listens.
    let mut proof = key.proof("GET", &format!("{AUDIENCE}/accounts"), now()).ath_for(access_token);
    if let Some(n) = nonce {
        proof = proof.nonce(n);
    }
    let authorization = format!("DPoP {access_token}");
    send(http, "GET", &url, &[("authorization", &authorization), ("dpop", &proof.build())], "").await
}

/// The nonce a request without one is told to use: the issuer answers 400 `use_dpop_nonce`, the gate 401.
fn asked_nonce(r: &Reply) -> String {
    let told = r.body["error"] == "use_dpop_nonce" || r.challenge.contains("use_dpop_nonce");
    assert!(told && r.status.is_client_error(), "expected use_dpop_nonce, got {} {}", r.status, r.body);
    r.nonce.clone().expect("a DPoP-Nonce header")
}

/// A DPoP-bound access token, with the nonce the issuer handed out.
fn bound_token(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["token_type"], "DPoP");
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// The gate took the proof's nonce: whatever it answers, it is not a nonce refusal.
fn nonce_accepted(r: &Reply) {
    assert!(
        !r.challenge.contains("use_dpop_nonce") && r.status != StatusCode::UNAUTHORIZED,
        "{} {}",
        r.status,
        r.challenge
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_are_good_across_processes_and_restarts_over_one_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let key = DpopKey::es256();

    let first = start(dir.path()).await;
    let client = ClientRegistration {
        client_id: CLIENT.into(),
        name: CLIENT.into(),
        allowed_scopes: vec!["accounts:read".into()],
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(hash_client_secret(SECRET)),
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    };
    argus_issuer::provision::ensure_client(&first.store, client).await.unwrap();
    let issuer_nonce = asked_nonce(&token(&http, &first, &key, None).await);
    let access = bound_token(&token(&http, &first, &key, Some(&issuer_nonce)).await);
    let gate_nonce = asked_nonce(&gate(&http, &first, &key, &access, None).await);
    nonce_accepted(&gate(&http, &first, &key, &access, Some(&gate_nonce)).await);

    // A second Argus over the same data directory, beside the first.
    let second = start(dir.path()).await;
    let access = bound_token(&token(&http, &second, &key, Some(&issuer_nonce)).await);
    nonce_accepted(&gate(&http, &second, &key, &access, Some(&gate_nonce)).await);
    first.shutdown().await;
    second.shutdown().await;

    // Started again: the nonces handed out before still work within their window.
    let again = start(dir.path()).await;
    let access = bound_token(&token(&http, &again, &key, Some(&issuer_nonce)).await);
    nonce_accepted(&gate(&http, &again, &key, &access, Some(&gate_nonce)).await);
    // And a nonce that was never handed out still is not.
    let forged = asked_nonce(&token(&http, &again, &key, Some("bm90LWEtbm9uY2U")).await);
    assert_ne!(forged, "bm90LWEtbm9uY2U");
    again.shutdown().await;
}
