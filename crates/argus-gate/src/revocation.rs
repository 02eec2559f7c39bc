//! The revocation set: what the control channel says is revoked, indexed for a constant-time check per request.
//! The same task applies the channel's blocks to the gate's block list, and its step-up demands (a configured
//! trigger asked that a session sign in again) to the demands the step-up demand phase checks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use argus_bus::{ControlChannel, Received, Subscriber};
use argus_jose::AccessClaims;
use argus_model::{Block, Clock, ControlMessage, Revocation, RevocationScope, StepUpDemand, Timestamp, TokenKeys};
use argus_policy::blocklist::{BlockKeys, BlockKind, BlockList};
use argus_policy::stepup::StepUpPolicy;
use tokio::sync::Notify;

use crate::operation_phases::step_up_refusal;
use crate::refusal::{Refusal, TokenScheme};

/// How often expired entries are dropped even when no message arrives.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long a request waits for the control task to apply revocations published before it arrived.
const CATCH_UP_WAIT: Duration = Duration::from_millis(250);

/// Revocations by the key they match on. Entries of the same scope and key are merged (latest `at`, latest
/// `until`): for any token that has not expired yet, the merged entry covers exactly what the separate ones did,
/// because each entry's `until` outlives every token it covers.
#[derive(Debug, Default)]
pub struct RevocationSet {
    tokens: HashMap<String, Revocation>,
    sessions: HashMap<String, Revocation>,
    users: HashMap<String, Revocation>,
    clients: HashMap<String, Revocation>,
    /// By `sub`, then `client_id`.
    grants: HashMap<String, HashMap<String, Revocation>>,
    /// By refresh-token family (claim `fid`).
    families: HashMap<String, Revocation>,
    /// By device (claim `did`).
    devices: HashMap<String, Revocation>,
}

impl RevocationSet {
    /// Add a revocation, unless every token it covers has expired by `now`.
    pub fn insert(&mut self, revocation: Revocation, now: Timestamp) {
        if revocation.until < now {
            return;
        }
        let slot = match &revocation.scope {
            RevocationScope::Token { jti } => self.tokens.entry(jti.clone()),
            RevocationScope::Session { sid } => self.sessions.entry(sid.clone()),
            RevocationScope::User { sub } => self.users.entry(sub.clone()),
            RevocationScope::Client { client_id } => self.clients.entry(client_id.clone()),
            RevocationScope::Grant { sub, client_id } => {
                self.grants.entry(sub.clone()).or_default().entry(client_id.clone())
            }
            RevocationScope::Family { family } => self.families.entry(family.clone()),
            RevocationScope::Device { device } => self.devices.entry(device.clone()),
        };
        slot.and_modify(|kept| {
            kept.at = kept.at.max(revocation.at);
            kept.until = kept.until.max(revocation.until);
        })
        .or_insert(revocation);
    }

    /// Whether a token with these keys is revoked: at most seven hash lookups, each confirmed by
    /// [`Revocation::covers`].
    pub fn covers(&self, token: &TokenKeys<'_>) -> bool {
        let candidates = [
            self.tokens.get(token.jti),
            token.sid.and_then(|sid| self.sessions.get(sid)),
            self.users.get(token.sub),
            self.clients.get(token.client_id),
            self.grants.get(token.sub).and_then(|by_client| by_client.get(token.client_id)),
            token.family.and_then(|family| self.families.get(family)),
            token.device.and_then(|device| self.devices.get(device)),
        ];
        candidates.into_iter().flatten().any(|r| r.covers(token))
    }

    /// Drop entries whose covered tokens have all expired by `now`.
    pub fn prune(&mut self, now: Timestamp) {
        let live = |_: &String, r: &mut Revocation| r.until >= now;
        self.tokens.retain(live);
        self.sessions.retain(live);
        self.users.retain(live);
        self.clients.retain(live);
        self.families.retain(live);
        self.devices.retain(live);
        self.grants.retain(|_, by_client| {
            by_client.retain(live);
            !by_client.is_empty()
        });
    }

