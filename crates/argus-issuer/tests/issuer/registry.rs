//! The issuer answers token requests from its in-memory copy of client registrations and users' enabled flags:
//! changes through its own admin API apply at once, changes made elsewhere (another process) within
//! `registry_cache_secs`.

use argus_model::Clock;
use argus_oauth::{ClientRegistration, IssuerStore, TokenEndpointAuthMethod};
use serde_json::json;

use crate::common::{Issuer, Resp, SVC_BASIC, VERIFIER, basic, service_client};

const OPS: &str = "ops";

/// An admin client, provisioned before the issuer reads it, and an admin token of it.
async fn admin_token(i: &Issuer) -> String {
    let ops = ClientRegistration {
        allowed_scopes: vec!["argus:admin".into()],
        ..service_client(OPS, TokenEndpointAuthMethod::ClientSecretBasic, &i.client_key)
    };
    argus_issuer::provision::ensure_client(&i.store, ops).await.unwrap();
    let r = i.client_credentials(OPS, &[("scope", "argus:admin")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn admin(i: &Issuer, token: &str, method: &str, path: &str, body: serde_json::Value) -> Resp {
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let r = i.request(method, &format!("/admin/v1{path}"), &headers, Some(body.to_string())).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r
}

#[tokio::test]
async fn a_client_disabled_or_rekeyed_through_the_admin_api_is_refused_at_once() {
    let i = Issuer::start().await;
    let token = admin_token(&i).await;
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 200, "read and remembered");

    admin(&i, &token, "POST", &format!("/clients/{SVC_BASIC}/disable"), json!({})).await;
    let r = i.client_credentials(SVC_BASIC, &[]).await;
    assert_eq!((r.status, r.json()["error"].clone()), (401, json!("invalid_client")), "no clock moved: at once");

    admin(&i, &token, "PATCH", &format!("/clients/{SVC_BASIC}"), json!({ "disabled": false })).await;
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 200, "enabled again at once");

    let r = admin(&i, &token, "POST", &format!("/clients/{SVC_BASIC}/secret"), json!({})).await;
    let new_secret = r.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 401, "the old secret stops at once");
    let with_new = [("authorization", basic(SVC_BASIC, &new_secret))];
    let headers: Vec<(&str, &str)> = with_new.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = i.post_form_with("/token", &headers, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_user_enabled_again_through_the_admin_api_gets_tokens_at_once() {
    let i = Issuer::start().await;
    let token = admin_token(&i).await;
    let alice = i.users["alice"].clone();
    assert_eq!(i.tokens_for("alice").await["token_type"], "Bearer", "alice's flag read and remembered");

    // A code issued before alice is disabled is refused after: the registry remembers her as disabled.
    let code = i.code_for("alice").await;
    admin(&i, &token, "PATCH", &format!("/users/{alice}"), json!({ "disabled": true })).await;
    let r = i.redeem(&code, VERIFIER).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")));

    admin(&i, &token, "PATCH", &format!("/users/{alice}"), json!({ "disabled": false })).await;
    let r = i.redeem(&i.code_for("alice").await, VERIFIER).await;
    assert_eq!(r.status, 200, "enabled again at once: {}", r.body);
}

#[tokio::test]
async fn a_change_made_elsewhere_applies_within_the_cache_lifetime() {
    let i = Issuer::start().await;
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 200);
    // Another process disables the client in the shared database: this issuer cannot know until its copy expires.
    assert!(i.store.set_client_disabled(SVC_BASIC, true, i.clock.now()).await.unwrap());
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 200, "the copy is still served");
    i.outlive_registry();
    assert_eq!(i.client_credentials(SVC_BASIC, &[]).await.status, 401);
}
