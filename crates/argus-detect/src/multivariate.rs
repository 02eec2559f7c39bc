//! The multivariate scorer: each caller's window of activity, as a point in feature space, scored by an isolation
//! forest trained on everyone's recent windows.
//!
//! The other detectors each watch one measure against one threshold; an attacker who stays just under all of them
//! still does something no ordinary caller does *in combination* (many operations, many ids, many refusals, at a
//! modest rate). Per caller and tumbling window: calls, error ratio, distinct operations, distinct object ids,
//! response bytes, records, refusal ratio (counts on a log scale). A closed window with at least `min_calls` calls
//! is scored by the current model and then joins a reservoir sample (Vitter's algorithm R, seeded) of the last
//! windows; the model is retrained from the reservoir when it first holds `min_train` windows and again every
//! `retrain_every` windows, so it follows the traffic. A window that fires is not learned from.
//!
//! It fires when two things agree. The score reaches the firing line: `threshold`, or the 99th percentile of the
//! scores of the windows the model was trained on if that is higher (what is normal for this API decides how
//! strange is strange). And the feature the attribution blames is at least `min_deviation` robust deviations
//! from its median, where a deviation is scaled by the normal tail (see [`IsolationForest::spread`]): ordinary
//! traffic has rare-but-normal windows (a few errors in a short visit) that an isolation forest rightly finds
//! unusual, but none far beyond the tail of any measure.
//!
//! Windows close when their caller's next event arrives in a later window, or at the latest by a sweep of all
//! callers once per window of event time.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Decision, Event, Timestamp};
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, is_error, object, operation};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::{human, round2, window_index};
use crate::distinct::{Distinct, hash64};
use crate::evidence::Recent;
use crate::forest::{ForestConfig, IsolationForest, SplitMix64};
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "multivariate";

/// The number of features.
pub const FEATURES: usize = 7;

/// The features, in vector order. Ids, bytes and records are per call, so that a busy ordinary window and a quiet
/// one look alike and a window that names a new object on every call does not; calls, bytes and records are
/// scored as `ln(1 + x)`.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "calls",
    "error_ratio",
    "distinct_operations",
    "object_ids_per_call",
    "bytes_per_call",
    "records_per_call",
    "refusal_ratio",
];

/// Whether feature `f` is scored on a log scale.
const LOG_SCALE: [bool; FEATURES] = [true, false, false, false, true, true, false];

/// `[watch.detectors.multivariate]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultivariateConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `600`.
    pub window_secs: NonZeroU64,
    /// Calls a window needs to be scored and learned from. Default `20`.
    pub min_calls: NonZeroU32,
    /// The lowest score at which a window fires, in (0.5, 1). Default `0.7`.
    pub threshold: f64,
    /// Robust deviations the attributed feature must be from its median. Default `8`: far beyond where ordinary
    /// windows go (their 99th percentile is at about 2.3).
    pub min_deviation: f64,
    /// Windows kept to train from. Default `4096`.
    pub history: NonZeroUsize,
    /// Windows needed before the first model. Default `512`.
    pub min_train: NonZeroUsize,
    /// Windows between retrainings. Default `2048`.
    pub retrain_every: NonZeroUsize,
    /// Trees in the forest. Default `100`.
    pub trees: NonZeroUsize,
    /// The seed of the reservoir sampling and of every forest. Default `1`.
    pub seed: u64,
    /// Callers tracked. Default `100000`.
    pub max_keys: NonZeroUsize,
}

impl Default for MultivariateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(600).unwrap_or(NonZeroU64::MIN),
            min_calls: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            threshold: 0.7,
            min_deviation: 8.0,
            history: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            min_train: NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN),
            retrain_every: NonZeroUsize::new(2048).unwrap_or(NonZeroUsize::MIN),
            trees: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            seed: 1,
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl MultivariateConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("watch.detectors.multivariate.{k}");
        if !(self.threshold > 0.5 && self.threshold < 1.0) {
            return Err(ConfigError::new(key("threshold"), "must be in (0.5, 1)"));
        }
        if !(self.min_deviation.is_finite() && self.min_deviation >= 0.0) {
            return Err(ConfigError::new(key("min_deviation"), "must be a number, 0 or more"));
        }
        if self.min_train > self.history {
            return Err(ConfigError::new(key("min_train"), "must be at most history"));
        }
        Ok(())
    }
}

/// One caller's current window.
#[derive(Debug, Default)]
struct Window {
    index: i64,
    since: Timestamp,
    last: Timestamp,
    calls: u32,
    errors: u32,
    refused: u32,
    bytes: u64,
    records: u64,
    operations: Distinct,
    ids: Distinct,
    evidence: Recent<4>,
}

