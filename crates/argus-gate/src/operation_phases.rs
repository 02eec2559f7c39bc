//! The phases of a route with an OpenAPI spec, in call order: operation match -> (token, revocation, DPoP, in
//! `phases` and `dpop`) -> scopes from `security` -> `x-argus-rule` -> `x-argus-step-up` -> block list -> rate
//! limit -> validation. Each returns what the next needs or the [`Refusal`] that ends the call; the gate calls
//! them in order (`gate.rs`).

use argus_jose::{AccessClaims, DPOP_ALGORITHMS};
use argus_model::Timestamp;
use argus_policy::blocklist::BlockKeys;
use argus_policy::openapi::{HeaderSource, Match, Operation, PathParams, RequestParts};
use argus_policy::ratelimit::{LimitSet, RateDecision, RateKeys, RateLimiter};
use argus_policy::rules::{Root, RuleDecision, RuleInput, RuleProgram};
use argus_policy::stepup::{ChallengeScheme, StepUpChallenge, StepUpClaims, StepUpDecision, StepUpPolicy};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

use crate::api::{OperationRuntime, RouteApi};
use crate::refusal::{Refusal, TokenScheme};
use crate::revocation::Revocations;

/// The realm of the gate's challenges.
const REALM: &str = "argus";

/// The operation a call matched, with its runtime policy and path parameters.
pub(crate) struct Matched<'a, 'p> {
    pub(crate) operation: &'a Operation,
    pub(crate) runtime: &'a OperationRuntime,
    pub(crate) params: PathParams<'a, 'p>,
}

/// Phase: operation. The spec's operation for `method` and the canonical `path` (which still carries the route's
/// `prefix`): 404 when the spec has no such path, 405 with `Allow` when it has the path but not the method.
pub(crate) fn operation_phase<'a, 'p>(
    api: &'a RouteApi,
    prefix: &str,
    method: &http::Method,
    path: &'p str,
) -> Result<Matched<'a, 'p>, Refusal> {
    let in_spec = path_in_spec(prefix, path).ok_or(Refusal::NoOperation)?;
    match api.spec.match_request(method.as_str(), in_spec) {
        Match::Found(operation, params) => {
            let runtime = api.runtime(operation).ok_or(Refusal::NoOperation)?;
            Ok(Matched { operation, runtime, params })
        }
        Match::MethodNotAllowed(methods) => {
            let allow = methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            Err(Refusal::MethodNotAllowed { allow })
        }
        Match::NotFound => Err(Refusal::NoOperation),
    }
}

/// The path after the route's prefix, as the spec's paths are written (`/` for the prefix itself).
fn path_in_spec<'p>(prefix: &str, path: &'p str) -> Option<&'p str> {
    if prefix == "/" {
        return Some(path);
    }
    match path.strip_prefix(prefix)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// Phase: scopes. The OpenAPI `security` of the operation (alternatives, each a set of schemes whose scopes must
/// all be granted). Without a token, only an operation that allows anonymous calls goes on. The challenge names
/// the scopes of the first alternative.
pub(crate) fn security_phase(operation: &Operation, claims: Option<&AccessClaims>) -> Result<(), Refusal> {
    let Some(claims) = claims else {
        return if operation.allows_anonymous() { Ok(()) } else { Err(Refusal::MissingToken) };
    };
    if operation.security_satisfied_by(|wanted| claims.scopes().any(|granted| granted == wanted)) {
        return Ok(());
    }
    let scope = operation
        .security
        .first()
        .map(|alt| alt.schemes.iter().flat_map(|s| s.scopes.iter().map(String::as_str)).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    Err(Refusal::InsufficientScope { scope })
}

/// What a rule may read of the call, gathered only for the roots the rule uses.
pub(crate) struct RuleData<'a> {
    pub(crate) claims: Option<Map<String, Value>>,
    pub(crate) params: Map<String, Value>,
    pub(crate) query: Map<String, Value>,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) body: Option<Value>,
}

