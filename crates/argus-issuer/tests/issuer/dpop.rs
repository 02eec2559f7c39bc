//! DPoP at the token endpoint (RFC 9449 §5, §7, §8, §10): bound tokens, server nonces, replay, bound codes and
//! public clients' bound refresh tokens.

use std::time::Duration;

use argus_model::{Clock, EventKind};
use argus_oauth::IssuerStore;
use argus_testkit::DpopKey;

use crate::common::{Issuer, REDIRECT, Resp, SECRET, SVC_BASIC, VERIFIER, WEB_CONF, basic, events, jwt_claims};

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn error(r: &Resp) -> (u16, String) {
    (r.status, r.json()["error"].as_str().unwrap_or("").to_owned())
}

/// A proof of `key` for `POST /token` now, with `nonce`.
fn proof(i: &Issuer, key: &DpopKey, nonce: Option<&str>) -> String {
    let b = key.proof("POST", &i.url("/token"), i.clock.now().as_secs());
    match nonce {
        Some(n) => b.nonce(n).build(),
        None => b.build(),
    }
}

/// A token request with a DPoP proof, as openid-client does it: first without a nonce, then — told
/// `use_dpop_nonce` — again with the nonce from `DPoP-Nonce`.
async fn with_dpop(i: &Issuer, key: &DpopKey, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Resp {
    let first = proof(i, key, None);
    let mut h = headers.to_vec();
    h.push(("dpop", &first));
    let r = i.post_form_with("/token", &h, pairs).await;
    if r.status != 400 || r.json()["error"] != "use_dpop_nonce" {
        return r;
    }
    let nonce = r.header("dpop-nonce").expect("a nonce with use_dpop_nonce").to_owned();
    let second = proof(i, key, Some(&nonce));
    let mut h = headers.to_vec();
    h.push(("dpop", &second));
    i.post_form_with("/token", &h, pairs).await
}

fn cc() -> [(&'static str, &'static str); 1] {
    [("grant_type", "client_credentials")]
}

#[tokio::test]
async fn the_nonce_dance_then_a_bound_token() {
    let i = Issuer::start().await;
    let mut bus = i.events.subscribe();
    let key = DpopKey::es256();
    let auth = basic(SVC_BASIC, SECRET);

    let no_nonce =
        i.post_form_with("/token", &[("authorization", &auth), ("dpop", &proof(&i, &key, None))], &cc()).await;
    assert_eq!(error(&no_nonce), (400, "use_dpop_nonce".into()));
    let nonce = no_nonce.header("dpop-nonce").expect("DPoP-Nonce").to_owned();
    assert!(events(&mut bus).await.iter().all(|e| !matches!(e.kind, EventKind::TokenIssued(_))), "nothing issued");

    let r =
        i.post_form_with("/token", &[("authorization", &auth), ("dpop", &proof(&i, &key, Some(&nonce)))], &cc()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("dpop-nonce").is_some(), "the next nonce comes with every answer");
    let t = r.json();
    assert_eq!(t["token_type"], "DPoP");
    assert_eq!(jwt_claims(s(&t["access_token"]))["cnf"]["jkt"], key.jkt());
    let issued: Vec<_> = events(&mut bus)
        .await
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TokenIssued(_)))
        .map(|e| e.principal.jkt.clone())
        .collect();
    assert_eq!(issued, [Some(key.jkt())]);

    // A nonce lives for its window and the next (60 s each); then a new one is needed.
    i.clock.advance(Duration::from_secs(121));
    let old =
        i.post_form_with("/token", &[("authorization", &auth), ("dpop", &proof(&i, &key, Some(&nonce)))], &cc()).await;
    assert_eq!(error(&old), (400, "use_dpop_nonce".into()));
    // Without DPoP nothing changes: a Bearer token.
    let bearer = i.client_credentials(SVC_BASIC, &[]).await;
    assert_eq!(bearer.json()["token_type"], "Bearer");
    assert!(bearer.header("dpop-nonce").is_none());
}

