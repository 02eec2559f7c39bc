//! The pipeline's source: events from the bus.

use std::sync::Arc;

use argus_bus::{Received, Subscriber};
use argus_model::Event;

use crate::stats::Stats;

/// Reads the event bus, counting and reporting what was lost when watch fell behind.
pub(crate) struct BusSource {
    subscriber: Subscriber<Event>,
    stats: Arc<Stats>,
}

impl BusSource {
    pub(crate) fn new(subscriber: Subscriber<Event>, stats: Arc<Stats>) -> Self {
        Self { subscriber, stats }
    }

    /// The next event, or `None` once the bus is closed.
    pub(crate) async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.subscriber.recv().await? {
                Received::Message(event) => {
                    self.stats.event();
                    return Some(event);
                }
                Received::Lagged(missed) => {
                    self.stats.lagged(missed);
                    // Lost events are missing from the audit log and from detection; say so loudly.
                    tracing::warn!(missed, "watch fell behind the event bus: events dropped unaudited and undetected");
                }
            }
        }
    }
}
