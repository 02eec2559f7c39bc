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

const HEADS: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /items:
    get:
      operationId: listItems
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: array, items: {type: object, properties: {id: {type: integer}}}}
            text/csv: {schema: {type: string}}
        '204': {description: nothing}
        4XX:
          description: problem
          content:
            application/problem+json: {schema: {type: object, properties: {title: {type: string}}}}
    delete:
      operationId: anything
      responses:
        '200':
          description: any
          content:
            '*/*': {}
  /silent:
    get:
      operationId: silent
"#;

#[test]
fn the_head_of_an_answer_says_whether_its_body_is_checked() {
    use argus_policy::openapi::ResponseHead::{Checkable, Unchecked, Undocumented};
    let spec = Spec::parse(HEADS, &LoadOptions::default()).unwrap();
    let op = spec.operation("listItems").unwrap();
    assert_eq!(op.response_head(200, Some("application/json; charset=utf-8"), true), Checkable);
    assert_eq!(op.response_head(404, Some("application/problem+json"), true), Checkable);
    assert_eq!(op.response_head(200, Some("text/csv"), true), Unchecked, "declared, but not JSON");
    assert_eq!(op.response_head(200, Some("text/html"), true), Undocumented);
    assert_eq!(op.response_head(200, None, true), Undocumented, "a body of no type is not a declared one");
    assert_eq!(op.response_head(500, Some("application/json"), true), Undocumented);
    assert_eq!(op.response_head(204, None, false), Unchecked);
    assert_eq!(op.response_head(204, Some("application/json"), true), Undocumented, "no body declared");
    assert_eq!(op.response_head(200, Some("application/json"), false), Unchecked, "HEAD: nothing to read");
    assert_eq!(op.response_head(302, None, false), Undocumented, "an undeclared status, even without a body");
    let any = spec.operation("anything").unwrap();
    assert_eq!(any.response_head(200, Some("application/json"), true), Unchecked, "*/* without a schema");
    assert_eq!(any.response_head(200, None, true), Unchecked);
    assert_eq!(spec.operation("silent").unwrap().response_head(500, Some("text/html"), true), Unchecked);
}

#[test]
fn bodies_are_parsed_strictly_and_reports_say_whether_they_conform() {
    let spec = Spec::parse(HEADS, &LoadOptions::default()).unwrap();
    let op = spec.operation("listItems").unwrap();
    let json = Some("application/json");
    assert!(op.check_response_body(200, json, br#"[{"id":1}]"#).conforms());
    let extra = op.check_response_body(200, json, br#"[{"id":1,"secret":"s"}]"#);
    assert_eq!((extra.undeclared_fields.as_slice(), extra.conforms()), (&["/0/secret".to_owned()][..], false));
    for garbage in [&br#"[{"id":1,"id":2}]"#[..], b"[1] [2]", b"{", b""] {
        let report = op.check_response_body(200, json, garbage);
        assert!(report.malformed && report.documented && !report.conforms(), "{garbage:?}");
    }
    let wrong = op.check_response_body(200, json, br#"[{"id":"x"}]"#);
    assert_eq!((wrong.other_violations, wrong.conforms()), (1, false));
    let undocumented = op.check_response_body(500, json, b"{}");
    assert!(!undocumented.documented && !undocumented.conforms());
}