#[tokio::test]
async fn bad_proofs_are_invalid_dpop_proof_and_issue_nothing() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let auth = basic(SVC_BASIC, SECRET);
    let first = i.post_form_with("/token", &[("authorization", &auth), ("dpop", &proof(&i, &key, None))], &cc()).await;
    let nonce = first.header("dpop-nonce").unwrap().to_owned();
    let now = i.clock.now().as_secs();
    let token_url = i.url("/token");
    let good = || key.proof("POST", &token_url, now).nonce(&nonce);
    let other = DpopKey::es256();

    let bad = [
        ("wrong htu", key.proof("POST", &i.url("/par"), now).nonce(&nonce).build()),
        ("wrong htm", key.proof("GET", &token_url, now).nonce(&nonce).build()),
        ("stale iat", key.proof("POST", &token_url, now - 120).nonce(&nonce).build()),
        ("future iat", key.proof("POST", &token_url, now + 120).nonce(&nonce).build()),
        ("typ", good().typ("JWT").build()),
        ("unsigned", good().unsigned().build()),
        ("tampered", good().tamper_signature().build()),
        ("another key's jwk", good().jwk(other.public_jwk_json()).build()),
        ("no jti", good().without_claim("jti").build()),
        ("garbage", "not.a.proof".to_owned()),
    ];
    for (why, p) in &bad {
        let r = i.post_form_with("/token", &[("authorization", &auth), ("dpop", p)], &cc()).await;
        assert_eq!(error(&r), (400, "invalid_dpop_proof".into()), "{why}");
    }
    let two = i
        .post_form_with(
            "/token",
            &[("authorization", &auth), ("dpop", &good().build()), ("dpop", &good().build())],
            &cc(),
        )
        .await;
    assert_eq!(error(&two), (400, "invalid_dpop_proof".into()), "two proofs");

    let once = good().build();
    assert_eq!(i.post_form_with("/token", &[("authorization", &auth), ("dpop", &once)], &cc()).await.status, 200);
    let replay = i.post_form_with("/token", &[("authorization", &auth), ("dpop", &once)], &cc()).await;
    assert_eq!(error(&replay), (400, "invalid_dpop_proof".into()), "replayed jti");
}

#[tokio::test]
async fn a_client_registered_for_dpop_must_send_a_proof() {
    let i = Issuer::start().await;
    let mut c = i.store.client(SVC_BASIC).await.unwrap().unwrap();
    c.dpop_bound_access_tokens = true;
    argus_issuer::provision::ensure_client(&i.store, c).await.unwrap();
    let bare = i.client_credentials(SVC_BASIC, &[]).await;
    assert_eq!(error(&bare), (400, "invalid_dpop_proof".into()));
    let key = DpopKey::ed25519();
    let r = with_dpop(&i, &key, &[("authorization", &basic(SVC_BASIC, SECRET))], &cc()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(jwt_claims(s(&r.json()["access_token"]))["cnf"]["jkt"], key.jkt());
}

fn redeem_pairs<'a>(client_id: &'a str, code: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_needs_that_key() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let jkt = key.jkt();
    let code = i.code_with("alice", &[("dpop_jkt", &jkt)]).await;
    let pairs = redeem_pairs("demo-app", &code);

    let bare = i.token(&pairs).await;
    assert_eq!(error(&bare), (400, "invalid_grant".into()), "no proof");
    let other = with_dpop(&i, &DpopKey::es256(), &[], &pairs).await;
    assert_eq!(error(&other), (400, "invalid_grant".into()), "another key");
    let r = with_dpop(&i, &key, &[], &pairs).await;
    assert_eq!(r.status, 200, "the failures did not burn the code: {}", r.body);
    let t = r.json();
    assert_eq!(
        (s(&t["token_type"]), jwt_claims(s(&t["access_token"]))["cnf"]["jkt"].as_str()),
        ("DPoP", Some(jkt.as_str()))
    );

    let malformed = i.get(&crate::common::authorize_path(&[("dpop_jkt", "short")])).await;
    assert_eq!(malformed.location_params()["error"], "invalid_request");
}

#[tokio::test]
async fn a_public_clients_refresh_tokens_are_bound_to_its_key() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let code = i.code_for("alice").await;
    let t = with_dpop(&i, &key, &[], &redeem_pairs("demo-app", &code)).await.json();
    let rt = s(&t["refresh_token"]).to_owned();
    let refresh = [("grant_type", "refresh_token"), ("client_id", "demo-app"), ("refresh_token", rt.as_str())];

    assert_eq!(error(&i.token(&refresh).await), (400, "invalid_grant".into()), "stolen, without the key");
    assert_eq!(error(&with_dpop(&i, &DpopKey::es256(), &[], &refresh).await), (400, "invalid_grant".into()));
    let r = with_dpop(&i, &key, &[], &refresh).await;
    assert_eq!(r.status, 200, "the thief's attempts did not end the family: {}", r.body);
    let t2 = r.json();
    assert_eq!(jwt_claims(s(&t2["access_token"]))["cnf"]["jkt"], key.jkt());
    let rt2 = s(&t2["refresh_token"]).to_owned();
    let next = [("grant_type", "refresh_token"), ("client_id", "demo-app"), ("refresh_token", rt2.as_str())];
    assert_eq!(with_dpop(&i, &key, &[], &next).await.status, 200, "the rotated token keeps the binding");
}

