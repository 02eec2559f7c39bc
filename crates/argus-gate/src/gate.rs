//! One call through the gate: the phases in order, then the answer and its event.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use argus_bus::EventBus;
use argus_model::Clock;
use argus_policy::{AuthMode, RouteTable};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::HeaderValue;
use hyper::body::Incoming;

use crate::emit::CallRecord;
use crate::jwks::JwksCache;
use crate::phases::{bearer_token, revocation_phase, route_phase, scope_phase, token_phase};
use crate::proxy::{Forward, Upstream, UpstreamClient, X_REQUEST_ID, downstream_response, proxy_phase, request_id};
use crate::refusal::Refusal;
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
    pub(crate) client: UpstreamClient,
    pub(crate) upstream_timeout: Duration,
    pub(crate) max_body_bytes: u64,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
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
    let mut response = match gate.decide_and_forward(request, peer, &request_id, &mut record).await {
        Ok(upstream) => downstream_response(upstream),
        Err(refusal) => {
            record.refuse(&refusal);
            refusal.to_response(&request_id)
        }
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, id);
    }
    record.attach(response)
}

impl Gate {
    /// Phases 1 to 5: route, token, revocation, scopes, proxy.
    async fn decide_and_forward(
        &self,
        request: Request<Body>,
        peer: Option<IpAddr>,
        request_id: &str,
        record: &mut CallRecord,
    ) -> Result<http::Response<Incoming>, Refusal> {
        let (route, path) = route_phase(&self.table, request.uri().path())?;
        record.set_route(route.name());
        if route.auth() == AuthMode::Argus {
            let token = bearer_token(request.headers())?;
            let now = self.clock.now().as_secs();
            let claims = token_phase(&self.jwks, token, &self.issuer, &self.audience, now).await?;
            record.set_token(&claims);
            revocation_phase(&self.revocations, &claims).await?;
            scope_phase(route, request.method(), &path, &claims)?;
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
}
