use std::time::Duration;

use argus_jose::{JwkSet, verify_access_token};
use argus_model::{Clock, EventKind};
use argus_oauth::IssuerStore;

use crate::common::{
    AUDIENCE, Browser, Issuer, PASSWORD, REDIRECT, VERIFIER, authorize_path, events, jwt_claims, jwt_header,
    revoked_jtis,
};

async fn jwks(i: &Issuer) -> JwkSet {
    serde_json::from_str(&i.get("/jwks").await.body).unwrap()
}

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[tokio::test]
async fn the_code_flow_issues_verifiable_tokens() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let code = i.code_for("alice").await;
    let r = i.redeem(&code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 300);
    assert_eq!(t["scope"], "openid profile accounts:read");
    // `<UUIDv7>.<256 random bits>` (argus_oauth::new_refresh_token).
    assert_eq!(s(&t["refresh_token"]).len(), 36 + 1 + 43);

    let access = s(&t["access_token"]);
    assert_eq!(jwt_header(access)["typ"], "at+jwt");
    let now = i.clock.now().as_secs();
    let claims = verify_access_token(access, &jwks(&i).await, &i.base, AUDIENCE, now).unwrap();
    let alice = i.users["alice"].as_str();
    assert_eq!((claims.sub.as_str(), claims.client_id.as_str()), (alice, "demo-app"));
    assert_eq!(claims.exp - claims.iat, 300);
    assert!(claims.sid.is_some() && claims.auth_time.is_some());

    let id = s(&t["id_token"]);
    let h = jwt_header(id);
    assert_eq!((s(&h["typ"]), s(&h["alg"])), ("JWT", "ES256"));
    let c = jwt_claims(id);
    assert_eq!(s(&c["iss"]), i.base);
    assert_eq!((s(&c["sub"]), s(&c["aud"]), s(&c["azp"])), (alice, "demo-app", "demo-app"));
    assert_eq!(s(&c["nonce"]), "n-1");
    assert_eq!(c["sid"].as_str(), claims.sid.as_deref());
    assert_eq!(c["auth_time"].as_i64(), claims.auth_time);
    assert_eq!(s(&c["at_hash"]), argus_oauth::at_hash(access, "ES256"));
    assert!(c["exp"].as_i64().unwrap() > now);

    let issued: Vec<_> = events(&mut bus)
        .await
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::TokenIssued(ti) => Some((ti.clone(), e.principal.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].0.grant_type, "authorization_code");
    assert!(issued[0].0.family.is_some());
    assert_eq!(issued[0].1.jti.as_deref(), Some(claims.jti.as_str()));

    let me = i.userinfo(access).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!((s(&me["sub"]), s(&me["preferred_username"])), (alice, "alice"));
}

#[tokio::test]
async fn a_missing_verifier_is_invalid_request_and_a_wrong_one_leaves_the_code_usable() {
    let i = Issuer::start().await;
    let code = i.code_for("alice").await;
    let missing = i
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (400, Some("invalid_request")));
    let wrong = i.redeem(&code, &VERIFIER.replace('d', "e")).await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (400, Some("invalid_grant")));
    let other_redirect = i
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-app"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(other_redirect.json()["error"], "invalid_grant");
    let right = i.redeem(&code, VERIFIER).await;
    assert_eq!(right.status, 200, "{}", right.body);
}

