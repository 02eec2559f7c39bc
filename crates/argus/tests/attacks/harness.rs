//! The stage every attack test runs on: a whole Argus with the demo (`argus up --demo`, in-process, ephemeral ports)
//! whose every part reads one fake clock, people who sign in through the real login form and call the API through
//! the real gate from their own addresses, and the watch API read with a real admin token.
//!
//! Addresses: the test is a trusted proxy of both the issuer and the gate, so `X-Forwarded-For` names the caller and
//! one process acts as many people on many networks (documentation ranges, each its own /16).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argus::{Config, Running, UpOptions};
use argus_model::{Clock, SystemClock};
use argus_testkit::FakeClock;
use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Every provisioned person's password (the demo's too).
pub const PASSWORD: &str = "correct horse battery staple";
/// What the people's apps ask for.
const SCOPE: &str = "openid accounts:read transfers:read";
/// The demo app's registered redirect (loopback, any port).
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// A browser's user agent.
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

/// Someone using the demo: their name, where they work from, their program, and once signed in their tokens.
#[derive(Clone, Debug)]
pub struct Person {
    pub name: String,
    pub ip: String,
    pub user_agent: String,
    /// The app they sign in to.
    pub client_id: String,
    /// What they ask that app for.
    pub scope: String,
    pub access: Option<String>,
    pub refresh: Option<String>,
    /// Their account ids, once listed.
    pub accounts: Vec<u64>,
}

impl Person {
    pub fn new(name: &str, ip: &str) -> Self {
        Self {
            name: name.to_owned(),
            ip: ip.to_owned(),
            user_agent: FIREFOX.to_owned(),
            client_id: "demo-app".to_owned(),
            scope: SCOPE.to_owned(),
            access: None,
            refresh: None,
            accounts: Vec::new(),
        }
    }

    pub fn token(&self) -> &str {
        self.access.as_deref().unwrap_or_else(|| panic!("{} is not signed in", self.name))
    }

    /// A claim of the access token (unverified: the test only reads what is in it).
    pub fn claim(&self, name: &str) -> String {
        let payload = self.token().split('.').nth(1).expect("a JWT");
        let json: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        json[name].as_str().map(str::to_owned).unwrap_or_else(|| json[name].to_string())
    }
}

/// An HTTP answer.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    /// The challenge of a 401.
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A running Argus with the demo, on a fake clock.
pub struct Demo {
    pub up: Running,
    pub clock: Arc<FakeClock>,
    admin_secret: String,
    http: Client<HttpConnector, Full<Bytes>>,
    dir: tempfile::TempDir,
}

