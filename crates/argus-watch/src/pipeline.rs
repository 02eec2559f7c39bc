//! The consumer: source (bus) -> audit sink -> detectors -> alert sink -> responder, one batch at a time.
//!
//! One task runs the pipeline, so events are audited in the order the bus delivered them and the detectors (which
//! keep state) see them in that order too. A batch is what the bus had queued (see [`BusSource::next_batch`]): its
//! events are audited in one transaction, then run through the detectors in order, then the alerts they raised are
//! stored in one transaction, after the audit rows their evidence names; then the response rules act on the alerts
//! the batch changed.

use std::sync::Arc;

use argus_detect::{Detectors, EventLoss};
use tokio::sync::Notify;

use crate::respond::Responder;
use crate::sink::{AlertSink, AuditSink, NODE};
use crate::source::{Batch, BusSource};
use crate::stats::Stats;

pub(crate) struct Pipeline {
    pub(crate) source: BusSource,
    pub(crate) audit: AuditSink,
    pub(crate) detectors: Detectors,
    pub(crate) alerts: AlertSink,
    pub(crate) responder: Responder,
    pub(crate) stats: Arc<Stats>,
    /// The id of the last event received: where a later loss sits in the audit log.
    pub(crate) last_event: Option<String>,
}

impl Pipeline {
    /// Every event is audited, watch's own `Alert` events included; [`Detectors::observe`] skips those.
    async fn process(&mut self, batch: Batch) {
        self.stats.batch();
        self.audit.write(&batch.events).await;
        let mut drafts: Vec<_> = batch.events.iter().flat_map(|event| self.detectors.observe(event)).collect();
        if let Some(last) = batch.events.last() {
            self.last_event = Some(last.id.clone());
        }
        if batch.lost > 0 {
            drafts.push(self.loss_draft(batch.lost));
        }
        let changes = self.alerts.write(drafts).await;
        self.responder.respond(&changes).await;
    }

    /// The `audit_gap` alert for `lost` events dropped after the last one received.
    fn loss_draft(&self, lost: u64) -> argus_detect::AlertDraft {
        EventLoss {
            node: NODE,
            lost,
            lost_total: self.stats.events_lost(),
            time: self.alerts.clock().now(),
            last_before: self.last_event.as_deref(),
        }
        .draft()
    }

    /// Runs until the bus closes or `stop` is notified. On `stop`, the batch in hand and what the bus had queued
    /// are still processed: a clean shutdown loses no event.
    pub(crate) async fn run(mut self, stop: Arc<Notify>, running: Running) {
        // Held for the task's whole life, so a panic inside also reports "stopped".
        let _running = running;
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            let batch = tokio::select! {
                biased;
                () = &mut stopped => break,
                batch = self.source.next_batch() => batch,
            };
            let Some(mut batch) = batch else { return };
            // Under load the batch fills a little longer (see `BATCH_INTERVAL`); a stop ends the wait, not the batch.
            let mut stopping = false;
            if let Some(wait) = self.source.linger(&batch) {
                tokio::select! {
                    biased;
                    () = &mut stopped => stopping = true,
                    () = tokio::time::sleep(wait) => {}
                }
                self.source.top_up(&mut batch);
            }
            self.source.close();
            self.process(batch).await;
            if stopping {
                break;
            }
        }
        self.flush().await;
    }

    /// Processes what the bus holds for watch now. Bounded by the bus's capacity, so publishers that go on
    /// publishing cannot keep a stopping watch alive.
    async fn flush(&mut self) {
        let mut budget = argus_bus::DEFAULT_EVENT_CAPACITY;
        while budget > 0 {
            let Some(batch) = self.source.queued() else { break };
            budget = budget.saturating_sub(batch.events.len().max(1));
            self.process(batch).await;
        }
    }
}

/// Marks the consumer as running for `/healthz` from before it is spawned, and as stopped when dropped.
pub(crate) struct Running(Arc<Stats>);

impl Running {
    pub(crate) fn mark(stats: Arc<Stats>) -> Self {
        stats.set_running(true);
        Self(stats)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.set_running(false);
    }
}