/// Phase: `x-argus-rule`. Anything but `true` denies (403 `rule-denied`; the event gets the precise reason).
pub(crate) fn rule_phase(runtime: &OperationRuntime, input: &RuleInput<'_>) -> Result<(), Refusal> {
    let Some(rule) = &runtime.policy.rule else { return Ok(()) };
    match rule.evaluate(input) {
        RuleDecision::Allow => Ok(()),
        RuleDecision::Deny(reason) => Err(Refusal::RuleDenied { reason: reason.as_str() }),
    }
}

/// The path and query parameters as a rule sees them: typed as the operation declares them (an `integer` id is a
/// number, so `params.id == 7` holds), each only if the rule reads it.
pub(crate) fn rule_params(
    rule: &RuleProgram,
    operation: &Operation,
    params: &PathParams<'_, '_>,
    query: Option<&str>,
) -> (Map<String, Value>, Map<String, Value>) {
    let params = if rule.reads(Root::Params) { operation.typed_path_params(params) } else { Map::new() };
    let query = if rule.reads(Root::Query) { operation.typed_query(query) } else { Map::new() };
    (params, query)
}

/// Phase: `x-argus-step-up`. A token whose authentication is too weak or too old is answered 401 with the RFC 9470
/// `insufficient_user_authentication` challenge, in the scheme the token came with.
pub(crate) fn step_up_phase(
    step_up: Option<&StepUpPolicy>,
    claims: Option<&AccessClaims>,
    scheme: TokenScheme,
    now: Timestamp,
) -> Result<(), Refusal> {
    let Some(policy) = step_up else { return Ok(()) };
    // A call without a token (an operation open to anonymous callers) has no sign-in: any requirement is unmet.
    let step_up_claims =
        StepUpClaims { acr: claims.and_then(|c| c.acr.as_deref()), auth_time: claims.and_then(|c| c.auth_time) };
    match policy.decide(step_up_claims, now) {
        StepUpDecision::Satisfied => Ok(()),
        StepUpDecision::Required(challenge) => Err(step_up_refusal(&challenge, scheme)),
    }
}

/// The 401 with an RFC 9470 challenge, in the scheme the token came with.
pub(crate) fn step_up_refusal(challenge: &StepUpChallenge<'_>, scheme: TokenScheme) -> Refusal {
    let scheme = match scheme {
        TokenScheme::Bearer => ChallengeScheme::Bearer,
        TokenScheme::Dpop => ChallengeScheme::Dpop { algs: DPOP_ALGORITHMS },
    };
    Refusal::StepUpRequired { challenge: challenge.www_authenticate(scheme, REALM) }
}

/// The keys of a call that blocks and limits name.
pub(crate) fn block_keys<'a>(claims: Option<&'a AccessClaims>, ip: Option<std::net::IpAddr>) -> BlockKeys<'a> {
    BlockKeys {
        ip,
        client: claims.map(|c| c.client_id.as_str()),
        user: claims.map(|c| c.sub.as_str()),
        session: claims.and_then(|c| c.sid.as_deref()),
        token: claims.map(|c| c.jti.as_str()),
    }
}

/// Phase: block list. A live block of the control channel on any key of the call refuses it (403 `blocked`).
pub(crate) async fn block_phase(revocations: &Revocations, keys: &BlockKeys<'_>) -> Result<(), Refusal> {
    match revocations.blocked(keys).await {
        Some(kind) => {
            tracing::debug!(kind = kind.as_str(), "call blocked");
            Err(Refusal::Blocked)
        }
        None => Ok(()),
    }
}

/// The `RateLimit` and `RateLimit-Policy` values of a call, sent on its answer whatever it is.
#[derive(Default)]
pub(crate) struct RateHeaders {
    pub(crate) state: Option<HeaderValue>,
    pub(crate) policy: Option<HeaderValue>,
}

