//! The TOTP second factor: enrolment (secret, `otpauth://` URI, QR code, confirmation, recovery codes shown once),
//! sign-in with password then code giving `acr` mfa and `amr` [pwd, otp, mfa], refusal of a used code, single-use
//! recovery codes, step-up from a password session with `acr_values`, and the throttle on wrong codes. Codes are
//! computed with totp-rs from the secret the enrolment page shows, as an authenticator app would.

use std::time::Duration;

use argus_model::Clock;
use argus_oauth::{ACR_MFA, ACR_PASSWORD};
use totp_rs::{Algorithm, Builder, Secret};

use crate::common::{Browser, Issuer, PASSWORD, Resp, VERIFIER, authorize_path, jwt_claims};

const SECOND_FACTOR_FORM: &str = r#"<form method="post" action="/login/totp">"#;
const CODE_FAILED: &str = "That code is not correct, or was already used.";

fn login(user: &str) -> [(&str, &str); 2] {
    [("username", user), ("password", PASSWORD)]
}

fn is_login_form(r: &Resp) -> bool {
    r.status == 200 && r.body.contains(r#"<form method="post" action="/login">"#)
}

fn is_second_factor_page(r: &Resp) -> bool {
    r.body.contains(SECOND_FACTOR_FORM)
}

/// Follow the consent page if it comes, and return the code of the final redirect.
async fn code_after(i: &Issuer, b: &mut Browser, mut page: Resp) -> String {
    if page.status == 200 && page.body.contains(r#"action="/consent""#) {
        page = b.submit(i, &page, "/consent", &[("decision", "allow")]).await;
    }
    assert_eq!(page.status, 303, "{}", page.body);
    page.location_params().remove("code").expect("a code")
}

/// Sign `user` in with the password alone (no second factor yet) in `b`, and return the code.
pub(crate) async fn password_sign_in(i: &Issuer, b: &mut Browser, user: &str) -> String {
    let page = b.get(i, &authorize_path(&[])).await;
    assert!(is_login_form(&page), "{}", page.body);
    let done = b.submit(i, &page, "/login", &login(user)).await;
    code_after(i, b, done).await
}

async fn tokens(i: &Issuer, code: &str) -> serde_json::Value {
    let r = i.redeem(code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The TOTP code of `secret` (base32) at the issuer's clock, `offset_steps` steps away.
fn code_of(i: &Issuer, secret: &str, offset_steps: i64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    let at = i.clock.now().as_secs() + offset_steps * 30;
    totp.generate(u64::try_from(at).unwrap()).to_string()
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).unwrap_or_else(|| panic!("{start} not in {body}")) + start.len();
    let len = body[from..].find(end).unwrap();
    &body[from..from + len]
}

/// Enrol the user signed in in `b`: the secret (base32) and the recovery codes. The clock then moves one step on,
/// so the confirmation's code is the previous step's.
pub(crate) async fn enrol(i: &Issuer, b: &mut Browser, user: &str) -> (String, Vec<String>) {
    let page = b.get(i, "/account/totp").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = between(&page.body, r#"<code id="totp-secret">"#, "</code>").to_owned();
    assert!(page.body.contains("<svg") && !page.body.contains("<?xml"), "an inline QR code");
    let uri = format!("otpauth://totp/Argus:{user}?secret={secret}&#38;issuer=Argus");
    assert!(page.body.contains(&uri), "{}", page.body);
    let done = b.submit(i, &page, "/account/totp", &[("code", &code_of(i, &secret, 0))]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes: Vec<String> =
        done.body.split("<li><code>").skip(1).map(|s| s.split("</code>").next().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10, "{}", done.body);
    i.clock.advance(Duration::from_secs(30));
    (secret, codes)
}

/// A new browser: the authorization request, the password, and the second-factor page it leads to.
async fn to_second_factor(i: &Issuer, b: &mut Browser, user: &str, overrides: &[(&str, &str)]) -> Resp {
    let page = b.get(i, &authorize_path(overrides)).await;
    assert!(is_login_form(&page), "{}", page.body);
    let page = b.submit(i, &page, "/login", &login(user)).await;
    assert!(page.status == 200 && is_second_factor_page(&page), "{}", page.body);
    assert!(!b.cookies.contains_key("argus_session"), "no session before the second factor");
    page
}

fn assert_mfa(token: &serde_json::Value) {
    let claims = jwt_claims(token.as_str().expect("a JWT"));
    assert_eq!(claims["acr"], ACR_MFA, "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
}

#[tokio::test]
async fn enrolment_then_password_and_code_give_mfa_and_a_used_code_is_refused() {
    let i = Issuer::start().await;
    let mut nobody = Browser::default();
    assert_eq!(nobody.get(&i, "/account/totp").await.status, 401, "enrolment needs a session");
    let mut b = Browser::default();
    let first = tokens(&i, &password_sign_in(&i, &mut b, "alice").await).await;
    let claims = jwt_claims(first["access_token"].as_str().unwrap());
    assert_eq!((claims["acr"].as_str(), &claims["amr"]), (Some(ACR_PASSWORD), &serde_json::json!(["pwd"])));

    // A wrong code or a forged form confirms nothing; the page shows the same secret again.
    let page = b.get(&i, "/account/totp").await;
    let secret = between(&page.body, r#"<code id="totp-secret">"#, "</code>").to_owned();
    let wrong = b.submit(&i, &page, "/account/totp", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains(CODE_FAILED) && wrong.body.contains(&secret), "{}", wrong.body);
    let code = code_of(&i, &secret, 0);
    let forged = b.post(&i, "/account/totp", &[("csrf", "x"), ("code", &code)]).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    let (secret, _codes) = enrol(&i, &mut b, "alice").await;
    assert_eq!(b.get(&i, "/account/totp").await.status, 409, "a confirmed credential is not replaced");

    // The confirmation's code (one step back, still inside the window) was used: refused.
    let mut other = Browser::default();
    let page = to_second_factor(&i, &mut other, "alice", &[]).await;
    let replay = other.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, -1))]).await;
    assert_eq!(replay.status, 400);
    assert!(is_second_factor_page(&replay) && replay.body.contains(CODE_FAILED), "{}", replay.body);
    let current = code_of(&i, &secret, 0);
    let done = other.submit(&i, &replay, "/login/totp", &[("code", &current)]).await;
    let t = tokens(&i, &code_after(&i, &mut other, done).await).await;
    assert_mfa(&t["access_token"]);
    assert_mfa(&t["id_token"]);
    let auth_time = jwt_claims(t["id_token"].as_str().unwrap())["auth_time"].as_i64();
    assert_eq!(auth_time, Some(i.clock.now().as_secs()));

    // The same code again, in a third browser: refused.
    let mut third = Browser::default();
    let page = to_second_factor(&i, &mut third, "alice", &[]).await;
    let again = third.submit(&i, &page, "/login/totp", &[("code", &current)]).await;
    assert!(again.status == 400 && again.body.contains(CODE_FAILED), "{}", again.body);

    let m = i.get("/.well-known/openid-configuration").await.json();
    assert_eq!(m["acr_values_supported"], serde_json::json!([ACR_PASSWORD, ACR_MFA]));
    assert!(m["claims_supported"].as_array().unwrap().iter().any(|c| c == "amr"));
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    password_sign_in(&i, &mut b, "alice").await;
    let (_, codes) = enrol(&i, &mut b, "alice").await;
    let mut one = Browser::default();
    let page = to_second_factor(&i, &mut one, "alice", &[]).await;
    // As a user might type it: upper case, spaces instead of dashes.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let done = one.submit(&i, &page, "/login/totp", &[("code", &typed)]).await;
    assert_mfa(&tokens(&i, &code_after(&i, &mut one, done).await).await["access_token"]);

    let mut two = Browser::default();
    let page = to_second_factor(&i, &mut two, "alice", &[]).await;
    let again = two.submit(&i, &page, "/login/totp", &[("code", &codes[3])]).await;
    assert!(again.status == 400 && again.body.contains(CODE_FAILED), "{}", again.body);
    // Another of the codes still works; bob's sign-in cannot use alice's codes (he has no second factor at all).
    let done = two.submit(&i, &again, "/login/totp", &[("code", &codes[4])]).await;
    code_after(&i, &mut two, done).await;
}

#[tokio::test]
async fn acr_values_mfa_steps_a_password_session_up_and_is_voluntary_without_a_second_factor() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let first = tokens(&i, &password_sign_in(&i, &mut b, "alice").await).await;
    let sid = jwt_claims(first["access_token"].as_str().unwrap())["sid"].clone();
    let (secret, _) = enrol(&i, &mut b, "alice").await;

    // The session is a password sign-in: asked for mfa, the user signs in again, with the code this time.
    let mfa = [("acr_values", ACR_MFA)];
    let none = b.get(&i, &authorize_path(&[mfa[0], ("prompt", "none")])).await;
    assert_eq!(none.location_params()["error"], "login_required");
    let page = b.get(&i, &authorize_path(&mfa)).await;
    assert!(is_login_form(&page), "a live password session does not meet mfa: {}", page.body);
    let page = b.submit(&i, &page, "/login", &login("alice")).await;
    assert!(is_second_factor_page(&page), "{}", page.body);
    let done = b.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, 0))]).await;
    let stepped = tokens(&i, &code_after(&i, &mut b, done).await).await;
    assert_mfa(&stepped["access_token"]);
    assert_eq!(jwt_claims(stepped["access_token"].as_str().unwrap())["sid"], sid, "the session was renewed");
    // Now the session meets mfa: straight back with a code.
    let again = b.get(&i, &authorize_path(&mfa)).await;
    assert_mfa(&tokens(&i, &code_after(&i, &mut b, again).await).await["access_token"]);

    // bob has no second factor: mfa is voluntary, his password session serves and the token says pwd.
    let mut bob = Browser::default();
    password_sign_in(&i, &mut bob, "bob").await;
    let r = bob.get(&i, &authorize_path(&mfa)).await;
    let t = tokens(&i, &code_after(&i, &mut bob, r).await).await;
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap())["acr"], ACR_PASSWORD);
    // Signing in afresh with mfa asked (a new browser, so consent is given on the way) ends at pwd too.
    let mut fresh = Browser::default();
    let page = fresh.get(&i, &authorize_path(&mfa)).await;
    let page = fresh.submit(&i, &page, "/login", &login("bob")).await;
    let t = tokens(&i, &code_after(&i, &mut fresh, page).await).await;
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], ACR_PASSWORD);
}

