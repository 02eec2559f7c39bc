//! Phase 6, emit: exactly one `ApiCall` event per call, allowed or refused, published once the response body
//! has been sent (so `bytes_out` is exact) — or, if the caller goes away first, when the gate lets go of the call.
//!
//! The same record produces the log line and the metrics, so the event, the log and the metrics cannot disagree.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use argus_bus::EventBus;
use argus_jose::AccessClaims;
use argus_model::truncate_utf8 as truncate;
use argus_model::{ApiCall, Decision, Event, EventKind, Principal, ResponseCheck, Timestamp};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, header};
use hyper::body::{Frame, SizeHint};

use crate::metrics::RouteMetrics;
use crate::refusal::Refusal;

/// The `node` of the gate's events.
pub(crate) const NODE: &str = "gate";
/// User agents are cut to this many bytes: they are free text chosen by the caller.
const MAX_USER_AGENT: usize = 256;
/// The status recorded for a call whose caller left before the gate answered (nginx's convention).
const CLIENT_CLOSED: u16 = 499;
/// Object ids (path parameter values) are cut to this many bytes: the caller chooses them.
const MAX_OBJECT_ID: usize = 128;

/// What the gate learns about one call as it goes through the phases. Dropping it publishes the event once.
pub(crate) struct CallRecord {
    events: EventBus,
    time: Timestamp,
    /// Latency is a duration, not a point in time: a monotonic clock measures it; `time` comes from the Clock.
    started: Instant,
    principal: Principal,
    call: ApiCall,
    bytes_in: Arc<AtomicU64>,
    /// The metric handles of the route the call matched.
    metrics: Option<Arc<RouteMetrics>>,
    emitted: bool,
}

impl CallRecord {
    /// Start recording a call. Until told otherwise it is a refusal by a caller who left (`499`,
    /// `client-closed`): that is what it was if the gate never gets to answer.
    pub(crate) fn begin(
        events: EventBus,
        time: Timestamp,
        request_id: &str,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Self {
        crate::metrics::call_started();
        let user_agent = headers
            .get(header::USER_AGENT)
            .map(|v| truncate(&String::from_utf8_lossy(v.as_bytes()), MAX_USER_AGENT).to_owned());
        Self {
            events,
            time,
            started: Instant::now(),
            principal: Principal { ip: peer.map(|ip| ip.to_string()), user_agent, ..Principal::default() },
            call: ApiCall {
                request_id: request_id.to_owned(),
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                route: None,
                operation_id: None,
                status: CLIENT_CLOSED,
                decision: Decision::Refused,
                reason: Some("client-closed".to_owned()),
                bytes_in: 0,
                bytes_out: 0,
                latency_us: 0,
                path_template: None,
                object_ids: Vec::new(),
                records: None,
                decoy: false,
                response_check: None,
            },
            bytes_in: Arc::new(AtomicU64::new(0)),
            metrics: None,
            emitted: false,
        }
    }

    pub(crate) fn set_route(&mut self, name: &str, metrics: &Arc<RouteMetrics>) {
        self.call.route = Some(name.to_owned());
        self.metrics = Some(metrics.clone());
    }

    /// The OpenAPI operation the call matched, and the object ids its path names.
    pub(crate) fn set_operation<'a>(
        &mut self,
        operation_id: &str,
        path_template: &str,
        object_ids: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        self.call.operation_id = Some(operation_id.to_owned());
        self.call.path_template = Some(path_template.to_owned());
        self.call.object_ids = object_ids.map(|(n, v)| (n.to_owned(), truncate(v, MAX_OBJECT_ID).to_owned())).collect();
    }

    /// The call hit a decoy operation.
    pub(crate) fn set_decoy(&mut self) {
        self.call.decoy = true;
    }

    /// The number of records a sensitive operation returned.
    pub(crate) fn set_records(&mut self, records: u64) {
        self.call.records = Some(records);
    }

    /// The upstream's answer (of `status`) does not match the spec: flag the event and warn, with field names
    /// only (values could be the very data that must not spread).
    pub(crate) fn flag_response(&mut self, status: u16, check: ResponseCheck) {
        let c = &self.call;
        tracing::warn!(
            request_id = %c.request_id, route = c.route.as_deref(), operation = c.operation_id.as_deref(),
            status, undocumented = check.undocumented, undeclared_fields = ?check.undeclared_fields,
            other_violations = check.other_violations, unchecked = check.unchecked, blocked = check.blocked,
            "upstream answer does not match the OpenAPI spec"
        );
        self.call.response_check = Some(check);
    }

    /// The principal of a token that verified (also when it is then refused as revoked or short of scope).
    pub(crate) fn set_token(&mut self, claims: &AccessClaims) {
        self.principal.sub = Some(claims.sub.clone());
        self.principal.client_id = Some(claims.client_id.clone());
        self.principal.sid = claims.sid.clone();
        self.principal.jti = Some(claims.jti.clone());
        self.principal.jkt = claims.cnf.as_ref().map(|cnf| cnf.jkt.clone());
        self.principal.device_id = claims.did.clone();
    }

