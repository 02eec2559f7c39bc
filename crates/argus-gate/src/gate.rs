//! One call through the gate: the phases in order, then the answer and its event.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use argus_bus::EventBus;
use argus_jose::AccessClaims;
use argus_model::Clock;
use argus_policy::ratelimit::RateLimiter;
use argus_policy::rules::{Root, RuleInput};
use argus_policy::{AuthMode, ResponseMode, Route, RouteTable};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, header};
use hyper::body::Incoming;

use crate::api::Apis;
use crate::dpop::{DPOP_NONCE, DpopGuard, DpopRequest, dpop_phase};
use crate::emit::CallRecord;
use crate::jwks::JwksCache;
use crate::operation_phases::{
    Matched, RateHeaders, RuleData, block_keys, block_phase, operation_phase, rate_limit_phase, read_body, rule_params,
    rule_phase, security_phase, step_up_phase, text_headers, validate_phase,
};
use crate::phases::{presented_token, revocation_phase, route_phase, scope_phase, token_phase};
use crate::proxy::{
    Forward, ProxyBody, Upstream, UpstreamClient, X_REQUEST_ID, caller_host, downstream_response, proxy_phase,
    request_id,
};
use crate::refusal::{Refusal, TokenScheme};
use crate::response_phase::{ResponsePlan, response_phase};
use crate::revocation::{Revocations, step_up_demand_phase};
use crate::server::{DeadlineBody, peer_of};
use crate::token_cache::VerifiedTokens;
use argus_policy::forwarded::{TrustedProxies, client_address};

/// Everything the gate holds, shared by all calls: one configuration's routes, APIs and limits, and the state that
/// outlives configurations (behind `Arc`s, carried over by a reload: keys, verified tokens, revocations, rate-limit
/// buckets, DPoP replay cache, the upstream connection pool).
pub(crate) struct Gate {
    pub(crate) table: RouteTable,
    /// The OpenAPI spec, operation policies and rate limits of each route.
    pub(crate) apis: Apis,
    pub(crate) limiter: Arc<RateLimiter>,
    /// By [`argus_policy::Route::index`].
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks: Arc<JwksCache>,
    pub(crate) verified: Arc<VerifiedTokens>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) dpop: Arc<DpopGuard>,
    pub(crate) client: UpstreamClient,
    pub(crate) upstream_timeout: Duration,
    pub(crate) max_body_bytes: u64,
    /// How long after its head a request's body may take to arrive.
    pub(crate) body_timeout: Duration,
    /// Whose forwarding headers name the client.
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The gate in force: a reload swaps it whole; a call keeps the one it started with.
pub(crate) type CurrentGate = ArcSwap<Gate>;

const RATE_LIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");
const RATE_LIMIT_POLICY: header::HeaderName = header::HeaderName::from_static("ratelimit-policy");

/// The parts of the request the decision phases read (the body is left alone for the proxy).
struct CallHead<'a> {
    headers: &'a http::HeaderMap,
    method: &'a http::Method,
    /// The path as sent, before canonicalisation: DPoP proofs name it.
    raw_path: &'a str,
}

/// What the phases learn that shapes the answer, whether the call is allowed or refused.
#[derive(Default)]
struct Answer {
    /// How the token was presented: refusals challenge in the same scheme.
    scheme: TokenScheme,
    /// A server nonce the caller should use from now on (`DPoP-Nonce`).
    dpop_nonce: Option<String>,
    /// The rate-limit state, on allowed and refused answers alike.
    rate: RateHeaders,
}

/// What the decision phases hand to the proxy.
struct Verdict<'a> {
    route: usize,
    body: ProxyBody,
    /// How to check the answer; `None` on routes without a spec.
    response: Option<ResponsePlan<'a>>,
}

