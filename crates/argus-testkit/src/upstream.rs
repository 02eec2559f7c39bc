use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A counting echo server standing in for the protected API. Every request is counted and recorded; the answer
/// is `200` with a JSON echo `{method, path, query, headers, body}`.
///
/// Request headers steer it:
/// - `x-echo-status: <code>` answers with that status;
/// - `x-echo-delay-ms: <ms>` waits before answering (timeouts);
/// - `x-echo-bytes: <n>` answers `n` bytes of `x` instead of the JSON echo (streaming, byte counts);
/// - `x-echo-hop-by-hop: 1` adds `Connection: x-echo-private`, `X-Echo-Private` and `Keep-Alive` to the answer.
///
/// Stops when dropped.
pub struct EchoUpstream {
    url: String,
    state: Arc<EchoState>,
    task: JoinHandle<()>,
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// Path and query, exactly as received.
    pub uri: String,
    /// The headers as received.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

#[derive(Default)]
struct EchoState {
    hits: AtomicU64,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl EchoUpstream {
    /// Start on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the echo upstream");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(EchoState::default());
        let router = Router::new().fallback(echo).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, state, task }
    }

    /// The base URL (`http://127.0.0.1:<port>`), to configure as a route's upstream.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests that reached the upstream so far (counted when their head arrived).
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The requests received completely, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The last request received completely.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.requests().pop()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A URL on which nothing listens (a port bound and released at once), for "upstream down" tests.
///
/// # Panics
/// If no local port can be bound.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

async fn echo(State(state): State<Arc<EchoState>>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        uri: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    state.requests.lock().unwrap_or_else(PoisonError::into_inner).push(recorded);

    let number = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(ms) = number("x-echo-delay-ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = number("x-echo-status")
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);

    let mut response = match number("x-echo-bytes").and_then(|n| usize::try_from(n).ok()) {
        Some(n) => Response::new(Body::from(vec![b'x'; n])),
        None => {
            let mut response = Response::new(Body::from(echo_json(&parts, &body).to_string()));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    };
    *response.status_mut() = status;
    if parts.headers.contains_key("x-echo-hop-by-hop") {
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("x-echo-private"));
        h.insert("x-echo-private", HeaderValue::from_static("for the next hop only"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    }
    response
}

fn echo_json(parts: &axum::http::request::Parts, body: &Bytes) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<String> =
            parts.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        headers.insert(name.as_str().to_owned(), values.into());
    }
    serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    })
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
pub(crate) mod tests {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::*;

    pub(crate) async fn send(request: axum::http::Request<Full<Bytes>>) -> (u16, HeaderMap, Bytes) {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.into_body().collect().await.unwrap().to_bytes())
    }

    pub(crate) async fn get(url: &str) -> (u16, Bytes) {
        let (status, _, body) = send(axum::http::Request::get(url).body(Full::default()).unwrap()).await;
        (status, body)
    }

    #[tokio::test]
    async fn echoes_counts_and_obeys_steering_headers() {
        let up = EchoUpstream::start().await;
        let request = axum::http::Request::post(format!("{}/a/b?x=1", up.url()))
            .header("x-test", "one")
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let (status, _, body) = send(request).await;
        assert_eq!(status, 200);
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/a/b");
        assert_eq!(echo["query"], "x=1");
        assert_eq!(echo["headers"]["x-test"][0], "one");
        assert_eq!(echo["body"], "hello");
        let last = up.last_request().unwrap();
        assert_eq!((last.uri.as_str(), &last.body[..]), ("/a/b?x=1", &b"hello"[..]));

        let request = axum::http::Request::get(up.url())
            .header("x-echo-status", "418")
            .header("x-echo-bytes", "1000")
            .header("x-echo-hop-by-hop", "1")
            .body(Full::default())
            .unwrap();
        let (status, headers, body) = send(request).await;
        assert_eq!((status, body.len()), (418, 1000));
        assert_eq!(headers["x-echo-private"], "for the next hop only");
        assert_eq!(up.hits(), 2);
    }

    #[tokio::test]
    async fn nothing_listens_on_a_closed_port() {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let request = axum::http::Request::get(closed_port_url()).body(Full::default()).unwrap();
        let err = client.request(request).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
    }
}
