use argus_model::{EventKind, LoginFailure, LoginOutcome};

use crate::common::{Browser, Issuer, PASSWORD, USER_AGENT, authorize_path, events, hidden_inputs};

#[tokio::test]
async fn unknown_user_and_wrong_password_answer_identically_and_events_keep_the_reason() {
    let i = Issuer::start().await;
    let mut sub = i.events.subscribe();
    let mut b = Browser::default();
    let page = b.get(&i, &authorize_path(&[])).await;

    let wrong = b.submit(&i, &page, "/login", &[("username", "alice"), ("password", "not it")]).await;
    let unknown = b.submit(&i, &page, "/login", &[("username", "mallory"), ("password", "not it")]).await;
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "the pages must not tell the two apart");
    assert!(wrong.body.contains("The user name or password is not correct."));
    assert!(wrong.header("set-cookie").is_none() && unknown.header("set-cookie").is_none());
    assert!(!b.cookies.contains_key("argus_session"));

    let logins: Vec<_> = events(&mut sub)
        .await
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::Login(l) => Some((l.username.clone(), l.outcome, e.principal.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(logins.len(), 2);
    let (name, outcome, who) = &logins[0];
    assert_eq!((name.as_str(), *outcome), ("alice", LoginOutcome::Failure(LoginFailure::BadPassword)));
    assert_eq!(who.sub.as_deref(), Some(i.users["alice"].as_str()));
    assert_eq!(who.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(who.user_agent.as_deref(), Some(USER_AGENT));
    assert_eq!(who.client_id.as_deref(), Some("demo-app"));
    let (name, outcome, who) = &logins[1];
    assert_eq!((name.as_str(), *outcome), ("mallory", LoginOutcome::Failure(LoginFailure::UnknownUser)));
    assert_eq!(who.sub, None);

    // The same form still works with the right password, and that is recorded too.
    let consent = b.submit(&i, &page, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert!(consent.body.contains(r#"action="/consent""#));
    let ok: Vec<_> = events(&mut sub)
        .await
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::Login(l) if l.outcome == LoginOutcome::Success))
        .collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].principal.sub.as_deref(), Some(i.users["alice"].as_str()));
    let json = serde_json::to_string(&*ok[0]).unwrap();
    assert!(!json.contains(PASSWORD), "no password in events");
}

#[tokio::test]
async fn forms_are_bound_to_the_browser_and_the_csrf_token() {
    let i = Issuer::start().await;
    let mut victim = Browser::default();
    let page = victim.get(&i, &authorize_path(&[])).await;
    let hidden = hidden_inputs(&page.body);
    let field = |n: &str| hidden.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let creds = [("username", "alice"), ("password", PASSWORD)];

    // Another browser (no binding cookie, or its own) cannot use this request.
    let mut attacker = Browser::default();
    attacker.get(&i, &authorize_path(&[])).await;
    let request = field("request");
    let csrf = field("csrf");
    let stolen = [("request", request.as_str()), ("csrf", csrf.as_str()), creds[0], creds[1]];
    let r = attacker.post(&i, "/login", &stolen).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = Browser::default().post(&i, "/login", &stolen).await;
    assert_eq!(r.status, 400);

    // The right browser with a wrong or missing CSRF token is refused too.
    let forged =
        [("request", request.as_str()), ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), creds[0], creds[1]];
    assert_eq!(victim.post(&i, "/login", &forged).await.status, 400);
    assert_eq!(victim.post(&i, "/login", &[("request", request.as_str()), creds[0], creds[1]]).await.status, 400);
    let repeated = [("request", request.as_str()), ("csrf", csrf.as_str()), ("csrf", "x"), creds[0], creds[1]];
    assert_eq!(victim.post(&i, "/login", &repeated).await.status, 400);
    assert!(!victim.cookies.contains_key("argus_session"));

    // Nothing was spent: the genuine submission works.
    let consent = victim.submit(&i, &page, "/login", &creds).await;
    assert!(consent.body.contains(r#"action="/consent""#), "{}", consent.body);
    // And the consent form is bound the same way.
    let stolen_consent = attacker.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    assert_eq!(stolen_consent.status, 400);
    assert!(stolen_consent.header("location").is_none());
    let done = victim.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    assert_eq!(done.status, 303);
}

#[tokio::test]
async fn an_expired_request_cannot_be_completed() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    let page = b.get(&i, &authorize_path(&[])).await;
    i.clock.advance(std::time::Duration::from_secs(601));
    let r = b.submit(&i, &page, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 400);
    assert!(!b.cookies.contains_key("argus_session"));
}

#[tokio::test]
async fn the_forwarded_client_is_believed_from_trusted_proxies_only() {
    let trusted = vec!["127.0.0.1/32".to_owned()];
    for (trusted_proxies, expected) in [(Vec::new(), "127.0.0.1"), (trusted, "203.0.113.9")] {
        let i = Issuer::start_with(argus_issuer::IssuerConfig { trusted_proxies, ..Default::default() }).await;
        let mut sub = i.events.subscribe();
        let mut b = Browser::default();
        let page = b.get(&i, &authorize_path(&[])).await;
        let hidden = hidden_inputs(&page.body);
        let mut pairs: Vec<(&str, &str)> = hidden.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.extend([("username", "alice"), ("password", "not it")]);
        let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let headers = [("cookie", cookie.as_str()), ("x-forwarded-for", "198.51.100.1, 203.0.113.9")];
        let r = i.post_form_with("/login", &headers, &pairs).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ip = events(&mut sub).await.into_iter().find_map(|e| match &e.kind {
            EventKind::Login(_) => e.principal.ip.clone(),
            _ => None,
        });
        assert_eq!(ip.as_deref(), Some(expected), "the sign-in is keyed on the client, never a value it chose");
    }
}
