//! Phase 5, proxy: forward the call to the route's upstream over a keep-alive pool, streaming both bodies.
//!
//! A route with several upstreams sends its calls round-robin. Health is learnt passively: an upstream whose
//! connection fails is skipped for [`COOL_DOWN_SECS`], and the call that found it down goes to the next one when
//! its body can be sent again. Only a failed *connection* counts: then the request was never sent, so sending it
//! elsewhere is safe whatever its method (as nginx's `proxy_next_upstream error` and Envoy's `connect-failure`
//! retries do). An upstream that answers, even 5xx, has seen the request and keeps its turn.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, Uri, Version};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metrics::{RouteMetrics, UpstreamOutcome};
use crate::refusal::Refusal;

/// The request id header, read from the caller, sent upstream and returned.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Idle pooled upstream connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an upstream whose connection failed is skipped, in seconds, before calls try it again.
pub(crate) const COOL_DOWN_SECS: i64 = 10;

/// The upstream servers of one route (one or more), chosen round-robin, each skipped for a while after its
/// connection failed. Built anew by each configuration: a reload forgets which upstreams were down.
#[derive(Debug)]
pub(crate) struct Upstream {
    targets: Vec<Target>,
    /// Counts calls, to take turns.
    next: AtomicUsize,
    /// The metric handles of the route it serves: built with it, so a reload brings the new routes' handles.
    metrics: Arc<RouteMetrics>,
}

/// One upstream server.
#[derive(Debug)]
struct Target {
    authority: Authority,
    /// Clock seconds until which the target is skipped; in the past (0 to start with) when it is up.
    down_until: AtomicI64,
}

/// Parse an upstream base URL: `http://host[:port]`, nothing else. The error says what is wrong with it.
pub(crate) fn parse_upstream_url(url: &str) -> Result<Authority, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "is not a URL")?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err("must be an http:// URL (TLS upstreams come later)");
    }
    let authority = uri.authority().ok_or("has no host")?.clone();
    if authority.as_str().contains('@') {
        return Err("must not carry user info");
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must not have a path or query: the request path is passed through unchanged");
    }
    Ok(authority)
}

impl Upstream {
    /// The upstream of route `route`: the servers at `authorities` (at least one), all up.
    pub(crate) fn new(route: &str, authorities: Vec<Authority>) -> Self {
        let targets =
            authorities.into_iter().map(|authority| Target { authority, down_until: AtomicI64::new(0) }).collect();
        Self { targets, next: AtomicUsize::new(0), metrics: Arc::new(RouteMetrics::new(route)) }
    }

    /// The metric handles of the route this upstream serves.
    pub(crate) fn metrics(&self) -> &Arc<RouteMetrics> {
        &self.metrics
    }

    /// The target for the next call: the next in turn that is up. When all are down, the one in turn all the
    /// same: a refused connection costs little, and the first upstream back gets calls at once.
    fn pick(&self, now_secs: i64) -> usize {
        let n = self.targets.len();
        if n == 1 {
            return 0;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|i| (start + i) % n).find(|&t| self.is_up(t, now_secs)).unwrap_or(start)
    }

    /// Where a call whose connection to `failed` failed goes next: the following target that is up, else simply
    /// the following one. `None` with a single target.
    fn after(&self, failed: usize, now_secs: i64) -> Option<usize> {
        let n = self.targets.len();
        let mut others = (1..n).map(|i| (failed + i) % n);
        others.clone().find(|&t| self.is_up(t, now_secs)).or_else(|| others.next())
    }

    fn is_up(&self, target: usize, now_secs: i64) -> bool {
        self.targets[target].down_until.load(Ordering::Relaxed) <= now_secs
    }

    fn mark_down(&self, target: usize, now_secs: i64) {
        self.targets[target].down_until.store(now_secs + COOL_DOWN_SECS, Ordering::Relaxed);
    }

    /// A target that answered is up, whatever its cool-down said (it was tried because all were down).
    fn mark_up(&self, target: usize, now_secs: i64) {
        let down_until = &self.targets[target].down_until;
        // Read first: the common case (it was up) then writes nothing to the shared cache line.
        if down_until.load(Ordering::Relaxed) > now_secs {
            down_until.store(0, Ordering::Relaxed);
        }
    }
}

