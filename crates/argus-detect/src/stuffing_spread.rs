//! Credential stuffing spread over many IPs: each address tries a few leaked pairs and stays under every per-IP
//! and per-account limit, so only the login form's totals show it.
//!
//! Per issuer node and tumbling window: sign-ins, failures, failures for unknown users, and the distinct accounts
//! and IPs that failed. It fires when a window holds many failures over many accounts from many IPs *and* the
//! share of failing sign-ins is both high and several times its learned normal (an exponentially weighted mean
//! over past windows), so a busy Monday morning with the usual typos does not alert.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use argus_model::{Event, EventKind, LoginFailure, LoginOutcome};
use serde::{Deserialize, Serialize};

use crate::actor::bounded;
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::{Ewma, human, round2, window_index, window_start};
use crate::distinct::{Distinct, hash64};
use crate::evidence::Recent;
use crate::failed_login::{account_key, ip_key};
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "stuffing_spread";

/// Weight of one window in the learned failure ratio.
const ALPHA: f64 = 0.05;

/// `[watch.detectors.stuffing_spread]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StuffingSpreadConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `600`.
    pub window_secs: NonZeroU64,
    /// Failed sign-ins a window needs. Default `100`.
    pub min_failures: NonZeroU32,
    /// Distinct accounts among them. Default `50`.
    pub min_accounts: NonZeroU32,
    /// Distinct IPs among them. Default `10` (fewer IPs are the per-IP detector's job).
    pub min_ips: NonZeroU32,
    /// The share of sign-ins failing must be at least this. Default `0.5`.
    pub min_ratio: f64,
    /// ... and at least this many times its learned normal. Default `3.0`.
    pub baseline_factor: f64,
    /// A window teaches the normal ratio only with at least this many sign-ins. Default `20`.
    pub baseline_min_logins: NonZeroU32,
}

impl Default for StuffingSpreadConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(600).unwrap_or(NonZeroU64::MIN),
            min_failures: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            min_accounts: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            min_ips: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            min_ratio: 0.5,
            baseline_factor: 3.0,
            baseline_min_logins: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl StuffingSpreadConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.min_ratio > 0.0 && self.min_ratio <= 1.0) {
            return Err(ConfigError::new("watch.detectors.stuffing_spread.min_ratio", "must be in (0, 1]"));
        }
        if !(self.baseline_factor.is_finite() && self.baseline_factor >= 1.0) {
            return Err(ConfigError::new("watch.detectors.stuffing_spread.baseline_factor", "must be at least 1"));
        }
        Ok(())
    }
}

/// One node's login form in the current window.
#[derive(Debug, Default)]
struct Form {
    window: i64,
    logins: u32,
    failures: u32,
    unknown_users: u32,
    accounts: Distinct,
    ips: Distinct,
    ratio: Ewma,
    evidence: Recent<8>,
}

impl KeyState for Form {
    fn heap_bytes(&self) -> usize {
        self.accounts.heap_bytes() + self.ips.heap_bytes() + self.evidence.heap_bytes()
    }
}

impl Form {
    /// Moves to window `w`, teaching the baseline what the window that ended looked like.
    fn roll(&mut self, w: i64, min_logins: u32) {
        if w <= self.window {
            return;
        }
        if self.logins >= min_logins {
            self.ratio.update(f64::from(self.failures) / f64::from(self.logins), ALPHA);
        }
        *self = Self { window: w, ratio: self.ratio, evidence: std::mem::take(&mut self.evidence), ..Self::default() };
        self.evidence.clear();
    }
}

/// The detector's state: one login form's counts per issuer node.
#[derive(Debug)]
pub struct StuffingSpread {
    config: StuffingSpreadConfig,
    window: Duration,
    nodes: Keyed<Form>,
}

impl StuffingSpread {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &StuffingSpreadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window = Duration::from_secs(config.window_secs.get());
        // A node's learned ratio is kept for a week of silence; a handful of nodes at most.
        Ok(Self { config: config.clone(), window, nodes: Keyed::new(64, Duration::from_secs(7 * 86_400)) })
    }

    fn check(&self, form: &Form, node: &str, event: &Event) -> Option<AlertDraft> {
        let c = &self.config;
        // Estimates past 16 distinct values; never more than the failures they come from.
        let failures = u64::from(form.failures);
        let (accounts, ips) = (form.accounts.count().min(failures), form.ips.count().min(failures));
        if form.failures < c.min_failures.get()
            || accounts < u64::from(c.min_accounts.get())
            || ips < u64::from(c.min_ips.get())
        {
            return None;
        }
        let ratio = f64::from(form.failures) / f64::from(form.logins.max(1));
        let learned = form.ratio.count() > 0;
        let normal = form.ratio.mean();
        let threshold = c.min_ratio.max(if learned { c.baseline_factor * normal } else { 0.0 });
        if ratio < threshold {
            return None;
        }
        let severity = if form.failures >= 3 * c.min_failures.get() { Severity::High } else { Severity::Medium };
        let pct = |x: f64| (x * 100.0).round();
        let explanation = format!(
            "{} failed sign-ins at {node} on ~{accounts} accounts from ~{ips} IPs in the current {} window, {}% of \
             sign-ins failing ({}), {}% of the failures for unknown users (needs {} failures, {} accounts, {} IPs)",
            form.failures,
            human(self.window),
            pct(ratio),
            if learned { format!("normally {}%", pct(normal)) } else { "no normal learned yet".to_owned() },
            pct(f64::from(form.unknown_users) / f64::from(form.failures)),
            c.min_failures,
            c.min_accounts,
            c.min_ips,
        );
        Some(AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::CredentialStuffing,
            key_type: KeyType::Node,
            key: node.to_owned(),
            severity,
            time: event.time,
            first_seen: Some(window_start(form.window, self.window).max(event.time.minus(self.window))),
            feature: Feature {
                name: "failed_login_ratio".to_owned(),
                observed: round2(ratio),
                threshold: round2(threshold),
                leak: format!("window {}", human(self.window)),
                baseline: learned.then_some(round2(normal)),
                deviation: (learned && normal > 0.0).then(|| round2(ratio / normal)),
                explanation,
            },
            evidence: form.evidence.ids(),
        })
    }
}

