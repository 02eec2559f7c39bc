//! The event bus and the control channel.
//!
//! In-process implementation: bounded broadcast channels. Publishing never blocks and never fails a request: when
//! a subscriber lags behind, the oldest messages it has not read are dropped for it and counted. NATS JetStream
//! comes behind the same types later.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argus_model::{ControlMessage, Event};
use tokio::sync::broadcast;

/// Default capacity of the in-process event bus.
pub const DEFAULT_EVENT_CAPACITY: usize = 65_536;
/// Default capacity of the in-process control channel.
pub const DEFAULT_CONTROL_CAPACITY: usize = 4_096;

/// A bounded fan-out channel of `T`, cheap to clone.
#[derive(Clone)]
pub struct Channel<T> {
    tx: broadcast::Sender<Arc<T>>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    published: AtomicU64,
    unheard: AtomicU64,
    lagged: AtomicU64,
}

impl<T: Send + Sync + 'static> Channel<T> {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx, stats: Arc::default() }
    }

    /// Publish without waiting. Returns at once whether or not anyone listens.
    pub fn publish(&self, msg: T) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Arc::new(msg)).is_err() {
            self.stats.unheard.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new subscriber that sees every message published from now on.
    pub fn subscribe(&self) -> Subscriber<T> {
        Subscriber { rx: self.tx.subscribe(), stats: self.stats.clone() }
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.stats.published.load(Ordering::Relaxed)
    }

    /// Messages that subscribers lost because they fell behind.
    pub fn lagged(&self) -> u64 {
        self.stats.lagged.load(Ordering::Relaxed)
    }
}

/// One subscriber's view of a [`Channel`].
pub struct Subscriber<T> {
    rx: broadcast::Receiver<Arc<T>>,
    stats: Arc<Stats>,
}

/// What a subscriber receives.
#[derive(Debug)]
pub enum Received<T> {
    Message(Arc<T>),
    /// The subscriber fell behind and `n` messages were dropped for it. A gate answers this on the control channel
    /// by reloading the current revocation set.
    Lagged(u64),
}

impl<T: Send + Sync + 'static> Subscriber<T> {
    /// The next message, or `None` once every publisher is gone.
    pub async fn recv(&mut self) -> Option<Received<T>> {
        match self.rx.recv().await {
            Ok(m) => Some(Received::Message(m)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.stats.lagged.fetch_add(n, Ordering::Relaxed);
                Some(Received::Lagged(n))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next message if one is already queued, without waiting: `None` when nothing is queued right now or
    /// every publisher is gone. Lets a consumer drain a burst in one batch and go back to [`Self::recv`] when idle.
    pub fn try_recv(&mut self) -> Option<Received<T>> {
        match self.rx.try_recv() {
            Ok(m) => Some(Received::Message(m)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                self.stats.lagged.fetch_add(n, Ordering::Relaxed);
                Some(Received::Lagged(n))
            }
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => None,
        }
    }
}

/// The event bus: every part publishes, watch (and tests) subscribe.
pub type EventBus = Channel<Event>;
/// The control channel: issuer and watch publish revocations and blocks, gates subscribe.
pub type ControlChannel = Channel<ControlMessage>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_and_lag_is_counted_not_blocking() {
        let ch: Channel<u32> = Channel::new(2);
        ch.publish(0); // nobody listens yet: dropped, counted
        let mut a = ch.subscribe();
        let mut b = ch.subscribe();
        ch.publish(1);
        assert!(matches!(a.recv().await, Some(Received::Message(m)) if *m == 1));
        for i in 2..6 {
            ch.publish(i); // never blocks although b is not reading
        }
        assert!(matches!(b.recv().await, Some(Received::Lagged(3))));
        assert!(matches!(b.recv().await, Some(Received::Message(m)) if *m == 4));
        assert_eq!(ch.published(), 6);
        assert_eq!(ch.lagged(), 3);
    }

    #[tokio::test]
    async fn try_recv_drains_what_is_queued_without_waiting() {
        let ch: Channel<u32> = Channel::new(4);
        let mut sub = ch.subscribe();
        assert!(sub.try_recv().is_none(), "nothing queued: returns at once");
        for i in 0..6 {
            ch.publish(i);
        }
        assert!(matches!(sub.try_recv(), Some(Received::Lagged(2))));
        let drained: Vec<u32> = std::iter::from_fn(|| match sub.try_recv() {
            Some(Received::Message(m)) => Some(*m),
            _ => None,
        })
        .collect();
        assert_eq!(drained, [2, 3, 4, 5]);
        assert!(sub.try_recv().is_none());
        assert_eq!(ch.lagged(), 2);
    }
}
