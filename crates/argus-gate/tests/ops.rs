//! Operations of the gate over real sockets: header, first-request and body timeouts, HTTP/2 cleartext next to
//! HTTP/1.1, the client address behind trusted proxies, reloads on a live connection, and cached tokens.

mod support;

use std::time::Duration;

use argus_gate::{AuthMode, RouteConfig};
use argus_model::RevocationScope;
use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a test waits for the gate to act on a timeout before failing (the timeouts under test are 1 s).
const PATIENCE: Duration = Duration::from_secs(10);

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.gate.trim_start_matches("http://")).await.unwrap()
}

/// Whether the gate closes the connection (without a complete answer being required) within [`PATIENCE`].
async fn closed_by_gate(mut stream: TcpStream) -> bool {
    let mut sink = Vec::new();
    matches!(tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await, Ok(Ok(_) | Err(_)))
}

/// One HTTP/1.1 response read off `stream`: status, head text and body (by `Content-Length`), leaving the
/// connection usable for the next request.
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await.expect("an answer").unwrap();
        assert!(n > 0, "connection closed before a response head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await.expect("a body").unwrap();
        assert!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, head, body)
}

async fn exchange(stream: &mut TcpStream, request: &str) -> (u16, String, Vec<u8>) {
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_off_after_the_header_timeout() {
    let h = Harness::start_with(|c, _| c.header_timeout_secs = 1).await;
    let mut slow = connect(&h).await;
    slow.write_all(b"GET /public/x HTTP/1.1\r\nHost: gate\r\nX-Slow: ").await.unwrap();
    assert!(closed_by_gate(slow).await, "a slowloris head must not hold the connection");
    assert_eq!(h.upstream.hits(), 0);

    // A connection that never sends a byte, and one stuck in the middle of the HTTP/2 preface, are closed too.
    assert!(closed_by_gate(connect(&h).await).await);
    let mut preface = connect(&h).await;
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_by_gate(preface).await);

    // A prompt caller is served as usual.
    let mut prompt = connect(&h).await;
    let (status, ..) = exchange(&mut prompt, "GET /public/x HTTP/1.1\r\nHost: gate\r\n\r\n").await;
    assert_eq!(status, 200);
}

const UPLOAD_SPEC: &str = r#"
openapi: 3.1.0
info: {title: upload, version: "1"}
paths:
  /upload:
    post:
      operationId: upload
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object}
      responses: {"200": {description: ok}}
