//! The storage watch needs, as traits the store adapter implements.

use argus_model::Event;
use async_trait::async_trait;

use crate::alert::{Alert, AlertChange, AlertDraft, AlertFilter};
use crate::audit::{AuditRecord, ChainVerdict};

/// A storage failure. The message is for logs; it names no secret (events carry none).
#[derive(Debug, thiserror::Error)]
pub enum WatchStoreError {
    /// The database failed (I/O, lock timeout, constraint).
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The append-only, hash-chained audit log of every event.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `event` after the current head and returns its record. Appends are serialised by the store, so
    /// two writers cannot fork the chain. An event whose id is already logged is not appended twice: the existing
    /// record is returned (a bus may deliver at least once).
    async fn append(&self, event: &Event) -> Result<AuditRecord, WatchStoreError>;

    /// Up to `limit` records with `seq > after`, in order.
    async fn records_after(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, WatchStoreError>;

    /// Walks the whole chain and reports the first edited, deleted or misplaced record.
    async fn verify_chain(&self) -> Result<ChainVerdict, WatchStoreError>;
}

/// Alerts, de-duplicated per (attack, key type, key) while open.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens an alert for `draft`, or merges it into the open alert for the same (attack, key type, key) with
    /// [`Alert::absorb`], atomically.
    async fn record_alert(&self, draft: AlertDraft) -> Result<AlertChange, WatchStoreError>;

    /// Alerts matching `filter`, most recently seen first.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError>;

    /// One alert by id.
    async fn alert(&self, id: &str) -> Result<Option<Alert>, WatchStoreError>;
}

/// Everything watch stores; implemented by any type that is both an [`AuditLog`] and an [`AlertStore`].
pub trait WatchStore: AuditLog + AlertStore {}

impl<T: AuditLog + AlertStore + ?Sized> WatchStore for T {}
