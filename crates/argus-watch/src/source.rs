//! The pipeline's source: events from the bus, in batches.

use std::sync::Arc;

use argus_bus::{Received, Subscriber};
use argus_model::Event;

use crate::stats::Stats;

/// What one pull from the bus gave: the events queued, in bus order, then how many were lost after them.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Arc<Event>>,
    /// Events the bus dropped for watch right after `events` (it fell behind): never audited, never detected.
    pub(crate) lost: u64,
}

/// Reads the event bus, counting and reporting what was lost when watch fell behind.
pub(crate) struct BusSource {
    subscriber: Subscriber<Event>,
    stats: Arc<Stats>,
    max_batch: usize,
}

impl BusSource {
    pub(crate) fn new(subscriber: Subscriber<Event>, stats: Arc<Stats>, max_batch: usize) -> Self {
        Self { subscriber, stats, max_batch: max_batch.max(1) }
    }

    /// Waits for the next event, then takes what else is already queued, up to `max_batch` events, without
    /// waiting: an idle bus gives a batch of one at once (no latency added), a busy one gives full batches. A loss
    /// ends the batch, so it is reported between the events before and after it. `None` once the bus is closed.
    pub(crate) async fn next_batch(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        let first = self.subscriber.recv().await?;
        self.take(first, &mut batch);
        while batch.events.len() < self.max_batch && batch.lost == 0 {
            let Some(next) = self.subscriber.try_recv() else { break };
            self.take(next, &mut batch);
        }
        Some(batch)
    }

    fn take(&self, received: Received<Event>, batch: &mut Batch) {
        match received {
            Received::Message(event) => {
                self.stats.event();
                batch.events.push(event);
            }
            Received::Lagged(missed) => {
                self.stats.lost(missed);
                batch.lost += missed;
                tracing::warn!(missed, "watch fell behind the event bus: events dropped unaudited and undetected");
            }
        }
    }
}
