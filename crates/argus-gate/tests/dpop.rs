//! The gate's DPoP phase, black-box (RFC 9449 §7): DPoP-bound tokens need the DPoP scheme and a fresh, single-use
//! proof of their key for the very request; server nonces; and revocations loaded at start.

mod support;

use std::time::Duration;

use argus_jose::{AccessClaims, Confirmation};
use argus_model::{Clock, Decision, RevocationScope};
use argus_testkit::{DpopKey, DpopProofBuilder};
use support::{AUDIENCE, Harness, Reply, revocation};

const PATH: &str = "/api/accounts";

/// A gate without server nonces, so each test looks at one thing.
async fn without_nonces() -> Harness {
    Harness::start_with(|config, _| config.dpop_nonce = false).await
}

fn bound_claims(h: &Harness, key: &DpopKey) -> AccessClaims {
    let mut claims = h.claims();
    claims.cnf = Some(Confirmation { jkt: key.jkt() });
    claims
}

/// The URL callers use: the gate's public URL, which defaults to its audience.
fn htu(path: &str) -> String {
    format!("{AUDIENCE}{path}")
}

fn now(h: &Harness) -> i64 {
    h.clock.now().as_secs()
}

/// A good proof for `GET /api/accounts` with `token`.
fn proof<'k>(h: &Harness, key: &'k DpopKey, token: &str) -> DpopProofBuilder<'k> {
    key.proof("GET", &htu(PATH), now(h)).ath_for(token)
}

fn assert_dpop_refusal(reply: &Reply, slug: &str, error: &str) {
    reply.assert_problem(401, slug);
    let challenge = reply.header("www-authenticate");
    assert!(challenge.starts_with(&format!(r#"DPoP realm="argus", error="{error}""#)), "{challenge}");
    assert!(challenge.contains(r#"algs="ES256 ES384 EdDSA RS256 PS256""#), "{challenge}");
}

#[tokio::test]
async fn a_bound_token_with_a_good_proof_passes_once() {
    let mut h = without_nonces().await;
    let key = DpopKey::es256();
    let token = h.token(&bound_claims(&h, &key));
    let good = proof(&h, &key, &token).build();

    let reply = h.dpop_call("GET", PATH, &token, &[&good]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.headers.get("dpop-nonce").is_none(), "no nonces configured");
    let (principal, call) = h.next_call().await;
    assert_eq!(call.decision, Decision::Allowed);
    assert_eq!(principal.jkt, Some(key.jkt()), "the event names the key");

    let replay = h.dpop_call("GET", PATH, &token, &[&good]).await;
    assert_dpop_refusal(&replay, "invalid-dpop-proof", "invalid_dpop_proof");
    let (_, call) = h.next_call().await;
    assert_eq!(call.reason.as_deref(), Some("invalid-dpop-proof"));

    // A fresh proof of the same key works again, and so does an EdDSA key.
    let again = proof(&h, &key, &token).build();
    assert_eq!(h.dpop_call("GET", PATH, &token, &[&again]).await.status, 200);
    let ed = DpopKey::ed25519();
    let ed_token = h.token(&bound_claims(&h, &ed));
    assert_eq!(h.dpop_call("GET", PATH, &ed_token, &[&proof(&h, &ed, &ed_token).build()]).await.status, 200);
    assert_eq!(h.upstream.hits(), 3);
}

#[tokio::test]
async fn proofs_that_do_not_match_the_request_token_or_key_are_refused() {
    let h = without_nonces().await;
    let key = DpopKey::es256();
    let token = h.token(&bound_claims(&h, &key));
    let other_key = DpopKey::es256();
    let t = now(&h);
    let cases: Vec<(&str, String)> = vec![
        ("wrong htm", key.proof("POST", &htu(PATH), t).ath_for(&token).build()),
        ("wrong htu path", key.proof("GET", &htu("/api/other"), t).ath_for(&token).build()),
        ("wrong htu host", key.proof("GET", &format!("http://evil.test{PATH}"), t).ath_for(&token).build()),
        ("wrong ath", key.proof("GET", &htu(PATH), t).ath_for("another token").build()),
        ("no ath", key.proof("GET", &htu(PATH), t).build()),
        ("another key (jkt mismatch)", other_key.proof("GET", &htu(PATH), t).ath_for(&token).build()),
        ("stale iat", key.proof("GET", &htu(PATH), t - 120).ath_for(&token).build()),
        ("iat in the future", key.proof("GET", &htu(PATH), t + 120).ath_for(&token).build()),
        ("bad signature", proof(&h, &key, &token).tamper_signature().build()),
        ("alg none", proof(&h, &key, &token).unsigned().build()),
        ("typ JWT", proof(&h, &key, &token).typ("JWT").build()),
        ("garbage", "not-a-proof".to_owned()),
    ];
    for (name, bad) in &cases {
        let reply = h.dpop_call("GET", PATH, &token, &[bad]).await;
        assert_eq!(reply.status, 401, "{name}");
        assert_dpop_refusal(&reply, "invalid-dpop-proof", "invalid_dpop_proof");
        assert!(!reply.body.is_empty() && !String::from_utf8_lossy(&reply.body).contains("htu"), "{name}: no detail");
    }

    let missing = h.dpop_call("GET", PATH, &token, &[]).await;
    assert_dpop_refusal(&missing, "invalid-dpop-proof", "invalid_dpop_proof");
    let (a, b) = (proof(&h, &key, &token).build(), proof(&h, &key, &token).build());
    let two = h.dpop_call("GET", PATH, &token, &[&a, &b]).await;
    assert_dpop_refusal(&two, "invalid-dpop-proof", "invalid_dpop_proof");
    assert_eq!(h.upstream.hits(), 0, "no refused call reached the upstream");

    // The proof's URL is compared after normalisation, and the query is not part of it.
    let spelled = key.proof("GET", &format!("HTTP://GATE.test:80{PATH}"), t).ath_for(&token).build();
    assert_eq!(h.dpop_call("GET", &format!("{PATH}?page=2"), &token, &[&spelled]).await.status, 200);
}

#[tokio::test]
async fn the_scheme_must_match_the_binding() {
    let mut h = without_nonces().await;
    let key = DpopKey::es256();
    let bound = h.token(&bound_claims(&h, &key));

    // A stolen DPoP-bound token is useless as a bearer token.
    let reply = h.get(PATH, Some(&bound)).await;
    assert_dpop_refusal(&reply, "token-scheme-mismatch", "invalid_token");
    let (principal, call) = h.next_call().await;
    assert_eq!((call.status, call.reason.as_deref()), (401, Some("token-scheme-mismatch")));
    assert_eq!(principal.jkt, Some(key.jkt()));

    // A plain token cannot be dressed up as DPoP, even with a good proof.
    let plain = h.good_token();
    let reply = h.dpop_call("GET", PATH, &plain, &[&proof(&h, &key, &plain).build()]).await;
    assert_dpop_refusal(&reply, "token-scheme-mismatch", "invalid_token");
    let _ = h.next_call().await;

    // An invalid token presented as DPoP is challenged in the DPoP scheme.
    let reply = h.dpop_call("GET", PATH, "not.a.jwt", &[]).await;
    reply.assert_problem(401, "invalid-token");
    assert!(reply.header("www-authenticate").starts_with(r#"DPoP realm="argus", error="invalid_token""#));

    // Plain tokens as Bearer still work, with or without a stray DPoP header.
    assert_eq!(h.get(PATH, Some(&plain)).await.status, 200);
    assert_eq!(h.upstream.hits(), 1);
}

#[tokio::test]
async fn server_nonces_are_required_then_rolled() {
    let h = Harness::start().await;
    let key = DpopKey::es256();
    let token = h.token(&bound_claims(&h, &key));

    // First call without a nonce: 401 use_dpop_nonce, with the nonce to use.
    let first = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).build()]).await;
    assert_dpop_refusal(&first, "use-dpop-nonce", "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").to_owned();

    // The retry with it passes; the nonce is still current, so no new one is sent.
    let retry = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).nonce(&nonce).build()]).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert!(retry.headers.get("dpop-nonce").is_none());

    // Once the window rolls, the old nonce still works and the answer carries the new one.
    h.clock.advance(Duration::from_secs(300));
    let token = h.token(&bound_claims(&h, &key));
    let rolled = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).nonce(&nonce).build()]).await;
    assert_eq!(rolled.status, 200, "{:?}", rolled.body);
    let fresh = rolled.header("dpop-nonce").to_owned();
    assert_ne!(fresh, nonce);

    // Two windows on, the old one is refused with the current one; made-up nonces never pass.
    h.clock.advance(Duration::from_secs(300));
    let token = h.token(&bound_claims(&h, &key));
    let stale = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).nonce(&nonce).build()]).await;
    assert_dpop_refusal(&stale, "use-dpop-nonce", "use_dpop_nonce");
    let made_up = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).nonce("made-up").build()]).await;
    assert_dpop_refusal(&made_up, "use-dpop-nonce", "use_dpop_nonce");
    let current = made_up.header("dpop-nonce");
    let ok = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, &token).nonce(current).build()]).await;
    assert_eq!(ok.status, 200);

    // A refused proof gets the nonce too, so the client's next proof can be right.
    let bad = h.dpop_call("GET", PATH, &token, &[&proof(&h, &key, "other").nonce(current).build()]).await;
    assert_dpop_refusal(&bad, "invalid-dpop-proof", "invalid_dpop_proof");
    assert_eq!(bad.header("dpop-nonce"), current);
    assert_eq!(h.upstream.hits(), 3);
}