/// The body a call sends upstream. Buffered bytes (routes with a spec read the body to validate it) can be sent a
/// second time, to another upstream; a stream only once, unless it is empty.
pub(crate) enum ProxyBody {
    Buffered(Bytes),
    Streaming(Body),
}

impl ProxyBody {
    /// The bytes to send again, if the body can be.
    fn replayable(&self) -> Option<Bytes> {
        match self {
            Self::Buffered(bytes) => Some(bytes.clone()),
            Self::Streaming(body) if hyper::body::Body::is_end_stream(body) => Some(Bytes::new()),
            Self::Streaming(_) => None,
        }
    }

    fn into_body(self) -> Body {
        match self {
            Self::Buffered(bytes) => Body::from(bytes),
            Self::Streaming(body) => body,
        }
    }
}

/// The keep-alive client all routes share.
pub(crate) type UpstreamClient = Client<HttpConnector, RequestBody>;

pub(crate) fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector)
}

/// What the proxy phase needs besides the request.
pub(crate) struct Forward<'a> {
    pub(crate) client: &'a UpstreamClient,
    pub(crate) upstream: &'a Upstream,
    /// Clock seconds now, for the upstreams' cool-downs.
    pub(crate) now_secs: i64,
    pub(crate) peer: Option<IpAddr>,
    pub(crate) request_id: &'a str,
    pub(crate) max_body_bytes: u64,
    pub(crate) timeout: Duration,
    /// Request body bytes read so far, for the event.
    pub(crate) bytes_in: Arc<AtomicU64>,
}

/// Phase 5: send the call upstream and return its response head, body still streaming.
///
/// The timeout covers connecting and waiting for the response head, a second attempt included; the body then
/// streams without one.
pub(crate) async fn proxy_phase(
    request: Request<ProxyBody>,
    forward: Forward<'_>,
) -> Result<Response<Incoming>, Refusal> {
    if declared_length(request.headers()).is_some_and(|n| n > forward.max_body_bytes) {
        return Err(Refusal::BodyTooLarge);
    }
    let too_large = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let head = OutgoingHead::new(parts, forward.peer, forward.request_id);
    let sent = std::time::Instant::now();
    let exchange = send_with_retry(head, body, &forward, &too_large);
    let (outcome, result) = match tokio::time::timeout(forward.timeout, exchange).await {
        Err(_elapsed) => (UpstreamOutcome::Timeout, Err(Refusal::UpstreamTimeout)),
        Ok(Ok(response)) => (UpstreamOutcome::Answered, Ok(response)),
        // A chunked body that outgrew the limit aborts the upstream request mid-way: the upstream sees an
        // incomplete request, never a complete oversized one.
        Ok(Err(_)) if too_large.load(Ordering::Acquire) => (UpstreamOutcome::Failed, Err(Refusal::BodyTooLarge)),
        Ok(Err(ExchangeError::Refused(refusal))) => (UpstreamOutcome::Failed, Err(refusal)),
        Ok(Err(ExchangeError::Client(error))) => {
            tracing::warn!(error = ?error, request_id = forward.request_id, "upstream request failed");
            (UpstreamOutcome::Failed, Err(Refusal::UpstreamUnavailable))
        }
    };
    forward.upstream.metrics.upstream_finished(outcome, sent.elapsed());
    result
}

/// Why an exchange with the upstream failed.
enum ExchangeError {
    /// The request could not be addressed to the upstream.
    Refused(Refusal),
    /// The client failed: no connection, or the exchange broke off.
    Client(hyper_util::client::legacy::Error),
}

