//! A real `Watch` over a temporary SQLite store, an in-process bus and control channel, its API served on
//! 127.0.0.1:0, and an issuer stand-in: a JWKS server with a test key and the admin client in the store.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argus_bus::{ControlChannel, EventBus, Received, Subscriber};
use argus_detect::WatchStore;
use argus_jose::SigningKey;
use argus_model::{Clock, Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp};
use argus_oauth::notice::NoticeRoutes;
use argus_oauth::{ClientRegistration, GrantType, IssuerStore, TokenEndpointAuthMethod};
use argus_store::Store;
use argus_testkit::{JwksServer, access_claims, mint_access_token, test_key};
use argus_watch::{IssuerLink, Watch, WatchConfig, WatchDeps};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const T0: i64 = 1_764_000_000_000;
pub const ATTACKER: &str = "203.0.113.7";
/// The API audience of the stand-in issuer's tokens.
pub const AUDIENCE: &str = "http://gate.test";
pub const ADMIN_CLIENT: &str = "argus-admin";
/// Where users' notices would be delivered (`notify.webhook_url`).
pub const NOTICE_WEBHOOK: &str = "http://127.0.0.1:9/notices";

pub struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(T0 + 3_600_000)
    }
}

pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub bus: EventBus,
    pub control: ControlChannel,
    pub base: String,
    pub watch: Watch,
    pub issuer: JwksServer,
    pub key: SigningKey,
    /// An admin token (client credentials, scope `argus:admin`) every API call of the helpers carries.
    pub token: String,
}

pub async fn start(config: WatchConfig) -> Harness {
    start_with(config, 1024, |store| store).await
}

/// Watch over a bus of `capacity` and the store `wrap` makes of a fresh SQLite one.
pub async fn start_with(
    config: WatchConfig,
    capacity: usize,
    wrap: impl FnOnce(Arc<Store>) -> Arc<dyn WatchStore>,
) -> Harness {
    try_start_with(config, capacity, wrap).await.unwrap()
}

/// [`start_with`], or why watch refused to start.
pub async fn try_start_with(
    config: WatchConfig,
    capacity: usize,
    wrap: impl FnOnce(Arc<Store>) -> Arc<dyn WatchStore>,
) -> Result<Harness, argus_watch::WatchError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_dir(dir.path()).await.unwrap());
    let key = test_key();
    let issuer = JwksServer::start(vec![key.public_jwk().clone()]).await;
    add_client(&store, ADMIN_CLIENT, &["argus:admin"]).await;
    let bus = EventBus::new(capacity);
    let control = ControlChannel::new(64);
    let deps = WatchDeps {
        store: wrap(store.clone()),
        actions: store.clone(),
        issuer: IssuerLink {
            store: store.clone(),
            url: issuer.issuer().to_owned(),
            audience: AUDIENCE.into(),
            access_token_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(3600),
            // Deliveries are queued only: no outbox worker runs here.
            notify: NoticeRoutes { webhook_url: Some(NOTICE_WEBHOOK.into()), email: false },
        },
        control: control.clone(),
        events: bus.clone(),
        clock: Arc::new(FixedClock),
    };
    let watch = Watch::start(&config, deps).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = watch.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let token = admin_token(&key, issuer.issuer(), ADMIN_CLIENT, "argus:admin");
    Ok(Harness { _dir: dir, store, bus, control, base, watch, issuer, key, token })
}

/// A confidential client with these scopes, for client credentials.
pub async fn add_client(store: &Store, client_id: &str, scopes: &[&str]) {
    let client = ClientRegistration {
        client_id: client_id.into(),
        name: client_id.into(),
        allowed_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some("unused".into()),
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    };
    store.upsert_client(&client, FixedClock.now()).await.unwrap();
}

/// A client-credentials token of `client_id` with `scope`, as the issuer signs them.
pub fn admin_token(key: &SigningKey, issuer: &str, client_id: &str, scope: &str) -> String {
    let mut claims = access_claims(issuer, AUDIENCE, FixedClock.now());
    claims.sub = client_id.into();
    claims.client_id = client_id.into();
    claims.scope = scope.into();
    claims.sid = None;
    claims.auth_time = None;
    mint_access_token(key, &claims)
}

/// GET `path` with the admin token: status, content type, JSON body.
pub async fn get(h: &Harness, path: &str) -> (u16, String, Value) {
    request(&h.base, "GET", path, Some(&h.token)).await
}

/// POST `path` with the admin token.
pub async fn post(h: &Harness, path: &str) -> (u16, String, Value) {
    request(&h.base, "POST", path, Some(&h.token)).await
}

pub async fn request(base: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String, Value) {
    let (status, headers, body) = request_full(base, method, path, token).await;
    let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, body)
}

pub async fn request_full(base: &str, method: &str, path: &str, token: Option<&str>) -> (u16, hyper::HeaderMap, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client.request(request.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub fn failure(ms_after: i64, user: &str) -> Event {
    Event::new(
        Timestamp::from_millis(T0 + ms_after),
        "issuer",
        Principal { ip: Some(ATTACKER.into()), ..Default::default() },
        EventKind::Login(Login { username: user.into(), outcome: LoginOutcome::Failure(LoginFailure::BadPassword) }),
    )
}

/// Polls until `check` returns something, for at most 10 s.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(mut check: impl FnMut() -> F) -> T {
    for _ in 0..200 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}

/// The next event on the bus that `pick` accepts, within 10 s.
pub async fn next_event<T>(sub: &mut Subscriber<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let wait = async {
        loop {
            match sub.recv().await {
                Some(Received::Message(e)) => {
                    if let Some(found) = pick(&e) {
                        return found;
                    }
                }
                Some(Received::Lagged(_)) => {}
                None => panic!("bus closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("no such event on the bus")
}

pub async fn next_alert_event(sub: &mut Subscriber<Event>) -> Arc<Event> {
    next_event(sub, |e| matches!(e.kind, EventKind::Alert(_)).then(|| Arc::new(e.clone()))).await
}