#[tokio::test]
async fn wrong_codes_are_throttled_and_the_step_is_bound_to_the_password() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    password_sign_in(&i, &mut b, "alice").await;
    let (secret, _) = enrol(&i, &mut b, "alice").await;

    // A second-factor form for a request whose password was never given: refused.
    let mut skip = Browser::default();
    let page = skip.get(&i, &authorize_path(&[])).await;
    let r = skip.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, 0))]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!is_second_factor_page(&r) && !skip.cookies.contains_key("argus_session"));

    let mut guesser = Browser::default();
    let mut page = to_second_factor(&i, &mut guesser, "alice", &[]).await;
    for n in 0..4 {
        page = guesser.submit(&i, &page, "/login/totp", &[("code", &format!("00000{n}"))]).await;
        assert!(page.status == 400 && is_second_factor_page(&page), "{n}: {}", page.body);
    }
    let last = guesser.submit(&i, &page, "/login/totp", &[("code", "999999")]).await;
    assert_eq!(last.status, 429, "{}", last.body);
    // The request has ended: even the right code does nothing now.
    let late = guesser.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, 0))]).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(!guesser.cookies.contains_key("argus_session"));
    // Signing in again starts afresh.
    let page = to_second_factor(&i, &mut guesser, "alice", &[]).await;
    let done = guesser.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, 0))]).await;
    code_after(&i, &mut guesser, done).await;
}