impl KeyState for Window {
    fn heap_bytes(&self) -> usize {
        self.operations.heap_bytes() + self.ids.heap_bytes() + self.evidence.heap_bytes()
    }
}

impl Window {
    /// The raw measures, in [`FEATURE_NAMES`] order.
    fn raw(&self) -> [f64; FEATURES] {
        let calls = f64::from(self.calls.max(1));
        [
            f64::from(self.calls),
            f64::from(self.errors) / calls,
            self.operations.count().min(u64::from(self.calls)) as f64,
            self.ids.count().min(u64::from(self.calls)) as f64 / calls,
            self.bytes as f64 / calls,
            self.records as f64 / calls,
            f64::from(self.refused) / calls,
        ]
    }

    fn reset(&mut self, index: i64, now: Timestamp) {
        self.index = index;
        self.since = now;
        self.last = now;
        self.calls = 0;
        self.errors = 0;
        self.refused = 0;
        self.bytes = 0;
        self.records = 0;
        self.operations.clear();
        self.ids.clear();
        self.evidence.clear();
    }
}

/// The point a window is scored as.
fn point(raw: &[f64; FEATURES]) -> [f64; FEATURES] {
    let mut p = *raw;
    for (v, log) in p.iter_mut().zip(LOG_SCALE) {
        if log {
            *v = v.ln_1p();
        }
    }
    p
}

/// A closed window, ready to score: who, when, what.
struct Closed {
    key_type: KeyType,
    key: String,
    since: Timestamp,
    last: Timestamp,
    raw: [f64; FEATURES],
    evidence: Vec<String>,
}

/// The model and what it learns from.
#[derive(Debug)]
struct Model {
    forest: Option<IsolationForest<FEATURES>>,
    /// The score at which the current forest fires.
    firing: f64,
    reservoir: Vec<[f64; FEATURES]>,
    /// Windows offered to the reservoir so far.
    seen: u64,
    since_training: usize,
    generation: u64,
    rng: SplitMix64,
}

/// The detector's state.
#[derive(Debug)]
pub struct Multivariate {
    config: MultivariateConfig,
    window: Duration,
    actors: Keyed<Window>,
    model: Model,
    last_sweep: Option<i64>,
    key_buf: String,
}

impl Multivariate {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &MultivariateConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window = Duration::from_secs(config.window_secs.get());
        Ok(Self {
            config: config.clone(),
            window,
            actors: Keyed::new(config.max_keys.get(), 2 * window),
            model: Model {
                forest: None,
                firing: config.threshold,
                reservoir: Vec::new(),
                seen: 0,
                since_training: 0,
                generation: 0,
                rng: SplitMix64::new(config.seed),
            },
            last_sweep: None,
            key_buf: String::new(),
        })
    }

    /// Whether a model has been trained.
    pub fn is_trained(&self) -> bool {
        self.model.forest.is_some()
    }

    /// Scores a closed window, then learns from it.
    fn close(&mut self, closed: Closed) -> Option<AlertDraft> {
        if closed.raw[0] < f64::from(self.config.min_calls.get()) {
            return None;
        }
        let p = point(&closed.raw);
        let draft = self.model.forest.as_ref().and_then(|forest| self.judge(forest, &p, &closed));
        // A window that fired is not learned from: an attacker must not become normal by being seen.
        if draft.is_none() {
            self.learn(p);
        }
        draft
    }

    fn learn(&mut self, p: [f64; FEATURES]) {
        let c = &self.config;
        let m = &mut self.model;
        m.seen += 1;
        if m.reservoir.len() < c.history.get() {
            m.reservoir.push(p);
        } else {
            let j = (m.rng.next_u64() % m.seen) as usize;
            if let Some(slot) = m.reservoir.get_mut(j) {
                *slot = p;
            }
        }
        m.since_training += 1;
        let first = m.forest.is_none() && m.reservoir.len() >= c.min_train.get();
        if first || (m.forest.is_some() && m.since_training >= c.retrain_every.get()) {
            m.generation += 1;
            let forest_config =
                ForestConfig { trees: c.trees.get(), sample_size: 256, seed: c.seed ^ m.generation.rotate_left(32) };
            m.forest = IsolationForest::train(&m.reservoir, &forest_config);
            m.firing = firing_line(m.forest.as_ref(), &m.reservoir, c.threshold);
            m.since_training = 0;
        }
    }

    fn judge(&self, forest: &IsolationForest<FEATURES>, p: &[f64; FEATURES], closed: &Closed) -> Option<AlertDraft> {
        let score = forest.score(p);
        let firing = self.model.firing;
        if score < firing {
            return None;
        }
        let attribution = forest.attribution(p);
        let f = (0..FEATURES).max_by(|&a, &b| attribution[a].total_cmp(&attribution[b]))?;
        let deviation = (p[f] - forest.median(f)) / forest.spread(f);
        if deviation.abs() < self.config.min_deviation {
            return None;
        }
        let median_raw = if LOG_SCALE[f] { forest.median(f).exp_m1() } else { forest.median(f) };
        let mut at_median = *p;
        at_median[f] = forest.median(f);
        let explanation = format!(
            "{} {}'s {} window scored {:.2} (fires at {:.2}), mostly for {} = {} against a median of {} over everyone's \
             windows ({:.1} robust deviations{}); with it at the median the score would be {:.2}",
            closed.key_type,
            closed.key,
            human(self.window),
            score,
            firing,
            FEATURE_NAMES[f],
            round2(closed.raw[f]),
            round2(median_raw),
            deviation,
            if LOG_SCALE[f] { ", log scale" } else { "" },
            forest.score(&at_median),
        );
        let severity = if score >= firing + 0.1 { Severity::High } else { Severity::Medium };
        Some(AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::Anomaly,
            key_type: closed.key_type,
            key: closed.key.clone(),
            severity,
            time: closed.last,
            first_seen: Some(closed.since),
            feature: Feature {
                name: FEATURE_NAMES[f].to_owned(),
                observed: round2(closed.raw[f]),
                threshold: round2(firing),
                leak: format!("window {}", human(self.window)),
                baseline: Some(round2(median_raw)),
                deviation: Some(round2(deviation)),
                explanation,
            },
            evidence: closed.evidence.clone(),
        })
    }

    /// Closes the windows of every caller whose window ended before window `w` (callers who went quiet).
    fn sweep(&mut self, w: i64, now: Timestamp) -> Vec<Closed> {
        let mut closed = Vec::new();
        self.actors.for_each_mut(now, |key, window| {
            if window.index < w && window.calls > 0 {
                closed.push(closing(key, window));
                window.calls = 0;
            }
        });
        closed
    }
}

