//! The detector stage of watch's pipeline: every event in, alert drafts out.

use argus_model::{Event, EventKind};
use serde::{Deserialize, Serialize};

use crate::alert::AlertDraft;
use crate::failed_login::{FailedLogin, FailedLoginConfig};

/// One detector: sees every event (in order, one at a time) and returns the drafts it fires.
///
/// Detectors read time only from the events, so recorded events replayed later give the same drafts.
pub trait Detector: Send {
    /// The detector's name in alerts (`failed_login`, ...).
    fn name(&self) -> &'static str;

    /// Updates the detector's state with `event` and returns the drafts it fires, if any.
    fn observe(&mut self, event: &Event) -> Vec<AlertDraft>;
}

/// A detector configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The configuration key, e.g. `watch.detectors.failed_login.stuffing_accounts`.
    pub key: String,
    /// What is wrong with the value.
    pub reason: String,
}

impl ConfigError {
    /// An error about the key `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

/// `[watch.detectors]`: one table per detector.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsConfig {
    /// Failed sign-ins per IP and per account (brute force, credential stuffing).
    pub failed_login: FailedLoginConfig,
}

impl DetectorsConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.failed_login.validate()
    }
}

/// The configured detectors, run in order on each event.
pub struct Detectors {
    detectors: Vec<Box<dyn Detector>>,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.detectors.iter().map(|d| d.name())).finish()
    }
}

impl Detectors {
    /// The enabled detectors of `config`.
    pub fn from_config(config: &DetectorsConfig) -> Result<Self, ConfigError> {
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        if config.failed_login.enabled {
            detectors.push(Box::new(FailedLogin::new(&config.failed_login)?));
        }
        Ok(Self::new(detectors))
    }

    /// Exactly these detectors, in this order (for tests and replay tools).
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        Self { detectors }
    }

    /// The names of the detectors that run.
    pub fn names(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.name()).collect()
    }

    /// Runs every detector on `event`. Watch's own output (`Alert` events) is skipped: feeding alerts back in
    /// would let one alert trigger detectors on itself.
    pub fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        if is_watch_output(event) {
            return Vec::new();
        }
        self.detectors.iter_mut().flat_map(|d| d.observe(event)).collect()
    }
}

/// Whether `event` is one watch itself emitted (and so must not be detected on).
pub fn is_watch_output(event: &Event) -> bool {
    matches!(event.kind, EventKind::Alert(_))
}

#[cfg(test)]
mod tests {
    use argus_model::{AlertRaised, Principal, Timestamp};

    use super::*;

    struct EveryEvent;

    impl Detector for EveryEvent {
        fn name(&self) -> &'static str {
            "every_event"
        }

        fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
            vec![AlertDraft {
                detector: "every_event".into(),
                attack: crate::Attack::BruteForce,
                key_type: crate::KeyType::Ip,
                key: event.id.clone(),
                severity: crate::Severity::Low,
                time: event.time,
                feature: crate::Feature {
                    name: "n".into(),
                    observed: 1.0,
                    threshold: 1.0,
                    leak: "1/s".into(),
                    explanation: "e".into(),
                },
                evidence: vec![event.id.clone()],
            }]
        }
    }

    fn alert_event() -> Event {
        Event::new(
            Timestamp::from_secs(1),
            "watch",
            Principal::default(),
            EventKind::Alert(AlertRaised {
                alert_id: "a".into(),
                detector: "failed_login".into(),
                attack: "brute_force".into(),
                key_type: "ip".into(),
                key: "203.0.113.7".into(),
                severity: "high".into(),
                summary: "s".into(),
            }),
        )
    }

    #[test]
    fn alert_events_are_not_fed_back_into_detectors() {
        let mut d = Detectors::new(vec![Box::new(EveryEvent)]);
        assert!(d.observe(&alert_event()).is_empty());
        let login = Event::new(
            Timestamp::from_secs(1),
            "issuer",
            Principal::default(),
            EventKind::Login(argus_model::Login {
                username: "alice".into(),
                outcome: argus_model::LoginOutcome::Success,
            }),
        );
        assert_eq!(d.observe(&login).len(), 1);
    }

    #[test]
    fn config_defaults_parse_and_unknown_keys_are_refused() {
        let c: DetectorsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DetectorsConfig::default());
        assert_eq!(Detectors::from_config(&c).unwrap().names(), ["failed_login"]);
        let off: DetectorsConfig = serde_json::from_str(r#"{"failed_login":{"enabled":false}}"#).unwrap();
        assert!(Detectors::from_config(&off).unwrap().names().is_empty());
        let typo = serde_json::from_str::<DetectorsConfig>(r#"{"failed_login":{"treshold":3}}"#).unwrap_err();
        assert!(typo.to_string().contains("treshold"), "{typo}");
        let partial = r#"{"failed_login":{"per_ip":{"threshold":5}}}"#;
        assert!(serde_json::from_str::<DetectorsConfig>(partial).is_err(), "a bucket needs threshold and leak");
        let zero = r#"{"failed_login":{"per_ip":{"threshold":0,"leak":"1/s"}}}"#;
        assert!(serde_json::from_str::<DetectorsConfig>(zero).is_err());
    }

    #[test]
    fn stuffing_accounts_beyond_what_is_counted_is_refused() {
        let c: DetectorsConfig = serde_json::from_str(r#"{"failed_login":{"stuffing_accounts":33}}"#).unwrap();
        let err = Detectors::from_config(&c).unwrap_err();
        assert_eq!(err.key, "watch.detectors.failed_login.stuffing_accounts");
    }
}
