//! What a route's rules and step-up requirements read, end to end through the real gate: path and query parameters
//! typed as the spec declares them, and the token's `acr` and `auth_time`.

mod support;

use std::time::Duration;

use argus_gate::{AuthMode, RouteConfig};
use argus_model::Clock;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::{Harness, Reply};

const PWD: &str = "urn:argus:acr:pwd";

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: bank, version: "1"}
paths:
  /accounts/{id}:
    get:
      operationId: getAccount
      security: [{oauth2: [accounts:read]}]
      x-argus-rule: "params.id == 7 && query.limit <= 10 && query.kinds == ['card', 'loan']"
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
        - {name: limit, in: query, required: true, schema: {type: integer}}
        - {name: kinds, in: query, schema: {type: array, items: {type: string}}}
      responses: {"200": {description: ok}}
  /branches/{code}:
    get:
      operationId: getBranch
      security: [{oauth2: [accounts:read]}]
      x-argus-rule: "params.code == '420'"
      parameters:
        - {name: code, in: path, required: true, schema: {type: string, pattern: "^[0-9]{3}$"}}
      responses: {"200": {description: ok}}
  /transfers:
    post:
      operationId: createTransfer
      security: [{oauth2: [accounts:read]}]
      x-argus-step-up: {acr: "urn:argus:acr:pwd", max_age: 300}
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: http://127.0.0.1:7400/token
          scopes: {accounts:read: r}
"#;

async fn bank() -> Harness {
    let dir = std::env::temp_dir().join(format!("argus-gate-rule-inputs-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("bank.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    Harness::start_with(move |config, upstream| {
        config.routes.push(RouteConfig {
            name: "bank".into(),
            prefix: "/bank".into(),
            upstream: upstream.into(),
            auth: AuthMode::Argus,
            openapi: Some(spec),
            ..RouteConfig::default()
        });
    })
    .await
}

async fn call(h: &Harness, method: &str, path: &str, token: &str) -> Reply {
    let request = Request::builder().method(method).uri(h.url(path)).header("authorization", format!("Bearer {token}"));
    h.client.send(request.body(Full::new(Bytes::new())).unwrap()).await
}

fn token(h: &Harness, acr: Option<&str>, signed_in_ago: Duration) -> String {
    let mut claims = h.claims();
    claims.scope = "accounts:read".into();
    claims.acr = acr.map(str::to_owned);
    claims.auth_time = Some(h.clock.now().minus(signed_in_ago).as_secs());
    h.token(&claims)
}

#[tokio::test]
async fn rules_see_path_and_query_parameters_typed_as_declared() {
    let h = bank().await;
    let t = token(&h, Some(PWD), Duration::ZERO);
    assert_eq!(call(&h, "GET", "/bank/accounts/7?limit=10&kinds=card&kinds=loan", &t).await.status, 200);
    for denied in [
        "/bank/accounts/8?limit=10&kinds=card&kinds=loan",
        "/bank/accounts/7?limit=11&kinds=card&kinds=loan",
        "/bank/accounts/7?limit=10&kinds=loan&kinds=card",
    ] {
        call(&h, "GET", denied, &t).await.assert_problem(403, "rule-denied");
    }
    // A string parameter made of digits stays a string: "420", not the number 420.
    assert_eq!(call(&h, "GET", "/bank/branches/420", &t).await.status, 200);
    call(&h, "GET", "/bank/branches/042", &t).await.assert_problem(403, "rule-denied");
    assert_eq!(h.upstream.hits(), 2);
}

#[tokio::test]
async fn step_up_reads_acr_and_auth_time_from_the_token() {
    let h = bank().await;
    let fresh = token(&h, Some(PWD), Duration::from_secs(300));
    assert_eq!(call(&h, "POST", "/bank/transfers", &fresh).await.status, 200);
    for (acr, ago, description) in [
        (None, Duration::ZERO, "A different authentication level is required"),
        (Some("urn:example:other"), Duration::ZERO, "A different authentication level is required"),
        (Some(PWD), Duration::from_secs(301), "More recent authentication is required"),
    ] {
        let reply = call(&h, "POST", "/bank/transfers", &token(&h, acr, ago)).await;
        reply.assert_problem(401, "step-up-required");
        assert_eq!(
            reply.header("www-authenticate"),
            format!(
                r#"Bearer realm="argus", error="insufficient_user_authentication", error_description="{description}", acr_values="{PWD}", max_age=300"#
            ),
            "{acr:?} {ago:?}"
        );
    }
    assert_eq!(h.upstream.hits(), 1);
}
