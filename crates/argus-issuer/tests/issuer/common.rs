//! A real issuer on 127.0.0.1:0 over a temp-file SQLite store, a tiny cookie-keeping browser, and the code flow
//! steps the tests share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argus_bus::{ControlChannel, EventBus, Received, Subscriber};
use argus_cache::MemoryReplayCache;
use argus_issuer::{IssuerConfig, IssuerDeps, provision};
use argus_jose::{JwkSet, SigningKey};
use argus_model::{Clock, ControlMessage, Event};
use argus_oauth::{ClientRegistration, GrantType, INTROSPECT_SCOPE, TokenEndpointAuthMethod, hash_client_secret};
use argus_store::Store;
use argus_testkit::FakeClock;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const AUDIENCE: &str = "http://127.0.0.1:7480";
pub const PASSWORD: &str = "correct horse battery staple";
pub const DEMO_SCOPES: &str = "openid profile accounts:read transfers:read transfers:write";
pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const USER_AGENT: &str = "argus-tests/1.0";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The secret of every confidential test client that uses one.
pub const SECRET: &str = "9m2Kq7R4tV1xZ8cB5nL3wE6yH0jF2aD4sG7uP1oI3kQ";
/// The confidential clients: `(client_id, method)`. All may use client_credentials with `SERVICE_SCOPES`.
pub const SVC_BASIC: &str = "svc-basic";
pub const SVC_POST: &str = "svc-post";
pub const SVC_JWT: &str = "svc-jwt";
/// A resource server: may introspect every client's tokens.
pub const RS: &str = "resource-server";
/// A confidential web app of the code flow (client_secret_basic).
pub const WEB_CONF: &str = "web-confidential";
pub const SERVICE_SCOPES: &str = "accounts:read transfers:read";

pub struct Issuer {
    pub base: String,
    pub clock: Arc<FakeClock>,
    pub store: Store,
    pub events: EventBus,
    pub control: ControlChannel,
    /// `(username, sub)`.
    pub users: HashMap<String, String>,
    /// The private key of [`SVC_JWT`], whose public half is registered.
    pub client_key: SigningKey,
    http: Client<HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query parameters of the `Location` header.
    pub fn location_params(&self) -> HashMap<String, String> {
        let loc = self.header("location").unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body));
        let url = url::Url::parse(loc).unwrap();
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

pub fn demo_client() -> ClientRegistration {
    ClientRegistration {
        client_id: "demo-app".into(),
        name: "Argus demo app".into(),
        redirect_uris: vec!["http://127.0.0.1/callback".into(), "http://[::1]/callback".into()],
        allowed_scopes: DEMO_SCOPES.split(' ').map(str::to_owned).collect(),
        ..ClientRegistration::default()
    }
}

pub fn web_client() -> ClientRegistration {
    ClientRegistration {
        client_id: "web-app".into(),
        name: "Web app".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        allowed_scopes: vec!["openid".into(), "accounts:read".into()],
        ..ClientRegistration::default()
    }
}

/// A confidential client of the client_credentials grant.
pub fn service_client(client_id: &str, method: TokenEndpointAuthMethod, key: &SigningKey) -> ClientRegistration {
    let (client_secret_hash, jwks) = match method {
        TokenEndpointAuthMethod::PrivateKeyJwt => (None, Some(JwkSet { keys: vec![key.public_jwk().clone()] })),
        _ => (Some(hash_client_secret(SECRET)), None),
    };
    ClientRegistration {
        client_id: client_id.into(),
        name: client_id.into(),
        allowed_scopes: SERVICE_SCOPES.split(' ').map(str::to_owned).collect(),
        public: false,
        token_endpoint_auth_method: method,
        client_secret_hash,
        jwks,
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    }
}

fn resource_server() -> ClientRegistration {
    ClientRegistration {
        client_id: RS.into(),
        name: "Resource server".into(),
        allowed_scopes: vec![INTROSPECT_SCOPE.into()],
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(hash_client_secret(SECRET)),
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    }
}

/// A confidential app of the code flow, with refresh tokens.
pub fn confidential_web_client() -> ClientRegistration {
    ClientRegistration {
        client_id: WEB_CONF.into(),
        name: "Confidential web app".into(),
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        allowed_scopes: vec!["openid".into(), "accounts:read".into()],
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(hash_client_secret(SECRET)),
        ..ClientRegistration::default()
    }
}

/// An `Authorization: Basic` value (RFC 6749 §2.3.1: each part form-urlencoded first).
pub fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret))))
}

