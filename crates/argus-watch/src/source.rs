//! The pipeline's source: events from the bus, in batches.

use std::sync::Arc;
use std::time::Duration;

use argus_bus::{Received, Subscriber};
use argus_model::Event;
use tokio::time::Instant;

use crate::stats::Stats;

/// Under load, the least time between the starts of two batches. Each batch is a write transaction (several
/// hand-offs to SQLite's thread and a commit), so at the token endpoint's peak a batch of whatever was queued
/// held ~3.5 events and those hand-offs were a fifth of the process's CPU; letting a batch fill for the rest of
/// this interval makes them a few per 5 ms. An event that comes after a quiet interval is written at once: the
/// wait only ever applies while events keep coming, and adds at most this much to their detection.
pub(crate) const BATCH_INTERVAL: Duration = Duration::from_millis(5);

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
    /// When the last batch was closed: the next one may fill until [`BATCH_INTERVAL`] after it.
    last_batch: Option<Instant>,
}

impl BusSource {
    pub(crate) fn new(subscriber: Subscriber<Event>, stats: Arc<Stats>, max_batch: usize) -> Self {
        Self { subscriber, stats, max_batch: max_batch.max(1), last_batch: None }
    }

    /// Waits for the next event, then takes what else is already queued, up to `max_batch` events, without
    /// waiting. A loss ends the batch, so it is reported between the events before and after it. `None` once the
    /// bus is closed. Cancel-safe: nothing is taken from the bus before the first event is there.
    pub(crate) async fn next_batch(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        let first = self.subscriber.recv().await?;
        self.take(first, &mut batch);
        self.top_up(&mut batch);
        Some(batch)
    }

    /// How long `batch` may still fill before it is written: until [`BATCH_INTERVAL`] after the last batch was
    /// closed, if that is still ahead and the batch has room and no loss to report. `None` once the batch must go.
    pub(crate) fn linger(&self, batch: &Batch) -> Option<Duration> {
        let due = self.last_batch? + BATCH_INTERVAL;
        let open = batch.events.len() < self.max_batch && batch.lost == 0;
        open.then(|| due.saturating_duration_since(Instant::now())).filter(|wait| !wait.is_zero())
    }

    /// Adds what has been queued since, up to `max_batch` events, without waiting.
    pub(crate) fn top_up(&mut self, batch: &mut Batch) {
        while batch.events.len() < self.max_batch && batch.lost == 0 {
            let Some(next) = self.subscriber.try_recv() else { break };
            self.take(next, batch);
        }
    }

    /// The batch is complete: the next one is timed from now.
    pub(crate) fn close(&mut self) {
        self.last_batch = Some(Instant::now());
    }

    /// What is queued right now, up to `max_batch` events, without waiting; `None` when nothing is.
    pub(crate) fn queued(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        self.top_up(&mut batch);
        (!batch.events.is_empty() || batch.lost > 0).then_some(batch)
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

#[cfg(test)]
mod tests {
    use argus_bus::EventBus;
    use argus_model::{EventKind, Principal, Timestamp, TokenIssued};

    use super::*;

    fn publish(bus: &EventBus, n: usize) {
        for _ in 0..n {
            let issued = TokenIssued {
                grant_type: "client_credentials".into(),
                scope: String::new(),
                family: None,
                expires_at: Timestamp::from_secs(1),
            };
            bus.publish(Event::new(
                Timestamp::from_secs(0),
                "issuer",
                Principal::default(),
                EventKind::TokenIssued(issued),
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_fills_only_while_events_keep_coming() {
        let bus = EventBus::new(64);
        let mut source = BusSource::new(bus.subscribe(), Arc::new(Stats::default()), 4);
        publish(&bus, 1);
        let batch = source.next_batch().await.unwrap();
        assert_eq!(source.linger(&batch), None, "the first event is written at once");
        source.close();

        publish(&bus, 1);
        let mut batch = source.next_batch().await.unwrap();
        assert_eq!(source.linger(&batch), Some(BATCH_INTERVAL), "right after a batch: it fills for the interval");
        tokio::time::advance(BATCH_INTERVAL / 2).await;
        assert_eq!(source.linger(&batch), Some(BATCH_INTERVAL / 2));
        publish(&bus, 2);
        source.top_up(&mut batch);
        assert_eq!(batch.events.len(), 3);
        tokio::time::advance(BATCH_INTERVAL / 2).await;
        assert_eq!(source.linger(&batch), None, "the interval is over");
        source.close();

        publish(&bus, 6);
        let full = source.next_batch().await.unwrap();
        assert_eq!((full.events.len(), source.linger(&full)), (4, None), "a full batch goes at once");
        source.close();
        tokio::time::advance(BATCH_INTERVAL).await;
        let rest = source.next_batch().await.unwrap();
        assert_eq!((rest.events.len(), source.linger(&rest)), (2, None), "after a quiet interval: at once");
        assert!(source.queued().is_none());
    }
}
