//! Step-up at the issuer (OIDC Core §3.1.2.1 `max_age` and `acr_values`, RFC 9470 §4): a sign-in too old or too
//! weak for the request means the login form again (or `login_required`), a new sign-in renews the session in
//! place, and every token states the sign-in it came from (`auth_time`, `acr`), refreshed ones included.

use std::time::Duration;

use argus_model::Clock;
use argus_oauth::{ACR_PASSWORD, IssuerStore, SessionRecord, hash_secret};

use crate::common::{Browser, Issuer, PASSWORD, RS, Resp, SECRET, VERIFIER, authorize_path, basic, form, jwt_claims};

const ALICE: [(&str, &str); 2] = [("username", "alice"), ("password", PASSWORD)];

fn is_login_form(r: &Resp) -> bool {
    r.status == 200 && r.body.contains(r#"<form method="post" action="/login">"#)
}

fn is_consent_page(r: &Resp) -> bool {
    r.status == 200 && r.body.contains(r#"<form method="post" action="/consent">"#)
}

/// Sign alice in at `path` in browser `b` through whatever pages come, and return the code.
async fn code_in(i: &Issuer, b: &mut Browser, path: &str) -> String {
    let mut page = b.get(i, path).await;
    if is_login_form(&page) {
        page = b.submit(i, &page, "/login", &ALICE).await;
    }
    if is_consent_page(&page) {
        page = b.submit(i, &page, "/consent", &[("decision", "allow")]).await;
    }
    assert_eq!(page.status, 303, "{}", page.body);
    page.location_params().remove("code").expect("a code")
}

/// Redeem `code` and return the token response.
async fn tokens(i: &Issuer, code: &str) -> serde_json::Value {
    let r = i.redeem(code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// `(auth_time, acr, sid)` of a JWT's claims.
fn sign_in_of(jwt: &serde_json::Value) -> (i64, String, String) {
    let c = jwt_claims(jwt.as_str().expect("a JWT"));
    (c["auth_time"].as_i64().expect("auth_time"), c["acr"].as_str().expect("acr").to_owned(), c["sid"].to_string())
}

async fn introspect(i: &Issuer, token: &str) -> serde_json::Value {
    let r = i.post_form_with("/introspect", &[("authorization", &basic(RS, SECRET))], &[("token", token)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[tokio::test]
async fn max_age_asks_for_a_new_sign_in_that_renews_the_session_and_refresh_keeps_the_old_one() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let first = tokens(&i, &code_in(&i, &mut b, &authorize_path(&[])).await).await;
    let signed_in = i.clock.now().as_secs();
    let (at, acr, sid) = sign_in_of(&first["access_token"]);
    assert_eq!((at, acr.as_str()), (signed_in, ACR_PASSWORD));
    assert_eq!(sign_in_of(&first["id_token"]), (at, acr.clone(), sid.clone()), "the id_token says the same");

    i.clock.advance(Duration::from_secs(61));
    // Young enough: straight back with a code, no page.
    let young = b.get(&i, &authorize_path(&[("max_age", "61")])).await;
    assert_eq!(young.status, 303, "{}", young.body);
    assert!(young.location_params().contains_key("code"));
    // Too old: the login form, although the session is live; without interaction, login_required.
    let none = b.get(&i, &authorize_path(&[("max_age", "60"), ("prompt", "none")])).await;
    let p = none.location_params();
    assert_eq!((p["error"].as_str(), p["state"].as_str()), ("login_required", "st-1"));
    assert!(!p.contains_key("code"));
    let login = b.get(&i, &authorize_path(&[("max_age", "60")])).await;
    assert!(is_login_form(&login), "{}", login.body);

    // Signing in again (the consent stands) renews the same session: same sid, a new auth_time.
    let old_cookie = b.cookies["argus_session"].clone();
    let done = b.submit(&i, &login, "/login", &ALICE).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_ne!(b.cookies["argus_session"], old_cookie, "a new sign-in, a new session cookie");
    let second = tokens(&i, &done.location_params()["code"]).await;
    let renewed = (signed_in + 61, ACR_PASSWORD.to_owned(), sid.clone());
    assert_eq!(sign_in_of(&second["access_token"]), renewed);
    assert_eq!(sign_in_of(&second["id_token"]), renewed);
    let old_session = format!("argus_session={old_cookie}");
    let old = i.request("GET", &authorize_path(&[]), &[("cookie", &old_session)], None).await;
    assert!(is_login_form(&old), "the cookie of before the sign-in no longer works");

    // The renewed session now meets max_age=60; max_age=0 never accepts an earlier sign-in.
    assert_eq!(b.get(&i, &authorize_path(&[("max_age", "60")])).await.status, 303);
    assert!(is_login_form(&b.get(&i, &authorize_path(&[("max_age", "0")])).await));

    // A refresh is no new sign-in: the first family's tokens keep the first sign-in.
    let refreshed = i.refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refreshed = refreshed.json();
    assert_eq!(sign_in_of(&refreshed["access_token"]), (at, acr.clone(), sid));
    // Introspection tells both, for access and refresh tokens.
    for token in [&refreshed["access_token"], &refreshed["refresh_token"]] {
        let answer = introspect(&i, token.as_str().unwrap()).await;
        assert_eq!((answer["auth_time"].as_i64(), answer["acr"].as_str()), (Some(at), Some(ACR_PASSWORD)), "{answer}");
    }
}

#[tokio::test]
async fn acr_values_ask_for_a_level_the_session_lacks_and_unknown_values_are_voluntary() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    code_in(&i, &mut b, &authorize_path(&[])).await;
    // The session's sign-in reached a level this issuer does not rank (as if recorded by another version).
    let cookie = hash_secret(&b.cookies["argus_session"]);
    let session = i.store.session_by_cookie(&cookie, i.clock.now()).await.unwrap().unwrap();
    let weak = SessionRecord { acr: "urn:example:weak".into(), ..session.clone() };
    assert!(i.store.renew_session(&weak, i.clock.now()).await.unwrap());

    // Asking nothing: the session serves, and the token says what its sign-in was.
    let as_is = tokens(&i, &code_in(&i, &mut b, &authorize_path(&[])).await).await;
    assert_eq!(sign_in_of(&as_is["access_token"]).1, "urn:example:weak");

    // Asking for the password level: sign in again (or login_required without interaction).
    let pwd = [("acr_values", ACR_PASSWORD)];
    let none = b.get(&i, &authorize_path(&[pwd[0], ("prompt", "none")])).await;
    assert_eq!(none.location_params()["error"], "login_required");
    let login = b.get(&i, &authorize_path(&pwd)).await;
    assert!(is_login_form(&login), "{}", login.body);
    let done = b.submit(&i, &login, "/login", &ALICE).await;
    let stepped = tokens(&i, &done.location_params()["code"]).await;
    assert_eq!(sign_in_of(&stepped["access_token"]).1, ACR_PASSWORD);
    assert_eq!(sign_in_of(&stepped["id_token"]).1, ACR_PASSWORD);

    // Values this issuer cannot deliver are voluntary: served with the best there is, and said so in `acr`. In a
    // list, the first value the sign-in satisfies is the one stated.
    for acr_values in ["urn:example:hardware-key", "urn:example:hardware-key urn:argus:acr:pwd"] {
        let r = b.get(&i, &authorize_path(&[("acr_values", acr_values)])).await;
        assert_eq!(r.status, 303, "{acr_values}: {}", r.body);
        let t = tokens(&i, &r.location_params()["code"]).await;
        assert_eq!(sign_in_of(&t["access_token"]).1, ACR_PASSWORD, "{acr_values}");
    }
    let bad = b.get(&i, &authorize_path(&[("acr_values", "a\"b")])).await;
    assert_eq!(bad.location_params()["error"], "invalid_request");
    let bad = b.get(&i, &authorize_path(&[("max_age", "ten")])).await;
    assert_eq!(bad.location_params()["error"], "invalid_request");
}

#[tokio::test]
async fn a_consent_page_left_open_past_max_age_asks_for_the_sign_in_again() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let login = b.get(&i, &authorize_path(&[("max_age", "60")])).await;
    let consent = b.submit(&i, &login, "/login", &ALICE).await;
    assert!(is_consent_page(&consent), "{}", consent.body);
    i.clock.advance(Duration::from_secs(61));
    let again = b.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    assert!(is_login_form(&again), "{}", again.body);
    // The same request goes on after the new sign-in; nothing was granted in between.
    let consent = b.submit(&i, &again, "/login", &ALICE).await;
    assert!(is_consent_page(&consent), "{}", consent.body);
    let done = b.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    let t = tokens(&i, &done.location_params()["code"]).await;
    assert_eq!(sign_in_of(&t["id_token"]).0, i.clock.now().as_secs());
}

#[tokio::test]
async fn a_pushed_request_keeps_its_max_age_and_discovery_names_the_levels() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    code_in(&i, &mut b, &authorize_path(&[])).await;
    i.clock.advance(Duration::from_secs(61));
    let pairs = [
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", crate::common::REDIRECT),
        ("scope", "openid profile accounts:read"),
        ("code_challenge", crate::common::CHALLENGE),
        ("code_challenge_method", "S256"),
        ("max_age", "60"),
        ("acr_values", ACR_PASSWORD),
    ];
    let pushed = i.post_form("/par", &pairs).await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    let uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    let page = b.get(&i, &format!("/authorize?{}", form(&[("client_id", "demo-app"), ("request_uri", &uri)]))).await;
    assert!(is_login_form(&page), "the pushed max_age holds: {}", page.body);

    let mut bad = pairs.to_vec();
    bad.retain(|(k, _)| *k != "max_age");
    bad.push(("max_age", "-1"));
    let refused = i.post_form("/par", &bad).await;
    assert_eq!((refused.status, refused.json()["error"].as_str()), (400, Some("invalid_request")));

    let m = i.get("/.well-known/openid-configuration").await.json();
    assert_eq!(m["acr_values_supported"], serde_json::json!([ACR_PASSWORD, argus_oauth::ACR_MFA]));
    let claims = m["claims_supported"].as_array().unwrap();
    assert!(["acr", "auth_time"].iter().all(|c| claims.iter().any(|x| x == c)), "{claims:?}");
}