/// The score at which `forest` fires: `threshold`, or the 99th percentile of the scores of the windows it was
/// trained on if that is higher.
fn firing_line(forest: Option<&IsolationForest<FEATURES>>, trained_on: &[[f64; FEATURES]], threshold: f64) -> f64 {
    let Some(forest) = forest else {
        return threshold;
    };
    let mut scores: Vec<f64> = trained_on.iter().map(|p| forest.score(p)).collect();
    scores.sort_by(f64::total_cmp);
    let at = (scores.len() * 99 / 100).min(scores.len().saturating_sub(1));
    scores.get(at).map_or(threshold, |&q| threshold.max(q))
}

/// Takes a finished window out of `window` (which keeps its allocations); `key` is the table key.
fn closing(key: &str, window: &Window) -> Closed {
    let (kind, name) = key.split_once('\u{1f}').unwrap_or(("ip", key));
    let key_type = kind.parse().unwrap_or(KeyType::Ip);
    Closed {
        key_type,
        key: name.to_owned(),
        since: window.since,
        last: window.last,
        raw: window.raw(),
        evidence: window.evidence.ids(),
    }
}

impl Detector for Multivariate {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event) else {
            return Vec::new();
        };
        let Some(actor) = Actor::of(&event.principal) else {
            return Vec::new();
        };
        let w = window_index(event.time, self.window);
        let mut closed = Vec::new();
        if self.last_sweep.is_some_and(|s| s < w) {
            closed = self.sweep(w, event.time);
        }
        if self.last_sweep.is_none_or(|s| s < w) {
            self.last_sweep = Some(w);
        }
        actor.table_key(&mut self.key_buf);
        let window = self.actors.entry(&self.key_buf, event.time, || Window {
            index: w,
            since: event.time,
            ..Window::default()
        });
        if window.index < w {
            if window.calls > 0 {
                closed.push(closing(&self.key_buf, window));
            }
            window.reset(w, event.time);
        }
        window.calls = window.calls.saturating_add(1);
        window.last = window.last.max(event.time);
        window.errors += u32::from(is_error(call));
        window.refused += u32::from(call.decision == Decision::Refused);
        window.bytes = window.bytes.saturating_add(call.bytes_out);
        window.records = window.records.saturating_add(call.records.unwrap_or(0));
        if let Some(op) = operation(call) {
            window.operations.insert_hash(hash64(op));
        }
        if let Some((id, _)) = object(call) {
            window.ids.insert_hash(id);
        }
        window.evidence.push(&event.id);
        closed.into_iter().filter_map(|c| self.close(c)).collect()
    }

    fn memory(&self) -> Memory {
        let model = self.model.reservoir.capacity() * std::mem::size_of::<[f64; FEATURES]>()
            + self.model.forest.as_ref().map_or(0, IsolationForest::heap_bytes);
        Memory { keys: self.actors.len(), bytes: self.actors.heap_bytes() + model }
    }
}

#[cfg(test)]
mod tests;
