//! The OWASP CRS regression-test attack inputs, placed into typed and undocumented parameters and JSON fields in
//! path, query, header and body: the validator refuses every one.
//!
//! Values are the query values of each test's `uri`, its `data` (whole and per form field) and its header values.
//! A handful are not attacks on a typed field at all (`Keep-Alive: 300` is a fine integer): short decimal numbers
//! are skipped for integer placements only, and counted in the output.

use argus_policy::canonical_path;
use argus_policy::openapi::{LoadOptions, Match, RequestParts, Spec};

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: crs, version: '1'}
paths:
  /orders/{orderId}:
    get:
      operationId: getOrder
      parameters:
        - {name: orderId, in: path, required: true, schema: {type: integer, format: int64, minimum: 1, maximum: 1000000}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: ref, in: query, schema: {type: string, format: uuid}}
        - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
        - {name: since, in: query, schema: {type: string, format: date}}
        - {name: code, in: query, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}
        - {name: X-Limit, in: header, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: X-Request-Id, in: header, schema: {type: string, format: uuid}}
        - {name: X-Status, in: header, schema: {type: string, enum: [open, closed]}}
        - {name: X-Since, in: header, schema: {type: string, format: date}}
        - {name: X-Code, in: header, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}
      responses: {'200': {description: ok}}
  /tickets/{code}:
    get:
      operationId: getTicket
      parameters: [{name: code, in: path, required: true, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}]
      responses: {'200': {description: ok}}
  /things/{ref}:
    get:
      operationId: getThing
      parameters: [{name: ref, in: path, required: true, schema: {type: string, format: uuid}}]
      responses: {'200': {description: ok}}
  /days/{day}:
    get:
      operationId: getDay
      parameters: [{name: day, in: path, required: true, schema: {type: string, format: date}}]
      responses: {'200': {description: ok}}
  /orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [status]
              properties:
                status: {type: string, enum: [open, closed]}
                count: {type: integer, minimum: 1, maximum: 100}
                ref: {type: string, format: uuid}
                since: {type: string, format: date}
                code: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}
      responses: {'201': {description: created}}
"#;

/// Whether the request is refused somewhere on the way: path canonicalisation, matching, or validation.
fn refused(spec: &Spec, method: &str, raw_path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let Ok(path) = canonical_path(raw_path) else { return true };
    let Match::Found(op, params) = spec.match_request(method, &path) else { return true };
    let parts = RequestParts { path_params: &params, query: Some(query), headers: &headers, body };
    op.validate_request(&parts).is_err()
}

fn short_number(v: &str) -> bool {
    !v.is_empty() && v.len() <= 6 && v.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn every_crs_attack_input_is_refused_in_every_place() {
    let Some((_, values)) = argus_testkit::crs_attack_values(env!("CARGO_MANIFEST_DIR")) else {
        eprintln!("SKIPPED: ../shared/data/payloads/crs-request-attacks.jsonl is absent");
        return;
    };
    assert!(values.len() > 3000, "{} distinct values", values.len());
    let spec = Spec::parse(SPEC, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let json = ("content-type", "application/json");
    let sanity = [
        refused(&spec, "GET", "/orders/7", "limit=5&status=open&code=AB-1234", &[("x-status", "closed")], b""),
        refused(&spec, "POST", "/orders", "", &[json], br#"{"status":"open","count":3}"#),
    ];
    assert_eq!(sanity, [false, false], "valid requests pass");

    let mut failures: Vec<String> = Vec::new();
    let mut checks = 0usize;
    let mut skipped_numbers = 0usize;
    for v in &values {
        let e = argus_testkit::percent_encode_all(v);
        let string = serde_json::Value::String(v.clone()).to_string();
        let mut placements: Vec<(&str, bool)> = vec![
            ("path pattern", refused(&spec, "GET", &format!("/tickets/{e}"), "", &[], b"")),
            ("path uuid", refused(&spec, "GET", &format!("/things/{e}"), "", &[], b"")),
            ("path date", refused(&spec, "GET", &format!("/days/{e}"), "", &[], b"")),
            ("query uuid", refused(&spec, "GET", "/orders/1", &format!("ref={e}"), &[], b"")),
            ("query enum", refused(&spec, "GET", "/orders/1", &format!("status={e}"), &[], b"")),
            ("query date", refused(&spec, "GET", "/orders/1", &format!("since={e}"), &[], b"")),
            ("query pattern", refused(&spec, "GET", "/orders/1", &format!("code={e}"), &[], b"")),
            ("query undocumented value", refused(&spec, "GET", "/orders/1", &format!("q={e}"), &[], b"")),
            ("query undocumented name", refused(&spec, "GET", "/orders/1", &format!("{e}=1"), &[], b"")),
            ("header uuid", refused(&spec, "GET", "/orders/1", "", &[("x-request-id", v)], b"")),
            ("header enum", refused(&spec, "GET", "/orders/1", "", &[("x-status", v)], b"")),
            ("header date", refused(&spec, "GET", "/orders/1", "", &[("x-since", v)], b"")),
            ("header pattern", refused(&spec, "GET", "/orders/1", "", &[("x-code", v)], b"")),
        ];
        for field in ["status", "ref", "since", "code", "count"] {
            let body = format!(r#"{{"status":"open","{field}":{string}}}"#);
            placements.push((field, refused(&spec, "POST", "/orders", "", &[json], body.as_bytes())));
        }
        let undocumented = format!(r#"{{"status":"open","comment":{string}}}"#);
        placements
            .push(("body undocumented value", refused(&spec, "POST", "/orders", "", &[json], undocumented.as_bytes())));
        let as_key = format!(r#"{{"status":"open",{string}:1}}"#);
        placements.push(("body undocumented name", refused(&spec, "POST", "/orders", "", &[json], as_key.as_bytes())));
        if short_number(v) {
            skipped_numbers += 1;
        } else {
            placements.push(("path integer", refused(&spec, "GET", &format!("/orders/{e}"), "", &[], b"")));
            placements.push(("query integer", refused(&spec, "GET", "/orders/1", &format!("limit={e}"), &[], b"")));
            placements.push(("header integer", refused(&spec, "GET", "/orders/1", "", &[("x-limit", v)], b"")));
            let raw = format!(r#"{{"status":"open","count":{v}}}"#);
            placements
                .push(("body integer (raw text)", refused(&spec, "POST", "/orders", "", &[json], raw.as_bytes())));
        }
        for (place, was_refused) in placements {
            checks += 1;
            if !was_refused {
                failures.push(format!("{place}: {:?}", argus_model::truncate_utf8(v, 80)));
            }
        }
    }
    eprintln!(
        "{checks} placements of {} values refused; {skipped_numbers} short numbers not placed as integers",
        values.len()
    );
    assert!(failures.is_empty(), "{} accepted:\n{}", failures.len(), failures[..failures.len().min(40)].join("\n"));
}
