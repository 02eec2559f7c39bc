use argus_model::{Clock, ControlMessage, EventKind, RevocationScope};
use argus_oauth::IssuerStore;

use crate::common::{Issuer, drain, events, jwt_claims, revoked_jtis};

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap()
}

async fn revoke(i: &Issuer, client_id: &str, token: &str, hint: Option<&str>) -> crate::common::Resp {
    let mut pairs = vec![("client_id", client_id), ("token", token)];
    if let Some(h) = hint {
        pairs.push(("token_type_hint", h));
    }
    i.post_form("/revoke", &pairs).await
}

#[tokio::test]
async fn revoking_an_access_token_reaches_the_gates_and_userinfo() {
    let i = Issuer::start().await;
    let t = i.tokens_for("alice").await;
    let access = s(&t["access_token"]);
    let claims = jwt_claims(access);
    let mut control = i.control.subscribe();
    let mut bus = i.events.subscribe();

    let r = revoke(&i, "demo-app", access, Some("access_token")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let msgs = drain(&mut control).await;
    assert_eq!(msgs.len(), 1);
    let ControlMessage::Revoke(rev) = msgs[0].as_ref() else { panic!("expected a revocation") };
    assert_eq!(rev.scope, RevocationScope::Token { jti: s(&claims["jti"]).to_owned() });
    assert_eq!(rev.at, i.clock.now());
    assert_eq!(rev.until.as_secs(), claims["exp"].as_i64().unwrap() + 30, "kept until the token is dead");
    assert_eq!(i.store.active_revocations(i.clock.now()).await.unwrap(), vec![rev.clone()], "stored for late gates");

    let revoked: Vec<_> = events(&mut bus)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Revoked(r) => Some((r.by.clone(), e.principal.jti.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(revoked, [("client".to_owned(), Some(s(&claims["jti"]).to_owned()))]);
    assert_eq!(i.userinfo(access).await.status, 401);
    // Without a hint, a JWT is recognised too; revoking again is a harmless 200.
    assert_eq!(revoke(&i, "demo-app", access, None).await.status, 200);
    // The refresh token was not part of this revocation.
    assert_eq!(i.refresh(s(&t["refresh_token"])).await.status, 200);
}

#[tokio::test]
async fn revoking_another_clients_token_changes_nothing() {
    let i = Issuer::start().await;
    let t = i.tokens_for("alice").await;
    let mut control = i.control.subscribe();
    for token in [s(&t["access_token"]), s(&t["refresh_token"])] {
        let r = revoke(&i, "web-app", token, None).await;
        assert_eq!(r.status, 200);
    }
    assert!(drain(&mut control).await.is_empty());
    assert!(i.store.active_revocations(i.clock.now()).await.unwrap().is_empty());
    assert_eq!(i.userinfo(s(&t["access_token"])).await.status, 200);
    assert_eq!(i.refresh(s(&t["refresh_token"])).await.status, 200);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_access_tokens() {
    let i = Issuer::start().await;
    let t1 = i.tokens_for("bob").await;
    let t2 = i.refresh(s(&t1["refresh_token"])).await.json();
    let mut control = i.control.subscribe();
    let r = revoke(&i, "demo-app", s(&t2["refresh_token"]), Some("refresh_token")).await;
    assert_eq!(r.status, 200);
    let mut jtis = revoked_jtis(&mut control).await;
    jtis.sort();
    let mut expected: Vec<String> =
        [&t1, &t2].iter().map(|t| s(&jwt_claims(s(&t["access_token"]))["jti"]).to_owned()).collect();
    expected.sort();
    assert_eq!(jtis, expected);
    assert_eq!(i.refresh(s(&t2["refresh_token"])).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn unknown_tokens_are_fine_and_unknown_clients_are_not() {
    let i = Issuer::start().await;
    let mut control = i.control.subscribe();
    assert_eq!(revoke(&i, "demo-app", "no-such-token", None).await.status, 200);
    assert_eq!(revoke(&i, "demo-app", "a.b.c", Some("access_token")).await.status, 200);
    let r = revoke(&i, "nope", "no-such-token", None).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_client")));
    let r = i.post_form("/revoke", &[("client_id", "demo-app")]).await;
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(drain(&mut control).await.is_empty());
}

#[tokio::test]
async fn every_client_authentication_method_can_revoke_and_client_credentials_tokens_are_revocable() {
    use crate::common::{RS, SECRET, SVC_BASIC, SVC_JWT, SVC_POST, basic};
    let i = Issuer::start().await;
    let mut control = i.control.subscribe();
    let jti = |t: &serde_json::Value| s(&jwt_claims(s(&t["access_token"]))["jti"]).to_owned();
    let introspected = |token: String| {
        let i = &i;
        async move {
            let r =
                i.post_form_with("/introspect", &[("authorization", &basic(RS, SECRET))], &[("token", &token)]).await;
            r.json()["active"].as_bool().unwrap()
        }
    };

    let basic_token = i.client_credentials(SVC_BASIC, &[]).await.json();
    let wrong = i
        .post_form_with(
            "/revoke",
            &[("authorization", &basic(SVC_BASIC, "nope"))],
            &[("token", s(&basic_token["access_token"]))],
        )
        .await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (401, Some("invalid_client")));
    assert!(drain(&mut control).await.is_empty(), "a failed revocation changes nothing");
    let r = i
        .post_form_with(
            "/revoke",
            &[("authorization", &basic(SVC_BASIC, SECRET))],
            &[("token", s(&basic_token["access_token"]))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(revoked_jtis(&mut control).await, [jti(&basic_token)]);
    assert!(!introspected(s(&basic_token["access_token"]).to_owned()).await);

    // svc-post may not revoke svc-basic's token: 200, nothing happens.
    let other = i.client_credentials(SVC_BASIC, &[]).await.json();
    let foreign = i
        .post_form_with(
            "/revoke",
            &[],
            &[("client_id", SVC_POST), ("client_secret", SECRET), ("token", s(&other["access_token"]))],
        )
        .await;
    assert_eq!(foreign.status, 200);
    assert!(drain(&mut control).await.is_empty());
    assert!(introspected(s(&other["access_token"]).to_owned()).await);

    // private_key_jwt, with the revocation endpoint as the assertion's audience.
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
    ];
    let assertion = i.client_assertion(&i.url("/token"));
    let mut pairs = cc.to_vec();
    pairs.push(("client_assertion", &assertion));
    let jwt_token = i.post_form_with("/token", &[], &pairs).await.json();
    let assertion = i.client_assertion(&i.url("/revoke"));
    let r = i
        .post_form_with(
            "/revoke",
            &[],
            &[
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", &assertion),
                ("token", s(&jwt_token["access_token"])),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(revoked_jtis(&mut control).await, [jti(&jwt_token)]);
    assert_eq!(jwt_claims(s(&jwt_token["access_token"]))["client_id"], SVC_JWT);
}
