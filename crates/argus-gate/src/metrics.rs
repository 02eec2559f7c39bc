//! The gate's Prometheus metrics: every name, its labels, and the one place each is recorded.
//!
//! Names follow `argus_gate_<name>_<unit>[_total]`. They go to the process's `metrics` recorder (the `argus`
//! binary installs a Prometheus one; without a recorder, recording is a no-op). Label values come from the
//! configuration or from fixed sets only — route names, OpenAPI operation ids, the nine standard methods, status
//! classes, refusal reasons — never from a raw path, a user or a token, so the number of series stays bounded.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use argus_model::{ApiCall, Decision};
use metrics::{Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Calls answered, by `route`, `operation`, `method`, `status` class, `decision` and refusal `reason`.
pub const REQUESTS: &str = "argus_gate_requests_total";
/// From the request head to the last byte of the answer, by `route` and `decision`.
pub const REQUEST_DURATION: &str = "argus_gate_request_duration_seconds";
/// From sending a call upstream to the upstream's response head, by `route` and `outcome`.
pub const UPSTREAM_DURATION: &str = "argus_gate_upstream_duration_seconds";
/// Request body bytes read from callers, by `route`.
pub const REQUEST_BYTES: &str = "argus_gate_request_bytes_total";
/// Response body bytes sent to callers, by `route`.
pub const RESPONSE_BYTES: &str = "argus_gate_response_bytes_total";
/// Tokens found in the verified-token cache.
pub const TOKEN_CACHE_HITS: &str = "argus_gate_token_cache_hits_total";
/// Tokens verified in full (not cached, expired from the cache, or their key gone).
pub const TOKEN_CACHE_MISSES: &str = "argus_gate_token_cache_misses_total";
/// Calls refused by a rate limit, by `route`.
pub const RATE_LIMITED: &str = "argus_gate_rate_limited_total";
/// Calls being handled right now.
pub const IN_FLIGHT: &str = "argus_gate_in_flight_requests";
/// Configuration reloads, by `result` (`applied` or `refused`).
pub const RELOADS: &str = "argus_gate_config_reloads_total";

/// Histogram buckets for the `_seconds` metrics: from a cached-token refusal (well under a millisecond) to a slow
/// upstream (seconds).
pub const DURATION_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The label value for "none" (no route matched, no operation, an allowed call's reason).
const NONE: &str = "-";

/// Describe every gate metric to the installed recorder (its `# HELP` line). Call once, after installing it.
pub fn describe() {
    describe_counter!(REQUESTS, "Calls answered by the gate, allowed or refused.");
    describe_histogram!(REQUEST_DURATION, metrics::Unit::Seconds, "Time from request head to the answer's end.");
    describe_histogram!(UPSTREAM_DURATION, metrics::Unit::Seconds, "Time from forwarding to the upstream's head.");
    describe_counter!(REQUEST_BYTES, metrics::Unit::Bytes, "Request body bytes read from callers.");
    describe_counter!(RESPONSE_BYTES, metrics::Unit::Bytes, "Response body bytes sent to callers.");
    describe_counter!(TOKEN_CACHE_HITS, "Access tokens found in the verified-token cache.");
    describe_counter!(TOKEN_CACHE_MISSES, "Access tokens verified in full.");
    describe_counter!(RATE_LIMITED, "Calls refused by a rate limit.");
    describe_gauge!(IN_FLIGHT, "Calls being handled by the gate now.");
    describe_counter!(RELOADS, "Configuration reloads, applied or refused.");
}

/// A call has begun.
pub(crate) fn call_started() {
    gauge!(IN_FLIGHT).increment(1.0);
}

/// A call is over (its answer sent, or its caller gone): count it, once. `route` holds the handles of the route
/// the call matched (`None` when it matched none).
pub(crate) fn call_finished(call: &ApiCall, route: Option<&RouteMetrics>, elapsed: Duration) {
    gauge!(IN_FLIGHT).decrement(1.0);
    match route {
        Some(route) => route.call_finished(call, elapsed),
        None => unrouted_call_finished(call, elapsed),
    }
}

/// A call that matched no route (so no handles): its labels are looked up in the registry, as refusals are rare.
fn unrouted_call_finished(call: &ApiCall, elapsed: Duration) {
    let route = call.route.clone().unwrap_or_else(|| NONE.to_owned());
    let (decision, reason) = decision_labels(call);
    if reason == "rate-limited" {
        counter!(RATE_LIMITED, "route" => route.clone()).increment(1);
    }
    requests_counter(&route, call.operation_id.as_deref().unwrap_or(NONE), call, decision, reason).increment(1);
    histogram!(REQUEST_DURATION, "route" => route.clone(), "decision" => decision).record(elapsed.as_secs_f64());
    counter!(REQUEST_BYTES, "route" => route.clone()).increment(call.bytes_in);
    counter!(RESPONSE_BYTES, "route" => route).increment(call.bytes_out);
}

/// The `decision` and `reason` labels of a call.
fn decision_labels(call: &ApiCall) -> (&'static str, &str) {
    match call.decision {
        Decision::Allowed => ("allowed", NONE),
        Decision::Refused => ("refused", call.reason.as_deref().unwrap_or(NONE)),
    }
}

/// The [`REQUESTS`] counter of one label set, from the registry.
fn requests_counter(route: &str, operation: &str, call: &ApiCall, decision: &'static str, reason: &str) -> Counter {
    counter!(
        REQUESTS,
        "route" => route.to_owned(),
        "operation" => operation.to_owned(),
        "method" => method_label(&call.method),
        "status" => status_class(call.status),
        "decision" => decision,
        "reason" => reason.to_owned(),
    )
}

/// One route's metric handles, registered when a configuration is compiled (a reload compiles new ones with the
/// new routing table). Building a label set and looking it up in the registry cost a few allocations and hashes
/// per metric per call; a handle is an atomic. The requests counter's labels vary with each call (operation,
/// method, status, reason), so its handles are registered on first use and kept per label set.
pub(crate) struct RouteMetrics {
    route: Arc<str>,
    /// [`REQUEST_DURATION`] of allowed and of refused calls.
    duration: [Histogram; 2],
    request_bytes: Counter,
    response_bytes: Counter,
    rate_limited: Counter,
    /// [`UPSTREAM_DURATION`] by [`UpstreamOutcome`], in its order.
    upstream: [Histogram; 3],
    /// [`REQUESTS`] handles by the hash of their other labels; each bucket holds its label sets, so a collision
    /// only costs a comparison. Bounded as the label values are (see the module's note).
    requests: RwLock<HashMap<u64, Vec<(RequestLabels, Counter)>>>,
    hasher: RandomState,
}

/// The labels of [`REQUESTS`] besides the route.
#[derive(PartialEq, Eq)]
struct RequestLabels {
    operation: Box<str>,
    method: &'static str,
    status: &'static str,
    decision: &'static str,
    reason: Box<str>,
}

impl RequestLabels {
    fn is(&self, operation: &str, method: &str, status: &str, decision: &str, reason: &str) -> bool {
        (&*self.operation, self.method, self.status, self.decision, &*self.reason)
            == (operation, method, status, decision, reason)
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics").field("route", &self.route).finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// Registers the handles of route `route` with the installed recorder (no-op handles without one).
    pub(crate) fn new(route: &str) -> Self {
        let name = || route.to_owned();
        let upstream =
            |outcome: UpstreamOutcome| histogram!(UPSTREAM_DURATION, "route" => name(), "outcome" => outcome.label());
        Self {
            route: route.into(),
            duration: [
                histogram!(REQUEST_DURATION, "route" => name(), "decision" => "allowed"),
                histogram!(REQUEST_DURATION, "route" => name(), "decision" => "refused"),
            ],
            request_bytes: counter!(REQUEST_BYTES, "route" => name()),
            response_bytes: counter!(RESPONSE_BYTES, "route" => name()),
            rate_limited: counter!(RATE_LIMITED, "route" => name()),
            upstream: [
                upstream(UpstreamOutcome::Answered),
                upstream(UpstreamOutcome::Timeout),
                upstream(UpstreamOutcome::Failed),
            ],
            requests: RwLock::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    fn call_finished(&self, call: &ApiCall, elapsed: Duration) {
        let (decision, reason) = decision_labels(call);
        if reason == "rate-limited" {
            self.rate_limited.increment(1);
        }
        self.requests(call, decision, reason).increment(1);
        let refused = matches!(call.decision, Decision::Refused);
        self.duration[usize::from(refused)].record(elapsed.as_secs_f64());
        self.request_bytes.increment(call.bytes_in);
        self.response_bytes.increment(call.bytes_out);
    }

    /// The [`REQUESTS`] handle of `call`'s labels: found under a read lock, registered once per label set.
    fn requests(&self, call: &ApiCall, decision: &'static str, reason: &str) -> Counter {
        let operation = call.operation_id.as_deref().unwrap_or(NONE);
        let (method, status) = (method_label(&call.method), status_class(call.status));
        let hash = self.hasher.hash_one((operation, method, status, decision, reason));
        let find = |map: &HashMap<u64, Vec<(RequestLabels, Counter)>>| {
            let bucket = map.get(&hash)?;
            bucket
                .iter()
                .find(|(labels, _)| labels.is(operation, method, status, decision, reason))
                .map(|e| e.1.clone())
        };
        // A poisoned lock only means a panic elsewhere mid-insert; the map itself is still whole.
        if let Some(counter) = find(&self.requests.read().unwrap_or_else(|e| e.into_inner())) {
            return counter;
        }
        let mut map = self.requests.write().unwrap_or_else(|e| e.into_inner());
        if let Some(counter) = find(&map) {
            return counter;
        }
        let counter = requests_counter(&self.route, operation, call, decision, reason);
        let labels = RequestLabels { operation: operation.into(), method, status, decision, reason: reason.into() };
        map.entry(hash).or_default().push((labels, counter.clone()));
        counter
    }

    /// An upstream exchange of this route got its response head, failed or timed out.
    pub(crate) fn upstream_finished(&self, outcome: UpstreamOutcome, elapsed: Duration) {
        self.upstream[outcome as usize].record(elapsed.as_secs_f64());
    }
}

/// How an upstream exchange ended, for [`RouteMetrics::upstream_finished`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum UpstreamOutcome {
    /// A response head came back.
    Answered,
    /// `upstream_timeout_secs` passed first.
    Timeout,
    /// Connecting or the exchange failed (or the request body was cut off).
    Failed,
}

impl UpstreamOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
        }
    }
}

/// A configuration reload was applied or refused.
pub(crate) fn reloaded(applied: bool) {
    counter!(RELOADS, "result" => if applied { "applied" } else { "refused" }).increment(1);
}

/// The method as a label: the standard ones by name, anything else (extension methods are caller-chosen text)
/// as `OTHER`.
fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    STANDARD.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// `2xx`, `4xx`, ... of a status code.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "OTHER", "methods are case-sensitive");
        assert_eq!(method_label("BREW"), "OTHER");
        assert_eq!(
            (status_class(200), status_class(404), status_class(499), status_class(503)),
            ("2xx", "4xx", "4xx", "5xx")
        );
        assert_eq!((status_class(101), status_class(302), status_class(600)), ("1xx", "3xx", "other"));
    }

    /// The value of the series `name` whose labels include every one of `labels` (`key="value"`).
    fn series(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
        text.lines()
            .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
            .find(|line| labels.iter().all(|l| line.contains(l)))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    }

    fn call(operation: Option<&str>, status: u16, reason: Option<&str>) -> ApiCall {
        ApiCall {
            request_id: "r".into(),
            method: "GET".into(),
            path: "/orders/1".into(),
            route: Some("orders".into()),
            operation_id: operation.map(str::to_owned),
            status,
            decision: if reason.is_some() { Decision::Refused } else { Decision::Allowed },
            reason: reason.map(str::to_owned),
            bytes_in: 10,
            bytes_out: 100,
            latency_us: 1,
            path_template: None,
            object_ids: Vec::new(),
            records: None,
            decoy: false,
            response_check: None,
        }
    }

    #[test]
    fn route_handles_record_the_series_the_labels_name() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let route = RouteMetrics::new("orders");
            let ms = Duration::from_millis(1);
            for _ in 0..2 {
                call_finished(&call(Some("getOrder"), 200, None), Some(&route), ms);
            }
            call_finished(&call(Some("getOrder"), 429, Some("rate-limited")), Some(&route), ms);
            call_finished(&call(None, 200, None), Some(&route), ms);
            route.upstream_finished(UpstreamOutcome::Timeout, ms);
            let mut unrouted = call(None, 404, Some("no-route"));
            unrouted.route = None;
            call_finished(&unrouted, None, ms);
        });
        let text = handle.render();
        let requests = |labels: &[&str]| series(&text, REQUESTS, labels);
        let allowed = ["route=\"orders\"", "operation=\"getOrder\"", "status=\"2xx\"", "reason=\"-\""];
        assert_eq!(requests(&allowed), Some(2.0), "{text}");
        assert_eq!(requests(&["operation=\"getOrder\"", "status=\"4xx\"", "reason=\"rate-limited\""]), Some(1.0));
        assert_eq!(requests(&["route=\"orders\"", "operation=\"-\"", "decision=\"allowed\""]), Some(1.0));
        assert_eq!(requests(&["route=\"-\"", "reason=\"no-route\"", "method=\"GET\""]), Some(1.0));
        assert_eq!(series(&text, RATE_LIMITED, &["route=\"orders\""]), Some(1.0));
        assert_eq!(series(&text, REQUEST_BYTES, &["route=\"orders\""]), Some(40.0));
        assert_eq!(series(&text, RESPONSE_BYTES, &["route=\"orders\""]), Some(400.0));
        let count = |name: &str, labels: &[&str]| series(&text, &format!("{name}_count"), labels);
        assert_eq!(count(REQUEST_DURATION, &["route=\"orders\"", "decision=\"allowed\""]), Some(3.0));
        assert_eq!(count(REQUEST_DURATION, &["route=\"orders\"", "decision=\"refused\""]), Some(1.0));
        assert_eq!(count(UPSTREAM_DURATION, &["route=\"orders\"", "outcome=\"timeout\""]), Some(1.0));
    }

    #[test]
    fn duration_buckets_ascend() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(DURATION_BUCKETS[0] < 0.001 && *DURATION_BUCKETS.last().unwrap() >= 10.0);
    }
}
