//! A route driven by its OpenAPI spec, end to end: the real gate on 127.0.0.1:0 in front of the echo upstream.

mod support;

use std::time::Duration;

use argus_gate::{AuthMode, RouteConfig};
use argus_model::{Block, BlockTarget, ControlMessage};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::{Harness, Reply};

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: shop, version: "1"}
paths:
  /users/{owner}/orders/{id}:
    get:
      operationId: getOrder
      security: [{oauth2: [orders:read]}]
      x-argus-rule: "params.owner == token.sub"
      parameters:
        - {name: owner, in: path, required: true, schema: {type: string, pattern: "^[a-z0-9-]{1,64}$"}}
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
        - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
        - {name: day, in: query, schema: {type: string, format: date}}
        - {name: ref, in: query, schema: {type: string, format: uuid}}
      responses: {"200": {description: ok}}
  /orders:
    post:
      operationId: createOrder
      security: [{oauth2: [orders:write]}, {oauth2: [orders:admin]}]
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [qty]
              properties:
                qty: {type: integer, minimum: 1, maximum: 100}
                note: {type: string, maxLength: 50}
      responses: {"201": {description: created}}
  /payments:
    post:
      operationId: pay
      security: [{oauth2: [orders:write]}]
      x-argus-step-up: {acr: "urn:argus:acr:mfa", max_age: 300}
      responses: {"200": {description: ok}}
  /admin/export:
    get:
      operationId: exportAll
      security: [{oauth2: [orders:read]}]
      x-argus-decoy: true
      responses: {"200": {description: ok}}
  /health:
    get:
      operationId: health
      security: []
      x-argus-rate-limit: {per_ip: "2/min"}
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: http://127.0.0.1:7400/token
          scopes: {orders:read: r, orders:write: w, orders:admin: a}
"#;

