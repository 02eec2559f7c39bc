//! A gate on 127.0.0.1:0 in front of the testkit's echo upstream, trusting the testkit's JWKS server.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use argus_bus::{ControlChannel, EventBus, Received, Subscriber};
use argus_cache::MemoryReplayCache;
use argus_gate::{AuthMode, GateConfig, GateDeps, RouteConfig, RuleConfig};
use argus_jose::{AccessClaims, SigningKey};
use argus_model::{ApiCall, Clock, ControlMessage, Event, EventKind, Principal, Revocation, RevocationScope};
use argus_testkit::{EchoUpstream, FakeClock, JwksServer, access_claims, mint_access_token, test_key};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const AUDIENCE: &str = "http://gate.test";
/// The nonce secret of every test gate.
pub const NONCE_SECRET: &[u8] = b"test nonce secret, 32 bytes long";

pub struct Harness {
    pub gate: String,
    pub key: SigningKey,
    pub jwks: JwksServer,
    pub upstream: EchoUpstream,
    pub clock: Arc<FakeClock>,
    pub events: Subscriber<Event>,
    pub control: ControlChannel,
    pub client: Caller,
    /// The configuration the gate started with, and the handle to reload it.
    pub config: GateConfig,
    pub handle: argus_gate::GateHandle,
}

/// The routes most tests use: `/api` behind tokens with two scope rules, `/public` open.
pub fn routes(upstream: &str) -> Vec<RouteConfig> {
    vec![
        RouteConfig {
            name: "api".into(),
            prefix: "/api".into(),
            upstream: upstream.into(),
            auth: AuthMode::Argus,
            require: vec![
                RuleConfig {
                    methods: vec!["GET".into()],
                    path: "/api/accounts".into(),
                    scopes: vec!["accounts:read".into()],
                },
                RuleConfig {
                    methods: vec!["POST".into()],
                    path: "/api/transfers".into(),
                    scopes: vec!["transfers:write".into()],
                },
            ],
            ..RouteConfig::default()
        },
        RouteConfig {
            name: "public".into(),
            prefix: "/public".into(),
            upstream: upstream.into(),
            auth: AuthMode::None,
            require: vec![],
            ..RouteConfig::default()
        },
    ]
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Start with the default routes, after `adjust` had its say on the config.
    pub async fn start_with(adjust: impl FnOnce(&mut GateConfig, &str)) -> Self {
        Self::start_full(adjust, Vec::new()).await
    }

    /// Start with the revocations already in force (a gate starting after they were published).
    pub async fn start_full(adjust: impl FnOnce(&mut GateConfig, &str), initial_revocations: Vec<Revocation>) -> Self {
        let key = test_key();
        let jwks = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let upstream = EchoUpstream::start().await;
        let mut config = GateConfig { routes: routes(upstream.url()), ..GateConfig::default() };
        adjust(&mut config, upstream.url());

        let clock = Arc::new(FakeClock::default());
        let events = EventBus::new(1024);
        let control = ControlChannel::new(64);
        let subscriber = events.subscribe();
        let deps = GateDeps {
            events,
            control: control.clone(),
            clock: clock.clone(),
            initial_revocations,
            initial_blocks: Vec::new(),
            initial_step_ups: Vec::new(),
            dpop_nonce_secret: NONCE_SECRET.to_vec(),
            replay: Arc::new(MemoryReplayCache::new(1000)),
        };
        let handle = argus_gate::start(&config, jwks.issuer(), AUDIENCE, deps).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gate = format!("http://{}", listener.local_addr().unwrap());
        // The listener `argus up` runs: HTTP/1.1 and h2c, header timeout.
        let (router, header_timeout) = (handle.router(), Duration::from_secs(config.header_timeout_secs));
        tokio::spawn(async move {
            argus_gate::serve(listener, router, header_timeout, std::future::pending()).await.unwrap();
        });
        Self { gate, key, jwks, upstream, clock, events: subscriber, control, client: Caller::new(), config, handle }
    }

    /// Claims of a good token for alice, issued now.
    pub fn claims(&self) -> AccessClaims {
        access_claims(self.jwks.issuer(), AUDIENCE, self.clock.now())
    }

    pub fn token(&self, claims: &AccessClaims) -> String {
        mint_access_token(&self.key, claims)
    }

    pub fn good_token(&self) -> String {
        self.token(&self.claims())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gate)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = Request::get(self.url(path));
        if let Some(t) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.client.send(request.body(Full::default()).unwrap()).await
    }

    /// A call with `Authorization: DPoP <token>` and one `DPoP` header per proof.
    pub async fn dpop_call(&self, method: &str, path: &str, token: &str, proofs: &[&str]) -> Reply {
        let mut request =
            Request::builder().method(method).uri(self.url(path)).header("authorization", format!("DPoP {token}"));
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        self.client.send(request.body(Full::default()).unwrap()).await
    }

    pub fn revoke(&self, scope: RevocationScope) {
        self.control.publish(ControlMessage::Revoke(revocation(scope, self.clock.now())));
    }

    /// The next ApiCall event; fails after five seconds.
    pub async fn next_call(&mut self) -> (Principal, ApiCall) {
        let received = tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await.expect("an event");
        match received {
            Some(Received::Message(event)) => match &event.kind {
                EventKind::ApiCall(call) => {
                    assert_eq!(event.node, "gate");
                    (event.principal.clone(), call.clone())
                }
                other => panic!("expected ApiCall, got {other:?}"),
            },
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// No further event arrives within a short while.
    pub async fn no_more_events(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(200), self.events.recv()).await;
        assert!(more.is_err(), "unexpected extra event: {more:?}");
    }
}

/// A revocation made at `now`, kept ten minutes.
pub fn revocation(scope: RevocationScope, now: argus_model::Timestamp) -> Revocation {
    Revocation { id: argus_model::id::new_id(), scope, at: now, until: now.plus(Duration::from_secs(600)) }
}

/// An HTTP client, cheap to clone into spawned tasks.
#[derive(Clone)]
pub struct Caller {
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_else(|| panic!("no {name} header"))
    }

    /// Every value of a header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
    }

    /// Asserts an RFC 9457 problem of this slug and status, and returns the problem.
    pub fn assert_problem(&self, status: u16, slug: &str) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.header("content-type"), "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["type"], format!("urn:argus:problem:{slug}"));
        assert_eq!(problem["status"], status);
        assert!(problem["title"].is_string() && problem["detail"].is_string());
        assert_eq!(problem["request_id"], self.header("x-request-id"));
        problem
    }
}

impl Caller {
    pub fn new() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let response = self.client.request(request).await.expect("the gate answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("a complete body").to_bytes();
        Reply { status, headers, body }
    }
}
