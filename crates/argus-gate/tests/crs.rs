//! The whole OWASP CRS regression-test file, through the real gate: every attack input, placed into typed
//! parameters (integer, uuid, enum, date, pattern) and into undocumented parameters and JSON fields, in path,
//! query, header and body, is refused with 400 problem+json, and none reaches the upstream.
//!
//! argus-policy's `openapi_crs` test holds the validator alone to the same inputs; this one adds what only the
//! gate does: HTTP parsing, percent-decoding and path canonicalisation, header framing, the refusal's wire form.
//!
//! The inputs are the query values of each test's `uri`, its `data` (whole and per form field) and its header
//! values. Every input goes into the path, the query, a header and the body, each time into a slot of that location
//! chosen by turns (see [`slot`]), so the run stays a few thousand calls. Some inputs cannot be placed everywhere
//! and are skipped there, counted in the output: a header value with control characters cannot be sent at all, and
//! a URI over 64 KiB cannot be built. A short decimal number is a fine integer (`Keep-Alive: 300`): it goes into
//! another slot instead.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use argus_gate::{AuthMode, ResponseMode, RouteConfig};
use argus_policy::ratelimit::Limit;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use support::{Caller, Harness, Reply};

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: crs, version: '1'}
paths:
  /orders/{orderId}:
    get:
      operationId: getOrder
      security: []
      parameters:
        - {name: orderId, in: path, required: true, schema: {type: integer, format: int64, minimum: 1, maximum: 1000000}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: ref, in: query, schema: {type: string, format: uuid}}
        - {name: status, in: query, schema: {type: string, enum: [open, closed]}}
        - {name: since, in: query, schema: {type: string, format: date}}
        - {name: code, in: query, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}
        - {name: X-Limit, in: header, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: X-Ref, in: header, schema: {type: string, format: uuid}}
        - {name: X-Status, in: header, schema: {type: string, enum: [open, closed]}}
        - {name: X-Since, in: header, schema: {type: string, format: date}}
        - {name: X-Code, in: header, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}
      responses: {'200': {description: ok}}
  /tickets/{code}:
    get:
      operationId: getTicket
      security: []
      parameters: [{name: code, in: path, required: true, schema: {type: string, pattern: '^[A-Z]{2}-[0-9]{4}$'}}]
      responses: {'200': {description: ok}}
  /things/{ref}:
    get:
      operationId: getThing
      security: []
      parameters: [{name: ref, in: path, required: true, schema: {type: string, format: uuid}}]
      responses: {'200': {description: ok}}
  /days/{day}:
    get:
      operationId: getDay
      security: []
      parameters: [{name: day, in: path, required: true, schema: {type: string, format: date}}]
      responses: {'200': {description: ok}}
  /states/{state}:
    get:
      operationId: getState
      security: []
      parameters: [{name: state, in: path, required: true, schema: {type: string, enum: [open, closed]}}]
      responses: {'200': {description: ok}}
  /orders:
    post:
      operationId: createOrder
      security: []
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

fn short_number(v: &str) -> bool {
    !v.is_empty() && v.len() <= 6 && v.bytes().all(|b| b.is_ascii_digit())
}

/// One request of the run: where the input went, and the request.
struct Probe {
    location: &'static str,
    kind: &'static str,
    input: String,
    request: Request<Full<Bytes>>,
}

fn get(h: &Harness, path_and_query: &str) -> http::request::Builder {
    Request::get(h.url(&format!("/crs{path_and_query}")))
}