/// The sign-in outcomes watch saw so far, in order.
async fn login_outcomes(sub: &mut argus_bus::Subscriber<argus_model::Event>) -> Vec<argus_model::LoginOutcome> {
    crate::common::events(sub)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            argus_model::EventKind::Login(l) => Some(l.outcome),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_sign_in_succeeds_for_watch_only_after_the_second_factor_and_a_wrong_code_is_a_failure() {
    use argus_model::{LoginFailure, LoginOutcome};
    let i = Issuer::start().await;
    let mut b = Browser::default();
    password_sign_in(&i, &mut b, "alice").await;
    let (secret, _) = enrol(&i, &mut b, "alice").await;
    let mut sub = i.events.subscribe();

    let mut browser = Browser::default();
    let page = to_second_factor(&i, &mut browser, "alice", &[]).await;
    assert_eq!(login_outcomes(&mut sub).await, [], "a right password alone is no sign-in yet");
    let page = browser.submit(&i, &page, "/login/totp", &[("code", "000000")]).await;
    assert_eq!(page.status, 400);
    assert_eq!(login_outcomes(&mut sub).await, [LoginOutcome::Failure(LoginFailure::SecondFactor)]);
    let done = browser.submit(&i, &page, "/login/totp", &[("code", &code_of(&i, &secret, 0))]).await;
    assert_eq!(login_outcomes(&mut sub).await, [LoginOutcome::Success], "one success, once complete");
    code_after(&i, &mut browser, done).await;
}