/// Send to the upstream in turn; if its connection fails, mark it down and, when the body can be sent again and
/// there is another upstream, send it there once.
async fn send_with_retry(
    head: OutgoingHead,
    body: ProxyBody,
    forward: &Forward<'_>,
    too_large: &Arc<AtomicBool>,
) -> Result<Response<Incoming>, ExchangeError> {
    let (upstream, now) = (forward.upstream, forward.now_secs);
    let first = upstream.pick(now);
    let body_for = |inner: Body| RequestBody {
        inner,
        read: forward.bytes_in.clone(),
        limit: forward.max_body_bytes,
        too_large: too_large.clone(),
    };
    // A second attempt needs a second upstream, the body again and the head again.
    let (first_head, second) = match upstream.after(first, now).zip(body.replayable()) {
        Some((next, bytes)) => (head.clone(), Some((next, bytes, head))),
        None => (head, None),
    };
    let first_try = first_head.addressed_to(&upstream.targets[first].authority, body_for(body.into_body()));
    let error = match forward.client.request(first_try.map_err(ExchangeError::Refused)?).await {
        Ok(response) => {
            upstream.mark_up(first, now);
            return Ok(response);
        }
        Err(error) if error.is_connect() => error,
        Err(error) => return Err(ExchangeError::Client(error)),
    };
    upstream.mark_down(first, now);
    let Some((next, bytes, head)) = second else {
        return Err(ExchangeError::Client(error));
    };
    let target = &upstream.targets[next].authority;
    tracing::warn!(
        error = ?error,
        request_id = forward.request_id,
        failed = %upstream.targets[first].authority,
        next = %target,
        "upstream connection failed; trying the next upstream"
    );
    let retry = head.addressed_to(target, body_for(Body::from(bytes))).map_err(ExchangeError::Refused)?;
    match forward.client.request(retry).await {
        Ok(response) => {
            upstream.mark_up(next, now);
            Ok(response)
        }
        Err(error) => {
            if error.is_connect() {
                upstream.mark_down(next, now);
            }
            Err(ExchangeError::Client(error))
        }
    }
}

/// The request head as every upstream gets it: same method, path and query, end-to-end headers, forwarding
/// headers.
#[derive(Clone)]
struct OutgoingHead {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

impl OutgoingHead {
    fn new(mut parts: http::request::Parts, peer: Option<IpAddr>, request_id: &str) -> Self {
        let original_host = caller_host(&parts.uri, &parts.headers).and_then(|host| HeaderValue::from_str(host).ok());
        let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        // The client sets Host from the upstream URI; the caller's Host travels as X-Forwarded-Host.
        headers.remove(header::HOST);
        // The gate already answered any `100-continue` towards the caller by reading the body.
        headers.remove(header::EXPECT);
        set_forwarding_headers(headers, peer, original_host, request_id);
        Self { method: parts.method, path_and_query, headers: parts.headers }
    }

    /// The request for the upstream at `authority`.
    fn addressed_to(self, authority: &Authority, body: RequestBody) -> Result<Request<RequestBody>, Refusal> {
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority.clone())
            .path_and_query(self.path_and_query)
            .build()
            .map_err(|_| Refusal::InvalidPath)?;
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        // The upstream pool speaks HTTP/1.1 whatever the caller used.
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = self.headers;
        Ok(request)
    }
}

/// The host the caller asked for, as sent (port included): the URI's authority — HTTP/2's `:authority`, or an
/// HTTP/1.1 absolute-form target, which overrides `Host` (RFC 9112 §3.2.2) — else the one `Host` header. Routing
/// and `X-Forwarded-Host` both read this, so the upstream hears of the host its route was chosen for. Several
/// `Host` headers name no host.
pub(crate) fn caller_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    if let Some(authority) = uri.authority() {
        return Some(authority.as_str());
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        _ => None,
    }
}

/// The upstream's response as the caller gets it: hop-by-hop headers removed, body still streaming.
pub(crate) fn downstream_response(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.version = Version::default();
    Response::from_parts(parts, Body::new(body))
}

/// Remove the headers meant for one connection only (RFC 9110 §7.6.1): those the `Connection` header names,
/// the standard hop-by-hop ones, and every `Proxy-*` header.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        PROXY_CONNECTION,
    ] {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers.keys().filter(|k| k.as_str().starts_with("proxy-")).cloned().collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// `X-Forwarded-For` gets the peer appended to what earlier proxies wrote; `-Proto` and `-Host` are the gate's
/// own view, replacing anything the caller sent; `x-request-id` is the id of this call.
fn set_forwarding_headers(headers: &mut HeaderMap, peer: Option<IpAddr>, host: Option<HeaderValue>, request_id: &str) {
    if let Some(peer) = peer {
        let mut chain: Vec<u8> = Vec::new();
        for earlier in headers.get_all(&X_FORWARDED_FOR) {
            chain.extend_from_slice(earlier.as_bytes());
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(peer.to_string().as_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&chain) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    // The gate listens on plain http for now.
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, id);
    }
}

/// The caller's `x-request-id` if it is a sane id (1..=64 of `A-Za-z0-9._:-`), else a new one. Ids end up in
/// logs and events, so arbitrary text is not taken over.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    let offered = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok());
    match offered {
        Some(id) if is_sane_request_id(id) => id.to_owned(),
        _ => argus_model::id::new_id(),
    }
}

