//! A whole Argus (`argus up --demo`) in-process on ephemeral ports, and the calls the admin, revocation and key
//! tests make against it: sign-ins through the real login form, refreshes, admin-API calls with a real
//! client-credentials token, and calls through the gate.
#![allow(dead_code)]

use std::collections::HashMap;

use argus::{Config, Running, UpOptions};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";
pub const SCOPE: &str = "openid accounts:read";

pub struct Argus {
    pub up: Running,
    pub admin_secret: String,
    pub data_dir: std::path::PathBuf,
    http: Client<HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A signed-in user's tokens and the browser's cookies.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub cookies: HashMap<String, String>,
}

impl Session {
    /// A claim of the access token (read without verifying: the test only needs to know what is in it).
    pub fn claim(&self, name: &str) -> String {
        claim(&self.access, name)
    }

    /// The cookies of this browser without the sign-in session: the same device, a new sign-in.
    pub fn same_device(&self) -> HashMap<String, String> {
        self.cookies.iter().filter(|(k, _)| k.as_str() == "argus_device").map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A claim of a JWT, unverified.
pub fn claim(jwt: &str, name: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let json: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    match &json[name] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `kid` of a JWT's header.
pub fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("a JWT");
    let json: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    json["kid"].as_str().unwrap_or_default().to_owned()
}

impl Argus {
    /// `argus up --demo` with every listener on port 0, and `extra` appended to the `[issuer]` table.
    pub async fn start(issuer_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            &format!(
                "[issuer]\nlisten = \"127.0.0.1:0\"\n{issuer_extra}\n[gate]\nlisten = \"127.0.0.1:0\"\n\
                 [watch]\nlisten = \"127.0.0.1:0\"\n[demo]\nlisten = \"127.0.0.1:0\"\n"
            ),
            "test",
        )
        .unwrap();
        let data_dir = dir.path().join("data");
        let opts =
            UpOptions { data_dir: data_dir.clone(), demo: true, demo_password: Some(PASSWORD.into()), metrics: None };
        let up = argus::start(config, opts).await.unwrap();
        let admin_secret = up.demo.as_ref().unwrap().admin_secret.clone();
        Self { up, admin_secret, data_dir, http: Client::builder(TokioExecutor::new()).build_http(), _dir: dir }
    }

    pub async fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp =
            self.http.request(req.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    pub async fn form(&self, path: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.call("POST", &format!("{}{path}", self.up.issuer_url), &all, Some(body.into_bytes())).await
    }

    /// A client-credentials token (`client_secret_basic`).
    pub async fn client_token(&self, client_id: &str, secret: &str, scope: &str) -> Reply {
        let basic =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}")));
        self.form("/token", &[("authorization", &basic)], &[("grant_type", "client_credentials"), ("scope", scope)])
            .await
    }

    /// An admin token of `argus-admin`.
    pub async fn admin_token(&self) -> String {
        let r = self.client_token("argus-admin", &self.admin_secret, "argus:admin").await;
        assert_eq!(r.status, StatusCode::OK, "admin token: {}", r.text);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Call `/admin/v1{path}` with `token`, a JSON body when given.
    pub async fn admin_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("authorization", bearer.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.call(method, &format!("{}/admin/v1{path}", self.up.issuer_url), &headers, body).await
    }

    /// Call the admin API as `argus-admin`.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let token = self.admin_token().await;
        self.admin_as(&token, method, path, body).await
    }

    /// Sign in through the login form as the demo app, in a browser holding `cookies`.
    pub async fn sign_in(&self, user: &str, cookies: HashMap<String, String>) -> Session {
        let (tokens, cookies) =
            argus::demo_client::token_with_cookies(&self.up.issuer_url, user, PASSWORD, SCOPE, cookies).await.unwrap();
        Session {
            access: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
            cookies,
        }
    }

    /// Refresh as the demo app.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.form(
            "/token",
            &[],
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "demo-app")],
        )
        .await
    }

    /// A session refreshed: the new tokens, same browser.
    pub async fn refreshed(&self, s: &Session) -> Session {
        let r = self.refresh(&s.refresh).await;
        assert_eq!(r.status, StatusCode::OK, "refresh: {}", r.text);
        Session {
            access: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh: r.body["refresh_token"].as_str().unwrap().to_owned(),
            cookies: s.cookies.clone(),
        }
    }

    /// `GET /accounts` through the gate with `token`: the status.
    pub async fn gate_status(&self, token: &str) -> StatusCode {
        let bearer = format!("Bearer {token}");
        self.call("GET", &format!("{}/accounts", self.up.gate_url), &[("authorization", &bearer)], None).await.status
    }

    pub async fn shutdown(self) {
        self.up.shutdown().await;
    }
}
