//! Exfiltration: a caller taking far more records or bytes than it normally does, and than its peers do.
//!
//! Per caller (user, else client, else IP) and tumbling window: the records returned (counted by the gate on
//! `x-argus-sensitive` operations) and the response bytes of its allowed calls. When a window ends it teaches two
//! baselines, exponentially weighted means and deviations over active windows: the caller's own, and its peer
//! group's (the users of the same app; all clients; all anonymous callers). During a window, the running total
//! fires once it passes an absolute floor and is both `factor` times the baseline mean and `z` deviations above
//! it, against the caller's own baseline and, once learned, its peers' too (a heavy user's normal is not an
//! exfiltration, nor is a light user's first busy day that peers routinely have). A caller too new to have a
//! baseline is judged against its peers alone, at twice the factor.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Decision, Event, Principal};
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, bounded};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::{Ewma, human, round2, window_index, window_start};
use crate::evidence::Recent;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "exfiltration";

/// Weight of one window in the baselines.
const ALPHA: f64 = 0.1;

/// `[watch.detectors.exfiltration]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExfiltrationConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `900`.
    pub window_secs: NonZeroU64,
    /// Records in a window below which nothing fires. Default `500`.
    pub min_records: NonZeroU64,
    /// Response bytes in a window below which nothing fires. Default `20000000` (20 MB).
    pub min_bytes: NonZeroU64,
    /// How many times the baseline mean a window must reach. Default `10`.
    pub factor: f64,
    /// How many standard deviations above the baseline mean it must be. Default `6`.
    pub z: f64,
    /// Active windows before the caller's own baseline counts. Default `5`.
    pub own_min_windows: NonZeroU32,
    /// Active windows (of all members) before a peer group's baseline counts. Default `20`.
    pub peer_min_windows: NonZeroU32,
    /// Callers tracked. Default `100000`; a caller's baseline is kept for 30 days of silence.
    pub max_keys: NonZeroUsize,
}

impl Default for ExfiltrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(900).unwrap_or(NonZeroU64::MIN),
            min_records: NonZeroU64::new(500).unwrap_or(NonZeroU64::MIN),
            min_bytes: NonZeroU64::new(20_000_000).unwrap_or(NonZeroU64::MIN),
            factor: 10.0,
            z: 6.0,
            own_min_windows: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            peer_min_windows: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl ExfiltrationConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(ConfigError::new("watch.detectors.exfiltration.factor", "must be at least 1"));
        }
        if !(self.z.is_finite() && self.z > 0.0) {
            return Err(ConfigError::new("watch.detectors.exfiltration.z", "must be positive"));
        }
        Ok(())
    }
}

/// The two measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    Records,
    Bytes,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Self::Records => "records_per_window",
            Self::Bytes => "bytes_per_window",
        }
    }

    /// The smallest deviation a baseline is credited with, in the measure's unit.
    fn floor(self) -> f64 {
        match self {
            Self::Records => 5.0,
            Self::Bytes => 50_000.0,
        }
    }
}

/// Baselines of records and bytes per active window.
#[derive(Clone, Copy, Debug, Default)]
struct Baselines {
    records: Ewma,
    bytes: Ewma,
}

impl KeyState for Baselines {}

impl Baselines {
    fn of(&self, m: Measure) -> &Ewma {
        match m {
            Measure::Records => &self.records,
            Measure::Bytes => &self.bytes,
        }
    }

    fn learn(&mut self, records: u64, bytes: u64) {
        self.records.update(records as f64, ALPHA);
        self.bytes.update(bytes as f64, ALPHA);
    }
}

/// One caller's current window and own baselines.
#[derive(Debug, Default)]
struct Taking {
    window: i64,
    records: u64,
    bytes: u64,
    own: Baselines,
    evidence: Recent<6>,
}