/// Phase: rate limit. Charges the call to every limit naming one of its keys; an exhausted one refuses it with
/// 429 and `Retry-After`. The headers describe the tightest limit either way.
pub(crate) async fn rate_limit_phase(
    limiter: &RateLimiter,
    limits: &LimitSet,
    claims: Option<&AccessClaims>,
    ip: Option<std::net::IpAddr>,
    now: Timestamp,
    headers: &mut RateHeaders,
) -> Result<(), Refusal> {
    if limits.is_empty() {
        return Ok(());
    }
    let keys = RateKeys {
        token: claims.map(|c| c.jti.as_str()),
        user: claims.map(|c| c.sub.as_str()),
        client: claims.map(|c| c.client_id.as_str()),
        ip,
    };
    let decision = limiter.check(limits, &keys, now).await;
    headers.state = decision.rate_limit_header().and_then(|v| HeaderValue::from_str(&v).ok());
    headers.policy = decision.policy_header().and_then(|v| HeaderValue::from_str(v).ok());
    match decision {
        RateDecision::Limited { retry_after_secs, .. } => Err(Refusal::RateLimited { retry_after_secs }),
        RateDecision::Unlimited | RateDecision::Allowed { .. } => Ok(()),
    }
}

/// Read the whole request body, up to `max` bytes: validation and rules need all of it before anything is
/// proxied. A declared length over the limit is refused before reading.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, max: u64) -> Result<Bytes, Refusal> {
    let declared: Option<u64> =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Refusal::BodyTooLarge);
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Refusal::BodyTooLarge),
        Err(_) => {
            Err(Refusal::InvalidInput { status: 400, location: "body", name: String::new(), reason: "malformed" })
        }
    }
}

/// Request headers as the validator reads them.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderSource for Headers<'_> {
    fn for_each_value(&self, name: &str, each: &mut dyn FnMut(&[u8])) {
        for value in self.0.get_all(name) {
            each(value.as_bytes());
        }
    }
}

/// Phase: validate. Parameters, content type and body against the operation, strictly; the refusal names where
/// and why, never the value.
pub(crate) fn validate_phase(
    operation: &Operation,
    params: &PathParams<'_, '_>,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let parts = RequestParts { path_params: params, query, headers: &Headers(headers), body };
    operation.validate_request(&parts).map_err(|error| Refusal::InvalidInput {
        status: error.status(),
        location: error.location.as_str(),
        name: error.name_or_pointer.clone(),
        reason: error.reason(),
    })
}

/// The request headers whose values are text, for rules that read `headers`.
pub(crate) fn text_headers(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_paths_follow_the_prefix() {
        assert_eq!(path_in_spec("/", "/a/b"), Some("/a/b"));
        assert_eq!(path_in_spec("/api", "/api"), Some("/"));
        assert_eq!(path_in_spec("/api", "/api/a"), Some("/a"));
        assert_eq!(path_in_spec("/api", "/apix"), None);
    }

    #[test]
    fn rule_params_are_typed_as_declared_and_only_gathered_when_read() {
        let spec = argus_policy::openapi::Spec::parse(
            "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a/{x}/{y}:\n    get:\n      \
             parameters:\n        - {name: x, in: path, required: true, schema: {type: integer}}\n        \
             - {name: y, in: path, required: true, schema: {type: string}}\n        \
             - {name: n, in: query, schema: {type: integer}}\n      \
             responses: {'200': {description: ok}}\n",
            &Default::default(),
        )
        .unwrap();
        let Match::Found(operation, params) = spec.match_request("GET", "/a/42/007") else { panic!("no match") };
        let engine = argus_policy::rules::RuleEngine::new();
        let both = engine.compile("params.x == 42 && params.y == '007' && query.n == 3").unwrap();
        let (typed, query) = rule_params(&both, operation, &params, Some("n=3"));
        assert_eq!((typed["x"].clone(), typed["y"].clone()), (Value::from(42), Value::from("007")));
        assert_eq!(query["n"], Value::from(3));
        let input = RuleInput { params: Some(&typed), query: Some(&query), method: "GET", ..RuleInput::default() };
        assert_eq!(both.evaluate(&input), RuleDecision::Allow);
        let path_only = engine.compile("params.x == 42").unwrap();
        assert!(rule_params(&path_only, operation, &params, Some("n=3")).1.is_empty(), "query not read, not gathered");
    }
}
