//! The gate, black-box: a real router on 127.0.0.1:0, the testkit's JWKS server and counting echo upstream.

mod support;

use std::time::Duration;

use argus_jose::Audience;
use argus_model::{Decision, RevocationScope};
use argus_testkit::{closed_port_url, forge_with_kid, mint_access_token, mint_with_typ, test_key, unsigned_token};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::{Harness, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INVALID_TOKEN_CHALLENGE: &str =
    r#"Bearer realm="argus", error="invalid_token", error_description="The access token is invalid or expired""#;

#[tokio::test]
async fn a_good_token_is_proxied_with_body_headers_and_request_id() {
    let mut h = Harness::start().await;
    let claims = h.claims();
    let token = h.token(&claims);
    let request = Request::post(h.url("/api/things/7?x=1&y=%2F"))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "argus-test/1")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-request-id", "caller-id-1")
        .header("connection", "x-hop")
        .header("x-hop", "only for the gate")
        .header("x-echo-hop-by-hop", "1")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"hello upstream")))
        .unwrap();
    let reply = h.client.send(request).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let echo = reply.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/api/things/7", "the path is passed through unchanged");
    assert_eq!(echo["query"], "x=1&y=%2F");
    assert_eq!(echo["body"], "hello upstream");
    let sent = &echo["headers"];
    assert_eq!(sent["authorization"][0], format!("Bearer {token}"), "Authorization is forwarded unchanged");
    assert_eq!(sent["x-forwarded-for"][0], "203.0.113.9, 127.0.0.1");
    assert_eq!(sent["x-forwarded-proto"][0], "http");
    assert_eq!(sent["x-forwarded-host"][0], h.gate.trim_start_matches("http://"));
    assert_eq!(sent["x-request-id"][0], "caller-id-1");
    assert_eq!(sent["user-agent"][0], "argus-test/1");
    assert!(sent.get("x-hop").is_none() && sent.get("connection").is_none(), "hop-by-hop headers stripped: {sent}");

    // The upstream's hop-by-hop headers stop at the gate too; the request id comes back.
    assert_eq!(reply.header("x-request-id"), "caller-id-1");
    assert!(reply.headers.get("x-echo-private").is_none() && reply.headers.get("keep-alive").is_none());
    assert_eq!(reply.header("content-type"), "application/json");

    let (principal, call) = h.next_call().await;
    assert_eq!((call.status, call.decision, call.reason.as_deref()), (200, Decision::Allowed, None));
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", "/api/things/7"));
    assert_eq!(call.route.as_deref(), Some("api"));
    assert_eq!(call.request_id, "caller-id-1");
    assert_eq!(call.bytes_in, 14);
    assert_eq!(call.bytes_out, reply.body.len() as u64, "bytes_out counts what the caller received");
    assert_eq!(principal.sub.as_deref(), Some("alice"));
    assert_eq!(principal.client_id.as_deref(), Some("demo-app"));
    assert_eq!(principal.sid, claims.sid);
    assert_eq!(principal.jti.as_deref(), Some(claims.jti.as_str()));
    assert_eq!(principal.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(principal.user_agent.as_deref(), Some("argus-test/1"));
    h.no_more_events().await;
}