impl KeyState for Taking {
    fn heap_bytes(&self) -> usize {
        self.evidence.heap_bytes()
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct Exfiltration {
    config: ExfiltrationConfig,
    window: Duration,
    actors: Keyed<Taking>,
    peers: Keyed<Baselines>,
    key_buf: String,
    peer_buf: String,
}

/// The peer group of a caller: the users of the same app, or all callers of the same kind.
fn peer_group(actor: Actor<'_>, principal: &Principal, buf: &mut String) {
    buf.clear();
    match (actor.key_type, principal.client_id.as_deref()) {
        (KeyType::User, Some(client)) => {
            buf.push_str("users of ");
            buf.push_str(bounded(client));
        }
        (kind, _) => {
            buf.push_str("all ");
            buf.push_str(kind.as_str());
        }
    }
}

impl Exfiltration {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &ExfiltrationConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let keep = Duration::from_secs(30 * 86_400);
        Ok(Self {
            config: config.clone(),
            window: Duration::from_secs(config.window_secs.get()),
            actors: Keyed::new(config.max_keys.get(), keep),
            peers: Keyed::new(config.max_keys.get().min(10_000), keep),
            key_buf: String::new(),
            peer_buf: String::new(),
        })
    }

    /// The verdict on `observed` of measure `m`: `Some((threshold, baseline, z))` if it fires.
    fn judge(&self, m: Measure, observed: f64, own: &Baselines, peers: Option<&Baselines>) -> Option<(f64, f64, f64)> {
        let c = &self.config;
        let own = own.of(m);
        let peers = peers.map(|p| p.of(m)).filter(|p| p.count() >= c.peer_min_windows.get());
        let over = |e: &Ewma, factor: f64| {
            let threshold = (factor * e.mean()).max(e.mean() + c.z * e.sd().max(m.floor()));
            (observed >= threshold).then_some((threshold, e.mean(), e.z(observed, m.floor())))
        };
        if own.count() >= c.own_min_windows.get() {
            let verdict = over(own, c.factor)?;
            return match peers {
                Some(p) => over(p, c.factor).map(|_| verdict),
                None => Some(verdict),
            };
        }
        over(peers?, 2.0 * c.factor)
    }
}

impl Detector for Exfiltration {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event).filter(|c| c.decision == Decision::Allowed) else {
            return Vec::new();
        };
        let Some(actor) = Actor::of(&event.principal) else {
            return Vec::new();
        };
        let w = window_index(event.time, self.window);
        actor.table_key(&mut self.key_buf);
        peer_group(actor, &event.principal, &mut self.peer_buf);
        let taking = self.actors.entry(&self.key_buf, event.time, || Taking { window: w, ..Taking::default() });
        if w > taking.window {
            // The window that ended teaches the caller's and its peers' baselines (active windows only: idle
            // hours would drag every normal to zero).
            if taking.records > 0 || taking.bytes > 0 {
                taking.own.learn(taking.records, taking.bytes);
                self.peers.entry(&self.peer_buf, event.time, Baselines::default).learn(taking.records, taking.bytes);
            }
            taking.window = w;
            taking.records = 0;
            taking.bytes = 0;
            taking.evidence.clear();
        }
        taking.records = taking.records.saturating_add(call.records.unwrap_or(0));
        taking.bytes = taking.bytes.saturating_add(call.bytes_out);
        if call.records.is_some_and(|r| r > 0) || call.bytes_out > 0 {
            taking.evidence.push(&event.id);
        }
        let c = &self.config;
        let (records, bytes) = (taking.records, taking.bytes);
        if records < c.min_records.get() && bytes < c.min_bytes.get() {
            return Vec::new();
        }
        let Some(taking) = self.actors.get(&self.key_buf, event.time) else {
            return Vec::new();
        };
        let peers = self.peers.get(&self.peer_buf, event.time);
        let candidates = [(Measure::Records, records, c.min_records.get()), (Measure::Bytes, bytes, c.min_bytes.get())];
        for (m, observed, floor) in candidates {
            if observed < floor {
                continue;
            }
            if let Some(verdict) = self.judge(m, observed as f64, &taking.own, peers) {
                return vec![self.draft(event, actor, (m, observed), verdict, taking, peers)];
            }
        }
        Vec::new()
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.actors.len() + self.peers.len(), bytes: self.actors.heap_bytes() + self.peers.heap_bytes() }
    }
}

impl Exfiltration {
    fn draft(
        &self,
        event: &Event,
        actor: Actor<'_>,
        (m, observed): (Measure, u64),
        (threshold, baseline, z): (f64, f64, f64),
        taking: &Taking,
        peers: Option<&Baselines>,
    ) -> AlertDraft {
        let c = &self.config;
        let unit = if m == Measure::Records { "records" } else { "bytes" };
        let own = taking.own.of(m);
        let own_text = if own.count() >= c.own_min_windows.get() {
            format!("its own normal is ~{} a window", own.mean().round())
        } else {
            "it has no normal of its own yet".to_owned()
        };
        let peer_text = match peers.map(|p| p.of(m)).filter(|p| p.count() >= c.peer_min_windows.get()) {
            Some(p) => format!("{}: ~{}", self.peer_buf, p.mean().round()),
            None => format!("{}: not learned yet", self.peer_buf),
        };
        let explanation = format!(
            "{} {} took {observed} {unit} in the current {} window, {:.0}x the baseline and {:.1} standard \
             deviations above it (fires at {}); {own_text}, {peer_text}",
            actor.key_type,
            actor.key,
            human(self.window),
            observed as f64 / baseline.max(1.0),
            z,
            threshold.round(),
        );
        let factor = observed as f64 / threshold.max(1.0);
        AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::Exfiltration,
            key_type: actor.key_type,
            key: actor.key.to_owned(),
            severity: if factor >= 3.0 { Severity::High } else { Severity::Medium },
            time: event.time,
            first_seen: Some(window_start(taking.window, self.window)),
            feature: Feature {
                name: m.name().to_owned(),
                observed: observed as f64,
                threshold: threshold.round(),
                leak: format!("window {}", human(self.window)),
                baseline: Some(round2(baseline)),
                deviation: Some(round2(z)),
                explanation,
            },
            evidence: taking.evidence.ids(),
        }
    }
}

#[cfg(test)]
mod tests;