    /// Every check passed: from here on the call is allowed, whatever the upstream answers.
    pub(crate) fn allow(&mut self) {
        self.call.decision = Decision::Allowed;
        self.call.reason = None;
    }

    pub(crate) fn refuse(&mut self, refusal: &Refusal) {
        self.call.decision = Decision::Refused;
        self.call.reason = Some(refusal.event_reason().to_owned());
    }

    /// The counter the request body adds to as it streams upstream.
    pub(crate) fn bytes_in_counter(&self) -> Arc<AtomicU64> {
        self.bytes_in.clone()
    }

    /// Attach the record to the response: the event is published when its body is done.
    pub(crate) fn attach(mut self, response: http::Response<Body>) -> http::Response<Body> {
        self.call.status = response.status().as_u16();
        response.map(|body| Body::new(MeteredBody { inner: body, record: Some(self) }))
    }

    fn emit(&mut self) {
        if std::mem::replace(&mut self.emitted, true) {
            return;
        }
        self.call.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        self.call.latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        crate::metrics::call_finished(&self.call, self.metrics.as_deref(), elapsed);
        let c = &self.call;
        tracing::debug!(
            request_id = %c.request_id, method = %c.method, path = %c.path, route = c.route.as_deref(),
            operation = c.operation_id.as_deref(), decoy = c.decoy,
            status = c.status, reason = c.reason.as_deref(), sub = self.principal.sub.as_deref(),
            bytes_in = c.bytes_in, bytes_out = c.bytes_out, latency_us = c.latency_us, "api call"
        );
        let event = Event::new(self.time, NODE, self.principal.clone(), EventKind::ApiCall(self.call.clone()));
        self.events.publish(event);
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.emit();
    }
}

/// The response body on its way to the caller: counts bytes and publishes the call's event at the end.
struct MeteredBody {
    inner: Body,
    /// `None` once the event is out.
    record: Option<CallRecord>,
}

impl hyper::body::Body for MeteredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(record), Some(data)) = (this.record.as_mut(), frame.data_ref()) {
                    record.call.bytes_out += data.len() as u64;
                }
            }
            // The body is complete (or broke): publish now rather than whenever the server drops the body.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => drop(this.record.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use argus_bus::Received;
    use http::HeaderValue;
    use http_body_util::BodyExt;

    use super::*;

    fn record(events: &EventBus) -> CallRecord {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_str(&"é".repeat(200)).unwrap());
        CallRecord::begin(
            events.clone(),
            Timestamp::from_secs(1),
            "r1",
            &Method::POST,
            "/x",
            &headers,
            Some("127.0.0.1".parse().unwrap()),
        )
    }

    async fn next_call(sub: &mut argus_bus::Subscriber<Event>) -> (Principal, ApiCall) {
        match sub.recv().await {
            Some(Received::Message(event)) => match &event.kind {
                EventKind::ApiCall(call) => (event.principal.clone(), call.clone()),
                other => panic!("not an ApiCall: {other:?}"),
            },
            other => panic!("no event: {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_event_when_the_body_is_done_with_exact_bytes() {
        let events = EventBus::new(8);
        let mut sub = events.subscribe();
        let mut rec = record(&events);
        rec.allow();
        rec.bytes_in_counter().fetch_add(5, Ordering::Relaxed);
        let response = rec.attach(http::Response::new(Body::from("hello world")));
        assert_eq!(events.published(), 0, "not before the body is sent");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello world");
        assert_eq!(events.published(), 1);
        let (principal, call) = next_call(&mut sub).await;
        assert_eq!((call.status, call.decision, call.reason), (200, Decision::Allowed, None));
        assert_eq!((call.bytes_in, call.bytes_out), (5, 11));
        assert_eq!(principal.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(principal.user_agent.unwrap().len(), 256, "cut on a char boundary");
    }

    #[tokio::test]
    async fn a_dropped_call_still_emits_once() {
        let events = EventBus::new(8);
        let mut sub = events.subscribe();
        drop(record(&events));
        let (_, call) = next_call(&mut sub).await;
        assert_eq!(
            (call.status, call.decision, call.reason.as_deref()),
            (499, Decision::Refused, Some("client-closed"))
        );

        let mut rec = record(&events);
        rec.refuse(&Refusal::NoRoute);
        let response = rec.attach(Refusal::NoRoute.to_response("r1", crate::refusal::TokenScheme::Bearer));
        drop(response); // the caller went away before reading the problem body
        let (_, call) = next_call(&mut sub).await;
        assert_eq!((call.status, call.reason.as_deref()), (404, Some("no-route")));
        assert_eq!(events.published(), 2);
    }
}
