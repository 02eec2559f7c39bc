//! Response checking: undeclared fields and record counts.

use argus_policy::openapi::{LoadOptions, Spec, Strictness};
use serde_json::json;

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /users:
    get:
      operationId: listUsers
      x-argus-sensitive: true
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: array, items: {$ref: '#/components/schemas/User'}}
        4XX:
          description: problem
          content:
            application/problem+json:
              schema: {type: object, properties: {title: {type: string}}}
  /pages:
    get:
      operationId: listPages
      x-argus-sensitive: {records: items}
      responses:
        default:
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  items: {type: array, items: {$ref: '#/components/schemas/User'}}
                  next: {type: string}
components:
  schemas:
    User:
      type: object
      properties:
        id: {type: integer}
        name: {type: string}
"#;

#[test]
fn undeclared_fields_are_listed_whatever_the_request_strictness() {
    let lenient = LoadOptions {
        strictness: Strictness { allow_unknown_fields: true, allow_unknown_query_params: true },
        ..LoadOptions::default()
    };
    for options in [LoadOptions::default(), lenient] {
        let spec = Spec::parse(SPEC, &options).unwrap();
        let op = spec.operation("listUsers").unwrap();
        let body = json!([{"id": 1, "name": "a"}, {"id": 2, "name": "b", "password_hash": "x", "ssn": "y"}]);
        let report = op.check_response(200, Some("application/json; charset=utf-8"), &body);
        assert!(report.documented);
        assert_eq!(report.undeclared_fields, ["/1/password_hash", "/1/ssn"]);
        assert_eq!(report.other_violations, 0);
        assert_eq!(report.records, Some(2));

        let report = op.check_response(200, Some("application/json"), &json!([{"id": "one"}]));
        assert_eq!((report.undeclared_fields.len(), report.other_violations), (0, 1));

        let report = op.check_response(404, Some("application/problem+json"), &json!({"title": "x", "trace": "y"}));
        assert_eq!(report.undeclared_fields, ["/trace"]);
        let report = op.check_response(500, Some("application/json"), &json!({"stack": "..."}));
        assert!(!report.documented, "a 500 the spec does not describe");
        let report = op.check_response(200, Some("text/html"), &json!(null));
        assert!(!report.documented);
    }
}

#[test]
fn records_are_counted_where_the_extension_says() {
    let spec = Spec::parse(SPEC, &LoadOptions::default()).unwrap();
    let op = spec.operation("listPages").unwrap();
    let body = json!({"items": [{"id": 1}, {"id": 2}, {"id": 3}], "next": "x", "debug": true});
    let report = op.check_response(200, None, &body);
    assert_eq!(report.records, Some(3));
    assert_eq!(report.undeclared_fields, ["/debug"]);
    assert_eq!(op.count_records(&json!({"items": "none"})), None);
    assert_eq!(spec.operation("listUsers").unwrap().count_records(&json!({"id": 1})), Some(1));
}