impl Issuer {
    pub async fn start() -> Self {
        Self::start_with(IssuerConfig::default()).await
    }

    pub async fn start_with(config: IssuerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let clock = Arc::new(FakeClock::default());
        let mut users = HashMap::new();
        for name in ["alice", "bob"] {
            let sub = provision::ensure_user(&store, name, PASSWORD, clock.now()).await.unwrap();
            users.insert(name.to_owned(), sub);
        }
        let client_key = SigningKey::generate_es256().unwrap();
        for client in [
            demo_client(),
            web_client(),
            service_client(SVC_BASIC, TokenEndpointAuthMethod::ClientSecretBasic, &client_key),
            service_client(SVC_POST, TokenEndpointAuthMethod::ClientSecretPost, &client_key),
            service_client(SVC_JWT, TokenEndpointAuthMethod::PrivateKeyJwt, &client_key),
            resource_server(),
            confidential_web_client(),
        ] {
            provision::ensure_client(&store, client).await.unwrap();
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let events = EventBus::new(1024);
        let control = ControlChannel::new(1024);
        let deps = deps(&store, &events, &control, &clock);
        let router = argus_issuer::router(&config, &base, AUDIENCE, deps).await.unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let http = Client::builder(TokioExecutor::new()).build_http();
        Self { base, clock, store, events, control, users, client_key, http, _dir: dir }
    }

    /// Dependencies for another issuer over this one's store, bus and clock.
    pub fn deps(&self) -> IssuerDeps {
        deps(&self.store, &self.events, &self.control, &self.clock)
    }

    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<String>) -> Resp {
        let mut req = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
        let res = self.http.request(req).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Resp { status, headers, body }
    }

    /// A form POST with extra headers (client authentication, DPoP).
    pub async fn post_form_with(&self, path: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Resp {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Some(form(pairs))).await
    }

    /// An endpoint's absolute URL (what `htu` and a client assertion's `aud` name).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client assertion of [`SVC_JWT`] (RFC 7523) for `aud`, valid for a minute, with a fresh `jti`.
    pub fn client_assertion(&self, aud: &str) -> String {
        let now = self.clock.now().as_secs();
        let claims = serde_json::json!({
            "iss": SVC_JWT, "sub": SVC_JWT, "aud": aud, "iat": now, "exp": now + 60, "jti": argus_model::id::new_id(),
        });
        self.client_key.sign("JWT", &claims).unwrap()
    }

