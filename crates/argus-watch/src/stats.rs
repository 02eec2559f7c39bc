//! Counters of the consumer, served on `/healthz`. Each is a monotonic total, ready to be exported as a metric
//! (`argus_watch_<name>_total`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Live counters, shared between the consumer task and the API.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    running: AtomicBool,
    events: AtomicU64,
    events_lost: AtomicU64,
    batches: AtomicU64,
    audited: AtomicU64,
    audit_duplicates: AtomicU64,
    audit_failures: AtomicU64,
    alert_failures: AtomicU64,
    alerts_announced: AtomicU64,
    actions_taken: AtomicU64,
    actions_observed: AtomicU64,
    actions_failed: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WatchStats {
    /// Whether the event consumer is running.
    pub running: bool,
    /// Events consumed from the bus.
    pub events: u64,
    /// Events the bus dropped because watch fell behind: neither audited nor detected. Each loss also raises an
    /// `audit_gap` alert.
    pub events_lost: u64,
    /// Batches processed (events / batches is the mean batch size).
    pub batches: u64,
    /// Records appended to the audit log.
    pub audited: u64,
    /// Events not appended because the audit log had them already (delivered twice).
    pub audit_duplicates: u64,
    /// Events that could not be written to the audit log.
    pub audit_failures: u64,
    /// Alert drafts that could not be stored.
    pub alert_failures: u64,
    /// New or escalated alerts published on the bus.
    pub alerts_announced: u64,
    /// Responses taken (blocks, revocations, step-ups, notifications, records).
    pub actions_taken: u64,
    /// Responses of observe-only rules: decided and recorded, not taken.
    pub actions_observed: u64,
    /// Responses that could not be recorded or taken.
    pub actions_failed: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    pub(crate) fn event(&self) {
        add(&self.events, 1);
    }

    pub(crate) fn lost(&self, n: u64) {
        add(&self.events_lost, n);
    }

    /// Events lost so far.
    pub(crate) fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    pub(crate) fn batch(&self) {
        add(&self.batches, 1);
    }

    pub(crate) fn audited(&self, appended: u64, duplicates: u64) {
        add(&self.audited, appended);
        add(&self.audit_duplicates, duplicates);
    }

    pub(crate) fn audit_failures(&self, n: u64) {
        add(&self.audit_failures, n);
    }

    pub(crate) fn alert_failures(&self, n: u64) {
        add(&self.alert_failures, n);
    }

    pub(crate) fn alert_announced(&self) {
        add(&self.alerts_announced, 1);
    }

    pub(crate) fn action_taken(&self) {
        add(&self.actions_taken, 1);
    }

    pub(crate) fn action_observed(&self) {
        add(&self.actions_observed, 1);
    }

    pub(crate) fn action_failed(&self) {
        add(&self.actions_failed, 1);
    }

    pub(crate) fn snapshot(&self) -> WatchStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WatchStats {
            running: self.running.load(Ordering::Relaxed),
            events: get(&self.events),
            events_lost: get(&self.events_lost),
            batches: get(&self.batches),
            audited: get(&self.audited),
            audit_duplicates: get(&self.audit_duplicates),
            audit_failures: get(&self.audit_failures),
            alert_failures: get(&self.alert_failures),
            alerts_announced: get(&self.alerts_announced),
            actions_taken: get(&self.actions_taken),
            actions_observed: get(&self.actions_observed),
            actions_failed: get(&self.actions_failed),
        }
    }
}
