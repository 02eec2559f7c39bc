use crate::common::{Browser, CHALLENGE, Issuer, PASSWORD, REDIRECT, authorize_path, hidden_inputs};

fn assert_page_without_redirect(r: &crate::common::Resp, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.body);
    assert!(r.header("location").is_none(), "{what}: must not redirect");
    assert!(r.header("set-cookie").is_none(), "{what}: must not set cookies");
    assert!(r.header("content-type").unwrap().starts_with("text/html"), "{what}");
}

#[tokio::test]
async fn untrusted_redirect_uris_get_an_error_page_and_nothing_is_stored() {
    let i = Issuer::start().await;
    let cases: Vec<(&str, String)> = vec![
        ("one character off", authorize_path(&[("redirect_uri", "http://127.0.0.1:53682/callbacK")])),
        ("extra path", authorize_path(&[("redirect_uri", "http://127.0.0.1:53682/callback/x")])),
        ("localhost is not loopback", authorize_path(&[("redirect_uri", "http://localhost:53682/callback")])),
        ("https on loopback", authorize_path(&[("redirect_uri", "https://127.0.0.1:53682/callback")])),
        (
            "port on a non-loopback host",
            authorize_path(&[
                ("client_id", "web-app"),
                ("scope", "openid"),
                ("redirect_uri", "https://app.example:8443/cb"),
            ]),
        ),
        (
            "query added",
            authorize_path(&[
                ("client_id", "web-app"),
                ("scope", "openid"),
                ("redirect_uri", "https://app.example/cb?a=1"),
            ]),
        ),
        ("missing redirect_uri", authorize_path(&[("redirect_uri", "")])),
        ("unknown client", authorize_path(&[("client_id", "evil-app")])),
        ("missing client", authorize_path(&[("client_id", "")])),
        (
            "repeated redirect_uri",
            format!("{}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback", authorize_path(&[])),
        ),
    ];
    for (what, path) in cases {
        let r = i.get(&path).await;
        assert_page_without_redirect(&r, what);
    }
    assert_eq!(i.stored_rows().await, 0, "nothing stored");

    // The exact registered URI and the loopback port rule both work.
    let ok = i
        .get(&authorize_path(&[
            ("client_id", "web-app"),
            ("scope", "openid"),
            ("redirect_uri", "https://app.example/cb"),
        ]))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v6 = i.get(&authorize_path(&[("redirect_uri", "http://[::1]:9999/callback")])).await;
    assert_eq!(v6.status, 200, "{}", v6.body);
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let i = Issuer::start().await;
    for (what, path) in [
        ("no challenge", authorize_path(&[("code_challenge", ""), ("code_challenge_method", "")])),
        ("no method means plain", authorize_path(&[("code_challenge_method", "")])),
        ("plain", authorize_path(&[("code_challenge_method", "plain")])),
        ("malformed challenge", authorize_path(&[("code_challenge", "too-short")])),
    ] {
        let r = i.get(&path).await;
        assert_eq!(r.status, 303, "{what}: {}", r.body);
        assert!(r.header("location").unwrap().starts_with("http://127.0.0.1:53682/callback?"), "{what}");
        let p = r.location_params();
        assert_eq!(p["error"], "invalid_request", "{what}");
        assert_eq!(p["state"], "st-1", "{what}");
        assert_eq!(p["iss"], i.base, "{what}");
        assert!(!p.contains_key("code"));
    }
    assert_eq!(i.stored_rows().await, 0);
}

#[tokio::test]
async fn other_errors_go_back_to_the_client() {
    let i = Issuer::start().await;
    let code_of = |r: &crate::common::Resp| r.location_params()["error"].clone();
    let r = i.get(&authorize_path(&[("response_type", "token")])).await;
    assert_eq!(code_of(&r), "unsupported_response_type");
    let r = i.get(&authorize_path(&[("scope", "openid admin")])).await;
    assert_eq!(code_of(&r), "invalid_scope");
    let r = i.get(&format!("{}&scope=openid", authorize_path(&[]))).await;
    assert_eq!(code_of(&r), "invalid_request", "repeated parameter");
    let r = i.get(&authorize_path(&[("prompt", "none")])).await;
    assert_eq!(code_of(&r), "login_required");
    let r = i.get(&authorize_path(&[("request", "eyJhbGciOiJub25lIn0.e30.")])).await;
    assert_eq!(code_of(&r), "request_not_supported");
    let r = i.get(&authorize_path(&[("dpop_jkt", "not-a-thumbprint")])).await;
    assert_eq!(code_of(&r), "invalid_request");
    assert_eq!(i.stored_rows().await, 0);
}

