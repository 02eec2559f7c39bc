//! Endpoint transitions: sequences of calls that ordinary callers almost never make.
//!
//! Applications lead people through their API in a few ways: list accounts, open one, read its transactions.
//! Every session's (or, without one, every caller's) consecutive calls (operation A then B, within `session_gap_secs`) count into one global
//! first-order Markov chain, learned from all traffic. Once `min_history` transitions are learned, each new one
//! is scored by its surprisal, `-log2 P(B | A)` (add-half smoothing; transitions out of an operation seen fewer
//! than `min_from` times are not scored: too little is known). A caller whose last `sequence` scored transitions
//! average at least `threshold_bits` is following a flow nobody normal follows (an attacker jumping straight to
//! the interesting operations, a tool iterating over the spec). Transitions of a caller already over the
//! threshold are not learned, so an attacker cannot teach the model its own flow.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Event, Timestamp};
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, bounded, operation};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::{Ewma, round2};
use crate::evidence::Recent;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "flow";

/// The longest sequence that can be averaged.
const MAX_SEQUENCE: usize = 16;
/// "No operation yet".
const NONE: u16 = u16::MAX;

/// `[watch.detectors.flow]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// A pause longer than this, in seconds, starts a new flow. Default `1800`.
    pub session_gap_secs: NonZeroU64,
    /// Transitions learned before any is scored. Default `20000`.
    pub min_history: NonZeroU64,
    /// Times an operation must have been left before transitions out of it are scored. Default `50`.
    pub min_from: NonZeroU32,
    /// Scored transitions averaged per caller. Default `8`, at most 16.
    pub sequence: NonZeroUsize,
    /// The mean surprisal, in bits, that fires. Default `7` (transitions of about 1 in 128 on average).
    pub threshold_bits: f64,
    /// Distinct operations learned; later ones are not scored. Default `1024`.
    pub max_operations: NonZeroUsize,
    /// Callers tracked. Default `100000`.
    pub max_keys: NonZeroUsize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_gap_secs: NonZeroU64::new(1800).unwrap_or(NonZeroU64::MIN),
            min_history: NonZeroU64::new(20_000).unwrap_or(NonZeroU64::MIN),
            min_from: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            sequence: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            threshold_bits: 7.0,
            max_operations: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl FlowConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sequence.get() > MAX_SEQUENCE {
            return Err(ConfigError::new("watch.detectors.flow.sequence", format!("must be at most {MAX_SEQUENCE}")));
        }
        if !(self.threshold_bits.is_finite() && self.threshold_bits > 0.0) {
            return Err(ConfigError::new("watch.detectors.flow.threshold_bits", "must be positive"));
        }
        if self.max_operations.get() >= usize::from(NONE) {
            return Err(ConfigError::new("watch.detectors.flow.max_operations", "must be below 65535"));
        }
        Ok(())
    }
}

/// One caller's flow.
#[derive(Debug)]
struct Trail {
    last_op: u16,
    last: Timestamp,
    /// Surprisals of the latest scored transitions, a ring.
    recent: [f32; MAX_SEQUENCE],
    scored: u8,
    next: u8,
    /// The start of the latest flow.
    since: Timestamp,
    evidence: Recent<4>,
}

impl KeyState for Trail {
    fn heap_bytes(&self) -> usize {
        self.evidence.heap_bytes()
    }
}

impl Trail {
    fn new(now: Timestamp) -> Self {
        Self {
            last_op: NONE,
            last: now,
            recent: [0.0; MAX_SEQUENCE],
            scored: 0,
            next: 0,
            since: now,
            evidence: Recent::default(),
        }
    }

    fn push(&mut self, bits: f64, sequence: usize) {
        self.recent[usize::from(self.next)] = bits as f32;
        self.next = ((usize::from(self.next) + 1) % sequence) as u8;
        self.scored = (usize::from(self.scored) + 1).min(sequence) as u8;
    }

    /// The mean of the last `sequence` surprisals, once there are that many.
    fn mean(&self, sequence: usize) -> Option<f64> {
        (usize::from(self.scored) >= sequence)
            .then(|| self.recent[..sequence].iter().map(|&b| f64::from(b)).sum::<f64>() / sequence as f64)
    }
}

/// The learned chain.
#[derive(Debug, Default)]
struct Chain {
    ids: HashMap<Box<str>, u16>,
    names: Vec<Box<str>>,
    counts: HashMap<u32, u32>,
    out: Vec<u32>,
    learned: u64,
    /// Surprisal of all scored transitions: what is normal.
    normal: Ewma,
}

