//! One call through the gate: the phases in order, then the answer and its event.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use argus_bus::EventBus;
use argus_model::Clock;
use argus_policy::{AuthMode, Route, RouteTable};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::HeaderValue;
use hyper::body::Incoming;

use crate::dpop::{DPOP_NONCE, DpopGuard, DpopRequest, dpop_phase};
use crate::emit::CallRecord;
use crate::jwks::JwksCache;
use crate::phases::{presented_token, revocation_phase, route_phase, scope_phase, token_phase};
use crate::proxy::{Forward, Upstream, UpstreamClient, X_REQUEST_ID, downstream_response, proxy_phase, request_id};
use crate::refusal::{Refusal, TokenScheme};
use crate::revocation::Revocations;

/// Everything the gate holds, shared by all calls.
pub(crate) struct Gate {
    pub(crate) table: RouteTable,
    /// By [`argus_policy::Route::index`].
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks: JwksCache,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) dpop: DpopGuard,
    pub(crate) client: UpstreamClient,
    pub(crate) upstream_timeout: Duration,
    pub(crate) max_body_bytes: u64,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
}

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
}

/// The axum handler for every method and path.
pub(crate) async fn handle(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    // Read from the extensions rather than extracted, so a router served without connect info still works.
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let request_id = request_id(request.headers());
    let mut record = CallRecord::begin(
        gate.events.clone(),
        gate.clock.now(),
        &request_id,
        request.method(),
        request.uri().path(),
        request.headers(),
        peer,
    );
    let mut answer = Answer::default();
    let mut response = match gate.decide_and_forward(request, peer, &request_id, &mut record, &mut answer).await {
        Ok(upstream) => downstream_response(upstream),
        Err(refusal) => {
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
    record.attach(response)
}

impl Gate {
    /// Phases 1 to 6: route, token, revocation, DPoP, scopes, proxy.
    async fn decide_and_forward(
        &self,
        request: Request<Body>,
        peer: Option<IpAddr>,
        request_id: &str,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<http::Response<Incoming>, Refusal> {
        let (route, path) = route_phase(&self.table, request.uri().path())?;
        record.set_route(route.name());
        if route.auth() == AuthMode::Argus {
            let head =
                CallHead { headers: request.headers(), method: request.method(), raw_path: request.uri().path() };
            self.authorize(&head, route, &path, record, answer).await?;
        }
        record.allow();
        let forward = Forward {
            client: &self.client,
            upstream: &self.upstreams[route.index()],
            peer,
            request_id,
            max_body_bytes: self.max_body_bytes,
            timeout: self.upstream_timeout,
            bytes_in: record.bytes_in_counter(),
        };
        proxy_phase(request, forward).await
    }

    /// Phases 2 to 5, for routes that need a token: token, revocation, DPoP, scopes.
    async fn authorize(
        &self,
        head: &CallHead<'_>,
        route: &Route,
        path: &str,
        record: &mut CallRecord,
        answer: &mut Answer,
    ) -> Result<(), Refusal> {
        let (scheme, token) = presented_token(head.headers)?;
        answer.scheme = scheme;
        let now = self.clock.now();
        let claims = token_phase(&self.jwks, token, &self.issuer, &self.audience, now.as_secs()).await?;
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
        scope_phase(route, head.method, path, &claims)
    }
}
