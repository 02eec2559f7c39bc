//! Operation matching: precedence, methods, base paths.

use argus_policy::openapi::{LoadOptions, Match, Method, Spec};

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
servers: [{url: 'https://api.example.com/{version}', variables: {version: {default: v2}}}]
paths:
  /users/{id}:
    get: {operationId: getUser, parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: {}}
    delete: {operationId: deleteUser, parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: {}}
  /users/me:
    get: {operationId: getMe, responses: {}}
  /users/{id}/files/{name}.{ext}:
    get:
      operationId: getFile
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: name, in: path, required: true, schema: {type: string}}
        - {name: ext, in: path, required: true, schema: {type: string}}
      responses: {}
  /users/{id}/files/{name}:
    get:
      operationId: getFileBare
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
        - {name: name, in: path, required: true, schema: {type: string}}
      responses: {}
  /users/me/files/latest:
    get: {operationId: getMyLatest, responses: {}}
  /a/{x}/c:
    get: {operationId: axc, parameters: [{name: x, in: path, required: true, schema: {type: string}}], responses: {}}
  /a/b/{y}:
    get: {operationId: aby, parameters: [{name: y, in: path, required: true, schema: {type: string}}], responses: {}}
  /:
    get: {operationId: root, responses: {}}
  /slash/:
    get: {operationId: slash, responses: {}}
"#;

fn spec() -> Spec {
    Spec::parse(SPEC, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn found(spec: &Spec, method: &str, path: &str) -> (String, Vec<(String, String)>) {
    match spec.match_request(method, path) {
        Match::Found(op, params) => (op.id.clone(), params.iter().map(|(k, v)| (k.into(), v.into())).collect()),
        other => panic!("{method} {path}: {other:?}"),
    }
}

#[test]
fn concrete_segments_beat_templated_ones() {
    let spec = spec();
    assert_eq!(found(&spec, "GET", "/v2/users/me").0, "getMe");
    assert_eq!(found(&spec, "GET", "/v2/users/42"), ("getUser".into(), vec![("id".into(), "42".into())]));
    assert_eq!(found(&spec, "GET", "/v2/users/me/files/latest").0, "getMyLatest");
    // `me` is concrete at depth 2, but the rest only fits the templated path: the walk backtracks.
    assert_eq!(found(&spec, "GET", "/v2/users/me/files/report.pdf").0, "getFile");
    assert_eq!(
        found(&spec, "GET", "/v2/users/7/files/report.tar.gz").1,
        vec![("id".into(), "7".into()), ("name".into(), "report".into()), ("ext".into(), "tar.gz".into())]
    );
    assert_eq!(found(&spec, "GET", "/v2/users/7/files/README").0, "getFileBare");
    assert_eq!(found(&spec, "GET", "/v2/a/b/c").0, "aby", "the concrete segment comes first, left to right");
    assert_eq!(found(&spec, "GET", "/v2/a/z/c").0, "axc");
    assert_eq!(found(&spec, "GET", "/v2/").0, "root");
    assert_eq!(found(&spec, "GET", "/v2").0, "root");
    assert_eq!(found(&spec, "GET", "/v2/slash/").0, "slash");
}

#[test]
fn unknown_paths_and_methods_are_told_apart() {
    let spec = spec();
    for path in ["/v2/users", "/v2/users/1/2", "/v2/slash", "/v2/users/", "/users/me", "/v3/users/me", "/v2x/users/me"]
    {
        assert!(matches!(spec.match_request("GET", path), Match::NotFound), "{path}");
    }
    match spec.match_request("POST", "/v2/users/1") {
        Match::MethodNotAllowed(allowed) => assert_eq!(allowed, [Method::Get, Method::Delete]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(spec.match_request("FOO", "/v2/users/1"), Match::MethodNotAllowed(_)));
    assert!(
        matches!(spec.match_request("get", "/v2/users/1"), Match::MethodNotAllowed(_)),
        "methods are case-sensitive"
    );
    assert_eq!(found(&spec, "HEAD", "/v2/users/1").0, "getUser", "HEAD is GET's");
    // The path decides first (OpenAPI: concrete paths are matched before templated ones), then the method.
    assert!(matches!(spec.match_request("DELETE", "/v2/users/me"), Match::MethodNotAllowed(m) if m == [Method::Get]));
}

#[test]
fn the_base_path_can_be_overridden() {
    let options = LoadOptions { base_path: Some(String::new()), ..LoadOptions::default() };
    let spec = Spec::parse(SPEC, &options).unwrap();
    assert_eq!(found(&spec, "GET", "/users/me").0, "getMe");
    assert!(matches!(spec.match_request("GET", "/v2/users/me"), Match::NotFound));
}