impl Chain {
    fn intern(&mut self, op: &str, max: usize) -> Option<u16> {
        if let Some(&id) = self.ids.get(op) {
            return Some(id);
        }
        if self.names.len() >= max {
            return None;
        }
        let id = self.names.len() as u16;
        self.ids.insert(op.into(), id);
        self.names.push(op.into());
        self.out.push(0);
        Some(id)
    }

    /// `-log2 P(to | from)` with add-half smoothing, or `None` if `from` has been left too rarely.
    fn surprisal(&self, from: u16, to: u16, min_from: u32) -> Option<f64> {
        let total = *self.out.get(usize::from(from))?;
        if total < min_from {
            return None;
        }
        let count = self.counts.get(&key(from, to)).copied().unwrap_or(0);
        let p = (f64::from(count) + 0.5) / (f64::from(total) + 0.5 * self.names.len() as f64);
        Some(-p.log2())
    }

    fn learn(&mut self, from: u16, to: u16) {
        let c = self.counts.entry(key(from, to)).or_insert(0);
        *c = c.saturating_add(1);
        if let Some(o) = self.out.get_mut(usize::from(from)) {
            *o = o.saturating_add(1);
        }
        self.learned += 1;
    }
}

fn key(from: u16, to: u16) -> u32 {
    (u32::from(from) << 16) | u32::from(to)
}

/// The detector's state.
#[derive(Debug)]
pub struct Flow {
    config: FlowConfig,
    gap: Duration,
    chain: Chain,
    actors: Keyed<Trail>,
    key_buf: String,
}

impl Flow {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &FlowConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let gap = Duration::from_secs(config.session_gap_secs.get());
        Ok(Self {
            config: config.clone(),
            gap,
            chain: Chain::default(),
            actors: Keyed::new(config.max_keys.get(), gap),
            key_buf: String::new(),
        })
    }

    /// Transitions learned so far.
    pub fn learned(&self) -> u64 {
        self.chain.learned
    }
}

