//! The OpenAPI document parses, follows the project's rules, and describes what the router really serves.

mod common;

use std::collections::BTreeSet;

use common::Demo;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn spec() -> Value {
    serde_yaml_ng::from_str(argus_demo::OPENAPI_YAML).expect("openapi.yaml is valid YAML")
}

/// Every (path, method, operation) of the document.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    ops
}

/// Follow a local `$ref` ("#/components/...").
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = spec.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(spec, target)
        }
        None => node,
    }
}

fn visit_all(node: &Value, f: &mut dyn FnMut(&Value)) {
    f(node);
    match node {
        Value::Object(map) => map.values().for_each(|v| visit_all(v, f)),
        Value::Array(items) => items.iter().for_each(|v| visit_all(v, f)),
        _ => {}
    }
}

#[test]
fn is_openapi_3_1_with_exactly_the_served_paths() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1."));
    let found: BTreeSet<(String, String)> = operations(&spec).into_iter().map(|(p, m, _)| (p, m)).collect();
    let expected: BTreeSet<(String, String)> = [
        ("/accounts", "get"),
        ("/accounts/{id}", "get"),
        ("/accounts/{id}/transfers", "get"),
        ("/transfers", "post"),
        ("/transfers/{id}", "get"),
        ("/openapi.yaml", "get"),
        ("/health", "get"),
    ]
    .iter()
    .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn every_operation_has_a_unique_operation_id_and_responses() {
    let spec = spec();
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&spec) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{id} has no responses");
    }
}

#[test]
fn all_refs_resolve() {
    let spec = spec();
    visit_all(&spec, &mut |node| {
        resolve(&spec, node);
    });
}

#[test]
fn security_uses_the_oauth2_scheme_and_its_declared_scopes() {
    let spec = spec();
    let scheme = &spec["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    let flow = &scheme["flows"]["authorizationCode"];
    assert_eq!(flow["authorizationUrl"], "http://127.0.0.1:7400/authorize");
    assert_eq!(flow["tokenUrl"], "http://127.0.0.1:7400/token");
    let declared: BTreeSet<&str> = flow["scopes"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(declared, BTreeSet::from(["accounts:read", "transfers:read", "transfers:write"]));

    let mut used = BTreeSet::new();
    for (path, method, op) in operations(&spec) {
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path} declares no security"));
        let public = path == "/health" || path == "/openapi.yaml";
        assert_eq!(security.is_empty(), public, "{method} {path}");
        for requirement in security {
            let scopes = requirement["oauth2"].as_array().unwrap_or_else(|| panic!("{method} {path}: not oauth2"));
            assert_eq!(scopes.len(), 1, "{method} {path}");
            let scope = scopes[0].as_str().unwrap();
            assert!(declared.contains(scope), "{method} {path} uses undeclared scope {scope}");
            used.insert(scope.to_owned());
        }
    }
    assert_eq!(used.len(), declared.len(), "every declared scope is used");
}

#[test]
fn every_object_schema_refuses_additional_properties() {
    let spec = spec();
    let mut objects = 0;
    visit_all(&spec, &mut |node| {
        if node.get("type").and_then(Value::as_str) == Some("object") {
            objects += 1;
            assert_eq!(node.get("additionalProperties"), Some(&Value::Bool(false)), "{node}");
            let properties = node["properties"].as_object().unwrap();
            for required in node["required"].as_array().unwrap() {
                assert!(properties.contains_key(required.as_str().unwrap()), "{required} not a property");
            }
        }
    });
    assert!(objects >= 5, "found only {objects} object schemas");
}

#[test]
fn path_parameters_are_declared_typed_and_bounded() {
    let spec = spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let templated: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        let declared: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().map(|p| resolve(&spec, p)).filter(|p| p["in"] == "path").collect())
            .unwrap_or_default();
        assert_eq!(declared.len(), templated.len(), "{path}");
        for (name, param) in templated.iter().zip(&declared) {
            assert_eq!(param["name"], *name);
            assert_eq!(param["required"], true);
            let schema = resolve(&spec, &param["schema"]);
            assert_eq!((schema["type"].as_str(), schema["format"].as_str()), (Some("integer"), Some("int64")));
            assert_eq!(schema["minimum"], 1);
        }
    }
    let limit = &spec["paths"]["/accounts/{id}/transfers"]["get"]["parameters"][0];
    assert_eq!((limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()), (Some(1), Some(100)));
}

#[test]
fn only_the_unchecked_object_reads_carry_the_bola_note() {
    let spec = spec();
    let noted: BTreeSet<String> = operations(&spec)
        .into_iter()
        .filter(|(_, _, op)| op.get("x-argus-note").and_then(Value::as_str).is_some_and(|n| n.contains("BOLA")))
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(noted, BTreeSet::from(["getAccount".to_owned(), "getTransfer".to_owned()]));
}

/// The property names of a component schema.
fn properties(spec: &Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["properties"].as_object().unwrap().keys().cloned().collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn every_operation_is_served_and_answers_in_its_schema_shape() {
    let spec = spec();
    let demo = Demo::start().await;
    for (path, method, op) in operations(&spec) {
        let concrete = path.replace("/accounts/{id}", "/accounts/1001").replace("/transfers/{id}", "/transfers/5001");
        let reply = if method == "post" {
            let body = json!({ "from_account": 1001, "to_account": 1004, "amount": 5, "currency": "EUR", "memo": "x" });
            // Every property of NewTransfer is sent, so the spec and the server agree on the accepted fields.
            assert_eq!(keys(&body), properties(&spec, "NewTransfer"));
            demo.post_transfer("sub-alice", &body).await
        } else {
            demo.send(
                Method::GET,
                &concrete,
                &[("authorization", &format!("Bearer {}", common::token_for("sub-alice")))],
                Vec::new(),
            )
            .await
        };
        let expected_status = op["responses"].as_object().unwrap().keys().find(|s| s.starts_with('2')).unwrap();
        assert_eq!(reply.status.as_str(), expected_status, "{method} {concrete}: {:?}", reply.body);
        assert_ne!(reply.status, StatusCode::NOT_FOUND);
    }

    let account = demo.get("/accounts/1001", Some("sub-alice")).await.json();
    assert_eq!(keys(&account), properties(&spec, "Account"));
    let transfer = demo.get("/transfers/5001", Some("sub-alice")).await.json();
    assert_eq!(keys(&transfer), properties(&spec, "Transfer"));
    let problem = demo.get("/accounts/999", Some("sub-alice")).await.json();
    assert_eq!(keys(&problem), properties(&spec, "Problem"));
    let health = demo.get("/health", None).await.json();
    assert_eq!(keys(&health), properties(&spec, "Health"));

    let currencies: BTreeSet<String> = spec["components"]["schemas"]["Currency"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(currencies.contains(account["currency"].as_str().unwrap()));
    let number_pattern = spec["components"]["schemas"]["Account"]["properties"]["number"]["pattern"].as_str().unwrap();
    assert_eq!(number_pattern, "^ARGUS-DEMO-[0-9]{6,}$");
    assert_eq!(account["number"], "ARGUS-DEMO-001001");
}
