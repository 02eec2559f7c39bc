//! The pipeline's sinks: the audit log, and alerts (store, then bus). Both write a whole batch in one transaction.

use std::sync::Arc;

use argus_bus::EventBus;
use argus_detect::{
    AlertChange, AlertDraft, AuditRecord, BatchAppended, ChainLinker, KeyType, WatchStore, WatchStoreError,
};
use argus_model::{Clock, Event, EventKind, Principal};

use crate::stats::Stats;

/// The `node` of the events watch emits.
pub const NODE: &str = "watch";

/// Appends every event to the hash-chained audit log, a batch per transaction.
///
/// The chain head is kept here between batches, so a batch's records (JSON, hashes) are computed in memory and
/// the store only checks the head and inserts. It is read from the store at the first batch and again after any
/// failed write, when it may be stale (another writer appended, or the store is not what it was).
pub(crate) struct AuditSink {
    store: Arc<dyn WatchStore>,
    stats: Arc<Stats>,
    /// `None`: the head is unknown and is read from the store before the next batch.
    linker: Option<ChainLinker>,
}

impl AuditSink {
    pub(crate) fn new(store: Arc<dyn WatchStore>, stats: Arc<Stats>) -> Self {
        Self { store, stats, linker: None }
    }

    /// A failed batch is retried once after reloading the head, then logged and counted, not retried again:
    /// detection must go on while the database is away.
    pub(crate) async fn write(&mut self, events: &[Arc<Event>]) {
        let Some(first) = events.first() else { return };
        let mut records = None;
        for attempt in 1..=2 {
            let Err(error) = self.try_write(events, &mut records).await else { return };
            // The head may be stale (another writer appended) or the store may have been replaced.
            self.linker = None;
            if attempt == 1 {
                tracing::warn!(%error, "audit append failed: reloading the chain head and retrying once");
            } else {
                // Events that did not even serialise were counted already.
                let failed = records.as_ref().map_or(events.len(), Vec::len);
                self.stats.audit_failures(failed as u64);
                tracing::error!(%error, events = failed, first_event_id = %first.id, "audit append failed");
            }
        }
    }

    /// Chains the batch after the head (re-chaining the records of an earlier try, whose JSON is kept) and
    /// appends it; the head moves only once the store has written it.
    async fn try_write(
        &mut self,
        events: &[Arc<Event>],
        records: &mut Option<Vec<AuditRecord>>,
    ) -> Result<(), WatchStoreError> {
        let mut linker = self.linker().await?;
        let records = match records {
            Some(earlier) => {
                relink_all(&mut linker, earlier);
                earlier
            }
            None => records.insert(link_all(&mut linker, events, &self.stats)),
        };
        let BatchAppended { appended, duplicates, head } = self.store.append_batch(records).await?;
        self.linker = Some(ChainLinker::after(head));
        self.stats.audited(appended, duplicates);
        Ok(())
    }

    /// A copy of the cached linker, loading the head from the store if it is not known.
    async fn linker(&mut self) -> Result<ChainLinker, WatchStoreError> {
        let linker = match self.linker.take() {
            Some(linker) => linker,
            None => ChainLinker::after(self.store.head().await?),
        };
        self.linker = Some(linker.clone());
        Ok(linker)
    }
}

/// The records of `events`, chained after `linker`'s head.
fn link_all(linker: &mut ChainLinker, events: &[Arc<Event>], stats: &Stats) -> Vec<AuditRecord> {
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        match linker.link(event) {
            Ok(record) => records.push(record),
            Err(error) => {
                // Not expected (events are plain data): the event is skipped, counted and named.
                stats.audit_failures(1);
                tracing::error!(event_id = %event.id, %error, "event does not serialise: not audited");
            }
        }
    }
    records
}

/// The same records chained after `linker`'s head instead.
fn relink_all(linker: &mut ChainLinker, records: &mut [AuditRecord]) {
    for record in records {
        *record = linker.relinked(record);
        linker.advance(record);
    }
}

/// Stores alert drafts (opening or merging) and announces new and escalated alerts on the bus.
pub(crate) struct AlertSink {
    store: Arc<dyn WatchStore>,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
}

impl AlertSink {
    pub(crate) fn new(store: Arc<dyn WatchStore>, bus: EventBus, clock: Arc<dyn Clock>, stats: Arc<Stats>) -> Self {
        Self { store, bus, clock, stats }
    }

    /// The time watch stamps on what it emits.
    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Records a batch's drafts in order, in one transaction, then announces what is news. Returns the changes
    /// (none if storing failed), for the responder.
    pub(crate) async fn write(&self, drafts: Vec<AlertDraft>) -> Vec<AlertChange> {
        if drafts.is_empty() {
            return Vec::new();
        }
        let count = drafts.len();
        match self.store.record_alerts(drafts).await {
            Ok(changes) => {
                changes.iter().filter(|c| c.is_news()).for_each(|c| self.announce(c));
                changes
            }
            Err(error) => {
                self.stats.alert_failures(count as u64);
                tracing::error!(%error, drafts = count, "storing alerts failed");
                Vec::new()
            }
        }
    }

    fn announce(&self, change: &AlertChange) {
        let alert = change.alert();
        // A user name may be a password typed into the wrong field: only IP and node keys go into log lines.
        let key = if alert.key_type == KeyType::Account { "(account)" } else { alert.key.as_str() };
        tracing::warn!(
            alert_id = %alert.id,
            attack = alert.attack.as_str(),
            key_type = alert.key_type.as_str(),
            key,
            severity = alert.severity.as_str(),
            escalated = matches!(change, AlertChange::Escalated { .. }),
            "alert"
        );
        let key = Some(alert.key.clone());
        let principal = match alert.key_type {
            KeyType::Ip => Principal { ip: key, ..Principal::default() },
            KeyType::User => Principal { sub: key, ..Principal::default() },
            KeyType::Client => Principal { client_id: key, ..Principal::default() },
            KeyType::Session => Principal { sid: key, ..Principal::default() },
            KeyType::Token => Principal { jti: key, ..Principal::default() },
            // The account key is the name as typed, not a verified `sub`: it belongs in the alert, not here. A node
            // is no principal, and a refresh family has no principal field.
            KeyType::Account | KeyType::Node | KeyType::Family => Principal::default(),
        };
        self.bus.publish(Event::new(self.clock.now(), NODE, principal, EventKind::Alert(alert.raised())));
        self.stats.alert_announced();
    }
}
