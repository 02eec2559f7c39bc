//! Counters of the consumer, served on `/healthz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Live counters, shared between the consumer task and the API.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    running: AtomicBool,
    events: AtomicU64,
    lagged: AtomicU64,
    audit_failures: AtomicU64,
    alert_failures: AtomicU64,
    alerts_announced: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WatchStats {
    /// Whether the event consumer is running.
    pub running: bool,
    /// Events consumed from the bus.
    pub events: u64,
    /// Events the bus dropped because watch fell behind (neither audited nor detected).
    pub lagged: u64,
    /// Events that could not be written to the audit log.
    pub audit_failures: u64,
    /// Alert drafts that could not be stored.
    pub alert_failures: u64,
    /// New or escalated alerts published on the bus.
    pub alerts_announced: u64,
}

impl Stats {
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    pub(crate) fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn audit_failure(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn alert_failure(&self) {
        self.alert_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn alert_announced(&self) {
        self.alerts_announced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WatchStats {
        WatchStats {
            running: self.running.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            lagged: self.lagged.load(Ordering::Relaxed),
            audit_failures: self.audit_failures.load(Ordering::Relaxed),
            alert_failures: self.alert_failures.load(Ordering::Relaxed),
            alerts_announced: self.alerts_announced.load(Ordering::Relaxed),
        }
    }
}
