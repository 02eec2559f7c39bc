use serde_json::{Value, json};

use super::*;

fn compile(source: &str) -> RuleProgram {
    RuleEngine::new().compile(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap()
}

/// A call by alice (scope `accounts:read payments:write`) to `/accounts/{owner}` with `params`.
struct Call {
    claims: Value,
    params: Value,
    query: Value,
    body: Option<Value>,
    headers: Vec<(&'static str, &'static str)>,
}

impl Call {
    fn new() -> Self {
        Self {
            claims: json!({"sub": "alice", "client_id": "app", "scope": "accounts:read payments:write",
                           "acr": "urn:argus:acr:mfa", "amr": ["pwd", "otp"], "auth_time": 1_700_000_000,
                           "cnf": {"jkt": "abc"}, "tenant": "t1"}),
            params: json!({"owner": "alice", "id": 42}),
            query: json!({"limit": 10}),
            body: None,
            headers: vec![("x-tenant", "t1"), ("accept", "application/json")],
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn eval(&self, rule: &RuleProgram) -> RuleDecision {
        rule.evaluate(&self.input(true))
    }

    fn input(&self, with_token: bool) -> RuleInput<'_> {
        RuleInput {
            claims: with_token.then(|| obj(&self.claims)),
            params: Some(obj(&self.params)),
            query: Some(obj(&self.query)),
            headers: &self.headers,
            body: self.body.as_ref(),
            method: "POST",
            path: "/accounts/alice",
            ip: Some("203.0.113.7".parse().unwrap()),
        }
    }
}

const DENY_FALSE: RuleDecision = RuleDecision::Deny(DenyReason::False);

#[test]
fn ownership_rule_allows_the_owner_only() {
    let rule = compile("params.owner == token.sub");
    assert_eq!(Call::new().eval(&rule), RuleDecision::Allow);
    let mut bob = Call::new();
    bob.params = json!({"owner": "bob"});
    assert_eq!(bob.eval(&rule), DENY_FALSE);
}

#[test]
fn scope_is_a_list_and_body_fields_compare_as_numbers() {
    let rule = compile("'admin' in token.scope || body.amount < 100000");
    assert_eq!(Call::new().body(json!({"amount": 99_999, "to": "bob"})).eval(&rule), RuleDecision::Allow);
    assert_eq!(Call::new().body(json!({"amount": 100_000})).eval(&rule), DENY_FALSE);
    let mut admin = Call::new().body(json!({"amount": 5_000_000}));
    admin.claims["scope"] = json!("admin other");
    assert_eq!(admin.eval(&rule), RuleDecision::Allow);
    // A token without a scope claim has no scopes, not an error.
    let mut bare = Call::new().body(json!({"amount": 5_000_000}));
    bare.claims.as_object_mut().unwrap().remove("scope");
    assert_eq!(bare.eval(&rule), DENY_FALSE);
    // A scope claim given as a JSON array works too.
    let mut array = Call::new().body(json!({"amount": 5_000_000}));
    array.claims["scope"] = json!(["admin"]);
    assert_eq!(array.eval(&rule), RuleDecision::Allow);
}

#[test]
fn every_claim_and_input_is_reachable() {
    let rule = compile(
        "token.client_id == 'app' && token.acr == 'urn:argus:acr:mfa' && 'otp' in token.amr \
         && token.auth_time > 0 && token.cnf.jkt == 'abc' && token.tenant == headers['x-tenant'] \
         && params.id == 42 && query.limit <= 10 && request.method == 'POST' \
         && request.path.startsWith('/accounts/') && request.ip == '203.0.113.7'",
    );
    assert_eq!(Call::new().eval(&rule), RuleDecision::Allow);
    let mut other_tenant = Call::new();
    other_tenant.headers = vec![("x-tenant", "t2")];
    assert_eq!(other_tenant.eval(&rule), DENY_FALSE);
}

#[test]
fn repeated_headers_are_joined() {
    let rule = compile("headers['x-forwarded-for'] == '1.1.1.1, 2.2.2.2'");
    let mut call = Call::new();
    call.headers = vec![("x-forwarded-for", "1.1.1.1"), ("accept", "*/*"), ("x-forwarded-for", "2.2.2.2")];
    assert_eq!(call.eval(&rule), RuleDecision::Allow);
}

#[test]
fn type_errors_deny() {
    let call = Call::new().body(json!({"amount": "lots", "items": [1, 2]}));
    for source in ["body.amount < 100000", "params.owner + 1 == 2", "size(params.id) == 1", "body.items[0].x == 1"] {
        assert_eq!(call.eval(&compile(source)), RuleDecision::Deny(DenyReason::TypeError), "{source}");
    }
}

#[test]
fn missing_fields_deny_and_has_tests_presence() {
    let call = Call::new().body(json!({"amount": 1}));
    for source in ["body.currency == 'EUR'", "token.missing == 1", "params.nope == 'x'", "headers['x-none'] == ''"] {
        assert_eq!(call.eval(&compile(source)), RuleDecision::Deny(DenyReason::MissingField), "{source}");
    }
    assert_eq!(call.eval(&compile("!has(body.currency) && has(body.amount)")), RuleDecision::Allow);
    // No body at all: body is null, and reading a field of it is an error.
    assert_eq!(Call::new().eval(&compile("body.amount < 5")), RuleDecision::Deny(DenyReason::TypeError));
    assert_eq!(Call::new().eval(&compile("body == null")), RuleDecision::Allow);
}

#[test]
fn token_on_a_route_without_tokens_denies() {
    let rule = compile("token.sub == 'alice'");
    let call = Call::new();
    assert_eq!(rule.evaluate(&call.input(false)), RuleDecision::Deny(DenyReason::MissingField));
    // A rule that does not read the token still works there.
    assert_eq!(compile("params.id == 42").evaluate(&call.input(false)), RuleDecision::Allow);
}

#[test]
fn non_boolean_results_and_arithmetic_errors_deny() {
    let call = Call::new().body(json!({"items": []}));
    assert_eq!(call.eval(&compile("params.owner")), RuleDecision::Deny(DenyReason::NotBoolean));
    assert_eq!(call.eval(&compile("1 / size(body.items) == 1")), RuleDecision::Deny(DenyReason::ArithmeticError));
    assert_eq!(
        call.eval(&compile("9223372036854775807 + params.id > 0")),
        RuleDecision::Deny(DenyReason::ArithmeticError)
    );
    assert_eq!(call.eval(&compile("[1][params.id] == 1")), RuleDecision::Deny(DenyReason::ArithmeticError));
}

#[test]
fn one_level_of_comprehension_over_request_data() {
    let rule = compile("body.items.all(i, i.owner == token.sub) && body.items.exists(i, i.qty > 1)");
    let mine = Call::new().body(json!({"items": [{"owner": "alice", "qty": 1}, {"owner": "alice", "qty": 3}]}));
    assert_eq!(mine.eval(&rule), RuleDecision::Allow);
    let mixed = Call::new().body(json!({"items": [{"owner": "alice", "qty": 2}, {"owner": "bob", "qty": 1}]}));
    assert_eq!(mixed.eval(&rule), DENY_FALSE);
}

#[test]
fn literal_regex_matches() {
    let rule = compile("params.owner.matches('^[a-z]+$') && matches(token.sub, '^al')");
    assert_eq!(Call::new().eval(&rule), RuleDecision::Allow);
}

#[test]
fn only_the_named_fields_are_read() {
    let rule = compile("body.amount < 10 && has(body.to)");
    assert!(rule.reads(Root::Body) && !rule.reads(Root::Headers) && !rule.reads(Root::Token));
    // Other members of the body are never converted: an odd value there cannot change the answer.
    let call = Call::new().body(json!({"amount": 5, "to": "bob", "huge": vec![0; 10_000]}));
    assert_eq!(call.eval(&rule), RuleDecision::Allow);
    // Using the root as a whole converts all of it, and 10003 values are more than one evaluation may convert.
    assert_eq!(call.eval(&compile("size(body) == 3")), RuleDecision::Deny(DenyReason::InputTooLarge));
    let small = Call::new().body(json!({"amount": 5, "to": "bob", "items": vec![0; 4000]}));
    assert_eq!(small.eval(&compile("size(body) == 3")), RuleDecision::Allow);
    assert_eq!(small.eval(&compile("body.items.all(i, i == 0)")), RuleDecision::Allow);
    // A comprehension variable named like a root shadows it.
    assert_eq!(call.eval(&compile("[1, 2].all(body, body > 0)")), RuleDecision::Allow);
}

#[test]
fn size_and_cost_limits_are_load_errors() {
    let engine = RuleEngine::new();
    let too_long = format!("params.owner == '{}'", "a".repeat(4100));
    assert!(matches!(engine.compile(&too_long), Err(RuleError::TooLong { .. })));
    let many_nodes = vec!["params.id"; 300].join(" + ") + " > 0";
    assert!(many_nodes.len() < 4096);
    assert_eq!(engine.compile(&many_nodes).unwrap_err(), RuleError::TooComplex { max_nodes: 512 });
    let nested = "body.a.all(x, body.b.exists(y, x == y))";
    assert_eq!(engine.compile(nested).unwrap_err(), RuleError::NestedComprehension);
    let nested_in_range = "body.a.map(x, x).all(y, [1].exists(z, z == y))";
    assert_eq!(engine.compile(nested_in_range).unwrap_err(), RuleError::NestedComprehension);
    let deep = format!("{}true{}", "(".repeat(80), ")".repeat(80));
    assert!(matches!(engine.compile(&deep), Err(RuleError::Syntax(_))), "{:?}", engine.compile(&deep));
    assert_eq!(engine.compile("params.owner.matches(body.re)").unwrap_err(), RuleError::DynamicPattern);
    assert!(matches!(engine.compile("params.owner.matches('(')"), Err(RuleError::BadPattern(_))));
}

#[test]
fn malformed_rules_are_load_errors() {
    let engine = RuleEngine::new();
    assert_eq!(engine.compile("  ").unwrap_err(), RuleError::Empty);
    assert!(matches!(engine.compile("params.owner =="), Err(RuleError::Syntax(_))));
    assert_eq!(engine.compile("parms.owner == token.sub").unwrap_err(), RuleError::UnknownVariable("parms".into()));
    assert!(matches!(engine.compile("google.protobuf.Int64Value{value: 1} == 1"), Err(RuleError::Unsupported(_))));
    // Type names are identifiers CEL knows.
    assert_eq!(Call::new().eval(&compile("type(params.id) == int")), RuleDecision::Allow);
}

#[test]
fn deny_reasons_have_stable_names() {
    let names: std::collections::HashSet<_> = [
        DenyReason::False,
        DenyReason::NotBoolean,
        DenyReason::MissingField,
        DenyReason::TypeError,
        DenyReason::ArithmeticError,
        DenyReason::EvaluationError,
        DenyReason::InputTooLarge,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(names.len(), 7);
    assert!(names.iter().all(|n| n.starts_with("rule-")));
}

mod extensions {
    use super::*;

    fn policy(ext: Value) -> Result<OperationPolicy, ExtensionError> {
        let engine = RuleEngine::new();
        OperationPolicy::from_extensions(&engine, "getAccount", obj(&ext).iter().map(|(k, v)| (k.as_str(), v)))
    }

    #[test]
    fn all_extensions_parse() {
        let p = policy(json!({
            "x-argus-rule": "params.owner == token.sub",
            "x-argus-step-up": {"acr": "urn:argus:acr:mfa", "max_age": 300},
            "x-argus-decoy": true,
            "x-argus-sensitive": {"records": "/data"},
            "x-argus-rate-limit": {"per_user": "10/min", "per_ip": "off"},
            "x-other-vendor": {"anything": 1},
            "summary": "ignored",
        }))
        .unwrap();
        assert_eq!(p.rule.as_ref().unwrap().source(), "params.owner == token.sub");
        assert_eq!(p.step_up.as_ref().unwrap().max_age(), Some(300));
        assert!(p.decoy);
        assert_eq!(p.sensitive, Some(Sensitive { records: Some("/data".into()) }));
        assert_eq!(p.rate_limit.per_user.unwrap().to_string(), "10/min");
        assert_eq!(p.rate_limit.per_ip, Some(crate::ratelimit::Limit::Off));
        let empty = policy(json!({})).unwrap();
        assert!(empty.rule.is_none() && empty.step_up.is_none() && !empty.decoy && empty.sensitive.is_none());
        assert!(empty.rate_limit.is_empty());
    }

    #[test]
    fn errors_name_the_operation_and_the_extension() {
        let cases = [
            json!({"x-argus-rule": "parms.x == 1"}),
            json!({"x-argus-rule": 3}),
            json!({"x-argus-step-up": {"acr": 1}}),
            json!({"x-argus-decoy": "yes"}),
            json!({"x-argus-sensitive": {"records": "data"}}),
            json!({"x-argus-sensitive": {"count": "/data"}}),
            json!({"x-argus-rate-limit": {"per_user": "lots"}}),
            json!({"x-argus-rate-limit": {"per_usr": "1/s"}}),
            json!({"x-argus-rul": "true"}),
        ];
        for ext in cases {
            let message = policy(ext.clone()).unwrap_err().to_string();
            let name = obj(&ext).keys().next().unwrap().clone();
            assert!(message.starts_with("operation \"getAccount\": "), "{message}");
            assert!(message.contains(&name), "{message} lacks {name}");
        }
    }

    #[test]
    fn sensitive_forms_and_record_counts() {
        let sensitive = |v: Value| policy(json!({"x-argus-sensitive": v})).unwrap().sensitive;
        assert_eq!(sensitive(json!(false)), None);
        let whole = sensitive(json!(true)).unwrap();
        assert_eq!(whole.count_records(&json!([1, 2, 3])), Some(3));
        assert_eq!(whole.count_records(&json!({"id": 1})), Some(1));
        let nested = sensitive(json!({"records": "/data/items"})).unwrap();
        assert_eq!(nested.count_records(&json!({"data": {"items": [{}, {}]}})), Some(2));
        assert_eq!(nested.count_records(&json!({"data": {"items": 7}})), None);
        assert_eq!(nested.count_records(&json!({})), None);
    }
}

#[test]
fn json_numbers_compare_across_int_double_and_uint() {
    let call = Call::new().body(json!({"amount": 99.5, "big": 18_446_744_073_709_551_615u64}));
    for source in ["body.amount < 100000", "body.amount == 99.5", "body.big > 1", "params.id == 42.0"] {
        assert_eq!(call.eval(&compile(source)), RuleDecision::Allow, "{source}");
    }
    // Values of different kinds are simply unequal (CEL heterogeneous equality), which denies.
    assert_eq!(call.eval(&compile("params.owner == 1")), DENY_FALSE);
}

mod from_spec {
    use super::*;
    use crate::openapi::{LoadOptions, Spec};

    const SPEC: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /accounts/{owner}:
    x-argus-sensitive: true
    get:
      operationId: getAccount
      x-argus-rule: params.owner == token.sub
      x-argus-step-up: {acr: urn:argus:acr:mfa}
      parameters: [{name: owner, in: path, required: true, schema: {type: string}}]
      responses: {}
  /admin/export:
    get:
      operationId: exportAll
      x-argus-decoy: true
      x-argus-rate-limit: {per_user: 1/h}
      responses: {}
"#;

    #[test]
    fn operations_of_a_loaded_spec_compile_their_extensions() {
        let spec = Spec::parse(SPEC, &LoadOptions::default()).unwrap();
        let engine = RuleEngine::new();
        let get = OperationPolicy::for_operation(&engine, spec.operation("getAccount").unwrap()).unwrap();
        assert_eq!(Call::new().eval(get.rule.as_ref().unwrap()), RuleDecision::Allow);
        assert_eq!(get.step_up.unwrap().acr(), ["urn:argus:acr:mfa"]);
        // Inherited from the path item.
        assert_eq!(get.sensitive, Some(Sensitive { records: None }));
        let export = OperationPolicy::for_operation(&engine, spec.operation("exportAll").unwrap()).unwrap();
        assert!(export.decoy && export.rule.is_none());
        assert_eq!(export.rate_limit.per_user.unwrap().to_string(), "1/h");
    }
}
