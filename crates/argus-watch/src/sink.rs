//! The pipeline's sinks: the audit log, and alerts (store, then bus).

use std::sync::Arc;

use argus_bus::EventBus;
use argus_detect::{AlertChange, AlertDraft, KeyType, WatchStore};
use argus_model::{Clock, Event, EventKind, Principal};

use crate::stats::Stats;

/// The `node` of the events watch emits.
pub const NODE: &str = "watch";

/// Appends every event to the hash-chained audit log.
pub(crate) struct AuditSink {
    store: Arc<dyn WatchStore>,
    stats: Arc<Stats>,
}

impl AuditSink {
    pub(crate) fn new(store: Arc<dyn WatchStore>, stats: Arc<Stats>) -> Self {
        Self { store, stats }
    }

    /// A failed append is logged and counted, not retried: detection must go on while the database is away.
    pub(crate) async fn write(&self, event: &Event) {
        if let Err(error) = self.store.append(event).await {
            self.stats.audit_failure();
            tracing::error!(event_id = %event.id, %error, "audit append failed");
        }
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

    pub(crate) async fn write(&self, draft: AlertDraft) {
        match self.store.record_alert(draft).await {
            Ok(change) if change.is_news() => self.announce(&change),
            Ok(_) => {}
            Err(error) => {
                self.stats.alert_failure();
                tracing::error!(%error, "storing an alert failed");
            }
        }
    }

    fn announce(&self, change: &AlertChange) {
        let alert = change.alert();
        // A user name may be a password typed into the wrong field: only IP keys go into log lines.
        let key = if alert.key_type == KeyType::Ip { alert.key.as_str() } else { "(account)" };
        tracing::warn!(
            alert_id = %alert.id,
            attack = alert.attack.as_str(),
            key_type = alert.key_type.as_str(),
            key,
            severity = alert.severity.as_str(),
            escalated = matches!(change, AlertChange::Escalated { .. }),
            "alert"
        );
        let principal = match alert.key_type {
            KeyType::Ip => Principal { ip: Some(alert.key.clone()), ..Principal::default() },
            // The account key is the name as typed, not a verified `sub`: it belongs in the alert, not here.
            KeyType::Account => Principal::default(),
        };
        self.bus.publish(Event::new(self.clock.now(), NODE, principal, EventKind::Alert(alert.raised())));
        self.stats.alert_announced();
    }
}