impl Demo {
    /// `argus up --demo` with `extra` TOML appended (detector tables, `[[watch.responses]]`): the test is a trusted
    /// proxy; access tokens live a day so that people working through simulated hours need not refresh.
    pub async fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[issuer]
listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]
access_token_ttl_secs = 86400
[gate]
listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
{extra}
"#
        );
        let config = Config::parse(&text, "test").unwrap();
        let opts = UpOptions {
            data_dir: dir.path().join("data"),
            demo: true,
            demo_password: Some(PASSWORD.into()),
            metrics: None,
        };
        // Now, so that nothing the parts compare with real time (none should) is far off.
        let clock = Arc::new(FakeClock::new(SystemClock.now()));
        let up = argus::start_with_clock(config, opts, clock.clone()).await.unwrap();
        let admin_secret = up.demo.as_ref().unwrap().admin_secret.clone();
        Self { up, clock, admin_secret, http: Client::builder(TokioExecutor::new()).build_http(), dir }
    }

    /// Move every part's time forward.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Move time to just past the start of the next `secs` window (detector windows are aligned to the epoch), so
    /// that a phase of an attack falls in windows of its own.
    pub fn align(&self, secs: u64) {
        let now = self.clock.now().as_secs() as u64;
        self.advance(secs - now % secs + 1);
    }

    /// A user of the issuer with [`PASSWORD`] (the demo has alice and bob).
    pub async fn add_user(&self, name: &str) {
        argus_issuer::provision::ensure_user(&self.up.store, name, PASSWORD, self.clock.now()).await.unwrap();
    }

    /// Another public app like the demo's, with its own `client_id`.
    pub async fn add_app(&self, client_id: &str) {
        let app = argus_oauth::ClientRegistration {
            client_id: client_id.to_owned(),
            name: client_id.to_owned(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            allowed_scopes: SCOPE.split(' ').map(str::to_owned).collect(),
            public: true,
            ..argus_oauth::ClientRegistration::default()
        };
        argus_issuer::provision::ensure_client_at(&self.up.store, app, self.clock.now()).await.unwrap();
    }

    /// Put the demo behind a spec of the test's making (the demo's own, with `x-argus-*` marks added), by
    /// reloading the configuration as `SIGHUP` does.
    pub fn reload_with_spec(&self, spec: &str) {
        let spec_path = self.dir.path().join("spec.yaml");
        std::fs::write(&spec_path, spec).unwrap();
        let demo_url = &self.up.demo.as_ref().unwrap().url;
        let file = self.dir.path().join("argus.toml");
        std::fs::write(
            &file,
            format!(
                "[gate]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n[[gate.routes]]\nname = \
                 \"demo\"\nprefix = \"/\"\nupstream = \"{demo_url}\"\nauth = \"argus\"\nopenapi = \"{}\"\nstrict = \
                 true\nresponses = \"log\"\n",
                spec_path.display()
            ),
        )
        .unwrap();
        self.up.reloader.clone().with_file(Some(file)).reload().unwrap();
    }

    /// One request as `ip` with `user_agent`, a bearer token and a form body when given.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        from: (&str, &str),
        bearer: Option<&str>,
        extra: &[(&str, String)],
        form: Option<String>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .header("x-forwarded-for", from.0)
            .header(header::USER_AGENT, from.1);
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let resp = self.http.request(req.body(Full::from(form.unwrap_or_default())).unwrap()).await.unwrap();
        let text = |v: &http::HeaderValue| v.to_str().unwrap_or_default().to_owned();
        let status = resp.status();
        let location = resp.headers().get(header::LOCATION).map(text);
        let cookies = resp.headers().get_all(header::SET_COOKIE).iter().map(text).collect();
        let www_authenticate = resp.headers().get(header::WWW_AUTHENTICATE).map(text);
        let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
        Reply { status, location, cookies, www_authenticate, body }
    }

    /// A call through the gate by `p` with their token.
    pub async fn call(&self, p: &Person, method: &str, path: &str) -> Reply {
        self.call_with(p.access.as_deref(), (&p.ip, &p.user_agent), method, path).await
    }

    /// A call through the gate with any token, from anywhere.
    pub async fn call_with(&self, token: Option<&str>, from: (&str, &str), method: &str, path: &str) -> Reply {
        self.send(method, &format!("{}{path}", self.up.gate_url), from, token, &[], None).await
    }

    /// Sign `p` in through the real login and consent forms of their app; panics if that fails.
    pub async fn sign_in(&self, p: &mut Person) {
        let tokens = self.try_sign_in(p, &p.name.clone(), PASSWORD).await;
        let tokens = tokens.unwrap_or_else(|answer| panic!("{} could not sign in: {answer}", p.name));
        p.access = tokens["access_token"].as_str().map(str::to_owned);
        p.refresh = tokens["refresh_token"].as_str().map(str::to_owned);
        let listed = self.call(p, "GET", "/accounts").await;
        assert_eq!(listed.status, StatusCode::OK, "{}: {}", p.name, listed.body);
        p.accounts = listed.json().as_array().unwrap().iter().map(|a| a["id"].as_u64().unwrap()).collect();
    }

    /// One sign-in through the real forms as `username` with `password`, from `p`'s address and program: the token
    /// response, or what the issuer answered instead (its status and first words).
    pub async fn try_sign_in(&self, p: &Person, username: &str, password: &str) -> Result<Value, String> {
        let from = (p.ip.as_str(), p.user_agent.as_str());
        let verifier = argus_model::id::random_secret(32);
        let url = format!(
            "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s&code_challenge={}\
             &code_challenge_method=S256",
            self.up.issuer_url,
            p.client_id,
            enc(REDIRECT_URI),
            enc(&p.scope),
            argus_jose::pkce_challenge_s256(&verifier)
        );
        let mut jar: HashMap<String, String> = HashMap::new();
        let mut page = self.browse(&mut jar, "GET", &url, from, None).await;
        let mut credentials_sent = false;
        for _ in 0..4 {
            if let Some(code) = page.location.as_deref().and_then(code_of) {
                let form = form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &p.client_id),
                    ("code_verifier", &verifier),
                ]);
                let url = format!("{}/token", self.up.issuer_url);
                let r = self.send("POST", &url, from, None, &[], Some(form)).await;
                return if r.status == StatusCode::OK { Ok(r.json()) } else { Err(format!("token: {}", r.body)) };
            }
            if page.status != StatusCode::OK {
                return Err(format!("{} {}", page.status, page.body.chars().take(200).collect::<String>()));
            }
            let Some((action, mut fields)) = parse_form(&page.body) else {
                return Err(format!("no form: {}", page.body.chars().take(200).collect::<String>()));
            };
            if action.ends_with("/login") {
                if credentials_sent {
                    return Err("the login form again: refused".into());
                }
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
                credentials_sent = true;
            } else {
                fields.push(("decision".into(), "allow".into()));
            }
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let url = format!("{}{action}", self.up.issuer_url);
            page = self.browse(&mut jar, "POST", &url, from, Some(form(&pairs))).await;
        }
        Err("no redirect back to the app".into())
    }

    /// A request with the browser's cookies, keeping the ones set.
    async fn browse(
        &self,
        jar: &mut HashMap<String, String>,
        method: &str,
        url: &str,
        from: (&str, &str),
        body: Option<String>,
    ) -> Reply {
        let cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let extra = if cookie.is_empty() { vec![] } else { vec![("cookie", cookie.join("; "))] };
        let r = self.send(method, url, from, None, &extra, body).await;
        for c in &r.cookies {
            if let Some((name, rest)) = c.split_once('=') {
                jar.insert(name.trim().to_owned(), rest.split(';').next().unwrap_or_default().to_owned());
            }
        }
        r
    }

    /// Each signed-in person does what people do with a bank: lists their accounts and looks at one of them.
    pub async fn benign_round(&self, people: &[Person], round: usize) {
        for p in people {
            let r = self.call(p, "GET", "/accounts").await;
            assert_eq!(r.status, StatusCode::OK, "benign {} refused: {}", p.name, r.body);
            if let Some(id) = p.accounts.get(round % p.accounts.len().max(1)) {
                let r = self.call(p, "GET", &format!("/accounts/{id}")).await;
                assert_eq!(r.status, StatusCode::OK, "benign {} refused: {}", p.name, r.body);
            }
        }
    }

    /// An admin token of the demo's `argus-admin` (fresh each time: the clock moves).
    async fn admin_token(&self) -> String {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("argus-admin:{}", self.admin_secret));
        let url = format!("{}/token", self.up.issuer_url);
        let extra = [("authorization", format!("Basic {basic}"))];
        let body = form(&[("grant_type", "client_credentials"), ("scope", "argus:admin")]);
        let r = self.send("POST", &url, ("127.0.0.1", "argus-test"), None, &extra, Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "admin token: {}", r.body);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET {watch}{path}` as the admin.
    pub async fn watch(&self, path: &str) -> Value {
        let token = self.admin_token().await;
        let url = format!("{}{path}", self.up.watch_url.as_deref().unwrap());
        let r = self.send("GET", &url, ("127.0.0.1", "argus-test"), Some(&token), &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "watch {path}: {}", r.body);
        r.json()
    }

    /// Every alert watch holds.
    pub async fn alerts(&self) -> Vec<Value> {
        self.watch("/api/alerts?limit=500").await.as_array().cloned().unwrap_or_default()
    }

    /// The alert of `attack` on `key`, with its evidence events, once watch has it (at most 10 s).
    pub async fn alert(&self, attack: &str, key: &str) -> Value {
        let found = eventually(&format!("a {attack} alert on {key}"), || async {
            let alerts = self.watch(&format!("/api/alerts?attack={attack}&limit=500")).await;
            alerts.as_array()?.iter().find(|a| a["key"] == key).cloned()
        })
        .await;
        self.watch(&format!("/api/alerts/{}", found["id"].as_str().unwrap())).await
    }

    /// The applied action of `kind` on `target` (`{"type": .., "value": ..}`), once watch took it.
    pub async fn action(&self, kind: &str, target: Value) -> Value {
        eventually(&format!("a {kind} of {target}"), || async {
            let listed = self.watch("/api/actions").await;
            listed["actions"].as_array()?.iter().find(|a| a["kind"] == kind && a["target"] == target).cloned()
        })
        .await
    }

    /// No alert names any of `keys` (the benign people's addresses, users, sessions, tokens and apps). Waits
    /// for watch to have seen everything sent so far first.
    pub async fn assert_no_alert_on(&self, keys: &[String]) {
        self.settle().await;
        let alerts = self.alerts().await;
        let about: Vec<&Value> = alerts.iter().filter(|a| keys.iter().any(|k| a["key"] == k.as_str())).collect();
        assert!(about.is_empty(), "alerts on benign keys: {about:#?}");
    }

    /// Waits until watch has processed every event published so far: a marker call is seen in its timeline.
    pub async fn settle(&self) {
        let marker = format!("203.0.113.{}", 200 + rand_octet());
        self.call_with(None, (&marker, "settle"), "GET", "/health").await;
        eventually("watch catching up", || async {
            let page = self.watch(&format!("/api/keys/ip/{marker}/timeline")).await;
            (!page["events"].as_array()?.is_empty()).then_some(())
        })
        .await;
    }

    pub async fn shutdown(self) {
        self.up.shutdown().await;
    }
}

/// A number from 0 to 49 that differs between calls, so markers of one test do not collide.
fn rand_octet() -> u8 {
    argus_model::id::random_bytes(1)[0] % 50
}

/// Every benign key of `people`: address, user (`sub`), session, token, app.
pub fn keys_of(people: &[Person]) -> Vec<String> {
    let mut keys = Vec::new();
    for p in people {
        keys.push(p.ip.clone());
        keys.push(p.name.clone());
        if p.access.is_some() {
            for claim in ["sub", "sid", "jti"] {
                keys.push(p.claim(claim));
            }
        }
    }
    keys
}

/// Polls `check` until it yields, for at most 10 s of real time (watch is out of band).
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    for _ in 0..200 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

/// The explanation parts every alert must carry: attack, identifier, the feature that fired with its observed
/// value and threshold, and evidence events that are in the audit log. `feature` may name alternatives, `a|b`.
pub fn assert_explained(alert: &Value, attack: &str, key_type: &str, key: &str, feature: &str) {
    assert_eq!(alert["attack"], attack, "{alert:#}");
    assert_eq!((alert["key_type"].as_str(), alert["key"].as_str()), (Some(key_type), Some(key)), "{alert:#}");
    let f = &alert["feature"];
    // A merged alert carries the feature of its latest draft: `a|b` accepts either.
    assert!(feature.split('|').any(|name| f["name"] == name), "not {feature}: {alert:#}");
    eprintln!("{attack} on {key_type} {key}: {}", f["explanation"]);
    assert!(f["observed"].as_f64().unwrap() > 0.0, "{alert:#}");
    assert!(f["threshold"].is_number(), "{alert:#}");
    assert!(!f["explanation"].as_str().unwrap_or_default().is_empty(), "{alert:#}");
    let evidence = alert["evidence_events"].as_array().unwrap();
    assert!(!evidence.is_empty(), "no evidence events: {alert:#}");
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// The `code` of a redirect back to the app.
fn code_of(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.as_str().starts_with(REDIRECT_URI).then_some(())?;
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

/// The `<form method="post" action="...">` of an issuer page and its hidden inputs.
fn parse_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    const FORM: &str = "<form method=\"post\" action=\"";
    const HIDDEN: &str = "<input type=\"hidden\" name=\"";
    let start = html.find(FORM)? + FORM.len();
    let action = html[start..].split('"').next()?.to_owned();
    let mut fields = Vec::new();
    let mut rest = &html[start..];
    while let Some(i) = rest.find(HIDDEN) {
        rest = &rest[i + HIDDEN.len()..];
        let name = rest.split('"').next()?.to_owned();
        let v = rest.find("value=\"")? + "value=\"".len();
        let value = rest[v..].split('"').next()?.replace("&quot;", "\"").replace("&amp;", "&");
        fields.push((name, value));
    }
    Some((action, fields))
}

/// People going about their business during an attack, each from their own network, signed in through the login
/// form of the demo app. `carol` and `dave` are added (the demo has alice and bob).
pub async fn benign(demo: &Demo, who: &[(&str, &str)]) -> Vec<Person> {
    let mut people = Vec::new();
    for (name, ip) in who {
        if !["alice", "bob"].contains(name) {
            demo.add_user(name).await;
        }
        let mut p = Person::new(name, ip);
        demo.sign_in(&mut p).await;
        people.push(p);
    }
    people
}

/// The usual benign crowd: bob at home, carol at the office, dave on mobile data.
pub const CROWD: [(&str, &str); 3] = [("bob", "198.51.100.7"), ("carol", "192.0.2.44"), ("dave", "100.64.3.9")];

/// A response rule, as TOML.
pub fn rule(name: &str, when: &str, action: &str, options: &str) -> String {
    format!("[[watch.responses]]\nname = \"{name}\"\nwhen = \"{when}\"\naction = \"{action}\"\n{options}\n")
}
