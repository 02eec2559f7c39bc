//! The gate's Prometheus metrics: every name, its labels, and the one place each is recorded.
//!
//! Names follow `argus_gate_<name>_<unit>[_total]`. They go to the process's `metrics` recorder (the `argus`
//! binary installs a Prometheus one; without a recorder, recording is a no-op). Label values come from the
//! configuration or from fixed sets only — route names, OpenAPI operation ids, the nine standard methods, status
//! classes, refusal reasons — never from a raw path, a user or a token, so the number of series stays bounded.

use std::time::Duration;

use argus_model::{ApiCall, Decision};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

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

/// A call is over (its answer sent, or its caller gone): count it, once.
pub(crate) fn call_finished(call: &ApiCall, elapsed: Duration) {
    gauge!(IN_FLIGHT).decrement(1.0);
    let route = call.route.clone().unwrap_or_else(|| NONE.to_owned());
    let (decision, reason) = match call.decision {
        Decision::Allowed => ("allowed", NONE.to_owned()),
        Decision::Refused => ("refused", call.reason.clone().unwrap_or_else(|| NONE.to_owned())),
    };
    if reason == "rate-limited" {
        counter!(RATE_LIMITED, "route" => route.clone()).increment(1);
    }
    counter!(
        REQUESTS,
        "route" => route.clone(),
        "operation" => call.operation_id.clone().unwrap_or_else(|| NONE.to_owned()),
        "method" => method_label(&call.method),
        "status" => status_class(call.status),
        "decision" => decision,
        "reason" => reason,
    )
    .increment(1);
    histogram!(REQUEST_DURATION, "route" => route.clone(), "decision" => decision).record(elapsed.as_secs_f64());
    counter!(REQUEST_BYTES, "route" => route.clone()).increment(call.bytes_in);
    counter!(RESPONSE_BYTES, "route" => route).increment(call.bytes_out);
}

/// How an upstream exchange ended, for [`upstream_finished`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum UpstreamOutcome {
    /// A response head came back.
    Answered,
    /// `upstream_timeout_secs` passed first.
    Timeout,
    /// Connecting or the exchange failed (or the request body was cut off).
    Failed,
}

/// An upstream exchange got its response head, failed or timed out.
pub(crate) fn upstream_finished(route: &str, outcome: UpstreamOutcome, elapsed: Duration) {
    let outcome = match outcome {
        UpstreamOutcome::Answered => "answered",
        UpstreamOutcome::Timeout => "timeout",
        UpstreamOutcome::Failed => "failed",
    };
    histogram!(UPSTREAM_DURATION, "route" => route.to_owned(), "outcome" => outcome).record(elapsed.as_secs_f64());
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

    #[test]
    fn duration_buckets_ascend() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(DURATION_BUCKETS[0] < 0.001 && *DURATION_BUCKETS.last().unwrap() >= 10.0);
    }
}
