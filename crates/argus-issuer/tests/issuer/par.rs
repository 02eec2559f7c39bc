//! Pushed authorization requests (RFC 9126).

use std::time::Duration;

use argus_issuer::IssuerConfig;
use argus_model::Clock;
use argus_oauth::IssuerStore;
use argus_testkit::DpopKey;

use crate::common::{
    Browser, CHALLENGE, Issuer, PASSWORD, REDIRECT, Resp, SECRET, VERIFIER, WEB_CONF, authorize_path, basic, form,
    jwt_claims,
};

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn error(r: &Resp) -> (u16, String) {
    (r.status, r.json()["error"].as_str().unwrap_or("").to_owned())
}

/// The parameters of demo-app's authorization request, with `overrides` replacing (or, with "", dropping) some.
fn request(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid accounts:read"),
        ("state", "st-par"),
        ("nonce", "n-par"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in overrides {
        p.retain(|(name, _)| name != k);
        if !v.is_empty() {
            p.push((k, v));
        }
    }
    p
}

async fn push(i: &Issuer, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Resp {
    i.post_form_with("/par", headers, pairs).await
}

fn authorize_with(client_id: &str, request_uri: &str) -> String {
    format!("/authorize?{}", form(&[("client_id", client_id), ("request_uri", request_uri)]))
}

/// Sign in at `path` and return the final redirect's parameters.
async fn sign_in(i: &Issuer, path: &str) -> std::collections::HashMap<String, String> {
    let mut b = Browser::default();
    let page = b.get(i, path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut done = b.submit(i, &page, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    if done.status == 200 {
        done = b.submit(i, &done, "/consent", &[("decision", "allow")]).await;
    }
    assert_eq!(done.status, 303, "{}", done.body);
    done.location_params()
}

#[tokio::test]
async fn a_pushed_request_starts_the_flow_once() {
    let i = Issuer::start().await;
    let r = push(&i, &[], &request(&[])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["expires_in"], 60);
    let uri = s(&body["request_uri"]).to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{uri}");

    // Other query parameters are ignored: the pushed ones count.
    let path = format!("{}&scope=transfers%3Awrite&state=evil", authorize_with("demo-app", &uri));
    let back = sign_in(&i, &path).await;
    assert_eq!((back["state"].as_str(), back["iss"].as_str()), ("st-par", i.base.as_str()));
    let t = i.redeem(&back["code"], VERIFIER).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.json();
    assert_eq!(t["scope"], "openid accounts:read");
    assert_eq!(jwt_claims(s(&t["id_token"]))["nonce"], "n-par");

    let again = i.get(&authorize_with("demo-app", &uri)).await;
    assert_eq!(again.status, 400, "a request_uri works once");
    assert!(again.header("location").is_none());
}

#[tokio::test]
async fn a_request_uri_is_bound_to_its_client_and_short_lived() {
    let i = Issuer::start().await;
    let uri = s(&push(&i, &[], &request(&[])).await.json()["request_uri"]).to_owned();
    let foreign = i.get(&authorize_with("web-app", &uri)).await;
    assert_eq!(foreign.status, 400);
    assert!(foreign.header("location").is_none(), "never redirected anywhere");
    for bad in ["urn:ietf:params:oauth:request_uri:nope", "https://evil.example/r"] {
        assert_eq!(i.get(&authorize_with("demo-app", bad)).await.status, 400, "{bad}");
    }
    // Another client's attempt did not burn it.
    let mut b = Browser::default();
    assert_eq!(b.get(&i, &authorize_with("demo-app", &uri)).await.status, 200);

    let late = s(&push(&i, &[], &request(&[])).await.json()["request_uri"]).to_owned();
    i.clock.advance(Duration::from_secs(61));
    assert_eq!(i.get(&authorize_with("demo-app", &late)).await.status, 400, "expired");
}

#[tokio::test]
async fn bad_pushes_get_the_standard_errors_and_store_nothing() {
    let i = Issuer::start().await;
    type Case = (&'static str, Vec<(&'static str, &'static str)>, (u16, &'static str));
    let cases: Vec<Case> = vec![
        ("request_uri pushed", request(&[("request_uri", "urn:x")]), (400, "invalid_request")),
        ("unregistered redirect", request(&[("redirect_uri", "https://evil.example/cb")]), (400, "invalid_request")),
        ("no redirect", request(&[("redirect_uri", "")]), (400, "invalid_request")),
        ("scope", request(&[("scope", "openid admin")]), (400, "invalid_scope")),
        ("no PKCE", request(&[("code_challenge", "")]), (400, "invalid_request")),
        ("plain PKCE", request(&[("code_challenge_method", "plain")]), (400, "invalid_request")),
        ("implicit", request(&[("response_type", "token")]), (400, "unsupported_response_type")),
        ("request object", request(&[("request", "eyJhbGciOiJub25lIn0.e30.")]), (400, "request_not_supported")),
        ("bad dpop_jkt", request(&[("dpop_jkt", "short")]), (400, "invalid_request")),
        ("unknown client", request(&[("client_id", "nobody")]), (401, "invalid_client")),
        ("no client", request(&[("client_id", "")]), (401, "invalid_client")),
    ];
    for (why, pairs, expected) in cases {
        let r = push(&i, &[], &pairs).await;
        assert_eq!(error(&r), (expected.0, expected.1.to_owned()), "{why}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // A confidential client must authenticate, and may not push for another client.
    let web = request(&[("client_id", WEB_CONF)]);
    assert_eq!(error(&push(&i, &[], &web).await), (401, "invalid_client".into()));
    let auth = basic(WEB_CONF, SECRET);
    let other = push(&i, &[("authorization", &auth)], &request(&[])).await;
    assert_eq!(error(&other), (401, "invalid_client".into()));
    let json = i.request("POST", "/par", &[("content-type", "application/json")], Some("{}".into())).await;
    assert_eq!(error(&json), (400, "invalid_request".into()));
    assert_eq!(i.stored_rows().await, 0, "nothing was stored");

    // Without client_id in the body, the authenticated client's is used.
    let ok = push(&i, &[("authorization", &auth)], &request(&[("client_id", "")])).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let uri = s(&ok.json()["request_uri"]).to_owned();
    let back = sign_in(&i, &authorize_with(WEB_CONF, &uri)).await;
    assert!(back.contains_key("code"), "{back:?}");
}

#[tokio::test]
async fn pushed_requests_can_be_required_per_client_or_everywhere() {
    let i = Issuer::start().await;
    let mut demo = i.store.client("demo-app").await.unwrap().unwrap();
    demo.require_pushed_authorization_requests = true;
    argus_issuer::provision::ensure_client(&i.store, demo).await.unwrap();
    let plain = i.get(&authorize_path(&[])).await;
    let p = plain.location_params();
    assert_eq!((p["error"].as_str(), p["state"].as_str()), ("invalid_request", "st-1"));
    let uri = s(&push(&i, &[], &request(&[])).await.json()["request_uri"]).to_owned();
    assert_eq!(Browser::default().get(&i, &authorize_with("demo-app", &uri)).await.status, 200);
    let web_app = [("client_id", "web-app"), ("redirect_uri", "https://app.example/cb"), ("scope", "openid")];
    assert_eq!(i.get(&authorize_path(&web_app)).await.status, 200, "other clients are not affected");

    let config = IssuerConfig { require_pushed_authorization_requests: true, ..IssuerConfig::default() };
    let everywhere = Issuer::start_with(config).await;
    let web = everywhere.get(&authorize_path(&web_app)).await;
    assert_eq!(web.location_params()["error"], "invalid_request");
    let metadata = everywhere.get("/.well-known/openid-configuration").await.json();
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
}

#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let par_url = i.url("/par");
    let first =
        push(&i, &[("dpop", &key.proof("POST", &par_url, i.clock.now().as_secs()).build())], &request(&[])).await;
    assert_eq!(error(&first), (400, "use_dpop_nonce".into()));
    let nonce = first.header("dpop-nonce").unwrap().to_owned();
    let proof = || key.proof("POST", &par_url, i.clock.now().as_secs()).nonce(&nonce).build();

    let mismatch = push(&i, &[("dpop", &proof())], &request(&[("dpop_jkt", CHALLENGE)])).await;
    assert_eq!(error(&mismatch), (400, "invalid_dpop_proof".into()));
    let r = push(&i, &[("dpop", &proof())], &request(&[])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.header("dpop-nonce").is_some());
    let uri = s(&r.json()["request_uri"]).to_owned();
    let back = sign_in(&i, &authorize_with("demo-app", &uri)).await;
    assert_eq!(i.redeem(&back["code"], VERIFIER).await.json()["error"], "invalid_grant", "bound: a proof is needed");
}
