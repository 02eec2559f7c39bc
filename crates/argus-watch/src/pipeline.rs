//! The consumer: source (bus) -> audit sink -> detectors -> alert sink, one event at a time.
//!
//! One task runs the pipeline, so events are audited in the order the bus delivered them and the detectors (which
//! keep state) see them in that order too.

use std::sync::Arc;

use argus_detect::Detectors;
use argus_model::Event;
use tokio::sync::Notify;

use crate::sink::{AlertSink, AuditSink};
use crate::source::BusSource;
use crate::stats::Stats;

pub(crate) struct Pipeline {
    pub(crate) source: BusSource,
    pub(crate) audit: AuditSink,
    pub(crate) detectors: Detectors,
    pub(crate) alerts: AlertSink,
}

impl Pipeline {
    /// Every event is audited, watch's own `Alert` events included; [`Detectors::observe`] skips those.
    async fn process(&mut self, event: &Event) {
        self.audit.write(event).await;
        for draft in self.detectors.observe(event) {
            self.alerts.write(draft).await;
        }
    }

    /// Runs until the bus closes or `stop` is notified. The event in hand is always finished first.
    pub(crate) async fn run(mut self, stop: Arc<Notify>, running: Running) {
        // Held for the task's whole life, so a panic inside also reports "stopped".
        let _running = running;
        loop {
            let event = tokio::select! {
                biased;
                () = stop.notified() => break,
                event = self.source.next() => event,
            };
            let Some(event) = event else { break };
            self.process(&event).await;
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
