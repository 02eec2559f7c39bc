//! Phase 5, proxy: forward the call to the route's upstream over a keep-alive pool, streaming both bodies.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metrics::{self, UpstreamOutcome};
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

/// An upstream base URL, checked at start-up: `http://host[:port]`, nothing else.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    authority: Authority,
    /// The route it serves, for the upstream metrics.
    route: Arc<str>,
}

impl Upstream {
    /// Parse the upstream of route `route`; the error says what is wrong with it.
    pub(crate) fn parse(route: &str, url: &str) -> Result<Self, &'static str> {
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
        Ok(Self { authority, route: route.into() })
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
    pub(crate) peer: Option<IpAddr>,
    pub(crate) request_id: &'a str,
    pub(crate) max_body_bytes: u64,
    pub(crate) timeout: Duration,
    /// Request body bytes read so far, for the event.
    pub(crate) bytes_in: Arc<AtomicU64>,
}

/// Phase 5: send the call upstream and return its response head, body still streaming.
///
/// The timeout covers connecting and waiting for the response head; the body then streams without one.
pub(crate) async fn proxy_phase(request: Request<Body>, forward: Forward<'_>) -> Result<Response<Incoming>, Refusal> {
    if declared_length(request.headers()).is_some_and(|n| n > forward.max_body_bytes) {
        return Err(Refusal::BodyTooLarge);
    }
    let too_large = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = RequestBody {
        inner: body,
        read: forward.bytes_in.clone(),
        limit: forward.max_body_bytes,
        too_large: too_large.clone(),
    };
    let outgoing = upstream_request(parts, body, forward.upstream, forward.peer, forward.request_id)?;
    let sent = std::time::Instant::now();
    let (outcome, result) = match tokio::time::timeout(forward.timeout, forward.client.request(outgoing)).await {
        Err(_elapsed) => (UpstreamOutcome::Timeout, Err(Refusal::UpstreamTimeout)),
        Ok(Ok(response)) => (UpstreamOutcome::Answered, Ok(response)),
        // A chunked body that outgrew the limit aborts the upstream request mid-way: the upstream sees an
        // incomplete request, never a complete oversized one.
        Ok(Err(_)) if too_large.load(Ordering::Acquire) => (UpstreamOutcome::Failed, Err(Refusal::BodyTooLarge)),
        Ok(Err(error)) => {
            tracing::warn!(error = ?error, request_id = forward.request_id, "upstream request failed");
            (UpstreamOutcome::Failed, Err(Refusal::UpstreamUnavailable))
        }
    };
    metrics::upstream_finished(&forward.upstream.route, outcome, sent.elapsed());
    result
}

/// The request as the upstream gets it: same method, path and query, end-to-end headers, forwarding headers.
fn upstream_request(
    mut parts: http::request::Parts,
    body: RequestBody,
    upstream: &Upstream,
    peer: Option<IpAddr>,
    request_id: &str,
) -> Result<Request<RequestBody>, Refusal> {
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        // HTTP/2 carries the host in the :authority pseudo-header, i.e. the URI.
        parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let path_and_query = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| Refusal::InvalidPath)?;

    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    // The client sets Host from the upstream URI; the caller's Host travels as X-Forwarded-Host.
    headers.remove(header::HOST);
    // The gate already answered any `100-continue` towards the caller by reading the body.
    headers.remove(header::EXPECT);
    set_forwarding_headers(headers, peer, original_host, request_id);

    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    // The upstream pool speaks HTTP/1.1 whatever the caller used.
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = parts.headers;
    Ok(request)
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
        assert!(Upstream::parse("r", "http://127.0.0.1:7401").is_ok());
        assert!(Upstream::parse("r", "http://api.internal/").is_ok());
        for bad in ["https://x", "127.0.0.1:7401", "http://x/base", "http://x?a=1", "http://u:p@x", "not a url"] {
            assert!(Upstream::parse("r", bad).is_err(), "{bad}");
        }
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
