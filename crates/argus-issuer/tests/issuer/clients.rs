//! Client types and authentication (RFC 6749 §2.3, RFC 7523) and the client_credentials grant (RFC 6749 §4.4).

use std::time::Duration;

use argus_jose::{JwkSet, verify_access_token};
use argus_model::{Clock, EventKind};
use argus_oauth::{ClientRegistration, IssuerStore};

use crate::common::{
    AUDIENCE, Issuer, REDIRECT, RS, SECRET, SVC_BASIC, SVC_JWT, SVC_POST, VERIFIER, WEB_CONF, basic, events, jwt_claims,
};

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn error(r: &crate::common::Resp) -> (u16, String) {
    (r.status, r.json()["error"].as_str().unwrap_or("").to_owned())
}

async fn jwks(i: &Issuer) -> JwkSet {
    serde_json::from_str(&i.get("/jwks").await.body).unwrap()
}

async fn assertion_request(i: &Issuer, assertion: &str, extra: &[(&str, &str)]) -> crate::common::Resp {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    pairs.extend_from_slice(extra);
    i.post_form_with("/token", &[], &pairs).await
}

#[tokio::test]
async fn client_credentials_with_each_authentication_method() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();

    let r = i.client_credentials(SVC_BASIC, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!((s(&t["token_type"]), t["expires_in"].as_u64()), ("Bearer", Some(300)));
    assert_eq!(s(&t["scope"]), "accounts:read transfers:read", "every allowed scope by default");
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none(), "no user: no refresh, no id_token");
    let now = i.clock.now().as_secs();
    let claims = verify_access_token(s(&t["access_token"]), &jwks(&i).await, &i.base, AUDIENCE, now).unwrap();
    assert_eq!((claims.sub.as_str(), claims.client_id.as_str(), claims.sid), (SVC_BASIC, SVC_BASIC, None));

    let narrow = i.client_credentials(SVC_BASIC, &[("scope", "accounts:read")]).await;
    assert_eq!(s(&narrow.json()["scope"]), "accounts:read");

    let post = i
        .post_form_with(
            "/token",
            &[],
            &[("grant_type", "client_credentials"), ("client_id", SVC_POST), ("client_secret", SECRET)],
        )
        .await;
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(jwt_claims(s(&post.json()["access_token"]))["sub"], SVC_POST);

    for aud in [i.url("/token"), i.base.clone()] {
        let jwt = assertion_request(&i, &i.client_assertion(&aud), &[]).await;
        assert_eq!(jwt.status, 200, "aud {aud}: {}", jwt.body);
        assert_eq!(jwt_claims(s(&jwt.json()["access_token"]))["client_id"], SVC_JWT);
    }
    // The client_id may be repeated in the body, as long as it is the assertion's.
    let with_id = assertion_request(&i, &i.client_assertion(&i.url("/token")), &[("client_id", SVC_JWT)]).await;
    assert_eq!(with_id.status, 200, "{}", with_id.body);

    let grants: Vec<(String, Option<String>)> = events(&mut bus)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TokenIssued(t) => Some((t.grant_type.clone(), e.principal.client_id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(grants.len(), 6);
    assert!(grants.iter().all(|(g, c)| g == "client_credentials" && c.is_some()));
}

#[tokio::test]
async fn failed_client_authentication_is_invalid_client_and_issues_nothing() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let cc = [("grant_type", "client_credentials")];

    let wrong = i.post_form_with("/token", &[("authorization", &basic(SVC_BASIC, "wrong"))], &cc).await;
    assert_eq!(error(&wrong), (401, "invalid_client".into()));
    assert!(wrong.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")));
    let unknown = i.post_form_with("/token", &[("authorization", &basic("nobody", SECRET))], &cc).await;
    assert_eq!(error(&unknown), (401, "invalid_client".into()));
    let malformed = i.post_form_with("/token", &[("authorization", "Basic !!!")], &cc).await;
    assert_eq!(error(&malformed), (401, "invalid_client".into()));

    // The registered method only: no secret in the body for a Basic client, no falling back to `none`.
    let as_post = [("grant_type", "client_credentials"), ("client_id", SVC_BASIC), ("client_secret", SECRET)];
    assert_eq!(error(&i.post_form_with("/token", &[], &as_post).await), (401, "invalid_client".into()));
    let as_none = [("grant_type", "client_credentials"), ("client_id", SVC_BASIC)];
    assert_eq!(error(&i.post_form_with("/token", &[], &as_none).await), (401, "invalid_client".into()));
    let as_basic = i.post_form_with("/token", &[("authorization", &basic(SVC_POST, SECRET))], &cc).await;
    assert_eq!(error(&as_basic), (401, "invalid_client".into()));

    // Two methods at once is a malformed request.
    let both = i.post_form_with("/token", &[("authorization", &basic(SVC_BASIC, SECRET))], &as_post).await;
    assert_eq!(error(&both), (400, "invalid_request".into()));

    // A client assertion works once, must be signed by the client's key, and must be meant for this issuer.
    let once = i.client_assertion(&i.url("/token"));
    assert_eq!(assertion_request(&i, &once, &[]).await.status, 200);
    assert_eq!(error(&assertion_request(&i, &once, &[]).await), (401, "invalid_client".into()), "replayed");
    let other_key = argus_jose::SigningKey::generate_es256().unwrap();
    let now = i.clock.now().as_secs();
    let forged = other_key
        .sign(
            "JWT",
            &serde_json::json!({"iss": SVC_JWT, "sub": SVC_JWT, "aud": i.url("/token"), "exp": now + 60, "jti": "x"}),
        )
        .unwrap();
    assert_eq!(error(&assertion_request(&i, &forged, &[]).await), (401, "invalid_client".into()));
    let elsewhere = i.client_assertion("https://other.example/token");
    assert_eq!(error(&assertion_request(&i, &elsewhere, &[]).await), (401, "invalid_client".into()));
    let stale = i.client_assertion(&i.url("/token"));
    i.clock.advance(Duration::from_secs(91));
    assert_eq!(error(&assertion_request(&i, &stale, &[]).await), (401, "invalid_client".into()), "expired");

    // A disabled client cannot authenticate at all, until enabled again.
    assert!(i.store.set_client_disabled(SVC_BASIC, true, i.clock.now()).await.unwrap());
    i.outlive_registry();
    assert_eq!(error(&i.client_credentials(SVC_BASIC, &[]).await), (401, "invalid_client".into()));
    i.store.set_client_disabled(SVC_BASIC, false, i.clock.now()).await.unwrap();
    i.outlive_registry();
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 200);

    let issued = events(&mut bus).await.iter().filter(|e| matches!(e.kind, EventKind::TokenIssued(_))).count();
    assert_eq!(issued, 2, "only the two good requests issued anything");
}