"#;

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_whichever_phase_reads_it() {
    let dir = std::env::temp_dir().join(format!("argus-gate-ops-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("upload.yaml");
    std::fs::write(&spec, UPLOAD_SPEC).unwrap();
    let mut h = Harness::start_with(move |c, upstream| {
        c.body_timeout_secs = 1;
        c.routes.push(RouteConfig {
            name: "spec".into(),
            prefix: "/spec".into(),
            upstream: upstream.into(),
            auth: AuthMode::None,
            openapi: Some(spec),
            ..RouteConfig::default()
        });
    })
    .await;
    // `/public` streams the body to the upstream; `/spec` buffers it for validation first.
    for path in ["/public/upload", "/spec/upload"] {
        let mut stream = connect(&h).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{{\"a\""
        );
        let (status, head, body) = exchange(&mut stream, &head).await;
        assert_eq!(status, 408, "{path}: {head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{head}");
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "urn:argus:problem:body-timeout", "{path}");
        let (_, call) = h.next_call().await;
        assert_eq!((call.status, call.reason.as_deref()), (408, Some("body-timeout")), "{path}");
    }

    // A body sent in time goes through.
    let mut stream = connect(&h).await;
    let (status, ..) = exchange(
        &mut stream,
        "POST /spec/upload HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert_eq!(status, 200);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn http2_prior_knowledge_and_http1_share_the_port() {
    let h = Harness::start().await;
    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let token = h.good_token();
    for (path, token, status) in
        [("/public/h2", None, 200), ("/api/accounts", Some(&token), 200), ("/api/x", None, 401)]
    {
        let mut request = Request::get(h.url(path));
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = h2.request(request.body(Full::default()).unwrap()).await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
        response.into_body().collect().await.unwrap();
    }
    // The upstream is spoken to in HTTP/1.1 with the caller's host carried over from `:authority`.
    let seen = h.upstream.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].headers.get("x-forwarded-host").is_some());
    assert_eq!(h.get("/public/h1", None).await.status, StatusCode::OK, "HTTP/1.1 on the same port");
}

async fn call_with_forwarded_for(h: &Harness, xff: &'static str) -> StatusCode {
    let request = Request::get(h.url("/public/who")).header("x-forwarded-for", xff).body(Full::default()).unwrap();
    h.client.send(request).await.status
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let mut untrusting = Harness::start().await;
    assert_eq!(call_with_forwarded_for(&untrusting, "203.0.113.5").await, StatusCode::OK);
    let (principal, _) = untrusting.next_call().await;
    assert_eq!(principal.ip.as_deref(), Some("127.0.0.1"), "a spoofed header is ignored");
    let forwarded = untrusting.upstream.last_request().unwrap().headers["x-forwarded-for"].clone();
    assert_eq!(forwarded, "203.0.113.5, 127.0.0.1", "the peer is appended either way");

    let mut behind_proxy = Harness::start_with(|c, _| c.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    assert_eq!(call_with_forwarded_for(&behind_proxy, "6.6.6.6, 203.0.113.5, 127.0.0.9").await, StatusCode::OK);
    let (principal, _) = behind_proxy.next_call().await;
    assert_eq!(principal.ip.as_deref(), Some("203.0.113.5"), "the first untrusted hop from the right");
    let forwarded = behind_proxy.upstream.last_request().unwrap().headers["x-forwarded-for"].clone();
    assert_eq!(forwarded, "6.6.6.6, 203.0.113.5, 127.0.0.9, 127.0.0.1");
}

#[tokio::test]
async fn a_reload_reaches_a_live_connection_and_a_bad_one_changes_nothing() {
    let h = Harness::start().await;
    let token = h.good_token();
    let revoked_claims = {
        let mut c = h.claims();
        c.jti = "revoked-before-reload".into();
        c
    };
    h.revoke(RevocationScope::Token { jti: revoked_claims.jti.clone() });
    let revoked = h.token(&revoked_claims);
    let mut conn = connect(&h).await;
    let get =
        |path: &str, token: &str| format!("GET {path} HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {token}\r\n\r\n");
    assert_eq!(exchange(&mut conn, &get("/v2/items", &token)).await.0, 404, "no such route yet");
    assert_eq!(exchange(&mut conn, &get("/api/accounts", &revoked)).await.0, 401);

    let mut config = h.config.clone();
    config.routes.push(RouteConfig {
        name: "v2".into(),
        prefix: "/v2".into(),
        upstream: h.upstream.url().into(),
        auth: AuthMode::Argus,
        ..RouteConfig::default()
    });
    config.header_timeout_secs = 3;
    let reloaded = h.handle.reload(&config).unwrap();
    assert_eq!(reloaded.restart_needed, ["gate.header_timeout_secs"]);
    assert_eq!(exchange(&mut conn, &get("/v2/items", &token)).await.0, 200, "same connection, new route");
    assert_eq!(exchange(&mut conn, &get("/api/accounts", &revoked)).await.0, 401, "revocations carry over");

    let mut broken = config.clone();
    broken.routes[2].upstream = "https://tls.example".into();
    let error = h.handle.reload(&broken).unwrap_err().to_string();
    assert!(error.contains("v2") && error.contains("https://tls.example"), "{error}");
    assert_eq!(exchange(&mut conn, &get("/v2/items", &token)).await.0, 200, "the running routes stay");
    assert_eq!(exchange(&mut conn, &get("/public/x", &token)).await.0, 200);
}

#[tokio::test]
async fn a_cached_token_still_expires() {
    let h = Harness::start().await;
    let token = h.good_token();
    for _ in 0..3 {
        assert_eq!(h.get("/api/accounts", Some(&token)).await.status, StatusCode::OK);
    }
    // 300 s of lifetime plus the 30 s leeway of the verifier.
    h.clock.advance(Duration::from_secs(330));
    h.get("/api/accounts", Some(&token)).await.assert_problem(401, "invalid-token");
}