fn is_sane_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The request body on its way upstream: counted, and cut off with an error past the limit (a body without
/// `Content-Length` can only be measured while it streams).
pub(crate) struct RequestBody {
    inner: Body,
    read: Arc<AtomicU64>,
    limit: u64,
    too_large: Arc<AtomicBool>,
}

/// The error that aborts an oversized request body.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than the configured limit")]
struct BodyTooLarge;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                let total = this.read.fetch_add(len, Ordering::Relaxed) + len;
                if total > this.limit {
                    this.too_large.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
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
    use super::*;

    #[test]
    fn upstream_urls() {
        assert!(parse_upstream_url("http://127.0.0.1:7401").is_ok());
        assert!(parse_upstream_url("http://api.internal/").is_ok());
        for bad in ["https://x", "127.0.0.1:7401", "http://x/base", "http://x?a=1", "http://u:p@x", "not a url"] {
            assert!(parse_upstream_url(bad).is_err(), "{bad}");
        }
    }

    fn upstream(n: usize) -> Upstream {
        let authorities = (0..n).map(|i| Authority::try_from(format!("10.0.0.{i}:80")).unwrap()).collect();
        Upstream::new("r", authorities)
    }

    #[test]
    fn targets_take_turns_and_one_that_failed_sits_out_its_cool_down() {
        let up = upstream(3);
        assert_eq!([up.pick(100), up.pick(100), up.pick(100), up.pick(100)], [0, 1, 2, 0]);
        up.mark_down(2, 100);
        assert_eq!([up.pick(100), up.pick(100), up.pick(100)], [1, 0, 0], "2's turn goes to the next one up");
        assert_eq!(up.after(1, 100), Some(0), "a retry skips what is down");
        assert_eq!(up.after(0, 100), Some(1));
        let until = 100 + COOL_DOWN_SECS;
        assert_eq!([up.pick(until - 1), up.pick(until)], [1, 2], "back after the cool-down");
        up.mark_up(2, 100);
        assert!(up.is_up(2, 0));
    }

    #[test]
    fn when_all_are_down_the_turn_holds_and_one_target_never_retries() {
        let up = upstream(2);
        up.mark_down(0, 100);
        up.mark_down(1, 100);
        assert_eq!([up.pick(100), up.pick(100)], [0, 1]);
        assert_eq!(up.after(0, 100), Some(1), "the other one, down or not");
        up.mark_up(1, 100);
        assert_eq!([up.pick(100), up.pick(100)], [1, 1]);
        let single = upstream(1);
        single.mark_down(0, 100);
        assert_eq!((single.pick(100), single.after(0, 100)), (0, None));
    }

    #[test]
    fn the_caller_host_prefers_the_authority_and_refuses_ambiguity() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("a.test:80"));
        let origin_form: Uri = "/x".parse().unwrap();
        assert_eq!(caller_host(&origin_form, &headers), Some("a.test:80"));
        let absolute: Uri = "http://b.test/x".parse().unwrap();
        assert_eq!(caller_host(&absolute, &headers), Some("b.test"), "RFC 9112 §3.2.2");
        headers.append(header::HOST, HeaderValue::from_static("c.test"));
        assert_eq!(caller_host(&origin_form, &headers), None);
        assert_eq!(caller_host(&origin_form, &HeaderMap::new()), None);
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("authorization", "Bearer t"),
            ("x-kept", "yes"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "x-kept"]);
    }

    #[test]
    fn forwarding_headers() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set_forwarding_headers(
            &mut h,
            Some("127.0.0.1".parse().unwrap()),
            Some(HeaderValue::from_static("api.example")),
            "r1",
        );
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.7, 198.51.100.1, 127.0.0.1");
        assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[&X_FORWARDED_PROTO], "http", "the caller cannot claim https");
        assert_eq!(h[&X_FORWARDED_HOST], "api.example");
        assert_eq!(h[&X_REQUEST_ID], "r1");
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(X_REQUEST_ID, HeaderValue::from_static(v));
            request_id(&h)
        };
        assert_eq!(with("abc-123_x.y:z"), "abc-123_x.y:z");
        for bad in ["", "has space", "quote\"", &*"x".repeat(65).leak()] {
            let id = with(bad);
            assert_ne!(id, bad);
            assert!(is_sane_request_id(&id));
        }
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
