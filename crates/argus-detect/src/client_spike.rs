//! A client (app) acting up: its call rate or its error ratio jumps far above its own baseline.
//!
//! A leaked client credential put to use, a compromised integration, a deployment gone wrong: all show as one
//! `client_id` suddenly calling far more, or failing far more, than it ever does. Per client and tumbling window:
//! calls and errors (status 400 or more, refusals included). When a window ends it teaches the client's baselines,
//! exponentially weighted: calls per window (quiet windows count as zero, so a client's normal includes its
//! nights) and error ratio (of windows with enough calls to have one). Once a client has `min_windows` of
//! history, the current window fires when
//!
//! - its calls pass an absolute floor and are `rate_factor` times the mean and `z` deviations above it, or
//! - its errors pass a floor and their share is at least `error_ratio` and `error_factor` times the normal share.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::Event;
use serde::{Deserialize, Serialize};

use crate::actor::{api_call, bounded, is_error};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::{Ewma, human, round2, window_index, window_start};
use crate::evidence::Recent;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "client_spike";

/// Weight of one window in the baselines.
const ALPHA: f64 = 0.05;
/// Quiet windows taught as zeros at most: beyond this many the mean is near zero anyway.
const MAX_QUIET_WINDOWS: i64 = 64;
/// Calls a window needs for its error ratio to be learned.
const MIN_CALLS_FOR_RATIO: u32 = 20;

/// `[watch.detectors.client_spike]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpikeConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `300`.
    pub window_secs: NonZeroU64,
    /// Calls in a window below which a rate spike never fires. Default `600`.
    pub min_calls: NonZeroU32,
    /// How many times its mean rate a client must reach. Default `10`.
    pub rate_factor: f64,
    /// ... and how many standard deviations above it. Default `6`.
    pub z: f64,
    /// Errors in a window below which an error spike never fires. Default `100`.
    pub min_errors: NonZeroU32,
    /// The share of calls failing must be at least this... Default `0.5`.
    pub error_ratio: f64,
    /// ... and this many times the client's normal share. Default `3`.
    pub error_factor: f64,
    /// Windows of history a client needs before it is judged. Default `12` (an hour).
    pub min_windows: NonZeroU32,
    /// Clients tracked. Default `10000`; a client's baseline is kept for 30 days of silence.
    pub max_keys: NonZeroUsize,
}

