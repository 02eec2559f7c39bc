//! The OWASP CRS regression-test attack inputs, placed into typed and undocumented parameters and JSON fields in
//! path, query, header and body: the validator refuses every one.
//!
//! Values are the query values of each test's `uri`, its `data` (whole and per form field) and its header values.
//! A handful are not attacks on a typed field at all (`Keep-Alive: 300` is a fine integer): short decimal numbers
//! are skipped for integer placements only, and counted in the output.

use std::collections::BTreeSet;
use std::path::PathBuf;

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

fn attack_values() -> Option<BTreeSet<String>> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/payloads/crs-request-attacks.jsonl");
    let text = std::fs::read_to_string(&path).ok()?;
    let mut values = BTreeSet::new();
    let form_values = |s: &str, values: &mut BTreeSet<String>| {
        for piece in s.split('&') {
            if let Some((_, v)) = piece.split_once('=') {
                values.insert(lossy_form_decode(v));
            }
        }
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let test: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if let Some((_, query)) = test["uri"].as_str().and_then(|u| u.split_once('?')) {
            form_values(query, &mut values);
        }
        if let Some(data) = test["data"].as_str() {
            values.insert(data.to_owned());
            form_values(data, &mut values);
        }
        if let Some(headers) = test["headers"].as_object() {
            values.extend(headers.values().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        }
    }
    values.remove("");
    Some(values)
}

/// Decode as a lenient browser would (invalid escapes kept), so the attack reaches the validator as meant.
fn lossy_form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if s.get(i + 1..i + 3).is_some_and(|h| u8::from_str_radix(h, 16).is_ok()) => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

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
    let Some(values) = attack_values() else {
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
        let e = encode(v);
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