#[tokio::test]
async fn client_registration_limits_the_flow() {
    use argus_model::Clock;
    use argus_oauth::IssuerStore;
    let i = Issuer::start().await;
    // A client without the code grant is known and its redirect URI trusted: the error goes back to it.
    let r = i.get(&authorize_path(&[("client_id", crate::common::WEB_CONF), ("scope", "openid")])).await;
    assert_eq!(r.status, 200, "the confidential web app may use the code flow: {}", r.body);
    let mut web = i.store.client(crate::common::WEB_CONF).await.unwrap().unwrap();
    web.grant_types = vec![argus_oauth::GrantType::ClientCredentials];
    argus_issuer::provision::ensure_client(&i.store, web).await.unwrap();
    let r = i.get(&authorize_path(&[("client_id", crate::common::WEB_CONF), ("scope", "openid")])).await;
    assert_eq!(r.location_params()["error"], "unauthorized_client");

    // A disabled client is unknown: an error page, never a redirect to it.
    i.store.set_client_disabled("demo-app", true, i.clock.now()).await.unwrap();
    assert_page_without_redirect(&i.get(&authorize_path(&[])).await, "disabled client");
}

#[tokio::test]
async fn a_valid_request_shows_the_login_form_with_safe_headers() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let r = b.get(&i, &authorize_path(&[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert!(r.body.contains(r#"<form method="post" action="/login">"#));
    assert!(r.body.contains(r#"name="username""#) && r.body.contains(r#"name="password""#));
    assert!(r.body.contains("Argus demo app"));
    let names: Vec<_> = hidden_inputs(&r.body).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["request", "csrf"]);
    let cookie = r.header("set-cookie").unwrap();
    for attr in ["argus_browser=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http issuer");
    // The challenge is stored, never echoed into the page.
    assert!(!r.body.contains(CHALLENGE));
}

#[tokio::test]
async fn a_signed_in_user_with_consent_goes_straight_back_and_prompts_are_honoured() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let login = b.get(&i, &authorize_path(&[])).await;
    let consent = b.submit(&i, &login, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert!(consent.body.contains(r#"<form method="post" action="/consent">"#), "{}", consent.body);
    assert!(consent.body.contains(r#"<button type="submit" name="decision" value="allow">"#));
    assert!(consent.body.contains(r#"<button type="submit" name="decision" value="deny">"#));
    assert!(consent.body.contains("Read your accounts") && consent.body.contains("alice"));
    let session_cookie = b.cookies.get("argus_session").cloned().expect("a session cookie");
    let done = b.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    assert_eq!(done.status, 303);
    assert!(done.location_params().contains_key("code"));

    // Same browser, same scopes: a code at once, no page.
    let again = b.get(&i, &authorize_path(&[("state", "st-2")])).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let p = again.location_params();
    assert!(p.contains_key("code"));
    assert_eq!((p["state"].as_str(), p["iss"].as_str()), ("st-2", i.base.as_str()));
    let none = b.get(&i, &authorize_path(&[("prompt", "none")])).await;
    assert!(none.location_params().contains_key("code"));

    // A wider scope needs consent again; prompt=consent and prompt=login force their page.
    let wider = b.get(&i, &authorize_path(&[("scope", "openid transfers:write")])).await;
    assert!(wider.body.contains(r#"action="/consent""#), "{}", wider.body);
    assert!(wider.body.contains("Change your transfers"));
    let none_wider = b.get(&i, &authorize_path(&[("scope", "openid transfers:write"), ("prompt", "none")])).await;
    assert_eq!(none_wider.location_params()["error"], "consent_required");
    let forced = b.get(&i, &authorize_path(&[("prompt", "consent")])).await;
    assert!(forced.body.contains(r#"action="/consent""#));
    let relogin = b.get(&i, &authorize_path(&[("prompt", "login")])).await;
    assert!(relogin.body.contains(r#"action="/login""#));
    assert_eq!(b.cookies["argus_session"], session_cookie);
}

#[tokio::test]
async fn deny_sends_access_denied_and_the_request_is_spent() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let login = b.get(&i, &authorize_path(&[])).await;
    let consent = b.submit(&i, &login, "/login", &[("username", "bob"), ("password", PASSWORD)]).await;
    let denied = b.submit(&i, &consent, "/consent", &[("decision", "deny")]).await;
    assert_eq!(denied.status, 303);
    let p = denied.location_params();
    assert_eq!((p["error"].as_str(), p["state"].as_str()), ("access_denied", "st-1"));
    assert!(denied.header("location").unwrap().starts_with(REDIRECT));
    // The same form cannot be replayed into an "allow".
    let replay = b.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    assert_eq!(replay.status, 400);
    assert!(replay.header("location").is_none());
}