impl Default for ClientSpikeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(300).unwrap_or(NonZeroU64::MIN),
            min_calls: NonZeroU32::new(600).unwrap_or(NonZeroU32::MIN),
            rate_factor: 10.0,
            z: 6.0,
            min_errors: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            error_ratio: 0.5,
            error_factor: 3.0,
            min_windows: NonZeroU32::new(12).unwrap_or(NonZeroU32::MIN),
            max_keys: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl ClientSpikeConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("watch.detectors.client_spike.{k}");
        if !(self.rate_factor.is_finite() && self.rate_factor >= 1.0) {
            return Err(ConfigError::new(key("rate_factor"), "must be at least 1"));
        }
        if !(self.error_factor.is_finite() && self.error_factor >= 1.0) {
            return Err(ConfigError::new(key("error_factor"), "must be at least 1"));
        }
        if !(self.z.is_finite() && self.z > 0.0) {
            return Err(ConfigError::new(key("z"), "must be positive"));
        }
        if !(self.error_ratio > 0.0 && self.error_ratio <= 1.0) {
            return Err(ConfigError::new(key("error_ratio"), "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// One client's current window and baselines.
#[derive(Debug, Default)]
struct Usage {
    window: i64,
    calls: u32,
    errors: u32,
    rate: Ewma,
    error_share: Ewma,
    evidence: Recent<6>,
}

impl KeyState for Usage {
    fn heap_bytes(&self) -> usize {
        self.evidence.heap_bytes()
    }
}

impl Usage {
    fn roll(&mut self, w: i64) {
        if w <= self.window {
            return;
        }
        self.rate.update(f64::from(self.calls), ALPHA);
        for _ in 1..(w - self.window).min(MAX_QUIET_WINDOWS) {
            self.rate.update(0.0, ALPHA);
        }
        if self.calls >= MIN_CALLS_FOR_RATIO {
            self.error_share.update(f64::from(self.errors) / f64::from(self.calls), ALPHA);
        }
        self.window = w;
        self.calls = 0;
        self.errors = 0;
        self.evidence.clear();
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct ClientSpike {
    config: ClientSpikeConfig,
    window: Duration,
    clients: Keyed<Usage>,
}

impl ClientSpike {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &ClientSpikeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            window: Duration::from_secs(config.window_secs.get()),
            clients: Keyed::new(config.max_keys.get(), Duration::from_secs(30 * 86_400)),
        })
    }

    /// `Some((feature, observed, threshold, baseline, deviation))` if the window is a spike.
    fn verdict(&self, u: &Usage) -> Option<(&'static str, f64, f64, f64, f64)> {
        let c = &self.config;
        if u.rate.count() < c.min_windows.get() {
            return None;
        }
        let calls = f64::from(u.calls);
        let rate_threshold =
            f64::from(c.min_calls.get()).max(c.rate_factor * u.rate.mean()).max(u.rate.mean() + c.z * u.rate.sd());
        if calls >= rate_threshold {
            return Some(("calls_per_window", calls, rate_threshold, u.rate.mean(), u.rate.z(calls, 1.0)));
        }
        if u.errors >= c.min_errors.get() {
            let share = f64::from(u.errors) / calls.max(1.0);
            let normal = u.error_share.mean();
            let threshold = c.error_ratio.max(c.error_factor * normal);
            if share >= threshold {
                let deviation = if normal > 0.0 { share / normal } else { f64::INFINITY };
                return Some(("error_ratio", share, threshold, normal, deviation));
            }
        }
        None
    }
}

impl Detector for ClientSpike {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let (Some(call), Some(client)) = (api_call(event), event.principal.client_id.as_deref()) else {
            return Vec::new();
        };
        let client = bounded(client);
        let w = window_index(event.time, self.window);
        let usage = self.clients.entry(client, event.time, || Usage { window: w, ..Usage::default() });
        usage.roll(w);
        usage.calls = usage.calls.saturating_add(1);
        usage.errors += u32::from(is_error(call));
        usage.evidence.push(&event.id);
        let Some(usage) = self.clients.get(client, event.time) else {
            return Vec::new();
        };
        let Some((feature, observed, threshold, baseline, deviation)) = self.verdict(usage) else {
            return Vec::new();
        };
        let what = if feature == "error_ratio" {
            format!(
                "{} of its {} calls failed ({}%, normally {}%)",
                usage.errors,
                usage.calls,
                (observed * 100.0).round(),
                (baseline * 100.0).round()
            )
        } else {
            format!("made {} calls (normally ~{} a window)", usage.calls, baseline.round())
        };
        let explanation = format!(
            "client {client} {what} in the current {} window (fires at {}{})",
            human(self.window),
            if feature == "error_ratio" { (threshold * 100.0).round() } else { threshold.round() },
            if feature == "error_ratio" { "%" } else { " calls" },
        );
        let severity = if observed >= 2.0 * threshold { Severity::High } else { Severity::Medium };
        vec![AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::ClientAnomaly,
            key_type: KeyType::Client,
            key: client.to_owned(),
            severity,
            time: event.time,
            first_seen: Some(window_start(usage.window, self.window)),
            feature: Feature {
                name: feature.to_owned(),
                observed: round2(observed),
                threshold: round2(threshold),
                leak: format!("window {}", human(self.window)),
                baseline: Some(round2(baseline)),
                deviation: deviation.is_finite().then(|| round2(deviation)),
                explanation,
            },
            evidence: usage.evidence.ids(),
        }]
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.clients.len(), bytes: self.clients.heap_bytes() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{call, user};

    const WINDOW: i64 = 300_000;

    fn detector() -> ClientSpike {
        ClientSpike::new(&ClientSpikeConfig::default()).unwrap()
    }

    /// `n` calls of client `web` spread over window `w`, every `error_every`-th failing.
    fn window(d: &mut ClientSpike, w: i64, n: i64, error_every: i64) -> Vec<AlertDraft> {
        let mut drafts = Vec::new();
        for i in 0..n {
            let status = if error_every > 0 && i % error_every == 0 { 500 } else { 200 };
            drafts.extend(d.observe(&call(w * WINDOW + i * (WINDOW / n), user("u", "192.0.2.1"), "GET", "/x", status)));
        }
        drafts
    }

    #[test]
    fn a_rate_spike_alerts_once_the_client_has_history() {
        let mut d = detector();
        // Four hours of 100 calls a window, 2% errors.
        for w in 0..48 {
            assert!(window(&mut d, w, 100, 50).is_empty(), "window {w}");
        }
        let drafts = window(&mut d, 48, 3000, 0);
        let first = drafts.first().expect("alert");
        assert_eq!(first.alert_key(), (Attack::ClientAnomaly, KeyType::Client, "web"));
        assert_eq!(first.feature.name, "calls_per_window");
        assert_eq!(first.feature.observed, 1000.0, "10x the mean of ~100");
        assert!(
            first.feature.explanation.starts_with("client web made 1000 calls (normally ~100 a window)"),
            "{}",
            first.feature.explanation
        );
        assert_eq!(drafts.last().unwrap().severity, Severity::High);
    }

    #[test]
    fn an_error_spike_alerts_and_ordinary_days_do_not() {
        let mut d = detector();
        for w in 0..48 {
            assert!(window(&mut d, w, 200, 25).is_empty(), "window {w}");
        }
        let drafts = window(&mut d, 48, 200, 1);
        let first = drafts.first().expect("alert");
        assert_eq!((first.feature.name.as_str(), first.feature.observed), ("error_ratio", 1.0));
        assert_eq!(first.feature.baseline, Some(0.04));
    }

    #[test]
    fn a_new_client_is_not_judged_and_quiet_nights_lower_the_normal() {
        assert!(window(&mut detector(), 0, 5000, 1).is_empty(), "no history yet");
        let mut d = detector();
        // 200 calls a window for an hour: 700 is no spike. Then silent for 6 hours: the normal decays.
        for w in 0..12 {
            assert!(window(&mut d, w, 200, 0).is_empty());
        }
        assert!(window(&mut d, 12, 700, 0).is_empty());
        assert!(!window(&mut d, 13 + 72, 700, 0).is_empty());
    }

    #[test]
    fn config_is_checked() {
        let bad = ClientSpikeConfig { error_ratio: 2.0, ..ClientSpikeConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.client_spike.error_ratio");
    }
}
