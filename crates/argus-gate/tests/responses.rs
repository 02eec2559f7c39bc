//! Response checking end to end: the real gate in front of an upstream that over-shares. One spec, three routes
//! (`/log`, `/block`, `/off`), each with its `responses` mode.

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use argus_gate::{AuthMode, ResponseMode, RouteConfig};
use argus_model::ResponseCheck;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper::body::Frame;
use support::{Harness, Reply};

const SPEC: &str = r##"
openapi: 3.1.0
info: {title: users, version: "1"}
paths:
  /users:
    get:
      operationId: listUsers
      security: [{oauth2: [users:read]}]
      x-argus-sensitive: true
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/User"}}
  /users/{id}:
    get:
      operationId: getUser
      security: [{oauth2: [users:read]}]
      parameters: [{name: id, in: path, required: true, schema: {type: integer, minimum: 1}}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
        "404":
          description: no such user
          content:
            application/problem+json:
              schema: {type: object, properties: {title: {type: string}, status: {type: integer}}}
components:
  schemas:
    User:
      type: object
      required: [id, name]
      properties:
        id: {type: integer}
        name: {type: string}
  securitySchemes:
    oauth2:
      type: oauth2
      flows: {clientCredentials: {tokenUrl: "http://127.0.0.1:7400/token", scopes: {users:read: r}}}
"##;

/// The secret the upstream leaks: it must never reach a caller of a `block` route.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

/// An upstream answering per user id, whatever route prefix the gate passed through.
async fn upstream(uri: Uri) -> Response {
    let id = uri.path().rsplit('/').next().unwrap_or("");
    let json = |status: u16, content_type: &str, body: String| {
        Response::builder().status(status).header("content-type", content_type).body(Body::from(body)).unwrap()
    };
    match id {
        "users" => {
            json(200, "application/json", r#"[{"id":1,"name":"a"},{"id":2,"name":"b","ssn":"078-05-1120"}]"#.into())
        }
        "1" => json(200, "application/json", format!(r#"{{"id":1,"name":"ann","password_hash":"{HASH}"}}"#)),
        "2" => json(200, "application/json; charset=utf-8", r#"{"id":2,"name":"bob"}"#.into()),
        "3" => json(500, "text/html", format!("<pre>panic at users.rs:12 hash={HASH}</pre>")),
        // No Content-Length: `log` lets it stream unread, `block` must read it.
        "4" => Response::builder()
            .header("content-type", "application/json")
            .body(Body::new(Chunked(Some(Bytes::from(format!(r#"{{"id":4,"name":"d","hash":"{HASH}"}}"#))))))
            .unwrap(),
        "5" => Response::builder()
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Body::from(&b"\x1f\x8b not really"[..]))
            .unwrap(),
        // A client that keeps the first key reads a different object than a checker keeping the last.
        "7" => json(200, "application/json", format!(r#"{{"id":7,"name":"{HASH}","name":"g"}}"#)),
        "8" => json(404, "application/problem+json", r#"{"title":"Not found","status":404}"#.into()),
        "9" => json(200, "application/json", r#"{"id":"nine","name":"i"}"#.into()),
        _ => json(200, "application/json", "{}".into()),
    }
}

/// A one-frame body of unknown length: sent chunked.
struct Chunked(Option<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|b| Ok(Frame::data(b))))
    }
}

async fn gate() -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(upstream)).await });
    let dir = std::env::temp_dir().join(format!("argus-gate-responses-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("users.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    Harness::start_with(move |config, _| {
        for (name, responses) in
            [("log", ResponseMode::Log), ("block", ResponseMode::Block), ("off", ResponseMode::Off)]
        {
            config.routes.push(RouteConfig {
                name: name.into(),
                prefix: format!("/{name}"),
                upstream: url.clone(),
                auth: AuthMode::Argus,
                openapi: Some(spec.clone()),
                responses,
                ..RouteConfig::default()
            });
        }
    })
    .await
}

async fn call(h: &Harness, method: &str, path: &str) -> Reply {
    let mut claims = h.claims();
    claims.scope = "users:read".into();
    let request = Request::builder()
        .method(method)
        .uri(h.url(path))
        .header("authorization", format!("Bearer {}", h.token(&claims)))
        .body(Full::<Bytes>::default())
        .unwrap();
    h.client.send(request).await
}

fn flagged(fields: &[&str]) -> Option<ResponseCheck> {
    Some(ResponseCheck { undeclared_fields: fields.iter().map(|f| (*f).to_owned()).collect(), ..Default::default() })
}

#[tokio::test]
async fn log_passes_the_answer_and_flags_the_event_with_field_names() {
    let mut h = gate().await;
    let over = call(&h, "GET", "/log/users/1").await;
    assert_eq!(over.status, 200);
    assert!(String::from_utf8_lossy(&over.body).contains(HASH), "log changes nothing for the caller");
    let (_, event) = h.next_call().await;
    assert_eq!(event.response_check, flagged(&["/password_hash"]));
    assert_eq!((event.status, event.reason), (200, None));

    assert_eq!(call(&h, "GET", "/log/users/2").await.status, 200);
    assert_eq!(h.next_call().await.1.response_check, None, "a conforming answer is not flagged");

    let crash = call(&h, "GET", "/log/users/3").await;
    assert_eq!((crash.status.as_u16(), crash.header("content-type")), (500, "text/html"));
    let undocumented = Some(ResponseCheck { undocumented: true, ..Default::default() });
    assert_eq!(h.next_call().await.1.response_check, undocumented);

    assert_eq!(call(&h, "GET", "/log/users/8").await.status, 404);
    assert_eq!(h.next_call().await.1.response_check, None, "a declared problem answer");

    let wrong = call(&h, "GET", "/log/users/9").await;
    assert_eq!(wrong.status, 200);
    let check = h.next_call().await.1.response_check.expect("flagged");
    assert_eq!((check.other_violations, check.undeclared_fields.len(), check.blocked), (1, 0, false));

    // Unknown length: `log` does not hold the answer back to read it.
    assert!(String::from_utf8_lossy(&call(&h, "GET", "/log/users/4").await.body).contains(HASH));
    assert_eq!(h.next_call().await.1.response_check, None);

    let list = call(&h, "GET", "/log/users").await;
    assert_eq!(list.status, 200);
    let (_, event) = h.next_call().await;
    assert_eq!((event.records, event.response_check), (Some(2), flagged(&["/1/ssn"])));
}

#[tokio::test]
async fn block_withholds_every_answer_the_spec_does_not_declare() {
    let mut h = gate().await;
    for (id, expected) in [
        ("1", flagged(&["/password_hash"])),
        ("3", Some(ResponseCheck { undocumented: true, ..Default::default() })),
        ("4", flagged(&["/hash"])),
        ("5", Some(ResponseCheck { unchecked: true, ..Default::default() })),
        ("7", Some(ResponseCheck { other_violations: 1, ..Default::default() })),
        ("9", Some(ResponseCheck { other_violations: 1, ..Default::default() })),
    ] {
        let reply = call(&h, "GET", &format!("/block/users/{id}")).await;
        reply.assert_problem(502, "undeclared-response-data");
        let body = String::from_utf8_lossy(&reply.body);
        assert!(!body.contains("argon2") && !body.contains("hash") && !body.contains("panic"), "{id}: {body}");
        assert!(reply.headers.get("content-encoding").is_none(), "{id}: no upstream header survives");
        let (_, event) = h.next_call().await;
        assert_eq!((event.status, event.reason.as_deref()), (502, Some("undeclared-response-data")), "{id}");
        assert_eq!(event.response_check, expected.map(|c| ResponseCheck { blocked: true, ..c }), "{id}");
    }
    let good = call(&h, "GET", "/block/users/2").await;
    assert_eq!((good.status.as_u16(), &good.body[..]), (200, &br#"{"id":2,"name":"bob"}"#[..]));
    assert_eq!(call(&h, "GET", "/block/users/8").await.status, 404, "declared error answers pass");
    let head = call(&h, "HEAD", "/block/users/2").await;
    assert_eq!((head.status.as_u16(), head.body.len()), (200, 0), "HEAD has no body to check");
    for _ in 0..3 {
        let (_, event) = h.next_call().await;
        assert_eq!((event.response_check, event.reason), (None, None));
    }
    call(&h, "GET", "/block/users").await.assert_problem(502, "undeclared-response-data");
    let (_, event) = h.next_call().await;
    assert_eq!(event.response_check.map(|c| c.undeclared_fields), Some(vec!["/1/ssn".to_owned()]));
}

#[tokio::test]
async fn off_checks_nothing_but_still_counts_sensitive_records() {
    let mut h = gate().await;
    let reply = call(&h, "GET", "/off/users/1").await;
    assert!(reply.status == 200 && String::from_utf8_lossy(&reply.body).contains(HASH));
    assert_eq!(h.next_call().await.1.response_check, None);
    assert_eq!(call(&h, "GET", "/off/users").await.status, 200);
    let (_, event) = h.next_call().await;
    assert_eq!((event.records, event.response_check), (Some(2), None));
}

#[test]
fn block_needs_a_spec() {
    let config = argus_gate::GateConfig {
        routes: vec![RouteConfig {
            name: "blind".into(),
            prefix: "/".into(),
            upstream: "http://127.0.0.1:9".into(),
            responses: ResponseMode::Block,
            ..RouteConfig::default()
        }],
        ..argus_gate::GateConfig::default()
    };
    let error = config.check().unwrap_err().to_string();
    assert!(error.contains("\"blind\"") && error.contains("block"), "{error}");
}
