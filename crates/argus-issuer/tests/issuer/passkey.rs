//! Passkeys over HTTP, without a browser (tests/browser proves the ceremonies in Chromium): a user with a passkey is
//! asked for it after the password and offered no TOTP form they do not have; answers that are not a valid assertion
//! are refused and counted like wrong codes, and the request ends after too many; the step is bound to the browser
//! and form of the request; a passkey counts for step-up (`best_level`); the account page is for the signed-in user
//! only, its POSTs need its CSRF token, and removing a passkey works and is told to watch.
//!
//! The issuer here is at http://127.0.0.1:PORT: WebAuthn has no relying party on an IP address, so the ceremonies
//! themselves are refused ("not available"), which these tests check too. Passkeys are put in the store directly.

use argus_model::{Activity, Clock, EventKind};
use argus_oauth::{ACR_MFA, PasskeyRecord, PasskeyStore};

use crate::common::{Browser, Issuer, PASSWORD, Resp, authorize_path, hidden_inputs};

const NOT_ACCEPTED: &str = "That passkey was not accepted.";

async fn give_passkey(i: &Issuer, user: &str, id: &str) {
    let record = PasskeyRecord {
        id: id.to_owned(),
        sub: i.users[user].clone(),
        credential_id: format!("cred-{id}"),
        passkey_json: "{}".to_owned(),
        name: format!("Key {id}"),
        created_at: i.clock.now(),
        last_used_at: None,
    };
    assert!(i.store.add_passkey(&record).await.unwrap());
}

async fn to_second_factor(i: &Issuer, b: &mut Browser, user: &str, extra: &[(&str, &str)]) -> Resp {
    let page = b.get(i, &authorize_path(extra)).await;
    let page = b.submit(i, &page, "/login", &[("username", user), ("password", PASSWORD)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

fn field(page: &Resp, name: &str) -> String {
    hidden_inputs(&page.body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or_default()
}

async fn finish(i: &Issuer, b: &mut Browser, page: &Resp, credential: &str) -> Resp {
    let (request, csrf) = (field(page, "request"), field(page, "csrf"));
    b.post(i, "/login/passkey/finish", &[("request", &request), ("csrf", &csrf), ("credential", credential)]).await
}

#[tokio::test]
async fn a_passkey_user_is_asked_for_it_and_wrong_answers_are_counted() {
    let i = Issuer::start().await;
    give_passkey(&i, "alice", "p1").await;
    let mut b = Browser::default();
    let page = to_second_factor(&i, &mut b, "alice", &[]).await;
    assert!(page.body.contains(r#"id="passkey-sign-in""#), "{}", page.body);
    assert!(!page.body.contains(r#"action="/login/totp""#), "alice has no TOTP");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!b.cookies.contains_key("argus_session"), "nothing is signed in yet");

    // The options: none on an IP address.
    let (request, csrf) = (field(&page, "request"), field(&page, "csrf"));
    let start = b.post(&i, "/login/passkey/start", &[("request", &request), ("csrf", &csrf)]).await;
    assert_eq!(start.status, 404, "{}", start.body);
    assert!(start.json()["error"].as_str().unwrap().contains("not available"));
    let forged = b.post(&i, "/login/passkey/start", &[("request", &request), ("csrf", "forged")]).await;
    assert_eq!(forged.status, 400, "{}", forged.body);

    // Another browser cannot answer for this request.
    let mut other = Browser::default();
    let r = finish(&i, &mut other, &page, "{}").await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains(NOT_ACCEPTED), "refused as a foreign form, not counted: {}", r.body);

    for (n, answer) in ["", "{}", "not json", r#"{"id":"x","rawId":"eA","type":"public-key"}"#].iter().enumerate() {
        let r = finish(&i, &mut b, &page, answer).await;
        assert_eq!(r.status, 400, "{n}: {}", r.body);
        assert!(r.body.contains(NOT_ACCEPTED) && r.body.contains(r#"id="passkey-sign-in""#), "{n}: {}", r.body);
    }
    let last = finish(&i, &mut b, &page, "{}").await;
    assert_eq!(last.status, 429, "{}", last.body);
    let late = finish(&i, &mut b, &page, "{}").await;
    assert_eq!(late.status, 400, "the request has ended: {}", late.body);
    assert!(!b.cookies.contains_key("argus_session"));
}

#[tokio::test]
async fn a_passkey_counts_for_step_up() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    // bob signs in with his password while he has no second factor.
    let page = to_second_factor(&i, &mut b, "bob", &[]).await;
    assert!(page.body.contains(r#"action="/consent""#), "{}", page.body);
    b.submit(&i, &page, "/consent", &[("decision", "allow")]).await;
    assert!(b.cookies.contains_key("argus_session"));
    // With a passkey, a request for mfa can be met: his password session does not serve it, a sign-in is asked.
    give_passkey(&i, "bob", "p1").await;
    let page = b.get(&i, &authorize_path(&[("acr_values", ACR_MFA)])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"<form method="post" action="/login">"#), "{}", page.body);
}

#[tokio::test]
async fn the_account_page_is_the_signed_in_users_and_its_forms_need_their_token() {
    let i = Issuer::start().await;
    let anonymous = Browser::default().get(&i, "/account/passkeys").await;
    assert_eq!(anonymous.status, 401);

    let mut b = Browser::default();
    let page = to_second_factor(&i, &mut b, "bob", &[]).await;
    b.submit(&i, &page, "/consent", &[("decision", "allow")]).await;
    give_passkey(&i, "bob", "p1").await;
    give_passkey(&i, "alice", "p2").await;
    let page = b.get(&i, "/account/passkeys").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"<span class="passkey-name">Key p1</span>"#), "{}", page.body);
    assert!(!page.body.contains("Key p2"), "only his own passkeys");
    assert!(page.body.contains("not available on this server"), "no relying party on an IP address");
    let csrf = field(&page, "csrf");

    let r = b.post(&i, "/account/passkeys/register/start", &[("csrf", "forged")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = b.post(&i, "/account/passkeys/register/start", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = b.post(&i, "/account/passkeys/register/finish", &[("csrf", &csrf), ("credential", "{}")]).await;
    assert_eq!(r.status, 400, "no ceremony was started: {}", r.body);
    assert!(r.body.contains(NOT_ACCEPTED));

    let mut sub = i.events.subscribe();
    let r = b.post(&i, "/account/passkeys/remove", &[("csrf", "forged"), ("id", "p1")]).await;
    assert_eq!(r.status, 400);
    let r = b.post(&i, "/account/passkeys/remove", &[("csrf", &csrf), ("id", "p2")]).await;
    assert_eq!(r.status, 404, "alice's passkey is not his to remove");
    assert!(i.store.has_passkey(&i.users["alice"]).await.unwrap());
    let r = b.post(&i, "/account/passkeys/remove", &[("csrf", &csrf), ("id", "p1")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!i.store.has_passkey(&i.users["bob"]).await.unwrap());
    let removed = crate::common::events(&mut sub).await.into_iter().any(|e| {
        matches!(&e.kind, EventKind::Account(a) if a.activity == Activity::FactorRemoved
            && a.detail.as_deref() == Some("passkey")
            && e.principal.sub.as_deref() == Some(i.users["bob"].as_str()))
    });
    assert!(removed, "watch hears of it");
}
