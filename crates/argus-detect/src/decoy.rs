//! Decoy hits: a call to an `x-argus-decoy` operation, which no legitimate client knows, is an attacker exploring
//! the API. High severity at the first call, on the caller (user, client or IP) and on its IP.

use argus_model::Event;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, bounded};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "decoy";

/// `[watch.detectors.decoy]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoyConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
}

impl Default for DecoyConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl DecoyConfig {
    /// Nothing to check; here for symmetry with the other detectors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Stateless: every decoy call is a draft (the alert store merges repeats per key).
#[derive(Clone, Debug, Default)]
pub struct Decoy;

impl Detector for Decoy {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event).filter(|c| c.decoy) else {
            return Vec::new();
        };
        let Some(actor) = Actor::of(&event.principal) else {
            return Vec::new();
        };
        let operation = call.operation_id.as_deref().or(call.path_template.as_deref()).unwrap_or(&call.path);
        let from = event.principal.ip.as_deref().map(|ip| format!(" from {}", bounded(ip))).unwrap_or_default();
        let explanation = format!(
            "{} {} {:?}{from}: the decoy operation {:?}, which no legitimate client calls",
            actor.key_type,
            actor.key,
            format!("{} {}", call.method, bounded(&call.path)),
            bounded(operation)
        );
        let draft = |key_type: KeyType, key: &str| AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::DecoyHit,
            key_type,
            key: key.to_owned(),
            severity: Severity::High,
            time: event.time,
            first_seen: None,
            feature: Feature {
                name: "decoy_calls".to_owned(),
                observed: 1.0,
                threshold: 1.0,
                leak: "none".to_owned(),
                explanation: explanation.clone(),
                ..Feature::default()
            },
            evidence: vec![event.id.clone()],
        };
        let mut drafts = vec![draft(actor.key_type, actor.key)];
        if let Some(ip) = event.principal.ip.as_deref().filter(|_| actor.key_type != KeyType::Ip) {
            drafts.push(draft(KeyType::Ip, bounded(ip)));
        }
        drafts
    }

    fn memory(&self) -> Memory {
        Memory::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{call, user};

    #[test]
    fn a_decoy_call_is_high_on_the_user_and_the_ip_at_once() {
        let mut d = Decoy;
        let mut e = call(0, user("u1", "198.51.100.4"), "GET", "/admin/export", 404);
        crate::testing::with_call(&mut e, |c| {
            c.decoy = true;
            c.operation_id = Some("exportAll".into());
        });
        let drafts = d.observe(&e);
        assert_eq!(drafts.len(), 2);
        assert_eq!(drafts[0].alert_key(), (Attack::DecoyHit, KeyType::User, "u1"));
        assert_eq!(drafts[1].alert_key(), (Attack::DecoyHit, KeyType::Ip, "198.51.100.4"));
        assert!(drafts.iter().all(|x| x.severity == Severity::High && x.evidence == [e.id.clone()]));
        assert_eq!(
            drafts[0].feature.explanation,
            "user u1 \"GET /admin/export\" from 198.51.100.4: the decoy operation \"exportAll\", which no legitimate \
             client calls"
        );
    }

    #[test]
    fn ordinary_calls_and_anonymous_decoy_calls_from_an_ip_only() {
        let mut d = Decoy;
        assert!(d.observe(&call(0, user("u1", "198.51.100.4"), "GET", "/accounts", 200)).is_empty());
        let mut anon = call(0, crate::testing::anonymous("203.0.113.9"), "GET", "/.git/config", 404);
        crate::testing::with_call(&mut anon, |c| c.decoy = true);
        let drafts = d.observe(&anon);
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].alert_key(), (Attack::DecoyHit, KeyType::Ip, "203.0.113.9"));
    }
}
