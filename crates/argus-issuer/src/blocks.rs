//! Watch's blocks at the issuer: an address that watch blocked (brute force, stuffing) is refused at the login
//! form too, not only at the gates. Fed by the control channel, like the gates, and started from the blocks in
//! force, so an issuer that starts late refuses what the running gates refuse.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use argus_bus::{ControlChannel, Received, Subscriber};
use argus_model::{Block, Clock, ControlMessage};
use argus_policy::blocklist::{BlockKeys, BlockList};

/// How often ended blocks are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The blocks in force, by the keys a sign-in has: its address (and, once known, the user).
pub(crate) struct IssuerBlocks {
    list: RwLock<BlockList>,
    clock: Arc<dyn Clock>,
}

impl IssuerBlocks {
    /// Start from `initial`, subscribe to `control` and apply its blocks as they come.
    pub(crate) fn start(control: &ControlChannel, clock: Arc<dyn Clock>, initial: &[Block]) -> Arc<Self> {
        let subscriber = control.subscribe();
        let now = clock.now();
        let mut list = BlockList::new();
        for block in initial {
            if let Err(error) = list.apply(block, now) {
                tracing::warn!(%error, id = %block.id, "stored block refused");
            }
        }
        let this = Arc::new(Self { list: RwLock::new(list), clock });
        tokio::spawn(apply_blocks(Arc::downgrade(&this), subscriber));
        this
    }

    /// Whether sign-ins from `ip` are blocked now.
    pub(crate) fn address_blocked(&self, ip: IpAddr) -> bool {
        let keys = BlockKeys { ip: Some(ip), ..BlockKeys::default() };
        self.list.read().unwrap_or_else(PoisonError::into_inner).check(&keys, self.clock.now()).is_some()
    }

    fn apply(&self, block: &Block) {
        let now = self.clock.now();
        if let Err(error) = self.list.write().unwrap_or_else(PoisonError::into_inner).apply(block, now) {
            tracing::warn!(%error, id = %block.id, "block refused");
        }
    }
}

async fn apply_blocks(blocks: Weak<IssuerBlocks>, mut subscriber: Subscriber<ControlMessage>) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = subscriber.recv() => {
                let Some(received) = received else { return };
                let Some(blocks) = blocks.upgrade() else { return };
                match received {
                    Received::Message(message) => {
                        if let ControlMessage::Block(block) = &*message {
                            blocks.apply(block);
                        }
                    }
                    Received::Lagged(missed) => tracing::warn!(missed, "the issuer fell behind on the control channel"),
                }
            }
            _ = prune.tick() => {
                let Some(blocks) = blocks.upgrade() else { return };
                let now = blocks.clock.now();
                blocks.list.write().unwrap_or_else(PoisonError::into_inner).prune(now);
            }
        }
    }
}
