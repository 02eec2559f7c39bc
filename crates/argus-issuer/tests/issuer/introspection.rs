//! Token introspection (RFC 7662): authenticated confidential callers only; a client sees its own tokens, a
//! resource server (scope `argus:introspect`) every token; everything dead or hidden is `{"active": false}`.

use std::time::Duration;

use argus_issuer::IssuerConfig;
use argus_model::Clock;
use argus_oauth::IssuerStore;
use argus_testkit::DpopKey;

use crate::common::{Issuer, RS, Resp, SECRET, SVC_BASIC, VERIFIER, WEB_CONF, basic, jwt_claims};

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

async fn introspect_as(i: &Issuer, client_id: &str, token: &str, hint: Option<&str>) -> Resp {
    let mut pairs = vec![("token", token)];
    if let Some(h) = hint {
        pairs.push(("token_type_hint", h));
    }
    i.post_form_with("/introspect", &[("authorization", &basic(client_id, SECRET))], &pairs).await
}

/// The answer, checked to be a well-formed 200.
async fn answer(i: &Issuer, client_id: &str, token: &str) -> serde_json::Value {
    let r = introspect_as(i, client_id, token, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    r.json()
}

fn inactive() -> serde_json::Value {
    serde_json::json!({"active": false})
}

#[tokio::test]
async fn a_resource_server_sees_every_live_token() {
    let i = Issuer::start().await;
    let t = i.tokens_for("alice").await;
    let access = s(&t["access_token"]);
    let claims = jwt_claims(access);

    let a = answer(&i, RS, access).await;
    assert_eq!(a["active"], true);
    assert_eq!(
        (s(&a["sub"]), s(&a["client_id"]), s(&a["token_type"])),
        (i.users["alice"].as_str(), "demo-app", "Bearer")
    );
    assert_eq!(s(&a["scope"]), "openid profile accounts:read");
    for k in ["exp", "iat", "sid", "aud", "iss", "jti"] {
        assert_eq!(a[k], claims[k], "{k}");
    }
    assert!(a.get("cnf").is_none());

    let r = answer(&i, RS, s(&t["refresh_token"])).await;
    assert_eq!((r["active"].as_bool(), r["client_id"].as_str()), (Some(true), Some("demo-app")));
    assert_eq!(r["sid"], claims["sid"]);
    assert!(r.get("token_type").is_none(), "a refresh token has no token type");
    assert!(r["exp"].as_i64().unwrap() > i.clock.now().as_secs());

    let cc = i.client_credentials(SVC_BASIC, &[]).await.json();
    let c = answer(&i, RS, s(&cc["access_token"])).await;
    assert_eq!((c["active"].as_bool(), c["sub"].as_str(), c.get("sid")), (Some(true), Some(SVC_BASIC), None));
    // The hint only orders the lookups: a wrong hint still finds the token.
    let hinted = introspect_as(&i, RS, access, Some("refresh_token")).await.json();
    assert_eq!(hinted["active"], true);
}

#[tokio::test]
async fn a_client_sees_only_its_own_tokens() {
    let i = Issuer::start().await;
    let mine = i.client_credentials(SVC_BASIC, &[]).await.json();
    assert_eq!(answer(&i, SVC_BASIC, s(&mine["access_token"])).await["active"], true);
    let theirs = i.tokens_for("alice").await;
    assert_eq!(answer(&i, SVC_BASIC, s(&theirs["access_token"])).await, inactive());
    assert_eq!(answer(&i, SVC_BASIC, s(&theirs["refresh_token"])).await, inactive());

    let code = i.code_with("bob", &[("client_id", WEB_CONF), ("scope", "openid accounts:read")]).await;
    let auth = basic(WEB_CONF, SECRET);
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::common::REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let web = i.post_form_with("/token", &[("authorization", &auth)], &redeem).await.json();
    assert_eq!(answer(&i, WEB_CONF, s(&web["refresh_token"])).await["active"], true);
}

#[tokio::test]
async fn dead_tokens_are_inactive() {
    let i = Issuer::start().await;
    for garbage in ["junk", "a.b.c", &"x".repeat(43)] {
        assert_eq!(answer(&i, RS, garbage).await, inactive(), "{garbage}");
    }
    // Revoked access token.
    let t = i.tokens_for("alice").await;
    let access = s(&t["access_token"]);
    assert_eq!(i.post_form("/revoke", &[("client_id", "demo-app"), ("token", access)]).await.status, 200);
    assert_eq!(answer(&i, RS, access).await, inactive());
    // Rotated refresh token, and then its whole family once reuse revoked it.
    let t = i.tokens_for("bob").await;
    let rt1 = s(&t["refresh_token"]);
    let t2 = i.refresh(rt1).await.json();
    assert_eq!(answer(&i, RS, rt1).await, inactive(), "rotated");
    assert_eq!(answer(&i, RS, s(&t2["refresh_token"])).await["active"], true);
    i.clock.advance(Duration::from_secs(3));
    assert_eq!(i.refresh(rt1).await.json()["error"], "invalid_grant");
    assert_eq!(answer(&i, RS, s(&t2["refresh_token"])).await, inactive(), "family revoked on reuse");
    assert_eq!(answer(&i, RS, s(&t2["access_token"])).await, inactive());
    // A disabled client's tokens.
    let t = i.tokens_for("alice").await;
    i.store.set_client_disabled("demo-app", true, i.clock.now()).await.unwrap();
    i.outlive_registry();
    assert_eq!(answer(&i, RS, s(&t["access_token"])).await, inactive());
    assert_eq!(answer(&i, RS, s(&t["refresh_token"])).await, inactive());
    i.store.set_client_disabled("demo-app", false, i.clock.now()).await.unwrap();
    i.outlive_registry();
    assert_eq!(answer(&i, RS, s(&t["access_token"])).await["active"], true);
    // Expired.
    i.clock.advance(Duration::from_secs(301));
    assert_eq!(answer(&i, RS, s(&t["access_token"])).await, inactive());
}

#[tokio::test]
async fn introspection_needs_an_authenticated_confidential_client() {
    let i = Issuer::start().await;
    let t = i.tokens_for("alice").await;
    let token = s(&t["access_token"]);
    let anonymous = i.post_form("/introspect", &[("token", token)]).await;
    assert_eq!((anonymous.status, anonymous.json()["error"].as_str()), (401, Some("invalid_client")));
    let public = i.post_form("/introspect", &[("client_id", "demo-app"), ("token", token)]).await;
    assert_eq!((public.status, public.json()["error"].as_str()), (401, Some("invalid_client")));
    let wrong = i.post_form_with("/introspect", &[("authorization", &basic(RS, "wrong"))], &[("token", token)]).await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (401, Some("invalid_client")));
    let missing = i.post_form_with("/introspect", &[("authorization", &basic(RS, SECRET))], &[]).await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (400, Some("invalid_request")));
    let json = i
        .request(
            "POST",
            "/introspect",
            &[("authorization", &basic(RS, SECRET)), ("content-type", "application/json")],
            Some("{}".into()),
        )
        .await;
    assert_eq!((json.status, json.json()["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn a_dpop_bound_token_says_so() {
    let i = Issuer::start_with(IssuerConfig { dpop_nonce_required: false, ..IssuerConfig::default() }).await;
    let key = DpopKey::es256();
    let proof = key.proof("POST", &i.url("/token"), i.clock.now().as_secs()).build();
    let r = i
        .post_form_with(
            "/token",
            &[("authorization", &basic(SVC_BASIC, SECRET)), ("dpop", &proof)],
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("dpop-nonce").is_none(), "no nonces when they are not required");
    let a = answer(&i, RS, s(&r.json()["access_token"])).await;
    assert_eq!((a["token_type"].as_str(), a["cnf"]["jkt"].as_str()), (Some("DPoP"), Some(key.jkt().as_str())));
}