#[tokio::test]
async fn client_credentials_rules() {
    let i = Issuer::start().await;
    let public = i.token(&[("grant_type", "client_credentials"), ("client_id", "demo-app")]).await;
    assert_eq!(error(&public), (400, "unauthorized_client".into()));
    let not_registered = i
        .post_form_with(
            "/token",
            &[("authorization", &basic(SVC_BASIC, SECRET))],
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(error(&not_registered), (400, "unauthorized_client".into()));
    for (grant, expected) in [("password", "unsupported_grant_type"), ("implicit", "unsupported_grant_type")] {
        let r = i.client_credentials(SVC_BASIC, &[]).await;
        assert_eq!(r.status, 200);
        let refused =
            i.post_form_with("/token", &[("authorization", &basic(SVC_BASIC, SECRET))], &[("grant_type", grant)]).await;
        assert_eq!(error(&refused), (400, expected.into()), "{grant}");
    }
    for scope in ["openid", "accounts:write", "accounts:read admin", "bad\"scope"] {
        let r = i.client_credentials(SVC_BASIC, &[("scope", scope)]).await;
        assert_eq!(error(&r), (400, "invalid_scope".into()), "{scope}");
    }

    // Per-client lifetime.
    let mut short = i.store.client(SVC_BASIC).await.unwrap().unwrap();
    short.access_token_ttl_secs = Some(60);
    argus_issuer::provision::ensure_client(&i.store, short).await.unwrap();
    i.outlive_registry();
    let t = i.client_credentials(SVC_BASIC, &[]).await.json();
    assert_eq!(t["expires_in"], 60);
    let c = jwt_claims(s(&t["access_token"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
}

#[tokio::test]
async fn a_confidential_app_authenticates_for_its_code_and_refresh() {
    let i = Issuer::start().await;
    let code = i.code_with("alice", &[("client_id", WEB_CONF), ("scope", "openid accounts:read")]).await;
    let redeem = [
        ("grant_type", "authorization_code"),
        ("client_id", WEB_CONF),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let anonymous = i.post_form_with("/token", &[], &redeem).await;
    assert_eq!(error(&anonymous), (401, "invalid_client".into()));
    let auth = [("authorization", basic(WEB_CONF, SECRET))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let t = i.post_form_with("/token", &auth, &redeem).await;
    assert_eq!(t.status, 200, "the code survived the unauthenticated attempt: {}", t.body);
    let t = t.json();
    let rt = s(&t["refresh_token"]);
    let anonymous = i
        .post_form_with(
            "/token",
            &[],
            &[("grant_type", "refresh_token"), ("client_id", WEB_CONF), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(error(&anonymous), (401, "invalid_client".into()));
    let refreshed = i.post_form_with("/token", &auth, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    // The resource server cannot use the app's refresh token.
    let rs = [("authorization", basic(RS, SECRET))];
    let rs: Vec<(&str, &str)> = rs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stolen = s(&refreshed.json()["refresh_token"]).to_owned();
    let foreign = i.post_form_with("/token", &rs, &[("grant_type", "refresh_token"), ("refresh_token", &stolen)]).await;
    assert_eq!(error(&foreign), (400, "unauthorized_client".into()));
}

#[tokio::test]
async fn registrations_are_validated_before_they_are_stored() {
    let i = Issuer::start().await;
    let public_cc = ClientRegistration {
        client_id: "bad".into(),
        name: "Bad".into(),
        grant_types: vec![argus_oauth::GrantType::ClientCredentials],
        ..ClientRegistration::default()
    };
    assert!(argus_issuer::provision::ensure_client(&i.store, public_cc).await.is_err());
    assert!(i.store.client("bad").await.unwrap().is_none());
}