/// A gate whose `/shop` route is described by [`SPEC`], next to the default routes.
async fn shop() -> Harness {
    let dir = std::env::temp_dir().join(format!("argus-gate-openapi-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("shop.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    Harness::start_with(move |config, upstream| {
        config.routes.push(RouteConfig {
            name: "shop".into(),
            prefix: "/shop".into(),
            upstream: upstream.into(),
            auth: AuthMode::Argus,
            openapi: Some(spec),
            ..RouteConfig::default()
        });
    })
    .await
}

fn token_with(h: &Harness, scope: &str) -> String {
    let mut claims = h.claims();
    claims.scope = scope.into();
    h.token(&claims)
}

async fn call(h: &Harness, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(h.url(path));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
    h.client.send(request.body(body).unwrap()).await
}

#[tokio::test]
async fn unknown_operations_are_404_and_405_with_allow() {
    let mut h = shop().await;
    let t = token_with(&h, "orders:read");
    call(&h, "GET", "/shop/nothing/here", Some(&t), None).await.assert_problem(404, "no-operation");
    let reply = call(&h, "DELETE", "/shop/orders", Some(&t), None).await;
    reply.assert_problem(405, "method-not-allowed");
    assert_eq!(reply.header("allow"), "POST");
    assert_eq!(h.upstream.hits(), 0);
    let (_, event) = h.next_call().await;
    assert_eq!((event.route.as_deref(), event.reason.as_deref()), (Some("shop"), Some("no-operation")));
}

#[tokio::test]
async fn scopes_come_from_security_and_anonymous_operations_need_no_token() {
    let mut h = shop().await;
    let read_only = token_with(&h, "orders:read");
    let reply = call(&h, "POST", "/shop/orders", Some(&read_only), Some(r#"{"qty":1}"#)).await;
    reply.assert_problem(403, "insufficient-scope");
    assert!(reply.header("www-authenticate").ends_with(r#"scope="orders:write""#));
    // The second alternative of `security` is enough on its own.
    let admin = token_with(&h, "orders:admin");
    assert_eq!(call(&h, "POST", "/shop/orders", Some(&admin), Some(r#"{"qty":1}"#)).await.status, 200);
    call(&h, "POST", "/shop/orders", None, Some(r#"{"qty":1}"#)).await.assert_problem(401, "missing-token");
    assert_eq!(call(&h, "GET", "/shop/health", None, None).await.status, 200);
    assert_eq!(h.upstream.hits(), 2);
    let _ = h.next_call().await;
    let (_, allowed) = h.next_call().await;
    assert_eq!(allowed.operation_id.as_deref(), Some("createOrder"));
    assert_eq!(allowed.path_template.as_deref(), Some("/orders"));
}

#[tokio::test]
async fn ownership_rule_allows_own_objects_and_denies_others() {
    let mut h = shop().await;
    let t = token_with(&h, "orders:read");
    let own = call(&h, "GET", "/shop/users/alice/orders/7", Some(&t), None).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    call(&h, "GET", "/shop/users/bob/orders/7", Some(&t), None).await.assert_problem(403, "rule-denied");
    assert_eq!(h.upstream.hits(), 1);
    let (_, allowed) = h.next_call().await;
    assert_eq!(allowed.object_ids, [("owner".to_owned(), "alice".to_owned()), ("id".to_owned(), "7".to_owned())]);
    let (_, denied) = h.next_call().await;
    assert_eq!((denied.status, denied.reason.as_deref()), (403, Some("rule-false")));
}

#[tokio::test]
async fn inputs_are_validated_before_the_upstream() {
    let h = shop().await;
    let r = token_with(&h, "orders:read");
    let w = token_with(&h, "orders:write");
    let typed = call(&h, "GET", "/shop/users/alice/orders/1%20OR%201=1", Some(&r), None).await;
    let problem = typed.assert_problem(400, "invalid-request");
    assert_eq!(problem["invalid_params"][0]["in"], "path");
    assert_eq!(problem["invalid_params"][0]["name"], "id");
    assert!(!String::from_utf8_lossy(&typed.body).contains("OR 1=1"), "the value is never echoed");
    let unknown_query = call(&h, "GET", "/shop/users/alice/orders/1?debug=1", Some(&r), None).await;
    assert_eq!(unknown_query.assert_problem(400, "invalid-request")["invalid_params"][0]["reason"], "unknown");
    let unknown_field = call(&h, "POST", "/shop/orders", Some(&w), Some(r#"{"qty":1,"price":0}"#)).await;
    assert_eq!(unknown_field.assert_problem(400, "invalid-request")["invalid_params"][0]["in"], "body");
    let form = Request::post(h.url("/shop/orders"))
        .header("authorization", format!("Bearer {w}"))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"qty=1")))
        .unwrap();
    h.client.send(form).await.assert_problem(415, "invalid-request");
    assert_eq!(h.upstream.hits(), 0);
    assert_eq!(call(&h, "POST", "/shop/orders", Some(&w), Some(r#"{"qty":2}"#)).await.status, 200);
    assert_eq!(h.upstream.requests()[0].body, Bytes::from_static(br#"{"qty":2}"#), "the body is proxied intact");
}

#[tokio::test]
async fn step_up_answers_the_rfc_9470_challenge() {
    let h = shop().await;
    let reply = call(&h, "POST", "/shop/payments", Some(&token_with(&h, "orders:write")), None).await;
    reply.assert_problem(401, "step-up-required");
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="argus", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:argus:acr:mfa", max_age=300"#
    );
    assert_eq!(h.upstream.hits(), 0);
}

#[tokio::test]
async fn decoys_look_absent_and_raise_a_flagged_event() {
    let mut h = shop().await;
    let t = token_with(&h, "orders:read");
    let decoy = call(&h, "GET", "/shop/admin/export", Some(&t), None).await;
    let absent = call(&h, "GET", "/shop/admin/other", Some(&t), None).await;
    let (d, a) = (decoy.assert_problem(404, "no-operation"), absent.assert_problem(404, "no-operation"));
    assert_eq!((&d["title"], &d["detail"]), (&a["title"], &a["detail"]));
    assert_eq!(h.upstream.hits(), 0);
    let (principal, event) = h.next_call().await;
    assert!(event.decoy);
    assert_eq!((event.reason.as_deref(), event.operation_id.as_deref()), (Some("decoy"), Some("exportAll")));
    assert_eq!(principal.ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers_and_refill_with_time() {
    let h = shop().await;
    let first = call(&h, "GET", "/shop/health", None, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-policy"), r#""shop.health.ip";q=2;w=60"#);
    assert!(first.header("ratelimit").starts_with(r#""shop.health.ip";r=1;"#), "{}", first.header("ratelimit"));
    assert_eq!(call(&h, "GET", "/shop/health", None, None).await.status, 200);
    let limited = call(&h, "GET", "/shop/health", None, None).await;
    limited.assert_problem(429, "rate-limited");
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(limited.header("ratelimit").contains(";r=0;"));
    assert_eq!(h.upstream.hits(), 2);
    h.clock.advance(Duration::from_secs(retry));
    assert_eq!(call(&h, "GET", "/shop/health", None, None).await.status, 200);
}

#[tokio::test]
async fn a_block_on_the_control_channel_refuses_the_address() {
    let mut h = shop().await;
    assert_eq!(call(&h, "GET", "/shop/health", None, None).await.status, 200);
    let now = argus_model::Clock::now(&*h.clock);
    h.control.publish(ControlMessage::Block(Block {
        id: "b1".into(),
        target: BlockTarget::Ip("127.0.0.1".into()),
        reason: "test".into(),
        until: now.plus(Duration::from_secs(60)),
    }));
    call(&h, "GET", "/shop/health", None, None).await.assert_problem(403, "blocked");
    // Also on routes without a spec.
    call(&h, "GET", "/public/x", None, None).await.assert_problem(403, "blocked");
    assert_eq!(h.upstream.hits(), 1);
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(call(&h, "GET", "/shop/health", None, None).await.status, 200, "blocks end");
    let _ = h.next_call().await;
    let (_, blocked) = h.next_call().await;
    assert_eq!(blocked.reason.as_deref(), Some("blocked"));
}

#[tokio::test]
async fn a_bad_spec_is_a_start_up_error_naming_the_route() {
    let dir = std::env::temp_dir().join(format!("argus-gate-badspec-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("bad.yaml");
    std::fs::write(&spec, "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      x-argus-rul: x\n      responses: {'200': {description: ok}}\n").unwrap();
    let config = argus_gate::GateConfig {
        routes: vec![RouteConfig {
            name: "broken".into(),
            prefix: "/".into(),
            upstream: "http://127.0.0.1:9".into(),
            auth: AuthMode::None,
            openapi: Some(spec),
            ..RouteConfig::default()
        }],
        ..argus_gate::GateConfig::default()
    };
    let error = config.check().unwrap_err().to_string();
    assert!(error.contains("\"broken\"") && error.contains("x-argus-rul"), "{error}");
}
