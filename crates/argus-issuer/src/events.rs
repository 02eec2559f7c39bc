//! Events the issuer emits, and the request facts they carry.

use std::net::SocketAddr;

use argus_model::truncate_utf8 as truncate;
use argus_model::{Event, EventKind, Principal, Revocation, Revoked};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::state::{Issuer, Shared};

/// The `node` of every event the issuer emits.
pub(crate) const NODE: &str = "issuer";
/// Longest user agent kept in an event; the rest is noise or abuse.
const MAX_USER_AGENT: usize = 512;

/// The caller's IP address and user agent, for events. Never fails: either may be unknown.
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Self::Rejection> {
        // The peer, or behind trusted proxies the client they name: sign-in throttling, watch's blocks and events
        // key on it, so it must never be a value the caller chooses.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| argus_policy::forwarded::client_address(c.0.ip(), &parts.headers, &s.trusted_proxies).to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| truncate(s, MAX_USER_AGENT).to_owned());
        Ok(Self { ip, user_agent })
    }
}

impl Caller {
    /// A principal with this caller's network keys.
    pub fn principal(&self) -> Principal {
        Principal { ip: self.ip.clone(), user_agent: self.user_agent.clone(), ..Principal::default() }
    }
}

impl Issuer {
    /// Publish an event. Never blocks and never fails the request.
    pub fn emit(&self, principal: Principal, kind: EventKind) {
        self.events.publish(Event::new(self.now(), NODE, principal, kind));
    }

    /// Make revocations effective: keep them for gates that start later, tell every gate now, and record who
    /// asked. A storage failure is logged and the control message still goes out, so running gates refuse the
    /// token even then.
    pub async fn publish_revocations(&self, revocations: Vec<Revocation>, principal: &Principal, by: &str) {
        for r in revocations {
            if let Err(e) = self.store.add_revocation(&r).await {
                tracing::error!(error = %e, revocation = %r.id, "could not store a revocation");
            }
            let event = EventKind::Revoked(Revoked { scope: r.scope.clone(), by: by.to_owned() });
            self.control.publish(argus_model::ControlMessage::Revoke(r));
            self.emit(principal.clone(), event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
