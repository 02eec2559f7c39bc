//! Shared helpers of the black-box tests: the real router on 127.0.0.1:0 and a small HTTP client.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;

use argus_demo::{DemoApi, DemoUser};
use argus_model::{Clock, Timestamp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The time the tests' clock stands at.
pub const NOW: Timestamp = Timestamp::from_millis(1_764_000_000_123);

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

pub struct Demo {
    pub addr: SocketAddr,
    pub api: DemoApi,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert this is an RFC 9457 problem with `status` and `slug`.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        let problem = self.json();
        assert_eq!(problem["type"], format!("urn:argus:demo:problem:{slug}"));
        assert_eq!(problem["status"], status);
        assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

pub fn users() -> Vec<DemoUser> {
    vec![
        DemoUser { sub: "sub-alice".to_owned(), username: "alice".to_owned() },
        DemoUser { sub: "sub-bob".to_owned(), username: "bob".to_owned() },
    ]
}

/// An access-token-shaped JWT for `sub`. The signature is junk on purpose: the demo must not need it.
pub fn token_for(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::json!({ "sub": sub, "scope": "accounts:read" }).to_string());
    format!("{header}.{payload}.bm90LWEtc2lnbmF0dXJl")
}

impl Demo {
    /// Seed the demo for alice and bob and serve it the way the lead does.
    pub async fn start() -> Self {
        let api = argus_demo::seed_with_clock(&users(), Arc::new(FixedClock));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = argus_demo::router(api.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { addr, api, client }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut request = Request::builder().method(method).uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.client.request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        Reply { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
    }

    /// `GET path` with a bearer token for `sub`, or with no token.
    pub async fn get(&self, path: &str, sub: Option<&str>) -> Reply {
        match sub {
            Some(sub) => {
                let auth = format!("Bearer {}", token_for(sub));
                self.send(Method::GET, path, &[("authorization", &auth)], Vec::new()).await
            }
            None => self.send(Method::GET, path, &[], Vec::new()).await,
        }
    }

    /// `POST /transfers` as `sub` with a JSON body.
    pub async fn post_transfer(&self, sub: &str, body: &serde_json::Value) -> Reply {
        self.post_raw(sub, "application/json", body.to_string().into_bytes()).await
    }

    /// `POST /transfers` as `sub` with any content type and body.
    pub async fn post_raw(&self, sub: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let auth = format!("Bearer {}", token_for(sub));
        let headers = [("authorization", auth.as_str()), ("content-type", content_type)];
        self.send(Method::POST, "/transfers", &headers, body).await
    }

    /// The ids of `sub`'s accounts, by the library's own view.
    pub fn account_ids(&self, sub: &str) -> Vec<u64> {
        self.api.accounts_of(sub).iter().map(|a| a.id).collect()
    }
}