/// The axum handler for every method and path.
pub(crate) async fn handle(State(current): State<Arc<CurrentGate>>, request: Request) -> Response {
    // The configuration in force when the call arrived serves all of it, even if a reload swaps it meanwhile.
    let gate = current.load_full();
    // Read from the extensions rather than extracted, so a router served without connect info still works.
    let peer = peer_of(&request).map(|addr| addr.ip());
    // Rate limits, blocks and events key on the client; X-Forwarded-For gets the peer.
    let client = peer.map(|peer| client_address(peer, request.headers(), &gate.trusted_proxies));
    let request_id = request_id(request.headers());
    let body_late = Arc::new(AtomicBool::new(false));
    let request = with_body_deadline(request, gate.body_timeout, &body_late);
    let mut record = CallRecord::begin(
        gate.events.clone(),
        gate.clock.now(),
        &request_id,
        request.method(),
        request.uri().path(),
        request.headers(),
        client,
    );
    let mut answer = Answer::default();
    // Whichever phase was reading the body when it ran late refuses in its own terms; the caller gets 408.
    let late = |refusal: Refusal| if body_late.load(Ordering::Acquire) { Refusal::BodyTimeout } else { refusal };
    let decided = gate.decide_and_forward(request, client, peer, &request_id, &mut record, &mut answer).await;
    let checked = match decided {
        Ok((upstream, plan)) => response_phase(downstream_response(upstream), plan.as_ref(), &mut record).await,
        Err(refusal) => Err(refusal),
    };
    let mut response = match checked {
        Ok(response) => response,
        Err(refusal) => {
            let refusal = late(refusal);
            record.refuse(&refusal);
            refusal.to_response(&request_id, answer.scheme)
        }
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, id);
    }
    if let Some(nonce) = answer.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        // Ours replaces any the upstream sent: at the gate, nonces are the gate's business.
        response.headers_mut().insert(DPOP_NONCE, nonce);
    }
    if let Some(state) = answer.rate.state {
        response.headers_mut().insert(RATE_LIMIT, state);
    }
    if let Some(policy) = answer.rate.policy {
        response.headers_mut().insert(RATE_LIMIT_POLICY, policy);
    }
    record.attach(response)
}