#[tokio::test]
async fn a_reused_code_is_refused_and_what_it_issued_is_revoked() {
    let i = Issuer::start().await;
    let mut control = i.control.subscribe();
    let code = i.code_for("alice").await;
    let first = i.redeem(&code, VERIFIER).await.json();
    let again = i.redeem(&code, VERIFIER).await;
    assert_eq!((again.status, again.json()["error"].as_str()), (400, Some("invalid_grant")));

    let access = s(&first["access_token"]);
    let jti = jwt_claims(access)["jti"].as_str().unwrap().to_owned();
    assert_eq!(revoked_jtis(&mut control).await, [jti]);
    let refresh = i.refresh(s(&first["refresh_token"])).await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    assert_eq!(i.userinfo(access).await.status, 401);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let i = Issuer::start().await;
    let code = i.code_for("alice").await;
    i.clock.advance(Duration::from_secs(61));
    assert_eq!(i.redeem(&code, VERIFIER).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let t1 = i.tokens_for("alice").await;
    i.clock.advance(Duration::from_secs(10));
    let r = i.refresh(s(&t1["refresh_token"])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t2 = r.json();
    assert_ne!(t2["refresh_token"], t1["refresh_token"]);
    assert_ne!(t2["access_token"], t1["access_token"]);
    assert_eq!(t2["scope"], "openid profile accounts:read");
    assert!(t2.get("id_token").is_none());
    let c1 = jwt_claims(s(&t1["access_token"]));
    let c2 = jwt_claims(s(&t2["access_token"]));
    assert_eq!((c2["sid"].clone(), c2["auth_time"].clone()), (c1["sid"].clone(), c1["auth_time"].clone()));

    // Narrowing is allowed, widening is not; neither changes the refresh token's own scope.
    let narrow = i
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-app"),
            ("refresh_token", s(&t2["refresh_token"])),
            ("scope", "accounts:read"),
        ])
        .await;
    assert_eq!(narrow.status, 200, "{}", narrow.body);
    let t3 = narrow.json();
    assert_eq!(t3["scope"], "accounts:read");
    let wide = i
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-app"),
            ("refresh_token", s(&t3["refresh_token"])),
            ("scope", "openid transfers:write"),
        ])
        .await;
    assert_eq!(wide.json()["error"], "invalid_scope");
    let t4 = i.refresh(s(&t3["refresh_token"])).await.json();
    assert_eq!(t4["scope"], "openid profile accounts:read");

    let grants: Vec<String> = events(&mut bus)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TokenIssued(t) => Some(t.grant_type.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token", "refresh_token", "refresh_token"]);

    // The first token was rotated long ago: presenting it again is refused.
    assert_eq!(i.refresh(s(&t1["refresh_token"])).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn reuse_revokes_that_family_only() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let mut control = i.control.subscribe();
    let a1 = i.tokens_for("alice").await;
    let b1 = i.tokens_for("alice").await; // a second session of the same user and app
    let a2 = i.refresh(s(&a1["refresh_token"])).await.json();
    events(&mut bus).await;
    // Past the concurrency leeway (2 s by default): a rotated token coming back now is a replay.
    i.clock.advance(Duration::from_secs(3));

    let stolen = i.refresh(s(&a1["refresh_token"])).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    assert_eq!(i.refresh(s(&a2["refresh_token"])).await.json()["error"], "invalid_grant", "the family is dead");

    let a_jtis: Vec<String> =
        [&a1, &a2].iter().map(|t| jwt_claims(s(&t["access_token"]))["jti"].as_str().unwrap().to_owned()).collect();
    let mut revoked = revoked_jtis(&mut control).await;
    revoked.sort();
    let mut expected = a_jtis.clone();
    expected.sort();
    assert_eq!(revoked, expected, "the family's access tokens are revoked at the gates");
    assert_eq!(i.userinfo(s(&a2["access_token"])).await.status, 401);

    let reuse: Vec<_> = events(&mut bus)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RefreshReuse(r) => Some((r.family.clone(), e.principal.sub.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].1.as_deref(), Some(i.users["alice"].as_str()));

    // The other session is untouched.
    let b2 = i.refresh(s(&b1["refresh_token"])).await;
    assert_eq!(b2.status, 200, "{}", b2.body);
    assert_eq!(i.userinfo(s(&b1["access_token"])).await.status, 200);
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let i = Issuer::start().await;
    let t = i.tokens_for("bob").await;
    let rt = s(&t["refresh_token"]);

    let unknown = i.token(&[("grant_type", "refresh_token"), ("client_id", "nope"), ("refresh_token", rt)]).await;
    assert_eq!((unknown.status, unknown.json()["error"].as_str()), (401, Some("invalid_client")));
    assert!(unknown.header("www-authenticate").is_some());
    let anonymous = i.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!((anonymous.status, anonymous.json()["error"].as_str()), (401, Some("invalid_client")));
    let basic = i
        .request(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded"), ("authorization", "Basic ZGVtby1hcHA6eA==")],
            Some(crate::common::form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "demo-app"),
                ("refresh_token", rt),
            ])),
        )
        .await;
    assert_eq!(basic.status, 401);

    let password = i.token(&[("grant_type", "password"), ("client_id", "demo-app"), ("username", "bob")]).await;
    assert_eq!((password.status, password.json()["error"].as_str()), (400, Some("unsupported_grant_type")));
    let no_grant = i.token(&[("client_id", "demo-app")]).await;
    assert_eq!(no_grant.json()["error"], "invalid_request");
    let repeated = i
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-app"),
            ("refresh_token", rt),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(repeated.json()["error"], "invalid_request");
    let json_body = i
        .request(
            "POST",
            "/token",
            &[("content-type", "application/json")],
            Some(r#"{"grant_type":"refresh_token"}"#.into()),
        )
        .await;
    assert_eq!((json_body.status, json_body.json()["error"].as_str()), (400, Some("invalid_request")));
    let garbage = i.refresh("not-a-token").await;
    assert_eq!(garbage.json()["error"], "invalid_grant");

    // Another client presenting bob's refresh token gets invalid_grant, and the token is not harmed.
    let foreign = i.token(&[("grant_type", "refresh_token"), ("client_id", "web-app"), ("refresh_token", rt)]).await;
    assert_eq!(foreign.json()["error"], "invalid_grant");
    assert_eq!(i.refresh(rt).await.status, 200);

    let err = i.refresh(rt).await;
    let body = err.json();
    assert!(body["error_description"].is_string());
    assert_eq!(err.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn userinfo_needs_a_live_token_with_openid() {
    let i = Issuer::start().await;
    let bare = i.get("/userinfo").await;
    assert_eq!((bare.status, bare.header("www-authenticate")), (401, Some("Bearer")));
    let junk = i.userinfo("junk").await;
    assert_eq!(junk.status, 401);
    assert!(junk.header("www-authenticate").unwrap().contains("invalid_token"));

    // A token without openid is refused with insufficient_scope.
    let mut b = Browser::default();
    let page = b.get(&i, &authorize_path(&[("scope", "accounts:read")])).await;
    let consent = b.submit(&i, &page, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    let done = b.submit(&i, &consent, "/consent", &[("decision", "allow")]).await;
    let code = done.location_params()["code"].clone();
    let t = i.redeem(&code, VERIFIER).await.json();
    assert!(t.get("id_token").is_none(), "no id_token without openid");
    let r = i.userinfo(s(&t["access_token"])).await;
    assert_eq!(r.status, 403);
    assert!(r.header("www-authenticate").unwrap().contains("insufficient_scope"));

    // An expired token is refused.
    let t = i.tokens_for("alice").await;
    assert_eq!(i.userinfo(s(&t["access_token"])).await.status, 200);
    i.clock.advance(Duration::from_secs(300 + 31));
    assert_eq!(i.userinfo(s(&t["access_token"])).await.status, 401);
}

fn refresh_events(all: &[std::sync::Arc<argus_model::Event>]) -> usize {
    all.iter().filter(|e| matches!(e.kind, EventKind::RefreshReuse(_))).count()
}

#[tokio::test]
async fn a_just_rotated_token_within_the_leeway_is_refused_without_ending_the_family() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let mut control = i.control.subscribe();
    let t1 = i.tokens_for("alice").await;
    let rt1 = s(&t1["refresh_token"]).to_owned();
    let t2 = i.refresh(&rt1).await.json();

    // One second later the app, refreshing twice at once, presents the old token again.
    i.clock.advance(Duration::from_secs(1));
    let dup = i.refresh(&rt1).await;
    assert_eq!((dup.status, dup.json()["error"].as_str()), (400, Some("invalid_grant")), "no second successor");
    assert_eq!(refresh_events(&events(&mut bus).await), 0);
    assert!(revoked_jtis(&mut control).await.is_empty(), "nothing revoked");
    i.clock.advance(Duration::from_millis(500));
    let t3 = i.refresh(s(&t2["refresh_token"])).await;
    assert_eq!(t3.status, 200, "the family lives on: {}", t3.body);
    let t3 = t3.json();

    // Two requests with the same token at the same instant: one wins, the other is refused, the family lives.
    let rt3 = s(&t3["refresh_token"]).to_owned();
    let (a, b) = tokio::join!(i.refresh(&rt3), i.refresh(&rt3));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let winner = if a.status == 200 { a.json() } else { b.json() };
    assert_eq!(refresh_events(&events(&mut bus).await), 0);
    assert_eq!(i.refresh(s(&winner["refresh_token"])).await.status, 200);

    // Past the leeway the same mistake is a replay: the family ends.
    i.clock.advance(Duration::from_secs(3));
    assert_eq!(i.refresh(&rt3).await.json()["error"], "invalid_grant");
    assert_eq!(refresh_events(&events(&mut bus).await), 1);
    assert!(!revoked_jtis(&mut control).await.is_empty());
}

#[tokio::test]
async fn with_no_leeway_a_concurrent_duplicate_ends_the_family() {
    let config = argus_issuer::IssuerConfig { refresh_reuse_leeway_secs: 0, ..argus_issuer::IssuerConfig::default() };
    let i = Issuer::start_with(config).await;
    let t1 = i.tokens_for("alice").await;
    let t2 = i.refresh(s(&t1["refresh_token"])).await.json();
    assert_eq!(i.refresh(s(&t1["refresh_token"])).await.json()["error"], "invalid_grant");
    assert_eq!(i.refresh(s(&t2["refresh_token"])).await.json()["error"], "invalid_grant", "family revoked");
}

#[tokio::test]
async fn refresh_tokens_have_an_idle_and_an_absolute_lifetime() {
    let config = argus_issuer::IssuerConfig {
        refresh_token_idle_ttl_secs: 100,
        refresh_token_absolute_ttl_secs: 250,
        ..argus_issuer::IssuerConfig::default()
    };
    let i = Issuer::start_with(config).await;
    let idle = i.tokens_for("alice").await;
    i.clock.advance(Duration::from_secs(100));
    let r = i.refresh(s(&idle["refresh_token"])).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "idle too long");

    let mut t = i.tokens_for("bob").await;
    for _ in 0..2 {
        i.clock.advance(Duration::from_secs(90));
        let r = i.refresh(s(&t["refresh_token"])).await;
        assert_eq!(r.status, 200, "each use restarts the idle time: {}", r.body);
        t = r.json();
    }
    i.clock.advance(Duration::from_secs(71));
    assert_eq!(i.refresh(s(&t["refresh_token"])).await.json()["error"], "invalid_grant", "250 s after sign-in");
}

#[tokio::test]
async fn clients_have_their_own_lifetimes_and_grants() {
    let i = Issuer::start().await;
    let mut demo = i.store.client("demo-app").await.unwrap().unwrap();
    demo.refresh_token_ttl_secs = Some(50);
    demo.access_token_ttl_secs = Some(120);
    argus_issuer::provision::ensure_client(&i.store, demo).await.unwrap();
    let t = i.tokens_for("alice").await;
    assert_eq!(t["expires_in"], 120);
    i.clock.advance(Duration::from_secs(50));
    assert_eq!(i.refresh(s(&t["refresh_token"])).await.json()["error"], "invalid_grant");

    // A client without the refresh_token grant gets no refresh token, and cannot refresh.
    let mut web = i.store.client("web-app").await.unwrap().unwrap();
    web.grant_types = vec![argus_oauth::GrantType::AuthorizationCode];
    argus_issuer::provision::ensure_client(&i.store, web).await.unwrap();
    let web_redirect = "https://app.example/cb";
    let path = authorize_path(&[("client_id", "web-app"), ("redirect_uri", web_redirect), ("scope", "openid")]);
    let code = i.code_at("alice", &path).await;
    let r = i
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web-app"),
            ("code", &code),
            ("redirect_uri", web_redirect),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_some());
    let refresh = i.token(&[("grant_type", "refresh_token"), ("client_id", "web-app"), ("refresh_token", "x")]).await;
    assert_eq!(refresh.json()["error"], "unauthorized_client");
    // A reused code still revokes the one access token it issued.
    let mut control = i.control.subscribe();
    let again = i
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web-app"),
            ("code", &code),
            ("redirect_uri", web_redirect),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(revoked_jtis(&mut control).await, [jwt_claims(s(&t["access_token"]))["jti"].as_str().unwrap()]);
}

