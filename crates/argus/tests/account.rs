//! The account page, its JSON API, "this wasn't me" and the password change, end to end on one `argus up --demo`:
//! browsers are cookie jars that follow the issuer's real forms, tokens are checked at the real gate and `/token`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use argus_bus::Received;
use argus_model::{Activity, EventKind, LoginFailure, LoginOutcome};
use argus_testkit::DpopKey;
use http::StatusCode;
use serde_json::Value;
use support::{Argus, PASSWORD, Reply};

const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const API_SCOPE: &str = "openid accounts:read";

/// A browser: a cookie jar that sends its cookies and keeps what the issuer sets.
#[derive(Default)]
struct Browser {
    cookies: HashMap<String, String>,
}

/// A form of a page: its action and its hidden inputs.
#[derive(Clone)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn with(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(k, _)| k != name);
        self
    }
}

/// Every `<form method="post" action="...">` of a page with its hidden inputs, in page order.
fn forms(html: &str) -> Vec<Form> {
    const OPEN: &str = "<form method=\"post\" action=\"";
    const HIDDEN: &str = "<input type=\"hidden\" name=\"";
    html.split(OPEN)
        .skip(1)
        .map(|rest| {
            let action = rest.split('"').next().unwrap().to_owned();
            let body = rest.split("</form>").next().unwrap();
            let fields = body
                .split(HIDDEN)
                .skip(1)
                .map(|f| {
                    let name = f.split('"').next().unwrap().to_owned();
                    let value = f.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
                    (name, value.replace("&#34;", "\"").replace("&#39;", "'").replace("&amp;", "&"))
                })
                .collect();
            Form { action, fields }
        })
        .collect()
}