impl Detector for StuffingSpread {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let EventKind::Login(login) = &event.kind else {
            return Vec::new();
        };
        let node = bounded(&event.node);
        let w = window_index(event.time, self.window);
        let min_logins = self.config.baseline_min_logins.get();
        let form = self.nodes.entry(node, event.time, || Form { window: w, ..Form::default() });
        form.roll(w, min_logins);
        form.logins = form.logins.saturating_add(1);
        let LoginOutcome::Failure(reason) = login.outcome else {
            return Vec::new();
        };
        form.failures = form.failures.saturating_add(1);
        if reason == LoginFailure::UnknownUser {
            form.unknown_users = form.unknown_users.saturating_add(1);
        }
        form.accounts.insert_hash(hash64(&account_key(&login.username)));
        if let Some(ip) = event.principal.ip.as_deref() {
            form.ips.insert_hash(hash64(&ip_key(ip)));
        }
        form.evidence.push(&event.id);
        let Some(form) = self.nodes.get(node, event.time) else {
            return Vec::new();
        };
        self.check(form, node, event).into_iter().collect()
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.nodes.len(), bytes: self.nodes.heap_bytes() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_model::{Login, Principal};

    use crate::testing::at;

    fn attempt(ms: i64, ip: &str, user: &str, outcome: LoginOutcome) -> Event {
        Event::new(
            at(ms),
            "issuer",
            Principal { ip: Some(ip.into()), ..Principal::default() },
            EventKind::Login(Login { username: user.into(), outcome }),
        )
    }

    fn detector() -> StuffingSpread {
        StuffingSpread::new(&StuffingSpreadConfig::default()).unwrap()
    }

    /// A day of ordinary sign-ins: 180 an hour, one in ten mistyped.
    fn ordinary_day(d: &mut StuffingSpread, day: i64) -> usize {
        let mut alerts = 0;
        for i in 0..4320 {
            let ms = day * 86_400_000 + i * 20_000;
            let ok = i % 10 != 0;
            let outcome = if ok { LoginOutcome::Success } else { LoginOutcome::Failure(LoginFailure::BadPassword) };
            alerts += d
                .observe(&attempt(ms, &format!("192.0.{}.{}", i % 200, i % 7), &format!("user{}", i % 300), outcome))
                .len();
        }
        alerts
    }

    #[test]
    fn stuffing_from_a_botnet_alerts_on_the_login_form() {
        let mut d = detector();
        assert_eq!(ordinary_day(&mut d, 0), 0);
        // 400 IPs, each trying 1 leaked pair a minute or so: 300 tries in 5 minutes, mostly unknown users.
        let mut drafts = Vec::new();
        let start = 86_400_000 + 3_600_000;
        for i in 0..300 {
            let reason = if i % 4 == 0 { LoginFailure::BadPassword } else { LoginFailure::UnknownUser };
            let e = attempt(
                start + i * 1_000,
                &format!("203.{}.{}.1", i % 20, i % 400 / 20),
                &format!("leaked{i}"),
                LoginOutcome::Failure(reason),
            );
            drafts.extend(d.observe(&e));
        }
        let first = drafts.first().expect("alert");
        assert_eq!(first.alert_key(), (Attack::CredentialStuffing, KeyType::Node, "issuer"));
        assert_eq!(first.feature.baseline, Some(0.1));
        let why = &first.feature.explanation;
        assert!(why.starts_with("100 failed sign-ins at issuer on ~"), "{why}");
        assert!(why.contains("in the current 10 min window, 100% of sign-ins failing (normally 10%), 75% of the failures for unknown users"), "{why}");
        assert_eq!((first.feature.observed, first.feature.deviation), (1.0, Some(10.0)));
        assert_eq!(drafts.last().unwrap().severity, Severity::High);
    }

    #[test]
    fn a_busy_hour_of_ordinary_typos_does_not_alert() {
        let mut d = detector();
        let mut n = 0;
        for day in 0..3 {
            n += ordinary_day(&mut d, day);
        }
        // Peak: 2,000 sign-ins in 10 minutes from 500 IPs, 15% mistyped.
        for i in 0..2000 {
            let ok = i % 7 != 0;
            let outcome = if ok { LoginOutcome::Success } else { LoginOutcome::Failure(LoginFailure::BadPassword) };
            n += d
                .observe(&attempt(
                    3 * 86_400_000 + i * 300,
                    &format!("10.{}.{}.1", i % 50, i % 10),
                    &format!("u{i}"),
                    outcome,
                ))
                .len();
        }
        assert_eq!(n, 0);
    }

    #[test]
    fn config_is_checked() {
        let bad = StuffingSpreadConfig { min_ratio: 1.5, ..StuffingSpreadConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.stuffing_spread.min_ratio");
        let bad = StuffingSpreadConfig { baseline_factor: f64::NAN, ..StuffingSpreadConfig::default() };
        assert!(bad.validate().is_err());
    }
}