fn post_json(h: &Harness, body: String) -> Request<Full<Bytes>> {
    Request::post(h.url("/crs/orders"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The typed slots of each location, and the undocumented ones of the query and the body. Input `i` goes into
/// slot `i mod n` of every location (the next one when it cannot go there), so each location sees every input and
/// each slot hundreds of them; the full product of inputs and slots is argus-policy's `openapi_crs`.
const PATH_SLOTS: [&str; 5] = ["integer", "uuid", "enum", "date", "pattern"];
const QUERY_SLOTS: [&str; 7] =
    ["integer", "uuid", "enum", "date", "pattern", "undocumented value", "undocumented name"];
const HEADER_SLOTS: [&str; 5] = ["integer", "uuid", "enum", "date", "pattern"];
const BODY_SLOTS: [&str; 8] =
    ["integer", "integer (raw text)", "uuid", "enum", "date", "pattern", "undocumented value", "undocumented name"];

/// The slot of `slots` for input number `i`: integer slots take no short decimal number (it is a fine integer).
fn slot(slots: &[&'static str], i: usize, value: &str) -> &'static str {
    let mut k = i % slots.len();
    if short_number(value) && slots[k].starts_with("integer") {
        k = (k + 2) % slots.len();
    }
    slots[k]
}

/// A request, unless it cannot be built at all.
type Built = http::Result<Request<Full<Bytes>>>;

/// One request per location for input number `i`; `skipped` counts the places it cannot go.
fn probes(h: &Harness, i: usize, v: &str, skipped: &mut BTreeMap<&'static str, usize>) -> Vec<Probe> {
    let e = argus_testkit::percent_encode_all(v);
    let mut out: Vec<(&'static str, &'static str, Built)> = Vec::new();
    let kind = slot(&PATH_SLOTS, i, v);
    let path = match kind {
        "integer" => format!("/orders/{e}"),
        "uuid" => format!("/things/{e}"),
        "enum" => format!("/states/{e}"),
        "date" => format!("/days/{e}"),
        _ => format!("/tickets/{e}"),
    };
    out.push(("path", kind, get(h, &path).body(Full::default())));

    let kind = slot(&QUERY_SLOTS, i + 1, v);
    let query = match kind {
        "integer" => format!("limit={e}"),
        "uuid" => format!("ref={e}"),
        "enum" => format!("status={e}"),
        "date" => format!("since={e}"),
        "pattern" => format!("code={e}"),
        "undocumented value" => format!("q={e}"),
        _ => format!("{e}=1"),
    };
    out.push(("query", kind, get(h, &format!("/orders/1?{query}")).body(Full::default())));

    // HTTP strips a header value's surrounding whitespace: the gate sees the trimmed value.
    let header_value = v.trim_matches([' ', '\t']);
    match HeaderValue::from_str(header_value) {
        Ok(value) if !header_value.is_empty() => {
            let kind = slot(&HEADER_SLOTS, i + 2, header_value);
            let name = match kind {
                "integer" => "x-limit",
                "uuid" => "x-ref",
                "enum" => "x-status",
                "date" => "x-since",
                _ => "x-code",
            };
            out.push(("header", kind, get(h, "/orders/1").header(name, value).body(Full::default())));
        }
        _ => *skipped.entry("header: not a sendable header value").or_default() += 1,
    }

    let string = serde_json::Value::String(v.to_owned()).to_string();
    let kind = slot(&BODY_SLOTS, i + 3, v);
    let body = match kind {
        "integer" => format!(r#"{{"status":"open","count":{string}}}"#),
        "integer (raw text)" => format!(r#"{{"status":"open","count":{v}}}"#),
        "uuid" => format!(r#"{{"status":"open","ref":{string}}}"#),
        "enum" => format!(r#"{{"status":{string}}}"#),
        "date" => format!(r#"{{"status":"open","since":{string}}}"#),
        "pattern" => format!(r#"{{"status":"open","code":{string}}}"#),
        "undocumented value" => format!(r#"{{"status":"open","comment":{string}}}"#),
        _ => format!(r#"{{"status":"open",{string}:1}}"#),
    };
    out.push(("body", kind, Ok(post_json(h, body))));

    let mut probes = Vec::with_capacity(out.len());
    for (location, kind, request) in out {
        match request {
            Ok(request) => probes.push(Probe { location, kind, input: v.to_owned(), request }),
            // The http crate holds URIs to 64 KiB; hyper would refuse a longer one before the gate saw it.
            Err(_) => *skipped.entry("path or query: URI over 64 KiB").or_default() += 1,
        }
    }
    probes
}

/// Whether the gate refused as it must: 400, problem+json, a type naming the input or the path as bad.
fn refused_properly(reply: &Reply) -> bool {
    let problem = || serde_json::from_slice::<serde_json::Value>(&reply.body).ok();
    reply.status == 400
        && reply.headers.get("content-type").is_some_and(|t| t == "application/problem+json")
        && problem().is_some_and(|p| {
            matches!(p["type"].as_str(), Some("urn:argus:problem:invalid-request" | "urn:argus:problem:invalid-path"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crs_attack_input_is_refused_in_every_place_through_the_gate() {
    let Some((lines, values)) = argus_testkit::crs_attack_values(env!("CARGO_MANIFEST_DIR")) else {
        eprintln!("SKIPPED: ../shared/data/payloads/crs-request-attacks.jsonl is absent");
        return;
    };
    assert!(lines > 3900 && values.len() > 3000, "{lines} lines, {} distinct values", values.len());
    let dir = std::env::temp_dir().join(format!("argus-gate-crs-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("crs.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let h = Harness::start_with(move |config, upstream| {
        // Thousands of calls from one address: the address limit would answer 429 instead of the validator.
        config.rate_limits.per_ip = Limit::Off;
        config.routes.push(RouteConfig {
            name: "crs".into(),
            prefix: "/crs".into(),
            upstream: upstream.into(),
            auth: AuthMode::None,
            openapi: Some(spec),
            responses: ResponseMode::Off,
            ..RouteConfig::default()
        });
    })
    .await;

    let sanity = [
        get(&h, "/orders/7?limit=5&status=open&code=AB-1234&ref=123e4567-e89b-12d3-a456-426614174000")
            .header("x-status", "closed")
            .header("x-since", "2024-02-29")
            .body(Full::default())
            .unwrap(),
        post_json(&h, r#"{"status":"open","count":3,"since":"2024-01-31"}"#.into()),
        get(&h, "/states/open").body(Full::default()).unwrap(),
    ];
    let sanity_count = sanity.len() as u64;
    for request in sanity {
        let reply = h.client.send(request).await;
        assert_eq!(reply.status, 200, "a valid request passes: {:?}", reply.body);
    }
    assert_eq!(h.upstream.hits(), sanity_count);

    let mut skipped = BTreeMap::new();
    let all: Vec<Probe> = values.iter().enumerate().flat_map(|(i, v)| probes(&h, i, v, &mut skipped)).collect();
    let mut per_slot: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for probe in &all {
        *per_slot.entry((probe.location, probe.kind)).or_default() += 1;
    }
    assert!(per_slot.values().all(|&n| n > 300), "every slot gets hundreds of inputs: {per_slot:?}");
    let total = all.len();
    let failures = send_all(&h.client, all).await;
    eprintln!(
        "{total} placements of {} inputs from {lines} CRS tests sent through the gate; per slot {per_slot:?}; \
         skipped: {skipped:?}",
        values.len()
    );
    let shown: Vec<String> = failures.iter().take(40).cloned().collect();
    assert!(failures.is_empty(), "{} not refused properly:\n{}", failures.len(), shown.join("\n"));
    assert_eq!(h.upstream.hits(), sanity_count, "no attack reached the upstream");
}

/// Send every probe, a few connections at a time; the probes not refused properly, described.
async fn send_all(client: &Caller, probes: Vec<Probe>) -> Vec<String> {
    const CONNECTIONS: usize = 8;
    let queue = Arc::new(std::sync::Mutex::new(probes));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (client, queue) = (client.clone(), queue.clone());
        tasks.spawn(async move {
            let mut failures = Vec::new();
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(probe) = next else { return failures };
                let reply = client.send(probe.request).await;
                if !refused_properly(&reply) {
                    let input = argus_model::truncate_utf8(&probe.input, 80);
                    let (location, kind, status) = (probe.location, probe.kind, reply.status);
                    failures.push(format!("{location} {kind}: {input:?} -> {status} {:?}", reply.body));
                }
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        failures.extend(done.expect("a sender task"));
    }
    failures
}
