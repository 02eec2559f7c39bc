//! Sign-in that resists attack (issue 5): a wrong-password run against one account from one address slows down
//! (429 with a growing `Retry-After`, the password no longer checked) and stops (the address's budget across all
//! user names), while the real user signs in from another address at once. The issuer router runs over a SQLite
//! store in a temp dir with an injected clock, behind a "proxy" (loopback is a trusted proxy, so `X-Forwarded-For`
//! names each client). Also: an admin's TOTP reset, through the API and the CLI.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argus_bus::{ControlChannel, EventBus, Received, Subscriber};
use argus_issuer::{IssuerConfig, IssuerDeps, provision};
use argus_model::{Clock, Event, EventKind, LoginFailure, LoginOutcome, Timestamp};
use argus_oauth::{ClientRegistration, SecondFactorStore, ThrottleStore, TotpCredential};
use argus_store::Store;
use argus_testkit::FakeClock;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const PASSWORD: &str = "correct horse battery staple";
const ATTACKER: &str = "203.0.113.66";
const VICTIM: &str = "198.51.100.7";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Issuer {
    base: String,
    clock: Arc<FakeClock>,
    store: Store,
    events: EventBus,
    http: Client<HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn retry_after(&self) -> Option<u64> {
        self.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    }

    /// A sign-in that went through: the consent page (first time) or the redirect with a code.
    fn signed_in(&self) -> bool {
        self.status == StatusCode::SEE_OTHER || self.body.contains(r#"action="/consent""#)
    }
}

impl Issuer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).await.unwrap();
        let clock = Arc::new(FakeClock::default());
        provision::ensure_user(&store, "alice", PASSWORD, clock.now()).await.unwrap();
        let client = ClientRegistration {
            client_id: "demo-app".into(),
            name: "Demo".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            allowed_scopes: vec!["openid".into()],
            ..ClientRegistration::default()
        };
        provision::ensure_client(&store, client).await.unwrap();
        // Loopback is the proxy: X-Forwarded-For names the client, so one test plays several addresses.
        Self::serve(store, clock, dir).await
    }

    /// An issuer (its own router, listener and event bus) over `store`, behind loopback as a trusted proxy.
    async fn serve(store: Store, clock: Arc<FakeClock>, dir: tempfile::TempDir) -> Self {
        let config = IssuerConfig { trusted_proxies: vec!["127.0.0.1/32".into()], ..IssuerConfig::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let events = EventBus::new(4096);
        let deps = IssuerDeps {
            store: Arc::new(store.clone()),
            events: events.clone(),
            control: ControlChannel::new(64),
            clock: clock.clone(),
            replay: Arc::new(argus_gate::MemoryReplayCache::default()),
            dpop_nonce_secret: vec![7; 32],
            initial_blocks: Vec::new(),
        };
        let router = argus_issuer::router(&config, &base, "http://127.0.0.1:7480", deps).await.unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        Self { base, clock, store, events, http: Client::builder(TokioExecutor::new()).build_http(), _dir: dir }
    }

    /// Another issuer process over the same database file (opened again, as a second process would).
    async fn another_over_the_same_store(&self) -> Self {
        let store = Store::open_dir(self._dir.path()).await.unwrap();
        Self::serve(store, self.clock.clone(), tempfile::tempdir().unwrap()).await
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: String) -> Resp {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.http.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
        Resp { status, headers, body }
    }

    /// One sign-in attempt from `ip` as a fresh browser would make it (as attack tools do): `/authorize`, then the
    /// login form with `username` and `password`.
    async fn attempt(&self, ip: &str, username: &str, password: &str) -> Resp {
        let authorize = format!(
            "/authorize?response_type=code&client_id=demo-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback\
             &scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        let page = self.call("GET", &authorize, &[("x-forwarded-for", ip)], String::new()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookies: Vec<String> = page
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in hidden_inputs(&page.body) {
            form.append_pair(&k, &v);
        }
        let body = form.append_pair("username", username).append_pair("password", password).finish();
        let headers = [
            ("cookie", cookies.join("; ")),
            ("x-forwarded-for", ip.to_owned()),
            ("content-type", "application/x-www-form-urlencoded".to_owned()),
        ];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.call("POST", "/login", &headers, body).await
    }
}

fn hidden_inputs(body: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = body;
    while let Some(i) = rest.find(r#"<input type="hidden" name=""#) {
        rest = &rest[i + r#"<input type="hidden" name=""#.len()..];
        let (name, after) = rest.split_once(r#"" value=""#).unwrap();
        let (value, after) = after.split_once(r#"">"#).unwrap();
        out.insert(name.to_owned(), value.to_owned());
        rest = after;
    }
    out
}

/// The Login events published so far: (ip, username, outcome).
async fn logins(sub: &mut Subscriber<Event>) -> Vec<(String, String, LoginOutcome)> {
    let mut out = Vec::new();
    while let Ok(Some(Received::Message(e))) = tokio::time::timeout(Duration::from_millis(50), sub.recv()).await {
        if let EventKind::Login(l) = &e.kind {
            out.push((e.principal.ip.clone().unwrap_or_default(), l.username.clone(), l.outcome));
        }
    }
    out
}

const THROTTLED: LoginOutcome = LoginOutcome::Failure(LoginFailure::Throttled);
const BAD_PASSWORD: LoginOutcome = LoginOutcome::Failure(LoginFailure::BadPassword);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessing_run_slows_down_and_stops_while_the_user_signs_in_from_elsewhere() {
    let i = Issuer::start().await;
    let mut sub = i.events.subscribe();

    // Five free failures, then the sixth locks the pair for a second.
    for n in 0..6 {
        let r = i.attempt(ATTACKER, "alice", &format!("guess-{n}")).await;
        assert_eq!((r.status, r.retry_after()), (StatusCode::OK, None), "failure {n} is answered normally");
        assert!(r.body.contains("not correct"), "{}", r.body);
    }
    assert_eq!(logins(&mut sub).await, vec![(ATTACKER.into(), "alice".into(), BAD_PASSWORD); 6]);

    // Slows down: while locked, even the right password is refused from that address, without being checked
    // (no success, a `throttled` event); each further failure doubles the wait.
    let mut waits = Vec::new();
    for _ in 0..4 {
        let r = i.attempt(ATTACKER, "alice", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert!(!r.signed_in() && r.body.contains("Too many failed sign-ins"), "{}", r.body);
        let wait = r.retry_after().expect("Retry-After");
        waits.push(wait);
        assert_eq!(logins(&mut sub).await, vec![(ATTACKER.into(), "alice".into(), THROTTLED)]);
        // The lock ends; the next guess fails again and locks for twice as long.
        i.clock.advance(Duration::from_secs(wait));
        let r = i.attempt(ATTACKER, "alice", "another guess").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(logins(&mut sub).await, vec![(ATTACKER.into(), "alice".into(), BAD_PASSWORD)]);
    }
    assert_eq!(waits, [1, 2, 4, 8], "the lock doubles with each failure");

    // Meanwhile the real user, from their own address, signs in at once: nothing locks the account as such.
    let r = i.attempt(VICTIM, "alice", PASSWORD).await;
    assert!(r.signed_in(), "{} {}", r.status, r.body);
    let events = logins(&mut sub).await;
    assert_eq!(events.last().unwrap(), &(VICTIM.into(), "alice".into(), LoginOutcome::Success));

    // Stops: the attacker's address has a budget across every user name (20 failures; 10 are spent). Spraying other
    // names runs it out, and then every name is refused from there — an unknown one alike, same page, same status.
    i.clock.advance(Duration::from_secs(16));
    for n in 0..10 {
        let r = i.attempt(ATTACKER, &format!("user{n}"), "Winter2026!").await;
        assert_eq!(r.status, StatusCode::OK, "spray {n}: {}", r.body);
    }
    let r = i.attempt(ATTACKER, "user10", "Winter2026!").await;
    assert_eq!(r.status, StatusCode::OK, "the 21st failure is checked, and locks the address");
    for name in ["somebody-new", "alice"] {
        let r = i.attempt(ATTACKER, name, PASSWORD).await;
        assert_eq!((r.status, r.retry_after()), (StatusCode::TOO_MANY_REQUESTS, Some(1)), "{name}");
        assert!(r.body.contains("Too many failed sign-ins"));
    }
    let tail: Vec<_> = logins(&mut sub).await.into_iter().rev().take(2).map(|(_, _, o)| o).collect();
    assert_eq!(tail, [THROTTLED, THROTTLED]);

    // Still the real user is not locked out.
    let r = i.attempt(VICTIM, "alice", PASSWORD).await;
    assert!(r.signed_in(), "{} {}", r.status, r.body);
    // And the lock on the attacker's address ends on its own; its record is forgotten after the memory window.
    i.clock.advance(Duration::from_secs(3600 + 900));
    let r = i.attempt(ATTACKER, "alice", PASSWORD).await;
    assert!(r.signed_in(), "{} {}", r.status, r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_answer_is_the_same_for_an_unknown_user() {
    let i = Issuer::start().await;
    for name in ["alice", "nobody"] {
        for n in 0..6 {
            let r = i.attempt(ATTACKER, name, &format!("guess-{n}")).await;
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    let known = i.attempt(ATTACKER, "alice", "x").await;
    let unknown = i.attempt(ATTACKER, "nobody", "x").await;
    // The pages differ only in the form's one-time values.
    let strip = |r: &Resp| {
        let mut body = r.body.clone();
        for v in hidden_inputs(&r.body).values() {
            body = body.replace(v.as_str(), "");
        }
        (r.status, r.retry_after(), body)
    };
    assert_eq!(strip(&known), strip(&unknown));
    assert_eq!(known.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_over_one_store_count_together() {
    let one = Issuer::start().await;
    let two = one.another_over_the_same_store().await;
    // Guesses spread over two issuers (a load balancer) count as one run.
    for n in 0..6 {
        let issuer = if n % 2 == 0 { &one } else { &two };
        assert_eq!(issuer.attempt(ATTACKER, "alice", "guess").await.status, StatusCode::OK, "{n}");
    }
    for issuer in [&one, &two] {
        let r = issuer.attempt(ATTACKER, "alice", PASSWORD).await;
        assert_eq!((r.status, r.retry_after()), (StatusCode::TOO_MANY_REQUESTS, Some(1)));
    }
    // A complete sign-in from the address forgets the pair's failures, at both.
    one.clock.advance(Duration::from_secs(1));
    assert!(two.attempt(ATTACKER, "alice", PASSWORD).await.signed_in());
    let keys = argus_oauth::throttle_keys("alice", Some(ATTACKER.parse().unwrap()));
    let now = one.clock.now();
    assert_eq!(one.store.throttle_state(&keys.account, now).await.unwrap(), None, "the pair is forgotten");
    let ip = one.store.throttle_state(&keys.ip, now).await.unwrap().expect("the address's count stays");
    assert_eq!(ip.failures, 6);
    assert_eq!(one.attempt(ATTACKER, "alice", "one more").await.status, StatusCode::OK, "free failures again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_resets_a_users_totp_through_the_api_and_the_cli() {
    let argus = support::Argus::start("").await;
    let store = Store::open_dir(&argus.data_dir).await.unwrap();
    let sub = argus.admin("GET", "/users/alice", None).await.body["user"]["sub"].as_str().unwrap().to_owned();
    let enrol = || async {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let cred = TotpCredential {
            sub: sub.clone(),
            secret: vec![9; 20],
            created_at: now,
            confirmed_at: None,
            last_step: None,
        };
        assert!(store.put_unconfirmed_totp(&cred).await.unwrap());
        assert!(store.confirm_totp(&sub, 1, &["h1".into(), "h2".into()], now).await.unwrap());
        assert!(store.totp_credential(&sub).await.unwrap().is_some());
    };
    // Whether recovery code `hash` is there to use (using it up).
    let recovery_code = |hash: &'static str| {
        let (store, sub) = (store.clone(), sub.clone());
        async move { store.use_recovery_code(&sub, hash, Timestamp::from_millis(1_700_000_001_000)).await.unwrap() }
    };

    enrol().await;
    let r = argus.admin("DELETE", "/users/alice/totp", None).await;
    assert_eq!((r.status, &r.body["removed"]), (StatusCode::OK, &serde_json::json!(true)), "{}", r.text);
    assert!(store.totp_credential(&sub).await.unwrap().is_none());
    assert!(!recovery_code("h1").await && !recovery_code("h2").await, "the recovery codes went with it");
    // Idempotent; an unknown user is a problem, and no admin token no reset.
    let r = argus.admin("DELETE", "/users/alice/totp", None).await;
    assert_eq!((r.status, &r.body["removed"]), (StatusCode::OK, &serde_json::json!(false)));
    let r = argus.admin("DELETE", "/users/nobody/totp", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), "application/problem+json");
    enrol().await;
    let url = format!("{}/admin/v1/users/alice/totp", argus.up.issuer_url);
    let r = argus.call("DELETE", &url, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(store.totp_credential(&sub).await.unwrap().is_some());
    assert!(recovery_code("h1").await, "untouched without an admin token");

    // The CLI.
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["admin", "--issuer", &argus.up.issuer_url, "users", "reset-totp", "alice"])
            .env("ARGUS_ADMIN_CLIENT_SECRET", &argus.admin_secret)
            .env_remove("ARGUS_ADMIN_CLIENT_ID")
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"removed\": true"));
    assert!(store.totp_credential(&sub).await.unwrap().is_none());
    assert!(!recovery_code("h2").await);
    argus.shutdown().await;
}