    /// The number of entries held.
    pub fn len(&self) -> usize {
        self.tokens.len()
            + self.sessions.len()
            + self.users.len()
            + self.clients.len()
            + self.families.len()
            + self.devices.len()
            + self.grants.values().map(HashMap::len).sum::<usize>()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The gate's live revocation set and block list, fed by a task subscribed to the control channel.
pub(crate) struct Revocations {
    set: RwLock<RevocationSet>,
    blocks: RwLock<BlockList>,
    /// Step-up demands by `sid`, merged like revocations (latest `not_before`, latest `until`).
    step_ups: RwLock<HashMap<String, StepUpDemand>>,
    control: ControlChannel,
    /// `control.published()` when the gate subscribed: messages counted before are none of its business.
    published_before: u64,
    /// Messages the task has applied (or lost to lag) since it subscribed.
    applied: AtomicU64,
    applied_changed: Notify,
    clock: Arc<dyn Clock>,
}

impl Revocations {
    /// Start from `initial` (the set in force when the gate starts, so a late gate refuses what was revoked
    /// before it), subscribe to `control` now (so nothing published after this call is missed) and spawn the task
    /// applying its messages.
    pub(crate) fn start(
        control: ControlChannel,
        clock: Arc<dyn Clock>,
        initial: Vec<Revocation>,
        initial_blocks: Vec<Block>,
        initial_step_ups: Vec<StepUpDemand>,
    ) -> Arc<Self> {
        // Subscribe before reading the counter: every message counted after the snapshot is then delivered to
        // this subscriber, so `caught_up` can never wait for a message that will not come.
        let subscriber = control.subscribe();
        let published_before = control.published();
        let mut set = RevocationSet::default();
        let now = clock.now();
        // A revocation both loaded here and received on the channel merges into one entry: no double counting.
        for revocation in initial {
            set.insert(revocation, now);
        }
        let mut blocks = BlockList::new();
        for block in &initial_blocks {
            if let Err(error) = blocks.apply(block, now) {
                tracing::warn!(%error, id = %block.id, "stored block refused");
            }
        }
        let mut step_ups = HashMap::new();
        for demand in initial_step_ups {
            merge_demand(&mut step_ups, demand, now);
        }
        let this = Arc::new(Self {
            set: RwLock::new(set),
            blocks: RwLock::new(blocks),
            step_ups: RwLock::new(step_ups),
            control,
            published_before,
            applied: AtomicU64::new(0),
            applied_changed: Notify::new(),
            clock,
        });
        tokio::spawn(apply_control_messages(Arc::downgrade(&this), subscriber));
        this
    }

    /// Whether a token is revoked, after applying every revocation published before this call.
    pub(crate) async fn covers(&self, token: &TokenKeys<'_>) -> bool {
        self.catch_up().await;
        self.set.read().unwrap_or_else(PoisonError::into_inner).covers(token)
    }

    /// The kind of the live block covering a call with these keys, after applying every block published before
    /// this call.
    pub(crate) async fn blocked(&self, keys: &BlockKeys<'_>) -> Option<BlockKind> {
        self.catch_up().await;
        let now = self.clock.now();
        self.blocks.read().unwrap_or_else(PoisonError::into_inner).check(keys, now).map(|hit| hit.kind)
    }

    /// The step-up demand on the session of a token authenticated at `auth_time`, if one applies now, after
    /// applying every demand published before this call.
    pub(crate) async fn step_up_demanded(&self, sid: Option<&str>, auth_time: Option<i64>) -> Option<StepUpDemand> {
        let sid = sid?;
        self.catch_up().await;
        let now = self.clock.now();
        let demands = self.step_ups.read().unwrap_or_else(PoisonError::into_inner);
        demands.get(sid).filter(|d| d.demands(Some(sid), auth_time, now)).cloned()
    }

    /// Read-your-writes across the channel: a revocation whose `publish` returned before this request arrived
    /// must apply to it, even if the control task has not been scheduled since. The common case costs two atomic
    /// loads; the wait is bounded so a starved task cannot stall calls.
    async fn catch_up(&self) {
        let target = self.control.published().saturating_sub(self.published_before);
        let caught_up = || self.applied.load(Ordering::Acquire) >= target;
        if caught_up() {
            return;
        }
        let wait = async {
            loop {
                let notified = self.applied_changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if caught_up() {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(CATCH_UP_WAIT, wait).await.is_err() {
            tracing::warn!("the control channel task is behind; a very recent revocation may not apply yet");
        }
    }

    fn apply(&self, message: &ControlMessage) {
        match message {
            ControlMessage::Revoke(revocation) => {
                let now = self.clock.now();
                self.set.write().unwrap_or_else(PoisonError::into_inner).insert(revocation.clone(), now);
                tracing::debug!(id = %revocation.id, "revocation applied");
            }
            ControlMessage::Block(block) => {
                let now = self.clock.now();
                match self.blocks.write().unwrap_or_else(PoisonError::into_inner).apply(block, now) {
                    Ok(_) => tracing::debug!(id = %block.id, "block applied"),
                    Err(error) => tracing::warn!(%error, "block refused"),
                }
            }
            ControlMessage::StepUp(demand) => {
                let now = self.clock.now();
                tracing::debug!(id = %demand.id, "step-up demand applied");
                merge_demand(&mut self.step_ups.write().unwrap_or_else(PoisonError::into_inner), demand.clone(), now);
            }
        }
    }

    fn mark_applied(&self, n: u64) {
        self.applied.fetch_add(n, Ordering::Release);
        self.applied_changed.notify_waiters();
    }

    fn prune(&self) {
        let now = self.clock.now();
        self.set.write().unwrap_or_else(PoisonError::into_inner).prune(now);
        self.blocks.write().unwrap_or_else(PoisonError::into_inner).prune(now);
        self.step_ups.write().unwrap_or_else(PoisonError::into_inner).retain(|_, d| d.until >= now);
    }
}

/// Keep `demand` unless it has run out; two demands on one session merge into the stricter, longer one.
fn merge_demand(demands: &mut HashMap<String, StepUpDemand>, demand: StepUpDemand, now: Timestamp) {
    if demand.until < now {
        return;
    }
    demands
        .entry(demand.sid.clone())
        .and_modify(|kept| {
            kept.not_before = kept.not_before.max(demand.not_before);
            kept.until = kept.until.max(demand.until);
        })
        .or_insert(demand);
}

/// Phase (after revocation): a session a configured trigger asked to sign in again. A token from a sign-in before
/// the demand is answered 401 with the RFC 9470 `insufficient_user_authentication` challenge; its `max_age` reaches
/// back to the demand, so the re-authorization it asks for yields a token that passes.
pub(crate) async fn step_up_demand_phase(
    revocations: &Revocations,
    claims: &AccessClaims,
    scheme: TokenScheme,
    now: Timestamp,
) -> Result<(), Refusal> {
    let Some(demand) = revocations.step_up_demanded(claims.sid.as_deref(), claims.auth_time).await else {
        return Ok(());
    };
    let policy = StepUpPolicy::max_age_only(demand.max_age(now));
    Err(step_up_refusal(&policy.challenge(), scheme))
}

/// The control task. Holds only a weak reference so it ends with the gate, or when every publisher is gone.
async fn apply_control_messages(gate: std::sync::Weak<Revocations>, mut subscriber: Subscriber<ControlMessage>) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = subscriber.recv() => {
                let Some(received) = received else { return };
                let Some(revocations) = gate.upgrade() else { return };
                match received {
                    Received::Message(message) => {
                        revocations.apply(&message);
                        revocations.mark_applied(1);
                    }
                    Received::Lagged(missed) => {
                        // Reloading the current set from the issuer comes with a later issue.
                        tracing::warn!(missed, "the gate fell behind on the control channel; revocations were lost");
                        revocations.mark_applied(missed);
                    }
                }
            }
            _ = prune.tick() => {
                let Some(revocations) = gate.upgrade() else { return };
                revocations.prune();
            }
        }
    }
}

#[cfg(test)]
mod tests;