    /// A client_credentials token request of `client_id` with Basic authentication.
    pub async fn client_credentials(&self, client_id: &str, extra: &[(&str, &str)]) -> Resp {
        let mut pairs = vec![("grant_type", "client_credentials")];
        pairs.extend_from_slice(extra);
        self.post_form_with("/token", &[("authorization", &basic(client_id, SECRET))], &pairs).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None).await
    }

    /// A form POST without cookies (token, revoke).
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.request("POST", path, &[("content-type", "application/x-www-form-urlencoded")], Some(form(pairs))).await
    }

    pub async fn token(&self, pairs: &[(&str, &str)]) -> Resp {
        self.post_form("/token", pairs).await
    }

    pub async fn redeem(&self, code: &str, verifier: &str) -> Resp {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-app"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Resp {
        self.token(&[("grant_type", "refresh_token"), ("client_id", "demo-app"), ("refresh_token", refresh_token)])
            .await
    }

    pub async fn userinfo(&self, access_token: &str) -> Resp {
        self.request("GET", "/userinfo", &[("authorization", &format!("Bearer {access_token}"))], None).await
    }

    /// Sign in as `user` in a new browser (a new session) and return the code. The consent page is answered when
    /// it comes; after the user's first consent to these scopes the login goes straight back with a code.
    pub async fn code_for(&self, user: &str) -> String {
        self.code_with(user, &[]).await
    }

    /// [`Issuer::code_for`] with authorization request parameters changed (see [`authorize_path`]).
    pub async fn code_with(&self, user: &str, overrides: &[(&str, &str)]) -> String {
        self.code_at(user, &authorize_path(overrides)).await
    }

    /// Sign in as `user` in a new browser starting at the authorization request `path`, and return the code.
    pub async fn code_at(&self, user: &str, path: &str) -> String {
        let mut b = Browser::default();
        let page = b.get(self, path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let mut done = b.submit(self, &page, "/login", &[("username", user), ("password", PASSWORD)]).await;
        if done.status == 200 {
            assert!(done.body.contains(r#"action="/consent""#), "expected the consent page: {}", done.body);
            done = b.submit(self, &done, "/consent", &[("decision", "allow")]).await;
        }
        assert_eq!(done.status, 303, "{}", done.body);
        done.location_params().remove("code").expect("a code")
    }

    /// A full sign-in as `user` and the token response.
    pub async fn tokens_for(&self, user: &str) -> serde_json::Value {
        let code = self.code_for(user).await;
        let res = self.redeem(&code, VERIFIER).await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()
    }

    /// Let the issuer see a change made directly in the store, as it sees one made by another process: it answers
    /// token requests from its copy of client registrations and users' enabled flags for `registry_cache_secs`
    /// (changes through its own admin API apply at once).
    pub fn outlive_registry(&self) {
        let ttl = IssuerConfig::default().registry_cache_secs;
        self.clock.advance(std::time::Duration::from_secs(ttl));
    }

    /// Rows the store would purge if everything expired: zero means nothing was stored.
    pub async fn stored_rows(&self) -> u64 {
        use argus_oauth::IssuerStore;
        self.store.purge_expired(argus_model::Timestamp::from_millis(i64::MAX)).await.unwrap()
    }
}

fn deps(store: &Store, events: &EventBus, control: &ControlChannel, clock: &Arc<FakeClock>) -> IssuerDeps {
    IssuerDeps {
        store: Arc::new(store.clone()),
        events: events.clone(),
        control: control.clone(),
        clock: clock.clone(),
        replay: Arc::new(MemoryReplayCache::default()),
        dpop_nonce_secret: vec![7; 32],
        initial_blocks: Vec::new(),
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// `/authorize?...` for demo-app with PKCE, state and nonce; `overrides` replace or (with value "") drop a parameter.
pub fn authorize_path(overrides: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile accounts:read"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in overrides {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    format!("/authorize?{}", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish())
}

/// The hidden inputs of a page, parsed the way the interop test does: `<input type="hidden" name="N" value="V">`.
pub fn hidden_inputs(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(r#"<input type="hidden" name=""#) {
        rest = &rest[i + r#"<input type="hidden" name=""#.len()..];
        let (name, after) = rest.split_once(r#"" value=""#).unwrap();
        let (value, after) = after.split_once(r#"">"#).unwrap();
        out.push((name.to_owned(), value.to_owned()));
        rest = after;
    }
    out
}

/// A browser: keeps cookies, submits forms.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, res: &Resp) {
        for v in res.headers.get_all(header::SET_COOKIE) {
            let first = v.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
    }

    pub async fn get(&mut self, issuer: &Issuer, path: &str) -> Resp {
        let cookie = self.cookie_header();
        let res = issuer.request("GET", path, &[("cookie", &cookie), ("user-agent", USER_AGENT)], None).await;
        self.keep(&res);
        res
    }

    pub async fn post(&mut self, issuer: &Issuer, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let cookie = self.cookie_header();
        let headers = [
            ("cookie", cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
            ("user-agent", USER_AGENT),
        ];
        let res = issuer.request("POST", path, &headers, Some(form(pairs))).await;
        self.keep(&res);
        res
    }

    /// Submit the form of `page` to `action` with its hidden inputs plus `fields`.
    pub async fn submit(&mut self, issuer: &Issuer, page: &Resp, action: &str, fields: &[(&str, &str)]) -> Resp {
        let hidden = hidden_inputs(&page.body);
        assert!(!hidden.is_empty(), "no form on the page: {}", page.body);
        let mut pairs: Vec<(&str, &str)> = hidden.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.extend_from_slice(fields);
        self.post(issuer, action, &pairs).await
    }
}

/// Everything published on a channel so far, without waiting for more than a moment.
pub async fn drain<T: Send + Sync + 'static>(sub: &mut Subscriber<T>) -> Vec<Arc<T>> {
    let mut out = Vec::new();
    while let Ok(Some(Received::Message(m))) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
        out.push(m);
    }
    out
}

pub async fn events(sub: &mut Subscriber<Event>) -> Vec<Arc<Event>> {
    drain(sub).await
}

/// The `jti`s of token revocations on the control channel.
pub async fn revoked_jtis(sub: &mut Subscriber<ControlMessage>) -> Vec<String> {
    drain(sub)
        .await
        .iter()
        .filter_map(|m| match m.as_ref() {
            ControlMessage::Revoke(r) => match &r.scope {
                argus_model::RevocationScope::Token { jti } => Some(jti.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The claims of a JWT, without verifying it (the tests verify separately where it matters).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn jwt_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
