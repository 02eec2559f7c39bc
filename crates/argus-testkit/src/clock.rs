use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use argus_model::{Clock, Timestamp};

/// 2025-01-01T00:00:00Z: where a [`FakeClock`] starts unless told otherwise.
pub const TEST_EPOCH: Timestamp = Timestamp::from_secs(1_735_689_600);

/// A [`Clock`] that stands still until the test moves it.
#[derive(Debug)]
pub struct FakeClock {
    millis: AtomicI64,
}

impl FakeClock {
    /// A clock showing `start` until moved.
    pub fn new(start: Timestamp) -> Self {
        Self { millis: AtomicI64::new(start.as_millis()) }
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(by, Ordering::SeqCst);
    }

    /// Jump to an instant (also backwards, to test clock skew).
    pub fn set(&self, to: Timestamp) {
        self.millis.store(to.as_millis(), Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new(TEST_EPOCH)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn moves_only_when_told() {
        let clock = Arc::new(FakeClock::default());
        let shared: Arc<dyn Clock> = clock.clone();
        assert_eq!(shared.now(), TEST_EPOCH);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(shared.now().as_millis(), TEST_EPOCH.as_millis() + 1500);
        clock.set(Timestamp::from_secs(5));
        assert_eq!(shared.now().as_secs(), 5);
    }
}
