//! Resource indicators (RFC 8707): `resource` at /authorize, PAR and /token sets the `aud` of each access token; a
//! token is for one resource of its grant, a refresh may pick another of the grant's but nothing wider, and an
//! unknown or malformed resource is `invalid_target` with nothing issued.

use argus_issuer::IssuerConfig;
use argus_jose::{JwkSet, verify_access_token};
use argus_model::Clock;

use crate::common::{AUDIENCE, Browser, Issuer, PASSWORD, Resp, SVC_BASIC, VERIFIER, authorize_path, form};

/// A resource configured besides the API audience.
const REPORTS: &str = "https://reports.example/api";

async fn issuer() -> Issuer {
    Issuer::start_with(IssuerConfig { resources: vec![REPORTS.into()], ..IssuerConfig::default() }).await
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The demo app's authorization request naming `resources`.
fn authorize_for(resources: &[&str]) -> String {
    let mut path = authorize_path(&[]);
    for r in resources {
        path.push_str(&format!("&resource={}", enc(r)));
    }
    path
}

/// The verified claims of an access token whose audience is `aud`.
async fn verified(i: &Issuer, token: &str, aud: &str) -> argus_jose::AccessClaims {
    let jwks: JwkSet = serde_json::from_str(&i.get("/jwks").await.body).unwrap();
    verify_access_token(token, &jwks, &i.base, aud, i.clock.now().as_secs())
        .unwrap_or_else(|e| panic!("the token is not for {aud}: {e:?}"))
}

fn error(r: &Resp) -> (u16, String) {
    (r.status, r.json()["error"].as_str().unwrap_or_default().to_owned())
}

/// Redeem `code` as the demo app, with these extra parameters.
async fn redeem_with(i: &Issuer, code: &str, extra: &[(&str, &str)]) -> Resp {
    let redirect = crate::common::REDIRECT;
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "demo-app"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend_from_slice(extra);
    i.token(&pairs).await
}

async fn refresh_with(i: &Issuer, refresh_token: &str, extra: &[(&str, &str)]) -> Resp {
    let mut pairs = vec![("grant_type", "refresh_token"), ("client_id", "demo-app"), ("refresh_token", refresh_token)];
    pairs.extend_from_slice(extra);
    i.token(&pairs).await
}

#[tokio::test]
async fn without_resource_tokens_are_for_the_api_as_before() {
    let i = issuer().await;
    let t = i.tokens_for("alice").await;
    verified(&i, t["access_token"].as_str().unwrap(), AUDIENCE).await;
    let r = i.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    verified(&i, r.json()["access_token"].as_str().unwrap(), AUDIENCE).await;
    // The API audience may be named too, and nothing else without having been granted.
    let code = i.code_for("alice").await;
    assert_eq!(error(&redeem_with(&i, &code, &[("resource", REPORTS)]).await), (400, "invalid_target".into()));
    let r = redeem_with(&i, &code, &[("resource", AUDIENCE)]).await;
    assert_eq!(r.status, 200, "the refused request left the code usable: {}", r.body);
}

#[tokio::test]
async fn a_grant_of_several_resources_issues_one_per_token_and_a_refresh_never_widens_it() {
    let i = issuer().await;
    let code = i.code_at("alice", &authorize_for(&[REPORTS, &i.base])).await;

    // Several granted: the token request must name one, and one only.
    let which = redeem_with(&i, &code, &[]).await;
    assert_eq!(error(&which), (400, "invalid_target".into()), "{}", which.body);
    let both = redeem_with(&i, &code, &[("resource", REPORTS), ("resource", &i.base)]).await;
    assert_eq!(error(&both), (400, "invalid_target".into()), "one resource per token");
    let api = redeem_with(&i, &code, &[("resource", AUDIENCE)]).await;
    assert_eq!(error(&api), (400, "invalid_target".into()), "the API was not granted");
    let t = redeem_with(&i, &code, &[("resource", REPORTS)]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.json();
    let claims = verified(&i, t["access_token"].as_str().unwrap(), REPORTS).await;
    assert_eq!(claims.sub, i.users["alice"]);

    // A refresh picks either granted resource (the grant is not narrowed by the first pick), nothing else.
    let refresh = t["refresh_token"].as_str().unwrap();
    let wider = refresh_with(&i, refresh, &[("resource", AUDIENCE)]).await;
    assert_eq!(error(&wider), (400, "invalid_target".into()), "never wider than the grant");
    let r = refresh_with(&i, refresh, &[("resource", &i.base)]).await;
    assert_eq!(r.status, 200, "the refused refresh did not consume the token: {}", r.body);
    let r = r.json();
    let for_issuer = r["access_token"].as_str().unwrap();
    verified(&i, for_issuer, &i.base).await;
    // The issuer is a resource of its own: /userinfo takes a token for it.
    let info = i.userinfo(for_issuer).await;
    assert_eq!(info.status, 200, "{}", info.body);
    let r = refresh_with(&i, r["refresh_token"].as_str().unwrap(), &[("resource", REPORTS)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let for_reports = r.json()["access_token"].as_str().unwrap().to_owned();
    verified(&i, &for_reports, REPORTS).await;
    // A token for another resource is not the issuer's to accept.
    assert_eq!(i.userinfo(&for_reports).await.status, 401);
}

#[tokio::test]
async fn a_grant_of_one_resource_needs_no_resource_at_the_token_endpoint() {
    let i = issuer().await;
    let code = i.code_at("alice", &authorize_for(&[REPORTS])).await;
    let t = redeem_with(&i, &code, &[]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.json();
    verified(&i, t["access_token"].as_str().unwrap(), REPORTS).await;
    // The id_token is for the client, whatever the resource.
    assert_eq!(crate::common::jwt_claims(t["id_token"].as_str().unwrap())["aud"], "demo-app");
    let r = refresh_with(&i, t["refresh_token"].as_str().unwrap(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    verified(&i, r.json()["access_token"].as_str().unwrap(), REPORTS).await;
}

#[tokio::test]
async fn an_unknown_or_malformed_resource_at_authorize_goes_back_as_invalid_target() {
    let i = issuer().await;
    for bad in ["https://evil.example/api", "https://reports.example/api#frag", "reports"] {
        let mut b = Browser::default();
        let r = b.get(&i, &authorize_for(&[REPORTS, bad])).await;
        assert_eq!(r.status, 303, "{bad}: {}", r.body);
        let back = r.location_params();
        assert_eq!(back["error"], "invalid_target", "{bad}");
        assert_eq!(back["state"], "st-1");
    }
    assert_eq!(i.stored_rows().await, 0, "nothing was stored");
}

#[tokio::test]
async fn pushed_requests_carry_their_resources() {
    let i = issuer().await;
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", crate::common::REDIRECT),
        ("scope", "openid accounts:read"),
        ("code_challenge", crate::common::CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let bad = [pairs.clone(), vec![("resource", "https://evil.example/")]].concat();
    assert_eq!(error(&i.post_form_with("/par", &[], &bad).await), (400, "invalid_target".into()));
    pairs.extend([("resource", REPORTS), ("resource", AUDIENCE)]);
    let pushed = i.post_form_with("/par", &[], &pairs).await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    let uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();

    let mut b = Browser::default();
    let page = b.get(&i, &format!("/authorize?{}", form(&[("client_id", "demo-app"), ("request_uri", &uri)]))).await;
    let mut done = b.submit(&i, &page, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    if done.status == 200 {
        done = b.submit(&i, &done, "/consent", &[("decision", "allow")]).await;
    }
    let code = done.location_params().remove("code").expect("a code");
    let t = redeem_with(&i, &code, &[("resource", AUDIENCE)]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    verified(&i, t.json()["access_token"].as_str().unwrap(), AUDIENCE).await;
}

#[tokio::test]
async fn client_credentials_tokens_are_for_the_named_resource() {
    let i = issuer().await;
    let t = i.client_credentials(SVC_BASIC, &[("resource", REPORTS)]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    verified(&i, t.json()["access_token"].as_str().unwrap(), REPORTS).await;
    let t = i.client_credentials(SVC_BASIC, &[]).await;
    verified(&i, t.json()["access_token"].as_str().unwrap(), AUDIENCE).await;
    let t = i.client_credentials(SVC_BASIC, &[("resource", &i.base)]).await;
    verified(&i, t.json()["access_token"].as_str().unwrap(), &i.base).await;
    for bad in [vec![("resource", "https://evil.example/")], vec![("resource", REPORTS), ("resource", AUDIENCE)]] {
        let r = i.client_credentials(SVC_BASIC, &bad).await;
        assert_eq!(error(&r), (400, "invalid_target".into()), "{bad:?}");
        assert!(r.json().get("access_token").is_none());
    }
    // Other parameters still may not repeat.
    let r = i.client_credentials(SVC_BASIC, &[("scope", "accounts:read"), ("scope", "transfers:read")]).await;
    assert_eq!(error(&r), (400, "invalid_request".into()));
}