/// The request with its body bound to arrive within `timeout` from now; `late` is set if it does not. A request
/// without a body is left as it is.
fn with_body_deadline(request: Request, timeout: Duration, late: &Arc<AtomicBool>) -> Request {
    if hyper::body::Body::is_end_stream(request.body()) {
        return request;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    request.map(|body| Body::new(DeadlineBody::new(body, deadline, late.clone())))
}

impl Gate {
    /// The phases in order, then the proxy: route -> operation -> token -> revocation -> DPoP -> scopes -> rule ->
    /// step-up -> block list -> rate limit -> validate -> proxy. (Emit follows in `handle`.)
    /// The decisions see the `client` address, the forwarding headers the `peer`'s.
    async fn decide_and_forward(
        &self,
        request: Request<Body>,
        client: Option<IpAddr>,
        peer: Option<IpAddr>,
        request_id: &str,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<(http::Response<Incoming>, Option<ResponsePlan<'_>>), Refusal> {
        let (parts, body) = request.into_parts();
        let verdict = self.decide(&parts, body, client, record, answer).await?;
        record.allow();
        let forward = Forward {
            client: &self.client,
            upstream: &self.upstreams[verdict.route],
            now_secs: self.clock.now().as_secs(),
            peer,
            request_id,
            max_body_bytes: self.max_body_bytes,
            timeout: self.upstream_timeout,
            bytes_in: record.bytes_in_counter(),
        };
        let response = proxy_phase(Request::from_parts(parts, verdict.body), forward).await?;
        Ok((response, verdict.response))
    }

    /// Every decision phase; the body comes back to be proxied (buffered when the route has a spec).
    async fn decide(
        &self,
        parts: &http::request::Parts,
        body: Body,
        peer: Option<IpAddr>,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<Verdict<'_>, Refusal> {
        // A blocked address is refused before anything about the API is answered: otherwise 404 / 405 / 403 would
        // keep telling a blocked fuzzer which paths exist. Blocks on token keys are checked once the token is known.
        block_phase(&self.revocations, &block_keys(None, peer)).await?;
        let (route, path) = route_phase(&self.table, caller_host(&parts.uri, &parts.headers), parts.uri.path())?;
        record.set_route(route.name(), self.upstreams[route.index()].metrics());
        let api = self.apis.spec_of(route);
        let api_mode = api.map_or(ResponseMode::Off, |api| api.responses);
        let matched = match api {
            Some(api) => Some(operation_phase(api, route.prefix(), &parts.method, &path)?),
            None => None,
        };
        if let Some(m) = &matched {
            record.set_operation(&m.operation.id, &m.operation.path_template, m.params.iter());
            if m.runtime.policy.decoy {
                // Before the token phase: a decoy must answer exactly as an absent operation, to anyone.
                record.set_decoy();
                return Err(Refusal::Decoy);
            }
        }
        let head = CallHead { headers: &parts.headers, method: &parts.method, raw_path: parts.uri.path() };
        let claims = self.authenticate(&head, route, matched.as_ref(), record, answer).await?;
        let Some(m) = matched else {
            if let Some(claims) = &claims {
                scope_phase(route, &parts.method, &path, claims)?;
            }
            self.admission(claims.as_ref(), peer, self.apis.route_limits(route), answer).await?;
            return Ok(Verdict { route: route.index(), body: ProxyBody::Streaming(body), response: None });
        };
        security_phase(m.operation, claims.as_ref())?;
        let bytes = read_body(&parts.headers, body, self.max_body_bytes).await?;
        self.rules(&m, parts, &path, &bytes, claims.as_ref(), peer, answer.scheme)?;
        self.admission(claims.as_ref(), peer, Some(&m.runtime.limits), answer).await?;
        validate_phase(m.operation, &m.params, parts.uri.query(), &parts.headers, &bytes)?;
        let response = ResponsePlan {
            operation: m.operation,
            mode: api_mode,
            sensitive: m.runtime.policy.sensitive.clone(),
            head_request: parts.method == http::Method::HEAD,
        };
        Ok(Verdict { route: route.index(), body: ProxyBody::Buffered(bytes), response: Some(response) })
    }

    /// Token, revocation and DPoP, on routes that take Argus tokens. An operation that allows anonymous calls
    /// needs no token, but one that comes is checked like any other.
    async fn authenticate(
        &self,
        head: &CallHead<'_>,
        route: &Route,
        matched: Option<&Matched<'_, '_>>,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<Option<AccessClaims>, Refusal> {
        if route.auth() != AuthMode::Argus {
            return Ok(None);
        }
        let anonymous_ok = matched.is_some_and(|m| m.operation.allows_anonymous());
        if anonymous_ok && !head.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        self.authorize(head, record, answer).await.map(Some)
    }

    /// Scopes are checked; now the operation's own rule and step-up requirement.
    #[allow(clippy::too_many_arguments)]
    fn rules(
        &self,
        m: &Matched<'_, '_>,
        parts: &http::request::Parts,
        path: &str,
        body: &[u8],
        claims: Option<&AccessClaims>,
        peer: Option<IpAddr>,
        scheme: TokenScheme,
    ) -> Result<(), Refusal> {
        if let Some(rule) = &m.runtime.policy.rule {
            let (params, query) = rule_params(rule, m.operation, &m.params, parts.uri.query());
            let data = RuleData {
                claims: claims
                    .filter(|_| rule.reads(Root::Token))
                    .and_then(|c| serde_json::to_value(c).ok())
                    .and_then(|v| if let serde_json::Value::Object(map) = v { Some(map) } else { None }),
                params,
                query,
                headers: if rule.reads(Root::Headers) { text_headers(&parts.headers) } else { Vec::new() },
                body: if rule.reads(Root::Body) { serde_json::from_slice(body).ok() } else { None },
            };
            let input = RuleInput {
                claims: data.claims.as_ref(),
                params: Some(&data.params),
                query: Some(&data.query),
                headers: &data.headers,
                body: data.body.as_ref(),
                method: parts.method.as_str(),
                path,
                ip: peer,
            };
            rule_phase(m.runtime, &input)?;
        }
        step_up_phase(m.runtime.policy.step_up.as_ref(), claims, scheme, self.clock.now())
    }

    /// Block list, then rate limit: whether this caller may be served at all right now.
    async fn admission(
        &self,
        claims: Option<&AccessClaims>,
        peer: Option<IpAddr>,
        limits: Option<&argus_policy::ratelimit::LimitSet>,
        answer: &mut Answer,
    ) -> Result<(), Refusal> {
        block_phase(&self.revocations, &block_keys(claims, peer)).await?;
        match limits {
            Some(limits) => {
                rate_limit_phase(&self.limiter, limits, claims, peer, self.clock.now(), &mut answer.rate).await
            }
            None => Ok(()),
        }
    }

    /// Token, revocation and DPoP for a call that presents (or must present) a token.
    async fn authorize(
        &self,
        head: &CallHead<'_>,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<AccessClaims, Refusal> {
        let (scheme, token) = presented_token(head.headers)?;
        answer.scheme = scheme;
        let now = self.clock.now();
        let claims =
            token_phase(&self.jwks, &self.verified, token, &self.issuer, &self.audience, now.as_secs()).await?;
        record.set_token(&claims);
        revocation_phase(&self.revocations, &claims).await?;
        let dpop_request =
            DpopRequest { headers: head.headers, method: head.method, path: head.raw_path, scheme, token };
        let dpop = dpop_phase(&self.dpop, &dpop_request, &claims, now).await;
        if let Err(Refusal::UseDpopNonce | Refusal::InvalidDpopProof) = dpop {
            // A caller refused over its proof gets the nonce to build the next one with.
            answer.dpop_nonce = self.dpop.current_nonce(now.as_secs());
        }
        answer.dpop_nonce = dpop?;
        step_up_demand_phase(&self.revocations, &claims, scheme, now).await?;
        Ok(claims)
    }
}
