//! What watch needs of the issuer: its store, to revoke as the admin API does (refresh tokens and sessions in the
//! store, live access tokens at every gate), to demand a step-up as its triggers do, to tell users through its
//! notices (the account page and the `[notify]` deliveries) and to check the admin tokens the watch API is called
//! with; where its keys are published; how long its tokens live.

use std::sync::Arc;
use std::time::Duration;

use argus_bus::ControlChannel;
use argus_model::{ControlMessage, Revocation, RevocationScope, StepUpDemand, Timestamp};
use argus_oauth::admin::{ScopeEffects, admin_revocation, backstop_revocations};
use argus_oauth::notice::{Delivery, NoticeRecord, NoticeRoutes, file_notice};
use argus_oauth::step_up_demand::{StepUpDemandStore, step_up_demand};
use argus_oauth::{ClientRegistration, IssuerStore, StorageError};
use async_trait::async_trait;

/// The issuer's storage, as far as watch uses it. Implemented by every [`IssuerStore`] (`argus_store::Store`).
#[async_trait]
pub trait IssuerAccess: Send + Sync {
    /// Revokes what the store holds in `scope` (refresh families, sessions), as `AdminStore::revoke_scope`.
    async fn revoke_scope(&self, scope: &RevocationScope, now: Timestamp) -> Result<ScopeEffects, StorageError>;
    /// Keeps a revocation, so that a gate started later loads it.
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StorageError>;
    /// The revocations in force at `now`.
    async fn active_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>, StorageError>;
    /// A client registration.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRegistration>, StorageError>;
    /// The longest access-token lifetime any client overrides the issuer's with, in seconds.
    async fn longest_client_access_ttl(&self) -> Result<Option<u64>, StorageError>;
    /// Files a notice for its user with its deliveries, as the issuer does ([`file_notice`]).
    async fn file_notice(&self, routes: &NoticeRoutes, notice: &NoticeRecord) -> Result<Vec<Delivery>, StorageError>;
    /// Keeps a step-up demand, so that a gate started later loads it.
    async fn add_step_up_demand(&self, demand: &StepUpDemand, now: Timestamp) -> Result<(), StorageError>;
}

#[async_trait]
impl<T: IssuerStore> IssuerAccess for T {
    async fn revoke_scope(&self, scope: &RevocationScope, now: Timestamp) -> Result<ScopeEffects, StorageError> {
        argus_oauth::admin::AdminStore::revoke_scope(self, scope, now).await
    }

    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StorageError> {
        IssuerStore::add_revocation(self, revocation).await
    }

    async fn active_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>, StorageError> {
        IssuerStore::active_revocations(self, now).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRegistration>, StorageError> {
        IssuerStore::client(self, client_id).await
    }

    async fn longest_client_access_ttl(&self) -> Result<Option<u64>, StorageError> {
        Ok(IssuerStore::clients(self).await?.iter().filter_map(|c| c.access_token_ttl_secs).max())
    }

    async fn file_notice(&self, routes: &NoticeRoutes, notice: &NoticeRecord) -> Result<Vec<Delivery>, StorageError> {
        file_notice(self, routes, notice).await
    }

    async fn add_step_up_demand(&self, demand: &StepUpDemand, now: Timestamp) -> Result<(), StorageError> {
        StepUpDemandStore::add_step_up_demand(self, demand, now).await
    }
}

/// The issuer watch works with.
#[derive(Clone)]
pub struct IssuerLink {
    /// Its store.
    pub store: Arc<dyn IssuerAccess>,
    /// Its URL, the `iss` of its tokens: its discovery document and JWKS are fetched from there.
    pub url: String,
    /// The audience of its access tokens by default (the API's); an admin token may also name the issuer itself.
    pub audience: String,
    /// Its access-token lifetime (`[issuer] access_token_ttl_secs`): how long gates must keep a revocation.
    pub access_token_ttl: Duration,
    /// Its refresh families' absolute lifetime (`[issuer] refresh_token_absolute_ttl_secs`): how long a session can
    /// mint tokens with its sign-in's `auth_time`, so how long a step-up demand must last.
    pub refresh_token_ttl: Duration,
    /// Where users' notices go besides the account page (`[notify]`, the same as the issuer's).
    pub notify: NoticeRoutes,
}

impl std::fmt::Debug for IssuerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerLink").field("url", &self.url).field("audience", &self.audience).finish_non_exhaustive()
    }
}

impl IssuerLink {
    /// Revokes `scope` everywhere, as the issuer's admin API does: in the store (families, sessions), then at
    /// every gate (the revocation is stored first, so a gate started later loads it) until every covered token
    /// has expired. Returns the revocations sent; the first is the one for `scope` itself.
    pub(crate) async fn revoke(
        &self,
        scope: RevocationScope,
        now: Timestamp,
        control: &ControlChannel,
    ) -> Result<Vec<Revocation>, StorageError> {
        let longest = self.store.longest_client_access_ttl().await?.map_or(Duration::ZERO, Duration::from_secs);
        let effects = self.store.revoke_scope(&scope, now).await?;
        let backstops = backstop_revocations(&scope, &effects.live_accesses, now);
        let mut all = vec![admin_revocation(scope, now, longest.max(self.access_token_ttl))];
        all.extend(backstops);
        for r in &all {
            self.store.add_revocation(r).await?;
        }
        for r in &all {
            control.publish(ControlMessage::Revoke(r.clone()));
        }
        Ok(all)
    }

    /// Demands that session `sid` sign in again, for what it did at `seen`, as the issuer's `require_step_up`
    /// trigger does: every gate answers its older tokens with the RFC 9470 challenge until a fresh sign-in. Kept in
    /// the store for gates started later and told to every running gate. As the trigger does, a storage failure
    /// still tells the running gates (stopping a thief now beats stopping them everywhere later); it is returned,
    /// so the action is recorded as failed.
    pub(crate) async fn demand_step_up(
        &self,
        sid: &str,
        seen: Timestamp,
        now: Timestamp,
        control: &ControlChannel,
    ) -> Result<StepUpDemand, StorageError> {
        let longest = self.store.longest_client_access_ttl().await?.map_or(Duration::ZERO, Duration::from_secs);
        let demand = step_up_demand(sid, seen, now, self.refresh_token_ttl, longest.max(self.access_token_ttl));
        let stored = self.store.add_step_up_demand(&demand, now).await;
        control.publish(ControlMessage::StepUp(demand.clone()));
        stored.map(|()| demand)
    }
}