fn form_to(html: &str, action: &str) -> Form {
    forms(html).into_iter().find(|f| f.action == action).unwrap_or_else(|| panic!("no form to {action}: {html}"))
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, r: &Reply) {
        for c in r.headers.get_all("set-cookie") {
            let (name, rest) = c.to_str().unwrap().split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    /// `GET` an issuer path or absolute URL.
    async fn get(&mut self, a: &Argus, url: &str) -> Reply {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", a.up.issuer_url) };
        let jar = self.cookie_header();
        let r = a.call("GET", &url, &[("cookie", &jar)], None).await;
        self.keep_cookies(&r);
        r
    }

    async fn submit(&mut self, a: &Argus, form: Form) -> Reply {
        let pairs: Vec<(&str, &str)> = form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let jar = self.cookie_header();
        let r = a.form(&form.action, &[("cookie", &jar)], &pairs).await;
        self.keep_cookies(&r);
        r
    }

    /// The code flow of the demo app through the real forms: `/authorize` (with `resource` when given), the login
    /// form (`password`), consent, then `/token`. A page with no way on (a refused password) is the `Err`.
    async fn tokens(
        &mut self,
        a: &Argus,
        user: &str,
        password: &str,
        scope: &str,
        resource: Option<&str>,
    ) -> Result<Value, Reply> {
        self.tokens_with(a, user, password, scope, resource, None).await
    }

    /// [`Browser::tokens`], the token request made with a DPoP proof of `dpop` when given (a DPoP-bound token).
    async fn tokens_with(
        &mut self,
        a: &Argus,
        user: &str,
        password: &str,
        scope: &str,
        resource: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<Value, Reply> {
        let verifier = argus_model::id::random_secret(32);
        let mut url = url::Url::parse(&format!("{}/authorize", a.up.issuer_url)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "demo-app")
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", "st")
            .append_pair("code_challenge", &argus_jose::pkce_challenge_s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(resource) = resource {
            url.query_pairs_mut().append_pair("resource", resource);
        }
        let mut page = self.get(a, url.as_str()).await;
        for _ in 0..5 {
            if let Some(code) = code_of(&page) {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", "demo-app"),
                    ("code_verifier", &verifier),
                ];
                if let Some(resource) = resource {
                    form.push(("resource", resource));
                }
                let r = match dpop {
                    None => a.form("/token", &[], &form).await,
                    Some(key) => dpop_token_request(a, key, &form).await,
                };
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                return Ok(r.body);
            }
            let Some(form) = forms(&page.text).into_iter().next().filter(|_| page.status == StatusCode::OK) else {
                return Err(page);
            };
            let form = match form.action.as_str() {
                "/login"
                    if form.fields.iter().any(|(k, _)| k == "request") && page.text.contains("name=\"password\"") =>
                {
                    if page.text.contains("class=\"error\"") {
                        return Err(page);
                    }
                    form.with("username", user).with("password", password)
                }
                "/consent" => form.with("decision", "allow"),
                _ => return Err(page),
            };
            page = self.submit(a, form).await;
        }
        Err(page)
    }
}

/// A token request with a DPoP proof of `key`: the first is told which server nonce to use, the second uses it.
async fn dpop_token_request(a: &Argus, key: &DpopKey, form: &[(&str, &str)]) -> Reply {
    let url = format!("{}/token", a.up.issuer_url);
    let first = a.form("/token", &[("dpop", &key.proof("POST", &url, now()).build())], form).await;
    assert_eq!(first.body["error"], "use_dpop_nonce", "{}", first.text);
    let proof = key.proof("POST", &url, now()).nonce(first.header("dpop-nonce")).build();
    a.form("/token", &[("dpop", &proof)], form).await
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().try_into().unwrap()
}

/// The code of a redirect back to the demo app.
fn code_of(r: &Reply) -> Option<String> {
    let location = r.header("location");
    let url = url::Url::parse(location).ok().filter(|_| location.starts_with(REDIRECT_URI))?;
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

/// A signed-in user's tokens in one browser.
struct Device {
    browser: Browser,
    access: String,
    refresh: String,
}

impl Device {
    async fn sign_in(a: &Argus, user: &str) -> Self {
        let mut browser = Browser::default();
        let t = browser.tokens(a, user, PASSWORD, API_SCOPE, None).await.unwrap_or_else(|r| panic!("{}", r.text));
        Self { browser, access: str_of(&t, "access_token"), refresh: str_of(&t, "refresh_token") }
    }

    fn did(&self) -> String {
        support::claim(&self.access, "did")
    }

    /// A token for the account API from this browser's session: audience the issuer, scope `account`.
    async fn account_token(&mut self, a: &Argus, scope: &str) -> String {
        let issuer = a.up.issuer_url.clone();
        let t = self.browser.tokens(a, "", "", scope, Some(&issuer)).await.unwrap_or_else(|r| panic!("{}", r.text));
        str_of(&t, "access_token")
    }
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_owned()
}

async fn api(a: &Argus, method: &str, path: &str, token: Option<&str>) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    a.call(method, &format!("{}/account/api{path}", a.up.issuer_url), &headers, None).await
}

/// The gate answers `want` for `token`, within two seconds (revocations reach it over the control channel).
async fn gate_answers(a: &Argus, token: &str, want: StatusCode) {
    for _ in 0..40 {
        if a.gate_status(token).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gate never answered {want}");
}

/// Refreshing works (`true`) or is refused with `invalid_grant` (`false`).
async fn refresh_works(a: &Argus, refresh: &str) -> bool {
    let r = a.refresh(refresh).await;
    match r.status {
        StatusCode::OK => true,
        StatusCode::BAD_REQUEST if r.body["error"] == "invalid_grant" => false,
        other => panic!("refresh answered {other}: {}", r.text),
    }
}

/// The "this wasn't me" link of device B's new-device notice, as the account API lists it to device A.
async fn not_me_link(a: &Argus, device_a: &mut Device, device_b: &Device) -> String {
    let token = device_a.account_token(a, "openid account").await;
    let notices = api(a, "GET", "/notices", Some(&token)).await;
    assert_eq!(notices.status, StatusCode::OK, "{}", notices.text);
    let notice = notices.body["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["device_id"] == device_b.did().as_str() && n["kind"] == "new_device")
        .unwrap_or_else(|| panic!("no new-device notice for device B: {}", notices.text))
        .clone();
    let link = notice["body"]["not_me_url"].as_str().expect("a not-me link").to_owned();
    assert!(link.starts_with(&format!("{}/account/not-me?t=", a.up.issuer_url)), "{link}");
    link
}

/// The first event on the bus that `pick` maps to something, within five seconds.
async fn first_event<T>(
    events: &mut argus_bus::Subscriber<argus_model::Event>,
    pick: impl Fn(&argus_model::Event) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Some(Received::Message(e)) => {
                    if let Some(found) = pick(&e) {
                        return found;
                    }
                }
                Some(Received::Lagged(_)) => {}
                None => panic!("the bus closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait).await.expect("the event on the bus")
}

/// The answer of the login form to `password` for `user`: the page, with no way on.
async fn refused_sign_in(a: &Argus, user: &str, password: &str) -> Reply {
    let r = Browser::default().tokens(a, user, password, API_SCOPE, None).await;
    let page = r.expect_err("the sign-in is refused");
    assert!(page.text.contains("The user name or password is not correct."), "{}", page.text);
    page
}

/// The page, its forms' actions and field names, without the per-request values: what tells two answers apart.
fn shape(r: &Reply) -> (StatusCode, Vec<(String, Vec<String>)>, String) {
    let forms =
        forms(&r.text).into_iter().map(|f| (f.action, f.fields.into_iter().map(|(k, _)| k).collect())).collect();
    let visible = r.text.split("<form").next().unwrap_or_default().to_owned();
    (r.status, forms, visible)
}

/// Tokens issued in the second of a user-wide revocation are covered by it (`iat` has whole seconds): wait it out.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_was_not_me_signs_that_device_out_and_the_new_password_everything_else() {
    let a = Argus::start("").await;
    let mut events = a.up.events.subscribe();
    let mut device_a = Device::sign_in(&a, "alice").await;
    let device_b = Device::sign_in(&a, "alice").await;
    assert_ne!(device_a.did(), device_b.did());
    gate_answers(&a, &device_a.access, StatusCode::OK).await;
    gate_answers(&a, &device_b.access, StatusCode::OK).await;
    let link = not_me_link(&a, &mut device_a, &device_b).await;

    // The link is followed from a mail client: no cookies. GET changes nothing.
    let mut mail = Browser::default();
    let confirm = mail.get(&a, &link).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert_eq!(a.gate_status(&device_b.access).await, StatusCode::OK, "a GET of the link changes nothing");
    let form = form_to(&confirm.text, "/account/not-me");
    assert!(Browser::default().tokens(&a, "alice", PASSWORD, API_SCOPE, None).await.is_ok(), "nor the password");

    // Without its CSRF token the form is refused and changes nothing (the link stays usable).
    let r = mail.submit(&a, form.clone().without("csrf")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.gate_status(&device_b.access).await, StatusCode::OK);

    // Confirmed: the answer is the new-password form, with a ticket and no field for the current password.
    let done = mail.submit(&a, form.clone()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let reset = form_to(&done.text, "/account/password");
    for field in ["notice", "exp", "ticket", "csrf"] {
        assert!(reset.fields.iter().any(|(k, _)| k == field), "{field}: {}", done.text);
    }
    assert!(!done.text.contains("name=\"current\""), "{}", done.text);

    // Device B: its still-unexpired access token is refused at the gate, its refresh token at /token.
    let exp: i64 = support::claim(&device_b.access, "exp").parse().unwrap();
    assert!(exp > now(), "still unexpired");
    gate_answers(&a, &device_b.access, StatusCode::UNAUTHORIZED).await;
    assert!(!refresh_works(&a, &device_b.refresh).await, "device B's refresh token is refused");
    // Until the new password is set, device A keeps working: its access token at the gate, its refresh at /token.
    assert_eq!(a.gate_status(&device_a.access).await, StatusCode::OK);
    assert!(refresh_works(&a, &device_a.refresh).await, "device A's refresh token still works");

    // The link works once: again, by GET or POST, a clear error.
    let again = mail.submit(&a, form.clone()).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.text);
    assert!(again.text.contains("already used"));
    assert_eq!(mail.get(&a, &link).await.status, StatusCode::GONE);
    let tampered = format!("{}0", link);
    assert_eq!(mail.get(&a, &tampered).await.status, StatusCode::BAD_REQUEST);

    // Watch's bus carried Account/not_me for alice and device B.
    let (sub, device) = first_event(&mut events, |e| match &e.kind {
        EventKind::Account(act) if act.activity == Activity::NotMe => {
            Some((e.principal.sub.clone(), act.device_id.clone()))
        }
        _ => None,
    })
    .await;
    let alice = support::claim(&device_a.access, "sub");
    assert_eq!(sub.as_deref(), Some(alice.as_str()));
    assert_eq!(device, Some(device_b.did()));

    // The old password no longer signs in: the login form answers exactly as for a wrong password; watch is told why.
    let old = refused_sign_in(&a, "alice", PASSWORD).await;
    let wrong = refused_sign_in(&a, "alice", "not the password at all").await;
    assert_eq!(shape(&old), shape(&wrong), "the same page, status and form");
    let reason = first_event(&mut events, |e| match &e.kind {
        EventKind::Login(login) if login.outcome != LoginOutcome::Failure(LoginFailure::BadPassword) => {
            Some(login.outcome)
        }
        _ => None,
    })
    .await;
    assert_eq!(reason, LoginOutcome::Failure(LoginFailure::PasswordResetRequired));

    // Nobody sets a password without the ticket, its CSRF token and the confirming browser. Without a ticket the
    // form is the signed-in change: no session, to the sign-in. With a session (device A, and the attacker may hold
    // such a session too), the signed-in change is closed while the reset is pending, old password or not.
    let new = "a brand new passphrase";
    let filled = |f: &Form| f.clone().with("new", new).with("again", new);
    let r = Browser::default().submit(&a, filled(&reset.clone().without("ticket"))).await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account/login"));
    let r = Browser::default().submit(&a, filled(&reset)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "another browser: {}", r.text);
    let r = mail.submit(&a, filled(&reset.clone().without("csrf"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no CSRF token");
    let forged = reset.clone().without("ticket").with("ticket", "AAAA");
    assert_eq!(mail.submit(&a, filled(&forged)).await.status, StatusCode::BAD_REQUEST, "a forged ticket");
    let later = reset.clone().without("exp").with("exp", &(now() + 86_400).to_string());
    assert_eq!(mail.submit(&a, filled(&later)).await.status, StatusCode::BAD_REQUEST, "a longer ticket");
    let page = device_a.browser.get(&a, "/account/password").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    let account = device_a.browser.get(&a, "/account").await;
    let mut change = form_to(&account.text, "/account/logout").without("csrf");
    change.action = "/account/password".into();
    let csrf = form_to(&account.text, "/account/logout").fields.into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    let change = change.with("csrf", &csrf).with("current", PASSWORD).with("new", new).with("again", new);
    assert_eq!(device_a.browser.submit(&a, change).await.status, StatusCode::FORBIDDEN);
    refused_sign_in(&a, "alice", new).await;
    // A refused new password shows the form again and leaves the ticket unused.
    let r = mail.submit(&a, reset.clone().with("new", new).with("again", "something else entirely")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(forms(&r.text).iter().any(|f| f.action == "/account/password"), "{}", r.text);

    // The ticket sets the password, once.
    let r = mail.submit(&a, filled(&reset)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Your password is changed"), "{}", r.text);
    let r = mail
        .submit(&a, reset.clone().with("new", "yet another passphrase").with("again", "yet another passphrase"))
        .await;
    assert_eq!(r.status, StatusCode::GONE, "the second use: {}", r.text);
    refused_sign_in(&a, "alice", "yet another passphrase").await;
    first_event(&mut events, |e| match &e.kind {
        EventKind::Account(act) if act.activity == Activity::PasswordChanged => Some(()),
        _ => None,
    })
    .await;

    // Everything of the user's is revoked: device A's access token at the gate, its refresh token, its session.
    gate_answers(&a, &device_a.access, StatusCode::UNAUTHORIZED).await;
    assert!(!refresh_works(&a, &device_a.refresh).await, "device A's refresh token is refused now");
    let r = device_a.browser.get(&a, "/account").await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account/login"), "its session ended");

    // The new password signs in (tokens from the next second on are outside the revocation); the old one does not.
    next_second().await;
    let t = Browser::default().tokens(&a, "alice", new, API_SCOPE, None).await.unwrap_or_else(|r| panic!("{}", r.text));
    gate_answers(&a, &str_of(&t, "access_token"), StatusCode::OK).await;
    refused_sign_in(&a, "alice", PASSWORD).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_left_unused_waits_for_an_admin() {
    let a = Argus::start("").await;
    let mut device_a = Device::sign_in(&a, "alice").await;
    let device_b = Device::sign_in(&a, "alice").await;
    let link = not_me_link(&a, &mut device_a, &device_b).await;
    let mut mail = Browser::default();
    let confirm = mail.get(&a, &link).await;
    let done = mail.submit(&a, form_to(&confirm.text, "/account/not-me")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    // The user closes the page: the old password stays refused.
    refused_sign_in(&a, "alice", PASSWORD).await;
    refused_sign_in(&a, "alice", PASSWORD).await;

    // An admin sets a password: that ends the reset, and the new password signs in.
    let new = "set by an administrator";
    let r = a.admin("PATCH", "/users/alice", Some(serde_json::json!({ "password": new }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(Browser::default().tokens(&a, "alice", new, API_SCOPE, None).await.is_ok(), "the admin's password works");
    refused_sign_in(&a, "alice", PASSWORD).await;
    // The form of the confirmation is no way back in any more.
    let reset =
        form_to(&done.text, "/account/password").with("new", "the user's own now").with("again", "the user's own now");
    assert_eq!(mail.submit(&a, reset).await.status, StatusCode::GONE);
    a.shutdown().await;
}

/// Set up an authenticator app in `browser`'s session as a user would: the key from the enrolment page, the code
/// computed from it with totp-rs at the real clock.
async fn enrol_totp(a: &Argus, browser: &mut Browser) {
    let page = browser.get(a, "/account/totp").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let start = r#"<code id="totp-secret">"#;
    let from = page.text.find(start).unwrap_or_else(|| panic!("no key: {}", page.text)) + start.len();
    let secret = &page.text[from..from + page.text[from..].find("</code>").unwrap()];
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    let code = totp.generate(u64::try_from(now()).unwrap()).to_string();
    let done = browser.submit(a, form_to(&page.text, "/account/totp").with("code", &code)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("Your authenticator app is set up"), "{}", done.text);
}

/// Whether a new browser signing `user` in with `password` is asked for a code from an authenticator app.
async fn asked_for_totp(a: &Argus, user: &str, password: &str) -> bool {
    match Browser::default().tokens(a, user, password, API_SCOPE, None).await {
        Ok(_) => false,
        Err(page) if page.text.contains(r#"action="/login/totp""#) => true,
        Err(page) => panic!("neither signed in nor asked for a code: {}", page.text),
    }
}

/// "This wasn't me" for device B's notice, from a mail client, then the new password `new` set with its ticket;
/// tokens of the next second are outside the revocation that ends.
async fn not_me_and_new_password(a: &Argus, device_a: &mut Device, device_b: &Device, new: &str) {
    let link = not_me_link(a, device_a, device_b).await;
    let mut mail = Browser::default();
    let confirm = mail.get(a, &link).await;
    let done = mail.submit(a, form_to(&confirm.text, "/account/not-me")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let reset = form_to(&done.text, "/account/password").with("new", new).with("again", new);
    let r = mail.submit(a, reset).await;
    assert!(r.text.contains("Your password is changed"), "{}", r.text);
    next_second().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_was_not_me_removes_the_authenticator_app_set_up_on_that_device() {
    let a = Argus::start("").await;
    let mut events = a.up.events.subscribe();
    let mut device_a = Device::sign_in(&a, "alice").await;
    let mut device_b = Device::sign_in(&a, "alice").await;
    // Whoever signed in on B sets up their own authenticator app: from now on every sign-in needs its codes.
    enrol_totp(&a, &mut device_b.browser).await;
    assert!(asked_for_totp(&a, "alice", PASSWORD).await, "the app from B is a second factor");

    let new = "a brand new passphrase";
    not_me_and_new_password(&a, &mut device_a, &device_b, new).await;
    // The user, with the new password and without B's app, signs in: no code is asked, B's app is gone.
    assert!(!asked_for_totp(&a, "alice", new).await, "the app set up on B no longer signs in");
    let (detail, device) = first_event(&mut events, |e| match &e.kind {
        EventKind::Account(act) if act.activity == Activity::FactorRemoved => {
            Some((act.detail.clone(), act.device_id.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!((detail.as_deref(), device), (Some("totp"), Some(device_b.did())));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_was_not_me_keeps_the_authenticator_app_set_up_elsewhere() {
    let a = Argus::start("").await;
    let mut device_a = Device::sign_in(&a, "alice").await;
    let device_b = Device::sign_in(&a, "alice").await;
    // The user's own app, set up on A: a report about B leaves it, and the new password still needs its code.
    enrol_totp(&a, &mut device_a.browser).await;
    let new = "a brand new passphrase";
    not_me_and_new_password(&a, &mut device_a, &device_b, new).await;
    assert!(asked_for_totp(&a, "alice", new).await, "the app set up on A stays");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_lists_and_revokes() {
    let a = Argus::start("").await;
    let mut device = Device::sign_in(&a, "alice").await;
    let other = Device::sign_in(&a, "alice").await;

    let page = device.browser.get(&a, "/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(page.text.contains("Signed in as <strong>alice</strong>"));
    assert_eq!(page.text.matches("<div class=\"item device\">").count(), 2, "both devices");
    assert_eq!(page.text.matches("this device</span>").count(), 1);
    assert!(page.text.contains("<strong>Argus demo app</strong>"), "the app grant");
    assert!(page.text.contains("<li>Read your accounts</li>"), "its scopes in plain words");
    assert!(!page.text.contains("your Argus account"), "the account page itself is not an app");
    let unread = page.text.matches("<div class=\"item notice unread\">").count();
    assert!(unread >= 2, "the first sign-in and the new device, unread: {}", page.text);
    assert!(page.text.contains("/account/not-me?t="), "new-device notices carry their link on the page too");
    let page = device.browser.get(&a, "/account").await;
    assert_eq!(page.text.matches("<div class=\"item notice unread\">").count(), 0, "viewing marked them read");
    for path in ["/account/password", "/account/totp", "/account/passkeys"] {
        assert!(page.text.contains(&format!("href=\"{path}\"")), "{path}");
    }

    // Not signed in: to the account sign-in, which comes back to the page.
    let mut stranger = Browser::default();
    let r = stranger.get(&a, "/account").await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account/login"));
    let login = stranger.get(&a, "/account/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let form = form_to(&login.text, "/login").with("username", "bob").with("password", PASSWORD);
    let back = stranger.submit(&a, form).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text);
    assert!(back.header("location").starts_with(&format!("{}/account/callback?", a.up.issuer_url)));
    let r = stranger.get(&a, back.header("location")).await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account"));
    let bobs = stranger.get(&a, "/account").await;
    assert!(bobs.text.contains("Signed in as <strong>bob</strong>"), "{}", bobs.text);

    // The JSON API: a token for the issuer with scope `account`.
    let token = device.account_token(&a, "openid account").await;
    let devices = api(&a, "GET", "/devices", Some(&token)).await;
    assert_eq!(devices.status, StatusCode::OK, "{}", devices.text);
    let list = devices.body["devices"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let this = list.iter().find(|d| d["this_device"] == true).unwrap();
    assert_eq!(this["device_id"], device.did().as_str());
    assert!(!this["sessions"].as_array().unwrap().is_empty(), "with its live session");
    let apps = api(&a, "GET", "/apps", Some(&token)).await;
    assert_eq!(apps.body["apps"][0]["client_id"], "demo-app", "{}", apps.text);
    assert!(apps.body["apps"][0]["last_used_at"].is_string(), "token issuance is recorded: {}", apps.text);
    let notices = api(&a, "GET", "/notices", Some(&token)).await;
    let id = str_of(&notices.body["notices"][0], "id");
    let r = api(&a, "POST", &format!("/notices/{id}/read"), Some(&token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api(&a, "POST", "/notices/nope/read", Some(&token)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.body["type"], "urn:argus:problem:not-found");
    // Refused: no token, a token without the scope (403 insufficient_scope), a token for the API (not the issuer).
    let r = api(&a, "GET", "/devices", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Bearer"));
    let without = device.account_token(&a, "openid").await;
    let r = api(&a, "GET", "/devices", Some(&without)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.header("www-authenticate").contains("error=\"insufficient_scope\""), "{}", r.header("www-authenticate"));
    assert!(r.header("www-authenticate").contains("scope=\"account\""));
    assert_eq!(r.body["type"], "urn:argus:problem:insufficient-scope");
    let r = api(&a, "GET", "/devices", Some(&device.access)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a token for the API is no key to the account");
    assert!(r.header("www-authenticate").contains("invalid_token"));

    // The API signs out the other device.
    let r = api(&a, "DELETE", &format!("/devices/{}", other.did()), Some(&token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    gate_answers(&a, &other.access, StatusCode::UNAUTHORIZED).await;
    assert_eq!(api(&a, "DELETE", "/devices/not-mine", Some(&token)).await.status, StatusCode::NOT_FOUND);

    // A form without its CSRF token: 400, and nothing changed.
    let page = device.browser.get(&a, "/account").await;
    let revoke = form_to(&page.text, "/account/apps/revoke");
    let r = device.browser.submit(&a, revoke.clone().without("csrf")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let forged = revoke.clone().without("csrf").with("csrf", "x");
    assert_eq!(device.browser.submit(&a, forged).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.gate_status(&device.access).await, StatusCode::OK);
    assert!(device.browser.get(&a, "/account").await.text.contains("<strong>Argus demo app</strong>"));

    // Revoking the app's grant: its tokens are refused at the gate, its refresh tokens at /token.
    let r = device.browser.submit(&a, revoke).await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account?done=app_revoked"));
    gate_answers(&a, &device.access, StatusCode::UNAUTHORIZED).await;
    assert!(!refresh_works(&a, &device.refresh).await);
    let page = device.browser.get(&a, "/account?done=app_revoked").await;
    assert!(
        page.text.contains("The app&#39;s access was removed.") || page.text.contains("The app's access was removed.")
    );
    assert!(!page.text.contains("<div class=\"item app\">"), "no app left");
    // The account token was the demo app's too.
    assert_eq!(api(&a, "GET", "/apps", Some(&token)).await.status, StatusCode::UNAUTHORIZED);

    // Signing out this device signs this browser out.
    let page = device.browser.get(&a, "/account").await;
    let this = page.text.split("<div class=\"item device\">").find(|d| d.contains("this device</span>")).unwrap();
    let r = device.browser.submit(&a, form_to(this, "/account/devices/revoke")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = device.browser.get(&a, "/account").await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account/login"));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password() {
    let a = Argus::start("").await;
    let mut here = Device::sign_in(&a, "bob").await;
    let mut elsewhere = Device::sign_in(&a, "bob").await;
    let page = here.browser.get(&a, "/account/password").await;
    assert_eq!(page.status, StatusCode::OK);
    let form = || form_to(&page.text, "/account/password");
    let new = "correct horse battery staple 2";

    let r = here.browser.submit(&a, form().with("current", "wrong").with("new", new).with("again", new)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("current password is not correct"));
    let r = here.browser.submit(&a, form().with("current", PASSWORD).with("new", new).with("again", "other")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = here.browser.submit(&a, form().with("current", PASSWORD).with("new", "short").with("again", "short")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("at least 12 characters"));
    let r = here
        .browser
        .submit(&a, form().without("csrf").with("current", PASSWORD).with("new", new).with("again", new))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no CSRF token, no change");
    assert!(Browser::default().tokens(&a, "bob", PASSWORD, API_SCOPE, None).await.is_ok(), "nothing changed");

    let r = here.browser.submit(&a, form().with("current", PASSWORD).with("new", new).with("again", new)).await;
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/account?done=password_changed"));
    // This session stays; the other one ended. Tokens already issued to the app are not revoked.
    assert_eq!(here.browser.get(&a, "/account").await.status, StatusCode::OK);
    let r = elsewhere.browser.get(&a, "/account").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the other session ended");
    assert_eq!(a.gate_status(&elsewhere.access).await, StatusCode::OK);

    // The old password no longer signs in; the new one does.
    let old = Browser::default().tokens(&a, "bob", PASSWORD, API_SCOPE, None).await;
    let page = old.expect_err("the old password is refused");
    assert!(page.text.contains("The user name or password is not correct."), "{}", page.text);
    assert!(Browser::default().tokens(&a, "bob", new, API_SCOPE, None).await.is_ok());
    // Account/password_changed was told: a notice on the page.
    let page = here.browser.get(&a, "/account").await;
    assert!(page.text.contains("Your password was changed"), "{}", page.text);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_dpop_bound_tokens_with_a_proof_for_its_url() {
    let a = Argus::start("").await;
    let mut device = Device::sign_in(&a, "alice").await;
    let key = DpopKey::es256();
    let issuer = a.up.issuer_url.clone();
    let t = device.browser.tokens_with(&a, "", "", "openid account", Some(&issuer), Some(&key)).await;
    let t = t.unwrap_or_else(|r| panic!("{}", r.text));
    assert_eq!(t["token_type"], "DPoP");
    let token = str_of(&t, "access_token");
    let url = format!("{issuer}/account/api/devices");
    let call = |proof: String| {
        let (a, url, authorization) = (&a, url.clone(), format!("DPoP {token}"));
        async move { a.call("GET", &url, &[("authorization", &authorization), ("dpop", &proof)], None).await }
    };
    let r = call(key.proof("GET", &url, now()).ath_for(&token).build()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["devices"][0]["this_device"], true);
    // A proof for another URL, or of another key, or the bound token as a Bearer token: refused.
    let r = call(key.proof("GET", &format!("{issuer}/account/api/apps"), now()).ath_for(&token).build()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").contains("invalid_dpop_proof"), "{}", r.header("www-authenticate"));
    let r = call(DpopKey::es256().proof("GET", &url, now()).ath_for(&token).build()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api(&a, "GET", "/devices", Some(&token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a bound token is no Bearer token");
    assert_eq!(r.body["type"], "urn:argus:problem:invalid-token");
    a.shutdown().await;
}