/// Refresh tokens are `<UUIDv7>.<secret>`, stored under `<UUIDv7>.<hash>`; one issued before that form (stored under
/// its hash alone) still refreshes, its successor has the new form, and presenting it again is reuse.
#[tokio::test]
async fn a_refresh_token_of_the_form_before_selectors_still_refreshes() {
    let i = Issuer::start().await;
    let t1 = i.tokens_for("alice").await;
    let current = s(&t1["refresh_token"]);
    let (selector, _) = current.split_once('.').expect("<selector>.<secret>");
    assert_eq!(selector.len(), 36, "a UUID: {current}");
    // Turn the stored token into one of the earlier form: 256 random bits, stored under their hash.
    let legacy = argus_model::id::random_secret(32);
    sqlx::query("UPDATE refresh_tokens SET token_hash = $1 WHERE token_hash = $2")
        .bind(argus_oauth::hash_secret(&legacy))
        .bind(argus_oauth::refresh_token_key(current))
        .execute(i.store.pool())
        .await
        .unwrap();
    assert_eq!(i.refresh(current).await.status, 400, "the new form of it is gone");

    let r = i.refresh(&legacy).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let next = r.json();
    assert!(s(&next["refresh_token"]).contains('.'), "the successor has the new form");
    i.clock.advance(Duration::from_secs(60));
    assert_eq!(i.refresh(&legacy).await.json()["error"], "invalid_grant");
    let after_reuse = i.refresh(s(&next["refresh_token"])).await;
    assert_eq!(after_reuse.json()["error"], "invalid_grant", "reuse of the old one ended the family");
}
