//! The gate's listener: HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) on one port, with the timeouts that keep
//! slow callers from holding connections, and a graceful drain on shutdown.
//!
//! `axum::serve` cannot set a header timeout, so the accept loop is hyper-util's `auto` connection builder, as
//! axum uses internally, plus:
//! - a header timeout (hyper's `header_read_timeout`, which needs a timer): a request head not complete in
//!   time closes the connection; it also bounds how long an idle keep-alive connection stays open;
//! - a first-request timeout: hyper reads the first bytes to tell HTTP/1.1 from HTTP/2 without any deadline, so a
//!   connection that sends nothing (or half an HTTP/2 preface) is closed when no request started in time;
//! - the request-body deadline, applied per call by [`DeadlineBody`] (a late body is answered 408 by the gate).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long shutdown waits for in-flight calls to finish before closing their connections anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// After a failed `accept` (out of file descriptors, typically), wait this long before the next: retrying at once
/// would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `router` on `listener` until `shutdown` completes, then stop accepting, let in-flight calls finish (up to
/// ten seconds) and return.
///
/// Each request carries `ConnectInfo<SocketAddr>` of its peer, as `into_make_service_with_connect_info` would.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "gate: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small writes (response heads) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let started = Arc::new(AtomicBool::new(false));
        let service = {
            let (router, started) = (router.clone(), started.clone());
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(Body::new))
            })
        };
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, error = %error, "gate connection ended with an error");
                    }
                }
                () = no_request_within(header_timeout, &started) => {
                    tracing::debug!(%peer, "gate connection closed: no request within the header timeout");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_LIMIT) => tracing::warn!("gate: connections still open after the drain limit"),
    }
    Ok(())
}

/// Completes when `timeout` has passed and no request has started on the connection; never completes otherwise.
async fn no_request_within(timeout: Duration, started: &AtomicBool) {
    tokio::time::sleep(timeout).await;
    if started.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// The peer's address of a request served by [`serve`] or `into_make_service_with_connect_info`.
pub(crate) fn peer_of<B>(request: &Request<B>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
}

/// A request body that must be complete by a deadline. Past it, the next read fails and `expired` is set, so the
/// gate can answer 408 whichever phase was reading (validation buffering it, or the proxy streaming it).
pub(crate) struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Armed on the first read that has to wait: a body already here never needs a timer.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

/// The error a late body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(crate) struct BodyTimedOut;

impl DeadlineBody {
    pub(crate) fn new(inner: Body, deadline: Instant, expired: Arc<AtomicBool>) -> Self {
        Self { inner, deadline, timer: None, expired }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
            }
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
    use http_body_util::BodyExt;

    use super::*;

    /// A body fed through a channel, so the test decides when (if ever) it ends.
    struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl hyper::body::Body for ChannelBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_body_late_past_its_deadline_fails_and_says_so() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let expired = Arc::new(AtomicBool::new(false));
        let body =
            DeadlineBody::new(Body::new(ChannelBody(rx)), Instant::now() + Duration::from_millis(50), expired.clone());
        tx.send(Bytes::from_static(b"part")).await.unwrap();
        // The sender stays open: the body never ends by itself.
        assert!(body.collect().await.is_err());
        assert!(expired.load(Ordering::Acquire));
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_complete_in_time_passes_unchanged() {
        let expired = Arc::new(AtomicBool::new(false));
        let body = DeadlineBody::new(Body::from("whole"), Instant::now() + Duration::from_secs(5), expired.clone());
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"whole");
        assert!(!expired.load(Ordering::Acquire));
    }
}
