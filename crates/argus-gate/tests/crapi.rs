//! OWASP crAPI's OpenAPI file (`../shared/data/openapi/`), a real third-party spec, loaded the way an operator
//! would: as the `openapi` of a gate route. argus-policy's `openapi_load` compiles it alone; here it goes through
//! the gate's route configuration, and a few of its operations are matched, enforced and proxied.

mod support;

use std::path::PathBuf;

use argus_gate::{AuthMode, GateConfig, RouteConfig};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::{Harness, Reply};

fn crapi_spec() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openapi/crapi-openapi-spec.json");
    path.exists().then_some(path)
}

fn crapi_route(spec: PathBuf, upstream: &str) -> RouteConfig {
    RouteConfig {
        name: "crapi".into(),
        prefix: "/crapi".into(),
        upstream: upstream.into(),
        auth: AuthMode::Argus,
        openapi: Some(spec),
        ..RouteConfig::default()
    }
}

async fn call(h: &Harness, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(h.url(path));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    h.client.send(request.body(Full::new(Bytes::from(body.unwrap_or("").to_owned()))).unwrap()).await
}

#[tokio::test]
async fn the_crapi_spec_drives_a_gate_route() {
    let Some(spec) = crapi_spec() else {
        eprintln!("SKIPPED: ../shared/data/openapi/crapi-openapi-spec.json is absent");
        return;
    };
    // As `argus config check` sees it, and as a TOML file spells it.
    let toml = format!(
        "[[routes]]\nname = \"crapi\"\nprefix = \"/crapi\"\nupstream = \"http://127.0.0.1:9\"\nopenapi = {:?}\n",
        spec.display().to_string()
    );
    let config: GateConfig = toml::from_str(&toml).unwrap();
    config.check().unwrap_or_else(|e| panic!("{e}"));

    let mut h = Harness::start_with(move |config, upstream| config.routes.push(crapi_route(spec, upstream))).await;
    let t = h.good_token();
    let dashboard = call(&h, "GET", "/crapi/identity/api/v2/user/dashboard", Some(&t), None).await;
    assert_eq!(dashboard.status, 200, "{:?}", dashboard.body);
    let (_, event) = h.next_call().await;
    assert_eq!(event.operation_id.as_deref(), Some("get_dashboard"));

    // `bearerAuth` operations need a token; `security: []` ones do not, but their bodies are held to the schema.
    call(&h, "GET", "/crapi/identity/api/v2/user/dashboard", None, None).await.assert_problem(401, "missing-token");
    let login = r#"{"email":"a@example.com","password":"x"}"#;
    assert_eq!(call(&h, "POST", "/crapi/identity/api/auth/login", None, Some(login)).await.status, 200);
    // crAPI's mass-assignment lesson: a field the operation does not declare is refused, not passed on.
    let greedy = r#"{"email":"a@example.com","password":"x","role":"ROLE_ADMIN"}"#;
    let refused = call(&h, "POST", "/crapi/identity/api/auth/login", None, Some(greedy)).await;
    assert_eq!(refused.assert_problem(400, "invalid-request")["invalid_params"][0]["in"], "body");

    // Literal segments win over templates; typed and required parameters are enforced.
    let orders = "/crapi/workshop/api/shop/orders";
    assert_eq!(call(&h, "GET", &format!("{orders}/all?limit=30&offset=0"), Some(&t), None).await.status, 200);
    call(&h, "GET", &format!("{orders}/all?limit=30"), Some(&t), None).await.assert_problem(400, "invalid-request");
    assert_eq!(call(&h, "GET", &format!("{orders}/12"), Some(&t), None).await.status, 200);
    call(&h, "GET", &format!("{orders}/12%20or%201=1"), Some(&t), None).await.assert_problem(400, "invalid-request");
    let wrong_method = call(&h, "DELETE", &format!("{orders}/12"), Some(&t), None).await;
    wrong_method.assert_problem(405, "method-not-allowed");
    assert_eq!(wrong_method.header("allow"), "GET, PUT");
    call(&h, "GET", "/crapi/identity/api/v9/nothing", Some(&t), None).await.assert_problem(404, "no-operation");

    let reached: Vec<String> = h.upstream.requests().into_iter().map(|r| format!("{} {}", r.method, r.uri)).collect();
    assert_eq!(
        reached,
        [
            "GET /crapi/identity/api/v2/user/dashboard",
            "POST /crapi/identity/api/auth/login",
            "GET /crapi/workshop/api/shop/orders/all?limit=30&offset=0",
            "GET /crapi/workshop/api/shop/orders/12",
        ]
    );
}