#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound_to_a_key() {
    let i = Issuer::start().await;
    let code = i.code_with("bob", &[("client_id", WEB_CONF), ("scope", "openid accounts:read")]).await;
    let auth = basic(WEB_CONF, SECRET);
    let t = with_dpop(&i, &DpopKey::es256(), &[("authorization", &auth)], &redeem_pairs(WEB_CONF, &code)).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let rt = s(&t.json()["refresh_token"]).to_owned();
    // RFC 9449 §5: its refresh token is bound to its client authentication; a new key binds the new access token.
    let new_key = DpopKey::es384();
    let r = with_dpop(
        &i,
        &new_key,
        &[("authorization", &auth)],
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(jwt_claims(s(&r.json()["access_token"]))["cnf"]["jkt"], new_key.jkt());
}

#[tokio::test]
async fn a_bound_token_at_userinfo_needs_a_proof_of_its_key() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let code = i.code_for("alice").await;
    let t = with_dpop(&i, &key, &[], &redeem_pairs("demo-app", &code)).await.json();
    let access = s(&t["access_token"]).to_owned();
    let url = i.url("/userinfo");
    let now = i.clock.now().as_secs();
    let call = |auth: String, proofs: Vec<String>| {
        let i = &i;
        async move {
            let mut h = vec![("authorization", auth.as_str())];
            h.extend(proofs.iter().map(|p| ("dpop", p.as_str())));
            i.request("GET", "/userinfo", &h, None).await
        }
    };
    let challenge = |r: &Resp| r.header("www-authenticate").unwrap_or("").to_owned();

    let stolen = call(format!("Bearer {access}"), vec![]).await;
    assert_eq!(stolen.status, 401, "a bound token presented as Bearer");
    assert!(challenge(&stolen).contains("invalid_token"), "{}", challenge(&stolen));
    let dpop = format!("DPoP {access}");
    let cases = [
        ("no proof", vec![]),
        ("another key", vec![DpopKey::es256().proof("GET", &url, now).ath_for(&access).build()]),
        ("no ath", vec![key.proof("GET", &url, now).build()]),
        ("wrong method", vec![key.proof("POST", &url, now).ath_for(&access).build()]),
        ("wrong url", vec![key.proof("GET", &i.url("/token"), now).ath_for(&access).build()]),
    ];
    for (why, proofs) in cases {
        let r = call(dpop.clone(), proofs).await;
        assert_eq!(r.status, 401, "{why}");
        assert!(challenge(&r).starts_with("DPoP ") && challenge(&r).contains("invalid_dpop_proof"), "{why}");
    }
    let good = key.proof("GET", &url, now).ath_for(&access).build();
    let ok = call(dpop.clone(), vec![good.clone()]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["sub"], i.users["alice"].as_str());
    assert_eq!(call(dpop, vec![good]).await.status, 401, "a proof is good once");

    let bearer_token = i.tokens_for("bob").await;
    let unbound = call(format!("DPoP {}", s(&bearer_token["access_token"])), vec![]).await;
    assert!(challenge(&unbound).contains("invalid_token"), "an unbound token with the DPoP scheme");
}

#[tokio::test]
async fn fetching_a_nonce_spends_nothing() {
    let i = Issuer::start().await;
    let key = DpopKey::es256();
    let assertion = i.client_assertion(&i.url("/token"));
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let first = i.post_form_with("/token", &[("dpop", &proof(&i, &key, None))], &pairs).await;
    assert_eq!(error(&first), (400, "use_dpop_nonce".into()));
    let nonce = first.header("dpop-nonce").unwrap().to_owned();
    let again = i.post_form_with("/token", &[("dpop", &proof(&i, &key, Some(&nonce)))], &pairs).await;
    assert_eq!(again.status, 200, "the client assertion was not spent on the nonce round trip: {}", again.body);
    assert_eq!(again.json()["token_type"], "DPoP");
}
