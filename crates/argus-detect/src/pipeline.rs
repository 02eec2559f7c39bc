//! The detector stage of watch's pipeline: every event in, alert drafts out.

use argus_model::{Event, EventKind};
use serde::{Deserialize, Serialize};

use crate::actor::caused_by_watch;
use crate::alert::AlertDraft;
use crate::client_spike::{ClientSpike, ClientSpikeConfig};
use crate::decoy::{Decoy, DecoyConfig};
use crate::exfiltration::{Exfiltration, ExfiltrationConfig};
use crate::failed_login::{FailedLogin, FailedLoginConfig};
use crate::flow::{Flow, FlowConfig};
use crate::multivariate::{Multivariate, MultivariateConfig};
use crate::object_walk::{ObjectWalk, ObjectWalkConfig};
use crate::probing::{Probing, ProbingConfig};
use crate::scraping::{Scraping, ScrapingConfig};
use crate::slow_brute_force::{SlowBruteForce, SlowBruteForceConfig};
use crate::stuffing_spread::{StuffingSpread, StuffingSpreadConfig};
use crate::token_use::{TokenUse, TokenUseConfig};

/// What a detector holds in memory: keys tracked (over all its tables) and approximate heap bytes, its fixed
/// parts (models, learned chains) included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Keys tracked.
    pub keys: usize,
    /// Approximate bytes held on the heap.
    pub bytes: usize,
}

impl std::ops::Add for Memory {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self { keys: self.keys + other.keys, bytes: self.bytes + other.bytes }
    }
}

/// One detector: sees every event (in order, one at a time) and returns the drafts it fires.
///
/// Detectors read time only from the events, so recorded events replayed later give the same drafts.
pub trait Detector: Send {
    /// The detector's name in alerts (`failed_login`, ...).
    fn name(&self) -> &'static str;

    /// Updates the detector's state with `event` and returns the drafts it fires, if any.
    fn observe(&mut self, event: &Event) -> Vec<AlertDraft>;

    /// What the detector holds in memory (zero if it does not say).
    fn memory(&self) -> Memory {
        Memory::default()
    }
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

/// `[watch.detectors]`: one table per detector; every detector runs unless its table says `enabled = false`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsConfig {
    /// Failed sign-ins per IP and per account (brute force, credential stuffing).
    pub failed_login: FailedLoginConfig,
    /// One account guessed slowly, for hours or days (brute force).
    pub slow_brute_force: SlowBruteForceConfig,
    /// Credential stuffing spread over many IPs, seen in the login form's totals.
    pub stuffing_spread: StuffingSpreadConfig,
    /// Tokens, sessions and refresh families used by someone else (stolen token).
    pub token_use: TokenUseConfig,
    /// Object ids walked through (enumeration, BOLA).
    pub object_walk: ObjectWalkConfig,
    /// Sustained reading of many paths or list endpoints (scraping).
    pub scraping: ScrapingConfig,
    /// Far more records or bytes than the caller's and its peers' normal (exfiltration).
    pub exfiltration: ExfiltrationConfig,
    /// A client's call rate or error ratio far above its normal (client anomaly).
    pub client_spike: ClientSpikeConfig,
    /// Many malformed calls (probing, fuzzing).
    pub probing: ProbingConfig,
    /// Calls to decoy operations (decoy hit).
    pub decoy: DecoyConfig,
    /// A caller's window of activity unlike everyone's (anomaly; seeded isolation forest).
    pub multivariate: MultivariateConfig,
    /// Sequences of operations nobody normal follows (unusual flow).
    pub flow: FlowConfig,
}