impl Detector for Flow {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event) else {
            return Vec::new();
        };
        // A flow is one conversation: a sign-in session when the token names one (a person with a laptop and a
        // phone open at once runs two flows), else the caller.
        let p = &event.principal;
        let session = p.sid.as_deref().map(|sid| Actor { key_type: KeyType::Session, key: bounded(sid) });
        let (Some(op), Some(actor)) = (operation(call), session.or_else(|| Actor::of(p))) else {
            return Vec::new();
        };
        let Some(to) = self.chain.intern(op, self.config.max_operations.get()) else {
            return Vec::new();
        };
        let c = &self.config;
        let sequence = c.sequence.get();
        actor.table_key(&mut self.key_buf);
        let trail = self.actors.entry(&self.key_buf, event.time, || Trail::new(event.time));
        let continues = trail.last_op != NONE && event.time.since(trail.last) <= self.gap;
        let from = trail.last_op;
        if !continues {
            // A new flow: nothing leads into this call.
            let evidence = std::mem::take(&mut trail.evidence);
            *trail = Trail { evidence, ..Trail::new(event.time) };
            trail.evidence.clear();
        }
        trail.last_op = to;
        trail.last = trail.last.max(event.time);
        trail.evidence.push(&event.id);
        if !continues {
            return Vec::new();
        }
        let warm = self.chain.learned >= c.min_history.get();
        let bits = if warm { self.chain.surprisal(from, to, c.min_from.get()) } else { None };
        if let Some(b) = bits {
            trail.push(b, sequence);
            self.chain.normal.update(b, 0.001);
        }
        let mean = trail.mean(sequence);
        let over = mean.is_some_and(|m| m >= c.threshold_bits);
        if !over {
            self.chain.learn(from, to);
        }
        let Some(mean) = mean.filter(|_| over) else {
            return Vec::new();
        };
        let normal = self.chain.normal.mean();
        let name = |id: u16| self.chain.names.get(usize::from(id)).map_or("?", |n| &**n);
        let latest = bits.map_or_else(String::new, |b| format!(" (1 in {:.0})", 2f64.powf(b)));
        let explanation = format!(
            "{} {}'s last {sequence} transitions between operations are ones ordinary callers take with a mean \
             surprisal of {:.1} bits (normally {:.1}; fires at {} bits); latest: {} -> {}{latest}",
            actor.key_type,
            actor.key,
            mean,
            normal,
            c.threshold_bits,
            name(from),
            name(to),
        );
        vec![AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::UnusualFlow,
            key_type: actor.key_type,
            key: actor.key.to_owned(),
            severity: if mean >= c.threshold_bits + 3.0 { Severity::High } else { Severity::Medium },
            time: event.time,
            first_seen: Some(trail.since),
            feature: Feature {
                name: "mean_transition_surprisal_bits".to_owned(),
                observed: round2(mean),
                threshold: c.threshold_bits,
                leak: format!("last {sequence} transitions"),
                baseline: Some(round2(normal)),
                deviation: Some(round2(mean - normal)),
                explanation,
            },
            evidence: trail.evidence.ids(),
        }]
    }

    fn memory(&self) -> Memory {
        let c = &self.chain;
        let chain = c.counts.capacity() * (std::mem::size_of::<(u32, u32)>() + 1)
            + c.ids.capacity() * (std::mem::size_of::<(Box<str>, u16)>() + 1)
            + c.names.iter().map(|n| 2 * n.len() + 16).sum::<usize>()
            + c.out.capacity() * 4;
        Memory { keys: self.actors.len(), bytes: self.actors.heap_bytes() + chain }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::SplitMix64;
    use crate::testing::{op_call, user};

    /// The app's flow: list -> get -> transactions -> (get | list), with rare detours to the profile.
    fn next(rng: &mut SplitMix64, op: &str) -> &'static str {
        // (operation, percent chance of the first successor, first successor, other successor)
        const CHAIN: [(&str, usize, &str, &str); 4] = [
            ("listAccounts", 90, "getAccount", "getProfile"),
            ("getAccount", 70, "getTransactions", "listAccounts"),
            ("getTransactions", 50, "getAccount", "listAccounts"),
            ("getProfile", 100, "listAccounts", "listAccounts"),
        ];
        let (_, p, first, other) = CHAIN.iter().find(|(o, ..)| *o == op).copied().unwrap_or(CHAIN[3]);
        if rng.below(100) < p { first } else { other }
    }

    fn ordinary(d: &mut Flow, rng: &mut SplitMix64, users: usize, steps: usize, t0: i64) -> Vec<AlertDraft> {
        let mut drafts = Vec::new();
        let mut ops: Vec<&str> = vec!["listAccounts"; users];
        for s in 0..steps {
            for (u, op) in ops.iter_mut().enumerate() {
                *op = next(rng, op);
                let e = op_call(t0 + (s * users + u) as i64 * 100, user(&format!("u{u}"), "192.0.2.1"), op, None, 200);
                drafts.extend(d.observe(&e));
            }
        }
        drafts
    }

    #[test]
    fn ordinary_flows_never_alert_and_a_tool_walking_the_spec_does() {
        let mut d = Flow::new(&FlowConfig::default()).unwrap();
        let mut rng = SplitMix64::new(5);
        assert!(ordinary(&mut d, &mut rng, 50, 1000, 0).is_empty());
        assert!(d.learned() > 40_000);
        // A tool calls every operation in spec order, including ones the app never leads to in that order.
        let spec = ["getProfile", "getTransactions", "getProfile", "getTransactions", "listAccounts", "getProfile"];
        let mut drafts = Vec::new();
        for i in 0..30 {
            let e = op_call(
                10_000_000 + i * 500,
                user("scanner", "203.0.113.70"),
                spec[i as usize % spec.len()],
                None,
                200,
            );
            drafts.extend(d.observe(&e));
        }
        let first = drafts.first().expect("alert");
        assert_eq!(first.alert_key(), (Attack::UnusualFlow, KeyType::User, "scanner"));
        assert!(first.feature.observed >= 7.0);
        assert!(first.feature.baseline.unwrap() < 2.0, "{:?}", first.feature.baseline);
        assert!(first.feature.explanation.contains("latest: "), "{}", first.feature.explanation);
        // The scanner's transitions were not learned: ordinary flows stay ordinary.
        assert!(ordinary(&mut d, &mut rng, 50, 100, 20_000_000).is_empty());
    }

    #[test]
    fn nothing_is_scored_before_the_history_is_learned() {
        let mut d = Flow::new(&FlowConfig::default()).unwrap();
        for i in 0..1000 {
            let op = ["getProfile", "getTransactions"][i % 2];
            assert!(d.observe(&op_call(i as i64 * 1000, user("early", "192.0.2.1"), op, None, 200)).is_empty());
        }
    }

    #[test]
    fn config_is_checked() {
        let bad = FlowConfig { sequence: NonZeroUsize::new(17).unwrap(), ..FlowConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.flow.sequence");
    }
}
