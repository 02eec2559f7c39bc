//! What watch needs of the issuer: its store, to revoke as the admin API does (refresh tokens and sessions in the
//! store, live access tokens at every gate) and to check the admin tokens the watch API is called with; where its
//! keys are published; how long its access tokens live.

use std::sync::Arc;
use std::time::Duration;

use argus_bus::ControlChannel;
use argus_model::{ControlMessage, Revocation, RevocationScope, Timestamp};
use argus_oauth::admin::{ScopeEffects, admin_revocation, backstop_revocations};
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
}
