//! Strict request validation: parameters (types, formats, constraints, styles), content types and bodies.

use argus_policy::openapi::{ErrorKind, LoadOptions, Location, Match, RequestParts, Spec, Strictness, ValidationError};

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, format: int32, minimum: 1}}
    get:
      operationId: getItem
      parameters:
        - {name: uuid, in: query, schema: {type: string, format: uuid}}
        - {name: day, in: query, schema: {type: string, format: date}}
        - {name: at, in: query, schema: {type: string, format: date-time}}
        - {name: mail, in: query, schema: {type: string, format: email}}
        - {name: site, in: query, schema: {type: string, format: uri}}
        - {name: ip4, in: query, schema: {type: string, format: ipv4}}
        - {name: ip6, in: query, schema: {type: string, format: ipv6}}
        - {name: blob, in: query, schema: {type: string, format: byte}}
        - {name: big, in: query, schema: {type: integer, format: int64}}
        - {name: ratio, in: query, schema: {type: number, minimum: 0, maximum: 1, exclusiveMaximum: true}}
        - {name: flag, in: query, schema: {type: boolean}}
        - {name: color, in: query, schema: {type: string, enum: [red, green]}}
        - {name: code, in: query, schema: {type: string, pattern: '^[A-Z]{3}$', minLength: 3, maxLength: 3}}
        - {name: word, in: query, schema: {type: string, pattern: 'ab'}}
        - {name: tags, in: query, schema: {type: array, items: {type: integer}, maxItems: 3}}
        - {name: csv, in: query, explode: false, schema: {type: array, items: {type: string}}}
        - {name: spaced, in: query, style: spaceDelimited, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: piped, in: query, style: pipeDelimited, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: filter, in: query, style: deepObject, schema: {type: object, properties: {status: {type: string}, min: {type: integer}}}}
        - {name: point, in: query, schema: {type: object, properties: {lat: {type: number}, lng: {type: number}}}}
        - {name: json, in: query, content: {application/json: {schema: {type: object, properties: {a: {type: integer}}}}}}
        - {name: X-Trace, in: header, required: true, schema: {type: string, format: uuid}}
        - {name: X-Ids, in: header, schema: {type: array, items: {type: integer}}}
        - {name: session, in: cookie, schema: {type: string, pattern: '^[a-f0-9]{8}$'}}
      responses: {'200': {description: ok}}
    put:
      operationId: putItem
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Item'}
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [name]
              properties:
                name: {type: string, maxLength: 5}
                count: {type: integer}
                tags: {type: array, items: {type: string}}
      responses: {'200': {description: ok}}
  /free:
    post:
      operationId: free
      requestBody:
        content:
          application/json:
            schema: {type: object}
          text/*: {}
      responses: {'200': {description: ok}}
components:
  schemas:
    Item:
      type: object
      required: [name]
      properties:
        name: {type: string, nullable: true}
        price: {type: number, minimum: 0, exclusiveMinimum: true, example: 3}
        kind: {type: string, enum: [a, b], nullable: true}
        owner: {$ref: '#/components/schemas/Owner'}
        extra: {type: object, additionalProperties: {type: string}}
        pet:
          oneOf: [{$ref: '#/components/schemas/Cat'}, {$ref: '#/components/schemas/Dog'}]
          discriminator: {propertyName: kind}
        tagged:
          allOf:
            - {$ref: '#/components/schemas/Owner'}
            - {type: object, properties: {tag: {type: string}}}
      x-internal: true
    Owner:
      type: object
      properties:
        id: {type: string, format: uuid, description: ignored siblings}
    Cat: {type: object, required: [meows], properties: {meows: {type: boolean}}}
    Dog: {type: object, required: [barks], properties: {barks: {type: boolean}}}
"#;

const TRACE: &str = "0b6b3c59-4f86-4a56-a4b8-4a3b1a6f7c11";

fn spec_with(strictness: Strictness) -> Spec {
    let options = LoadOptions { strictness, max_body_bytes: 4096, ..LoadOptions::default() };
    Spec::parse(SPEC, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn check(
    spec: &Spec,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), ValidationError> {
    let Match::Found(op, params) = spec.match_request(method, path) else { panic!("{method} {path} does not match") };
    let parts = RequestParts { path_params: &params, query: Some(query), headers: &headers, body };
    op.validate_request(&parts)
}

fn get(spec: &Spec, query: &str) -> Result<(), ValidationError> {
    check(spec, "GET", "/items/5", query, &[("x-trace", TRACE)], b"")
}

fn refused(result: Result<(), ValidationError>, location: Location, name: &str, kind: ErrorKind) {
    let err = result.expect_err("refused");
    assert_eq!((err.location, err.name_or_pointer.as_str(), err.kind), (location, name, kind), "{err}");
}

#[test]
fn valid_requests_pass() {
    let spec = spec_with(Strictness::default());
    let queries = [
        "",
        "uuid=0b6b3c59-4f86-4a56-a4b8-4a3b1a6f7c11&day=2024-02-29&at=2024-02-29T12:00:00Z",
        "mail=a%40b.example&site=https%3A%2F%2Fx.example%2Fp&ip4=10.0.0.1&ip6=%3A%3A1&blob=aGk%3D",
        "big=-9223372036854775808&ratio=0.5&flag=false&color=red&code=ABC&word=xaby",
        "tags=1&tags=2&tags=3&csv=a,b&spaced=1%202&piped=1|2",
        "filter[status]=open&filter[min]=3&lat=1.5&lng=-2",
        "json=%7B%22a%22%3A1%7D",
    ];
    for q in queries {
        get(&spec, q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let headers = [("X-Trace", TRACE), ("x-ids", "1,2"), ("x-ids", "3"), ("Cookie", "a=b; session=deadbeef")];
    check(&spec, "GET", "/items/2147483647", "", &headers, b"").unwrap();
}

#[test]
fn path_parameters_are_typed() {
    let spec = spec_with(Strictness::default());
    for (path, kind) in [
        ("/items/0", ErrorKind::Constraint("minimum")),
        ("/items/2147483648", ErrorKind::Constraint("maximum")),
        ("/items/x", ErrorKind::Malformed),
        ("/items/1.0", ErrorKind::Malformed),
        ("/items/01", ErrorKind::Malformed),
        ("/items/1 OR 1=1", ErrorKind::Malformed),
    ] {
        refused(check(&spec, "GET", path, "", &[("x-trace", TRACE)], b""), Location::Path, "id", kind);
    }
}

#[test]
fn formats_are_asserted() {
    let spec = spec_with(Strictness::default());
    let cases = [
        ("uuid", "not-a-uuid"),
        ("day", "2024-02-30"),
        ("day", "2024-1-1"),
        ("at", "yesterday"),
        ("mail", "nobody"),
        ("site", "no%20scheme"),
        ("ip4", "256.0.0.1"),
        ("ip6", "1%3A%3A2%3A%3A3"),
        ("blob", "a%3D%3D%3D"),
        ("blob", "%3F%3F%3F%3F"),
    ];
    for (name, value) in cases {
        refused(get(&spec, &format!("{name}={value}")), Location::Query, name, ErrorKind::Constraint("format"));
    }
    refused(get(&spec, "big=9223372036854775808"), Location::Query, "big", ErrorKind::Constraint("maximum"));
}

#[test]
fn constraints_are_enforced() {
    let spec = spec_with(Strictness::default());
    let cases = [
        ("ratio=1", "ratio", ErrorKind::Constraint("exclusiveMaximum")),
        ("ratio=-0.1", "ratio", ErrorKind::Constraint("minimum")),
        ("ratio=NaN", "ratio", ErrorKind::Malformed),
        ("flag=yes", "flag", ErrorKind::Malformed),
        ("color=blue", "color", ErrorKind::Constraint("enum")),
        ("code=AB", "code", ErrorKind::Constraint("minLength")),
        ("code=abc", "code", ErrorKind::Constraint("pattern")),
        ("code=ABCD", "code", ErrorKind::Constraint("maxLength")),
        ("word=ba", "word", ErrorKind::Constraint("pattern")),
        ("tags=1&tags=2&tags=3&tags=4", "tags", ErrorKind::Constraint("maxItems")),
        ("tags=x", "tags", ErrorKind::Malformed),
        ("spaced=1,2", "spaced", ErrorKind::Malformed),
        ("piped=1%202", "piped", ErrorKind::Malformed),
        ("filter[min]=x", "filter", ErrorKind::Malformed),
        ("filter[a][b]=1", "filter", ErrorKind::Malformed),
        ("filter[other]=1", "filter", ErrorKind::Constraint("unevaluatedProperties")),
        ("lat=north", "point", ErrorKind::Malformed),
        ("json=%7B%22a%22%3A%22x%22%7D", "json", ErrorKind::Constraint("type")),
        ("json=%7Bnope", "json", ErrorKind::Malformed),
    ];
    for (q, name, kind) in cases {
        refused(get(&spec, q), Location::Query, name, kind);
    }
}

#[test]
fn unknown_duplicate_and_malformed_query_parameters_are_refused() {
    let spec = spec_with(Strictness::default());
    refused(get(&spec, "debug=1"), Location::Query, "debug", ErrorKind::Unknown);
    refused(get(&spec, "color=red&color=green"), Location::Query, "color", ErrorKind::Duplicate);
    refused(get(&spec, "csv=a&csv=b"), Location::Query, "csv", ErrorKind::Duplicate);
    refused(get(&spec, "color=%zz"), Location::Query, "", ErrorKind::Malformed);
    refused(get(&spec, "color=%C0%AF"), Location::Query, "", ErrorKind::Malformed);
    let lenient = spec_with(Strictness { allow_unknown_query_params: true, ..Strictness::default() });
    get(&lenient, "debug=1&color=red").unwrap();
    refused(get(&lenient, "color=blue"), Location::Query, "color", ErrorKind::Constraint("enum"));
}

#[test]
fn headers_and_cookies_are_checked() {
    let spec = spec_with(Strictness::default());
    refused(check(&spec, "GET", "/items/1", "", &[], b""), Location::Header, "X-Trace", ErrorKind::Missing);
    refused(
        check(&spec, "GET", "/items/1", "", &[("x-trace", "nope")], b""),
        Location::Header,
        "X-Trace",
        ErrorKind::Constraint("format"),
    );
    refused(
        check(&spec, "GET", "/items/1", "", &[("x-trace", TRACE), ("x-ids", "1,a")], b""),
        Location::Header,
        "X-Ids",
        ErrorKind::Malformed,
    );
    refused(
        check(&spec, "GET", "/items/1", "", &[("x-trace", TRACE), ("cookie", "session=' OR 1=1")], b""),
        Location::Cookie,
        "session",
        ErrorKind::Constraint("pattern"),
    );
    refused(
        check(
            &spec,
            "GET",
            "/items/1",
            "",
            &[("x-trace", TRACE), ("cookie", "session=deadbeef; session=deadbeef")],
            b"",
        ),
        Location::Cookie,
        "session",
        ErrorKind::Duplicate,
    );
}

fn put(spec: &Spec, content_type: &str, body: &[u8]) -> Result<(), ValidationError> {
    check(spec, "PUT", "/items/1", "", &[("content-type", content_type)], body)
}

#[test]
fn json_bodies_follow_the_converted_schema() {
    let spec = spec_with(Strictness::default());
    let ok = [
        r#"{"name":"x"}"#,
        r#"{"name":null,"kind":null}"#,
        r#"{"name":"x","price":0.5,"kind":"a","owner":{"id":"0b6b3c59-4f86-4a56-a4b8-4a3b1a6f7c11"}}"#,
        r#"{"name":"x","extra":{"anything":"goes"}}"#,
        r#"{"name":"x","pet":{"meows":true}}"#,
        r#"{"name":"x","tagged":{"id":"0b6b3c59-4f86-4a56-a4b8-4a3b1a6f7c11","tag":"t"}}"#,
    ];
    for body in ok {
        put(&spec, "application/json", body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
    put(&spec, "application/json; charset=utf-8", br#"{"name":"x"}"#).unwrap();
    let cases = [
        (r#"{}"#, "/name", ErrorKind::Missing),
        (r#"{"name":"x","price":0}"#, "/price", ErrorKind::Constraint("exclusiveMinimum")),
        (r#"{"name":"x","kind":"c"}"#, "/kind", ErrorKind::Constraint("enum")),
        (r#"{"name":"x","role":"admin"}"#, "/role", ErrorKind::Unknown),
        (
            r#"{"name":"x","owner":{"id":"0b6b3c59-4f86-4a56-a4b8-4a3b1a6f7c11","admin":true}}"#,
            "/owner/admin",
            ErrorKind::Unknown,
        ),
        (r#"{"name":"x","owner":{"id":"nope"}}"#, "/owner/id", ErrorKind::Constraint("format")),
        (r#"{"name":"x","extra":{"a":1}}"#, "/extra/a", ErrorKind::Constraint("type")),
        (r#"{"name":"x","pet":{"meows":true,"barks":true}}"#, "/pet", ErrorKind::Constraint("oneOf")),
        (r#"{"name":"x","tagged":{"tag":"t","other":1}}"#, "/tagged/other", ErrorKind::Unknown),
        (r#"{"name":"x","name":"y"}"#, "", ErrorKind::Duplicate),
        (r#"{"name":"x""#, "", ErrorKind::Malformed),
        (r#"["name"]"#, "", ErrorKind::Constraint("type")),
        ("", "", ErrorKind::Missing),
    ];
    for (body, pointer, kind) in cases {
        refused(put(&spec, "application/json", body.as_bytes()), Location::Body, pointer, kind);
    }
}

#[test]
fn unknown_fields_pass_when_the_route_allows_them() {
    let lenient = spec_with(Strictness { allow_unknown_fields: true, ..Strictness::default() });
    put(&lenient, "application/json", br#"{"name":"x","role":"admin","owner":{"admin":true}}"#).unwrap();
    refused(
        put(&lenient, "application/json", br#"{"name":"x","price":-1}"#),
        Location::Body,
        "/price",
        ErrorKind::Constraint("exclusiveMinimum"),
    );
}

#[test]
fn content_types_and_sizes_are_checked() {
    let spec = spec_with(Strictness::default());
    for ct in ["text/plain", "application/xml", "application/json; charset=iso-8859-1", "json", ""] {
        let err = put(&spec, ct, br#"{"name":"x"}"#).unwrap_err();
        assert_eq!(
            (err.location, err.kind, err.status()),
            (Location::ContentType, ErrorKind::UnsupportedMediaType, 415),
            "{ct:?}"
        );
    }
    let err = check(&spec, "PUT", "/items/1", "", &[], br#"{"name":"x"}"#).unwrap_err();
    assert_eq!(err.status(), 415, "a body without a content type");
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(5000));
    let err = put(&spec, "application/json", big.as_bytes()).unwrap_err();
    assert_eq!((err.kind, err.status()), (ErrorKind::TooLarge, 413));
    refused(
        check(&spec, "GET", "/items/1", "", &[("x-trace", TRACE), ("content-type", "application/json")], b"{}"),
        Location::Body,
        "",
        ErrorKind::Unknown,
    );
    check(&spec, "POST", "/free", "", &[("content-type", "text/csv")], b"a,b").unwrap();
    check(&spec, "POST", "/free", "", &[("content-type", "application/json")], br#"{"free":{"form":1}}"#).unwrap();
    check(&spec, "POST", "/free", "", &[], b"").unwrap();
}

#[test]
fn form_bodies_are_validated_as_objects() {
    let spec = spec_with(Strictness::default());
    let form = "application/x-www-form-urlencoded";
    put(&spec, form, b"name=ab+c&count=3&tags=x&tags=y").unwrap();
    refused(put(&spec, form, b"count=3"), Location::Body, "/name", ErrorKind::Missing);
    refused(put(&spec, form, b"name=abcdef"), Location::Body, "/name", ErrorKind::Constraint("maxLength"));
    refused(put(&spec, form, b"name=a&count=x"), Location::Body, "/count", ErrorKind::Constraint("type"));
    refused(put(&spec, form, b"name=a&name=b"), Location::Body, "/name", ErrorKind::Duplicate);
    refused(put(&spec, form, b"name=a&admin=1"), Location::Body, "/admin", ErrorKind::Unknown);
    refused(put(&spec, form, b"name=%zz"), Location::Body, "", ErrorKind::Malformed);
}

#[test]
fn errors_never_carry_the_value() {
    let spec = spec_with(Strictness::default());
    let payload = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for q in [format!("color={payload}"), format!("{payload}=1"), format!("code={payload}")] {
        let err = get(&spec, &q).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('<') && !text.contains('('), "{text}");
        assert!(err.name_or_pointer.len() <= 64);
    }
}