#[tokio::test]
async fn proofs_name_the_configured_public_url() {
    let h = Harness::start_with(|config, _| {
        config.dpop_nonce = false;
        config.public_url = Some("https://api.example.com/".into());
    })
    .await;
    let key = DpopKey::es256();
    let token = h.token(&bound_claims(&h, &key));
    let t = now(&h);
    let public = key.proof("GET", &format!("https://api.example.com{PATH}"), t).ath_for(&token).build();
    assert_eq!(h.dpop_call("GET", PATH, &token, &[&public]).await.status, 200);
    let internal = key.proof("GET", &htu(PATH), t).ath_for(&token).build();
    assert_dpop_refusal(
        &h.dpop_call("GET", PATH, &token, &[&internal]).await,
        "invalid-dpop-proof",
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn a_late_started_gate_refuses_tokens_revoked_before_it_started() {
    let clock_start = argus_testkit::TEST_EPOCH;
    let revoked_before = vec![
        revocation(RevocationScope::User { sub: "alice".into() }, clock_start),
        // Long over: ignored, not held.
        argus_model::Revocation {
            until: clock_start.minus(Duration::from_secs(1)),
            ..revocation(RevocationScope::User { sub: "bob".into() }, clock_start.minus(Duration::from_secs(900)))
        },
    ];
    let h = Harness::start_full(|_, _| {}, revoked_before).await;
    // Tokens issued before the revocation are refused from the first call on.
    let mut alice = h.claims();
    alice.iat -= 10;
    let reply = h.get(PATH, Some(&h.token(&alice))).await;
    reply.assert_problem(401, "revoked-token");
    let mut bob = h.claims();
    bob.sub = "bob".into();
    assert_eq!(h.get(PATH, Some(&h.token(&bob))).await.status, 200, "an uncovered token still passes");
}