#[tokio::test]
async fn a_new_request_id_is_made_when_none_or_a_bad_one_comes_in() {
    let mut h = Harness::start().await;
    let token = h.good_token();
    let first = h.get("/api/x", Some(&token)).await;
    let request = Request::get(h.url("/api/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", "not a sane id; drop table")
        .body(Full::default())
        .unwrap();
    let second = h.client.send(request).await;
    let (a, b) = (first.header("x-request-id"), second.header("x-request-id"));
    assert!(!a.is_empty() && a != b && !b.contains(' '));
    assert_eq!(first.json()["headers"]["x-request-id"][0], a, "the upstream sees the same id");
    assert_eq!(h.next_call().await.1.request_id, a);
    assert_eq!(h.next_call().await.1.request_id, b);
}

#[tokio::test]
async fn bad_or_missing_tokens_are_401_and_never_reach_the_upstream() {
    let mut h = Harness::start().await;
    let now = h.clock_now_secs();
    let expired = {
        let mut c = h.claims();
        c.iat = now - 900;
        c.exp = now - 600;
        h.token(&c)
    };
    let wrong_issuer = {
        let mut c = h.claims();
        c.iss = "http://evil.test".into();
        h.token(&c)
    };
    let wrong_audience = {
        let mut c = h.claims();
        c.aud = Audience::Many(vec!["http://other-api.test".into()]);
        h.token(&c)
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("malformed", Some("Bearer not.a.jwt".into()), "invalid-token"),
        ("garbage", Some("Bearer %%%".into()), "invalid-token"),
        ("expired", Some(format!("Bearer {expired}")), "invalid-token"),
        ("wrong issuer", Some(format!("Bearer {wrong_issuer}")), "invalid-token"),
        ("wrong audience", Some(format!("Bearer {wrong_audience}")), "invalid-token"),
        (
            "wrong signature",
            Some(format!("Bearer {}", forge_with_kid(&test_key(), h.key.kid(), &h.claims()))),
            "invalid-token",
        ),
        ("id_token (typ JWT)", Some(format!("Bearer {}", mint_with_typ(&h.key, "JWT", &h.claims()))), "invalid-token"),
        ("alg none", Some(format!("Bearer {}", unsigned_token(h.key.kid(), &h.claims()))), "invalid-token"),
        ("empty bearer", Some("Bearer ".into()), "invalid-token"),
        ("missing", None, "missing-token"),
        ("other scheme", Some("Basic YWxpY2U6cHc=".into()), "missing-token"),
    ];
    for (name, authorization, slug) in cases {
        let mut request = Request::get(h.url("/api/accounts"));
        if let Some(a) = &authorization {
            request = request.header("authorization", a);
        }
        let reply = h.client.send(request.body(Full::default()).unwrap()).await;
        let problem = reply.assert_problem(401, slug);
        let challenge = reply.header("www-authenticate");
        if slug == "missing-token" {
            assert_eq!(challenge, r#"Bearer realm="argus""#, "{name}");
            let dpop_offered = r#"DPoP realm="argus", algs="ES256 ES384 EdDSA RS256 PS256""#;
            assert_eq!(reply.header_values("www-authenticate"), [challenge, dpop_offered], "{name}: both schemes");
        } else {
            assert_eq!(challenge, INVALID_TOKEN_CHALLENGE, "{name}: one generic description for every reason");
        }
        let text = problem.to_string();
        for leak in [h.key.kid(), "signature", "audience", "issuer", "kid"] {
            assert!(!text.contains(leak), "{name}: problem leaks {leak:?}: {text}");
        }

        let (principal, call) = h.next_call().await;
        assert_eq!(
            (call.status, call.decision, call.reason.as_deref()),
            (401, Decision::Refused, Some(slug)),
            "{name}"
        );
        assert!(principal.sub.is_none() && principal.jti.is_none(), "{name}: no principal from an unverified token");
        assert_eq!(principal.ip.as_deref(), Some("127.0.0.1"));
    }
    assert_eq!(h.upstream.hits(), 0, "no refused call reached the upstream");
    assert_eq!(h.jwks.jwks_fetches(), 1, "only the well-formed tokens with the known kid needed the keys");
    h.no_more_events().await;
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let mut h = Harness::start().await;
    let token = h.good_token();
    let request = Request::get(h.url("/api/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer other")
        .body(Full::default())
        .unwrap();
    let reply = h.client.send(request).await;
    reply.assert_problem(400, "invalid-request");
    assert!(reply.header("www-authenticate").contains(r#"error="invalid_request""#));
    assert_eq!(h.upstream.hits(), 0);
    assert_eq!(h.next_call().await.1.reason.as_deref(), Some("invalid-request"));
}

#[tokio::test]
async fn a_missing_scope_is_403_with_the_needed_scope() {
    let mut h = Harness::start().await;
    let mut claims = h.claims();
    claims.scope = "openid profile".into();
    let token = h.token(&claims);

    let reply = h.get("/api/accounts/42", Some(&token)).await;
    reply.assert_problem(403, "insufficient-scope");
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="argus", error="insufficient_scope", error_description="The access token lacks a required scope", scope="accounts:read""#
    );
    let (principal, call) = h.next_call().await;
    assert_eq!((call.status, call.reason.as_deref()), (403, Some("insufficient-scope")));
    assert_eq!(principal.sub.as_deref(), Some("alice"), "the token verified: its principal is known");
    assert_eq!(h.upstream.hits(), 0);

    // Rules are per method and segment-bounded; no matching rule needs only a valid token.
    assert_eq!(h.get("/api/accountsx", Some(&token)).await.status, 200);
    let post = Request::post(h.url("/api/accounts")).header("authorization", format!("Bearer {token}"));
    assert_eq!(h.client.send(post.body(Full::default()).unwrap()).await.status, 200);
    claims.scope = "openid accounts:read".into();
    assert_eq!(h.get("/api/accounts/42", Some(&h.token(&claims))).await.status, 200);
    assert_eq!(h.upstream.hits(), 3);
}

#[tokio::test]
async fn a_published_revocation_refuses_the_same_token_on_the_next_call() {
    let mut h = Harness::start().await;
    let alice = h.claims();
    let alice_token = h.token(&alice);
    let mut bob = h.claims();
    bob.sub = "bob".into();
    let bob_token = h.token(&bob);

    assert_eq!(h.get("/api/x", Some(&alice_token)).await.status, 200);
    h.revoke(RevocationScope::Token { jti: alice.jti.clone() });
    // No pause: the gate applies what was published before the call arrived.
    let reply = h.get("/api/x", Some(&alice_token)).await;
    reply.assert_problem(401, "revoked-token");
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="argus", error="invalid_token", error_description="The access token has been revoked""#
    );
    assert_eq!(h.get("/api/x", Some(&bob_token)).await.status, 200, "another user's token still works");
    assert_eq!(h.upstream.hits(), 2);

    let _ = h.next_call().await;
    let (principal, call) = h.next_call().await;
    assert_eq!((call.status, call.decision, call.reason.as_deref()), (401, Decision::Refused, Some("revoked-token")));
    assert_eq!(principal.jti.as_deref(), Some(alice.jti.as_str()));
    assert_eq!(h.next_call().await.1.status, 200);
}

#[tokio::test]
async fn session_user_and_client_revocations_cover_tokens_issued_before() {
    let h = Harness::start().await;
    let token_for = |sub: &str, client: &str, sid: &str| {
        let mut c = h.claims();
        c.sub = sub.into();
        c.client_id = client.into();
        c.sid = Some(sid.into());
        h.token(&c)
    };
    let cases = [
        (RevocationScope::Session { sid: "s-1".into() }, ("u1", "app-1", "s-1"), ("u1", "app-1", "s-2")),
        (RevocationScope::User { sub: "u2".into() }, ("u2", "app-2", "s-3"), ("u3", "app-2", "s-4")),
        (RevocationScope::Client { client_id: "app-3".into() }, ("u4", "app-3", "s-5"), ("u4", "app-4", "s-6")),
        (
            RevocationScope::Grant { sub: "u5".into(), client_id: "app-5".into() },
            ("u5", "app-5", "s-7"),
            ("u5", "app-6", "s-8"),
        ),
    ];
    for (scope, (sub, client, sid), (other_sub, other_client, other_sid)) in cases {
        let covered = token_for(sub, client, sid);
        let other = token_for(other_sub, other_client, other_sid);
        assert_eq!(h.get("/api/x", Some(&covered)).await.status, 200, "{scope:?}");
        h.revoke(scope.clone());
        h.get("/api/x", Some(&covered)).await.assert_problem(401, "revoked-token");
        assert_eq!(h.get("/api/x", Some(&other)).await.status, 200, "{scope:?}: other keys unaffected");
    }

    // A sign-in after "revoke all my tokens" is not locked out.
    h.clock.advance(Duration::from_secs(2));
    assert_eq!(h.get("/api/x", Some(&token_for("u2", "app-2", "s-9"))).await.status, 200);
    assert_eq!(h.get("/api/x", Some(&token_for("u1", "app-1", "s-1"))).await.status, 200);
}

#[tokio::test]
async fn an_unknown_kid_after_key_rotation_refetches_once_and_succeeds() {
    let mut h = Harness::start().await;
    assert_eq!(h.get("/api/x", Some(&h.good_token())).await.status, 200);
    assert_eq!(h.jwks.jwks_fetches(), 1);
    assert_eq!(h.get("/api/x", Some(&h.good_token())).await.status, 200);
    assert_eq!(h.jwks.jwks_fetches(), 1, "known keys are cached");

    let rotated = test_key();
    h.jwks.set_keys(vec![h.key.public_jwk().clone(), rotated.public_jwk().clone()]);
    h.clock.advance(Duration::from_secs(10));
    let token = mint_access_token(&rotated, &h.claims());
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (caller, token, url) = (h.client.clone(), token.clone(), h.url("/api/x"));
            tokio::spawn(async move {
                let request = Request::get(url).header("authorization", format!("Bearer {token}"));
                caller.send(request.body(Full::default()).unwrap()).await.status
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(h.jwks.jwks_fetches(), 2, "eight concurrent calls, one refetch");

    // Made-up kids do not make the gate hammer the issuer: at most one refetch per jwks_min_refresh_secs.
    let stranger = || mint_access_token(&test_key(), &h.claims());
    h.get("/api/x", Some(&stranger())).await.assert_problem(401, "invalid-token");
    assert_eq!(h.jwks.jwks_fetches(), 2, "the keys were fetched a moment ago");
    h.clock.advance(Duration::from_secs(10));
    for _ in 0..4 {
        h.get("/api/x", Some(&stranger())).await.assert_problem(401, "invalid-token");
    }
    assert_eq!(h.jwks.jwks_fetches(), 3, "four made-up kids, one refetch");
    assert_eq!(h.jwks.discovery_fetches(), 1);
    for _ in 0..(2 + 8 + 5) {
        h.next_call().await;
    }
    h.no_more_events().await;
}

#[tokio::test]
async fn unreachable_keys_are_503_not_401() {
    let mut h = Harness::start().await;
    h.jwks.set_available(false);
    let token = h.good_token();
    let reply = h.get("/api/x", Some(&token)).await;
    reply.assert_problem(503, "jwks-unavailable");
    assert!(reply.headers.get("www-authenticate").is_none(), "not a token problem");
    assert_eq!(h.upstream.hits(), 0);
    assert_eq!(h.next_call().await.1.reason.as_deref(), Some("jwks-unavailable"));

    h.jwks.set_available(true);
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.get("/api/x", Some(&token)).await.status, 200, "recovers once the issuer answers");
}

#[tokio::test]
async fn upstream_down_is_502_without_internals() {
    let dead = closed_port_url();
    let mut h = Harness::start_with(|config, _| config.routes[0].upstream = dead.clone()).await;
    let reply = h.get("/api/x", Some(&h.good_token())).await;
    let problem = reply.assert_problem(502, "upstream-unavailable");
    let port = dead.rsplit(':').next().unwrap();
    assert!(!problem.to_string().contains(port), "the upstream address is not revealed: {problem}");
    let (_, call) = h.next_call().await;
    assert_eq!(
        (call.status, call.decision, call.reason.as_deref()),
        (502, Decision::Refused, Some("upstream-unavailable"))
    );
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let mut h = Harness::start_with(|config, _| config.upstream_timeout_secs = 1).await;
    let request = Request::get(h.url("/api/slow"))
        .header("authorization", format!("Bearer {}", h.good_token()))
        .header("x-echo-delay-ms", "3000")
        .body(Full::default())
        .unwrap();
    h.client.send(request).await.assert_problem(504, "upstream-timeout");
    assert_eq!(h.next_call().await.1.reason.as_deref(), Some("upstream-timeout"));
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let mut h = Harness::start_with(|config, _| config.max_body_bytes = 16).await;
    let token = h.good_token();
    let upload = h.url("/api/upload");
    let post = |body: &'static [u8]| {
        Request::post(&upload)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    h.client.send(post(b"seventeen bytes!!")).await.assert_problem(413, "body-too-large");
    assert_eq!(h.upstream.hits(), 0, "a declared oversize body is refused before the upstream");
    assert_eq!(h.next_call().await.1.reason.as_deref(), Some("body-too-large"));

    let reply = h.client.send(post(b"exactly 16 bytes")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(h.next_call().await.1.bytes_in, 16);

    // A chunked body has no declared length: it is cut off while streaming, and the upstream never gets it whole.
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: gate\r\nauthorization: Bearer {token}\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\n\r\n"
    );
    let reply =
        raw_exchange(&h.gate, &[head.as_bytes(), b"a\r\n0123456789\r\n", b"a\r\n0123456789\r\n0\r\n\r\n"]).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("urn:argus:problem:body-too-large"), "{reply}");
    assert_eq!(h.upstream.requests().len(), 1, "only the 16-byte body arrived complete");
    let (_, call) = h.next_call().await;
    assert_eq!((call.status, call.reason.as_deref()), (413, Some("body-too-large")));
}

/// Write `parts` to the gate over one connection, pausing between them, and read the whole answer.
async fn raw_exchange(gate: &str, parts: &[&[u8]]) -> String {
    let mut stream = tokio::net::TcpStream::connect(gate.trim_start_matches("http://")).await.unwrap();
    for part in parts {
        stream.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn no_route_is_404_and_ambiguous_paths_are_400() {
    let mut h = Harness::start().await;
    let token = h.good_token();
    for path in ["/", "/apix", "/other/api"] {
        h.get(path, Some(&token)).await.assert_problem(404, "no-route");
        let (_, call) = h.next_call().await;
        assert_eq!((call.status, call.route, call.reason.as_deref()), (404, None, Some("no-route")));
    }
    for path in ["/public/../api/accounts", "/api/%2e%2e/x", "/public/x%2Fy", "//api/accounts"] {
        h.get(path, None).await.assert_problem(400, "invalid-path");
        assert_eq!(h.next_call().await.1.reason.as_deref(), Some("invalid-path"));
    }
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test]
async fn a_public_route_needs_no_token() {
    let mut h = Harness::start().await;
    let reply = h.get("/public/status", None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.json()["headers"].get("authorization").is_none());
    let (principal, call) = h.next_call().await;
    assert_eq!((call.decision, call.route.as_deref()), (Decision::Allowed, Some("public")));
    assert!(principal.sub.is_none());
    // The longest prefix decides: /publicity is under "/" of nothing here, so no route.
    h.get("/publicity", None).await.assert_problem(404, "no-route");
}

#[tokio::test]
async fn each_call_emits_exactly_one_event_with_its_decision() {
    let mut h = Harness::start().await;
    let token = h.good_token();
    let mut no_scope = h.claims();
    no_scope.scope = String::new();
    let no_scope = h.token(&no_scope);
    let big = Request::get(h.url("/api/big"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-echo-bytes", "300000")
        .body(Full::default())
        .unwrap();

    let replies: Vec<Reply> = vec![
        h.get("/api/a", Some(&token)).await,
        h.get("/api/accounts", Some(&no_scope)).await,
        h.get("/api/a", None).await,
        h.get("/nowhere", None).await,
        h.client.send(big).await,
        h.get("/public/a", None).await,
    ];
    let expected = [
        (200, Decision::Allowed, None),
        (403, Decision::Refused, Some("insufficient-scope")),
        (401, Decision::Refused, Some("missing-token")),
        (404, Decision::Refused, Some("no-route")),
        (200, Decision::Allowed, None),
        (200, Decision::Allowed, None),
    ];
    for (reply, (status, decision, reason)) in replies.iter().zip(expected) {
        let (_, call) = h.next_call().await;
        assert_eq!((call.status, call.decision, call.reason.as_deref()), (status, decision, reason));
        assert_eq!(call.request_id, reply.header("x-request-id"));
        assert_eq!(call.bytes_out, reply.body.len() as u64, "{}: exact bytes out", call.path);
    }
    assert_eq!(replies[4].body.len(), 300_000, "a large body streams through whole");
    h.no_more_events().await;
}

#[tokio::test]
async fn bad_configurations_are_refused_at_start() {
    use argus_bus::{ControlChannel, EventBus};
    use argus_gate::{GateConfig, GateDeps, GateError};
    let deps = |secret: &[u8]| GateDeps {
        events: EventBus::new(4),
        control: ControlChannel::new(4),
        clock: std::sync::Arc::new(argus_testkit::FakeClock::default()),
        initial_revocations: Vec::new(),
        initial_blocks: Vec::new(),
        initial_step_ups: Vec::new(),
        dpop_nonce_secret: secret.to_vec(),
        replay: std::sync::Arc::new(argus_cache::MemoryReplayCache::default()),
    };
    let build = |config: GateConfig, issuer: &'static str| async move {
        argus_gate::router(&config, issuer, "aud", deps(support::NONCE_SECRET)).await.map(|_| ())
    };
    let good = GateConfig { routes: support::routes("http://127.0.0.1:9"), ..GateConfig::default() };
    assert!(build(good.clone(), "http://127.0.0.1:7400").await.is_ok());
    assert!(good.check().is_ok());
    assert!(matches!(build(good.clone(), "https://issuer.example").await, Err(GateError::Issuer(_))));

    let mut bad = good.clone();
    bad.routes[1].upstream = "https://api.example".into();
    let err = bad.check().unwrap_err();
    assert!(matches!(err, GateError::Upstream { .. }) && err.to_string().contains("public"), "{err}");

    let mut bad = good.clone();
    bad.routes[1].prefix = "/api/".into();
    assert!(matches!(bad.check(), Err(GateError::Routes(_))));

    let bad = GateConfig { upstream_timeout_secs: 0, ..good.clone() };
    assert!(matches!(bad.check(), Err(GateError::Zero("upstream_timeout_secs"))));
    let bad = GateConfig { dpop_proof_max_age_secs: 0, ..good.clone() };
    assert!(matches!(bad.check(), Err(GateError::Zero("dpop_proof_max_age_secs"))));
    let bad = GateConfig { public_url: Some("gate.example".into()), ..good.clone() };
    assert!(matches!(bad.check(), Err(GateError::PublicUrl(_))));

    // Nonces need a secret nobody can guess; without nonces none is needed.
    let short = argus_gate::router(&good, "http://127.0.0.1:7400", "aud", deps(b"short")).await;
    assert!(matches!(short, Err(GateError::NonceSecret)));
    let no_nonces = GateConfig { dpop_nonce: false, ..good };
    assert!(argus_gate::router(&no_nonces, "http://127.0.0.1:7400", "aud", deps(b"")).await.is_ok());
}

trait ClockSecs {
    fn clock_now_secs(&self) -> i64;
}

impl ClockSecs for Harness {
    fn clock_now_secs(&self) -> i64 {
        use argus_model::Clock;
        self.clock.now().as_secs()
    }
}
