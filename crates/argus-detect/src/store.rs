//! The storage watch needs, as traits the store adapter implements.

use argus_model::Event;
use async_trait::async_trait;

use crate::alert::{Alert, AlertChange, AlertDraft, AlertFilter};
use crate::audit::{AuditRecord, BatchAppended, ChainVerdict};

/// A storage failure. The message is for logs; it names no secret (events carry none).
#[derive(Debug, thiserror::Error)]
pub enum WatchStoreError {
    /// The database failed (I/O, lock timeout, constraint).
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A batch was chained after a head that is no longer the log's (another writer appended): nothing was
    /// written. Reload the head and chain again.
    #[error("the audit log's head moved: expected seq {expected}, found {found}")]
    StaleHead {
        /// The `seq` the batch was chained after (0: an empty log).
        expected: u64,
        /// The log's actual head `seq` (0: empty).
        found: u64,
    },
}

/// The append-only, hash-chained audit log of every event.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `event` after the current head and returns its record. Appends are serialised by the store, so
    /// two writers cannot fork the chain. An event whose id is already logged is not appended twice: the existing
    /// record is returned (a bus may deliver at least once).
    async fn append(&self, event: &Event) -> Result<AuditRecord, WatchStoreError>;

    /// The newest record's `(seq, hash)`, `None` for an empty log: where a writer that chains records in memory
    /// ([`crate::ChainLinker`]) starts, and starts again after a failed write.
    async fn head(&self) -> Result<Option<(u64, String)>, WatchStoreError>;

    /// Appends `records`, chained in order after the log's current head, in one transaction: all or nothing.
    /// A record whose event is already logged is skipped and the ones after it are re-linked, so the chain links
    /// only records actually written. If the log's head is not the one `records` were chained after (another
    /// writer appended meanwhile), nothing is written and an error is returned: reload [`Self::head`] and chain
    /// again.
    async fn append_batch(&self, records: &[AuditRecord]) -> Result<BatchAppended, WatchStoreError>;

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

    /// Records `drafts` in order, with the same changes as [`Self::record_alert`] on each in turn (one change per
    /// draft, each with the alert as of that draft). A store should do it in one transaction; this default does
    /// not, and stops at the first failure.
    async fn record_alerts(&self, drafts: Vec<AlertDraft>) -> Result<Vec<AlertChange>, WatchStoreError> {
        let mut changes = Vec::with_capacity(drafts.len());
        for draft in drafts {
            changes.push(self.record_alert(draft).await?);
        }
        Ok(changes)
    }

    /// Alerts matching `filter`, most recently seen first.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError>;

    /// One alert by id.
    async fn alert(&self, id: &str) -> Result<Option<Alert>, WatchStoreError>;
}

/// Everything watch stores; implemented by any type that is both an [`AuditLog`] and an [`AlertStore`].
pub trait WatchStore: AuditLog + AlertStore {}

impl<T: AuditLog + AlertStore + ?Sized> WatchStore for T {}