impl DetectorsConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.failed_login.validate()?;
        self.slow_brute_force.validate()?;
        self.stuffing_spread.validate()?;
        self.token_use.validate()?;
        self.object_walk.validate()?;
        self.scraping.validate()?;
        self.exfiltration.validate()?;
        self.client_spike.validate()?;
        self.probing.validate()?;
        self.decoy.validate()?;
        self.multivariate.validate()?;
        self.flow.validate()
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
        config.validate()?;
        let c = config;
        let mut d: Vec<Box<dyn Detector>> = Vec::new();
        if c.failed_login.enabled {
            d.push(Box::new(FailedLogin::new(&c.failed_login)?));
        }
        if c.slow_brute_force.enabled {
            d.push(Box::new(SlowBruteForce::new(&c.slow_brute_force)?));
        }
        if c.stuffing_spread.enabled {
            d.push(Box::new(StuffingSpread::new(&c.stuffing_spread)?));
        }
        if c.token_use.enabled {
            d.push(Box::new(TokenUse::new(&c.token_use)?));
        }
        if c.object_walk.enabled {
            d.push(Box::new(ObjectWalk::new(&c.object_walk)?));
        }
        if c.scraping.enabled {
            d.push(Box::new(Scraping::new(&c.scraping)?));
        }
        if c.exfiltration.enabled {
            d.push(Box::new(Exfiltration::new(&c.exfiltration)?));
        }
        if c.client_spike.enabled {
            d.push(Box::new(ClientSpike::new(&c.client_spike)?));
        }
        if c.probing.enabled {
            d.push(Box::new(Probing::new(&c.probing)?));
        }
        if c.decoy.enabled {
            d.push(Box::new(Decoy));
        }
        if c.multivariate.enabled {
            d.push(Box::new(Multivariate::new(&c.multivariate)?));
        }
        if c.flow.enabled {
            d.push(Box::new(Flow::new(&c.flow)?));
        }
        Ok(Self::new(d))
    }

    /// Exactly these detectors, in this order (for tests and replay tools).
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        Self { detectors }
    }

    /// The names of the detectors that run.
    pub fn names(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.name()).collect()
    }

    /// Runs every detector on `event`. Watch's own output is skipped: its `Alert` events, and the refusals of
    /// callers watch blocked (see [`is_watch_output`]); feeding them back in would let an alert or a block raise
    /// more alerts about itself.
    pub fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        if is_watch_output(event) {
            return Vec::new();
        }
        let mut drafts = Vec::new();
        for d in &mut self.detectors {
            drafts.append(&mut d.observe(event));
        }
        drafts
    }

    /// Memory of each detector, by name.
    pub fn memory(&self) -> Vec<(&'static str, Memory)> {
        self.detectors.iter().map(|d| (d.name(), d.memory())).collect()
    }
}

/// Whether `event` is watch's own doing and so must not be detected on: an `Alert` event, or a call the gate
/// refused because watch blocked its caller (reason [`crate::actor::WATCH_BLOCK_REASON`]).
pub fn is_watch_output(event: &Event) -> bool {
    matches!(event.kind, EventKind::Alert(_)) || caused_by_watch(event)
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
                first_seen: None,
                feature: crate::Feature { name: "n".into(), ..Default::default() },
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
    fn blocked_callers_refusals_are_not_fed_into_detectors() {
        let mut d = Detectors::new(vec![Box::new(EveryEvent)]);
        let mut blocked = crate::testing::call(0, crate::testing::anonymous("203.0.113.1"), "GET", "/x", 403);
        crate::testing::with_call(&mut blocked, |c| c.reason = Some("blocked".into()));
        assert!(is_watch_output(&blocked));
        assert!(d.observe(&blocked).is_empty());
        let mut limited = blocked.clone();
        crate::testing::with_call(&mut limited, |c| c.reason = Some("rate-limited".into()));
        assert_eq!(d.observe(&limited).len(), 1);
    }

    #[test]
    fn config_defaults_parse_and_unknown_keys_are_refused() {
        let c: DetectorsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DetectorsConfig::default());
        let all = [
            "failed_login",
            "slow_brute_force",
            "stuffing_spread",
            "token_use",
            "object_walk",
            "scraping",
            "exfiltration",
            "client_spike",
            "probing",
            "decoy",
            "multivariate",
            "flow",
        ];
        assert_eq!(Detectors::from_config(&c).unwrap().names(), all);
        let off: DetectorsConfig = serde_json::from_str(r#"{"failed_login":{"enabled":false}}"#).unwrap();
        assert_eq!(Detectors::from_config(&off).unwrap().names(), all[1..]);
        let none = all.iter().map(|n| format!(r#""{n}":{{"enabled":false}}"#)).collect::<Vec<_>>().join(",");
        let none: DetectorsConfig = serde_json::from_str(&format!("{{{none}}}")).unwrap();
        assert!(Detectors::from_config(&none).unwrap().names().is_empty());
        for table in &all[1..] {
            let typo = serde_json::from_str::<DetectorsConfig>(&format!(r#"{{"{table}":{{"enabeld":false}}}}"#));
            assert!(typo.unwrap_err().to_string().contains("enabeld"), "{table}");
        }
        let bad: DetectorsConfig = serde_json::from_str(r#"{"scraping":{"list_coverage":1.5}}"#).unwrap();
        assert_eq!(Detectors::from_config(&bad).unwrap_err().key, "watch.detectors.scraping.list_coverage");
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
