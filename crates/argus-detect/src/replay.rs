//! Replay: recorded events through the same detectors as live, and a report of how they did.
//!
//! Each event may carry an evaluation label, a top-level `"label"` next to the event's own fields: `"benign"` or
//! the name of the attack it is part of (`"brute_force"`, `"decoy_hit"`, ... as in [`Attack`]). The report says,
//! per attack labelled, whether it was detected and after how many of its events, and how many false alerts the
//! benign events raised per 10,000 of them.
//!
//! Definitions. An *alert* is the first draft for an (attack, key type, key), as the store de-duplicates them. An
//! attack X is *detected* when a draft of attack X fires on an event labelled X; *events until detection* counts
//! the X-labelled events up to and including that one. A *false alert* is an alert raised on a benign event.
//! Unlabelled events run through the detectors but count for neither.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use argus_model::Event;
use serde::Serialize;

use crate::alert::{Attack, KeyType};
use crate::pipeline::Detectors;

/// The label of a recorded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Normal traffic: any alert it raises is a false alert.
    Benign,
    /// Part of this attack.
    Attack(Attack),
}

/// A line of a replay file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayLineError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("label {0:?} is neither \"benign\" nor an attack name (brute_force, decoy_hit, ...)")]
    UnknownLabel(String),
    #[error("not an Argus event: {0}")]
    Event(serde_json::Error),
    #[error("not JSON: {0}")]
    Json(serde_json::Error),
}

/// Parses one line of a replay file: an `Event` as JSON, with an optional top-level `"label"`.
pub fn parse_line(line: &str) -> Result<(Event, Option<Label>), ReplayLineError> {
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(ReplayLineError::Json)?;
    let object = value.as_object_mut().ok_or(ReplayLineError::NotAnObject)?;
    let label = match object.remove("label") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s == "benign" => Some(Label::Benign),
        Some(serde_json::Value::String(s)) => {
            Some(Label::Attack(s.parse().map_err(|_| ReplayLineError::UnknownLabel(s.clone()))?))
        }
        Some(other) => return Err(ReplayLineError::UnknownLabel(other.to_string())),
    };
    let event = serde_json::from_value(value).map_err(ReplayLineError::Event)?;
    Ok((event, label))
}

/// How the detectors did on one labelled attack.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttackReport {
    pub attack: Attack,
    /// Events labelled with it.
    pub events: u64,
    pub detected: bool,
    /// Its events up to and including the one its detection fired on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_until_detection: Option<u64>,
}

/// The outcome of a replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Events read.
    pub events: u64,
    pub benign_events: u64,
    pub unlabelled_events: u64,
    /// One per attack labelled in the file, by name.
    pub attacks: Vec<AttackReport>,
    /// Alerts raised (distinct attack, key type and key), by attack name.
    pub alerts: BTreeMap<&'static str, u64>,
    /// Alerts raised on benign events.
    pub false_alerts: u64,
    /// `false_alerts` per 10,000 benign events; `None` without benign events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_alerts_per_10k: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct AttackTally {
    events: u64,
    detected_after: Option<u64>,
}

/// A replay in progress: feed it events in order, then take the report.
#[derive(Debug)]
pub struct Replay {
    detectors: Detectors,
    /// Alerts raised so far: later drafts for them are repeats, as in the store.
    raised: HashSet<(Attack, KeyType, String)>,
    events: u64,
    benign: u64,
    unlabelled: u64,
    /// Per attack labelled, in the order first seen (at most one per [`Attack`]).
    attacks: Vec<(Attack, AttackTally)>,
    alerts: BTreeMap<&'static str, u64>,
    false_alerts: u64,
}

impl Replay {
    /// A replay through `detectors`, fresh (as a watch that just started).
    pub fn new(detectors: Detectors) -> Self {
        Self {
            detectors,
            raised: HashSet::new(),
            events: 0,
            benign: 0,
            unlabelled: 0,
            attacks: Vec::new(),
            alerts: BTreeMap::new(),
            false_alerts: 0,
        }
    }

    /// Runs `event` through the detectors and scores what they fire against `label`.
    pub fn observe(&mut self, event: &Event, label: Option<Label>) {
        self.events += 1;
        match label {
            None => self.unlabelled += 1,
            Some(Label::Benign) => self.benign += 1,
            Some(Label::Attack(a)) => self.tally(a).events += 1,
        }
        for draft in self.detectors.observe(event) {
            if label == Some(Label::Attack(draft.attack)) {
                let tally = self.tally(draft.attack);
                tally.detected_after.get_or_insert(tally.events);
            }
            let (attack, key_type, key) = draft.alert_key();
            if self.raised.insert((attack, key_type, key.to_owned())) {
                *self.alerts.entry(attack.as_str()).or_default() += 1;
                if label == Some(Label::Benign) {
                    self.false_alerts += 1;
                }
            }
        }
    }

    fn tally(&mut self, attack: Attack) -> &mut AttackTally {
        let at = match self.attacks.iter().position(|(a, _)| *a == attack) {
            Some(at) => at,
            None => {
                self.attacks.push((attack, AttackTally::default()));
                self.attacks.len() - 1
            }
        };
        &mut self.attacks[at].1
    }

    /// The report so far.
    pub fn report(&self) -> ReplayReport {
        let mut attacks: Vec<AttackReport> = self
            .attacks
            .iter()
            .map(|&(attack, t)| AttackReport {
                attack,
                events: t.events,
                detected: t.detected_after.is_some(),
                events_until_detection: t.detected_after,
            })
            .collect();
        attacks.sort_by_key(|a| a.attack.as_str());
        ReplayReport {
            events: self.events,
            benign_events: self.benign,
            unlabelled_events: self.unlabelled,
            attacks,
            alerts: self.alerts.clone(),
            false_alerts: self.false_alerts,
            false_alerts_per_10k: (self.benign > 0).then(|| self.false_alerts as f64 * 10_000.0 / self.benign as f64),
        }
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} events: {} benign, {} labelled attacks, {} unlabelled",
            self.events,
            self.benign_events,
            self.events - self.benign_events - self.unlabelled_events,
            self.unlabelled_events
        )?;
        if self.attacks.is_empty() {
            writeln!(f, "no attack is labelled")?;
        }
        for a in &self.attacks {
            match a.events_until_detection {
                Some(n) => writeln!(f, "  {:<20} detected after {n} of its {} events", a.attack.as_str(), a.events)?,
                None => writeln!(f, "  {:<20} NOT detected ({} events)", a.attack.as_str(), a.events)?,
            }
        }
        match self.false_alerts_per_10k {
            Some(rate) => writeln!(
                f,
                "false alerts: {} on {} benign events ({rate:.2} per 10,000)",
                self.false_alerts, self.benign_events
            )?,
            None => writeln!(f, "false alerts: no benign events labelled")?,
        }
        let alerts: Vec<String> = self.alerts.iter().map(|(a, n)| format!("{a} {n}")).collect();
        writeln!(f, "alerts raised: {}", if alerts.is_empty() { "none".to_owned() } else { alerts.join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{anonymous, call, login, user};
    use crate::{DetectorsConfig, alert::Attack};

    fn replay() -> Replay {
        Replay::new(Detectors::from_config(&DetectorsConfig::default()).unwrap())
    }

    #[test]
    fn labels_are_taken_out_before_the_event_is_parsed() {
        let event = login(0, "203.0.113.7", "alice", false);
        let mut json = serde_json::to_value(&event).unwrap();
        json["label"] = "brute_force".into();
        let (parsed, label) = parse_line(&json.to_string()).unwrap();
        assert_eq!((parsed, label), (event.clone(), Some(Label::Attack(Attack::BruteForce))));
        json["label"] = "benign".into();
        assert_eq!(parse_line(&json.to_string()).unwrap().1, Some(Label::Benign));
        json.as_object_mut().unwrap().remove("label");
        assert_eq!(parse_line(&json.to_string()).unwrap().1, None);
        json["label"] = "bruteforce".into();
        assert!(matches!(parse_line(&json.to_string()), Err(ReplayLineError::UnknownLabel(l)) if l == "bruteforce"));
        assert!(matches!(parse_line("[1]"), Err(ReplayLineError::NotAnObject)));
        assert!(matches!(parse_line(r#"{"label":"benign"}"#), Err(ReplayLineError::Event(_))));
        assert!(matches!(parse_line("{"), Err(ReplayLineError::Json(_))));
    }

    #[test]
    fn a_brute_force_is_detected_and_benign_traffic_raises_nothing() {
        let mut r = replay();
        // Benign: a handful of users signing in and reading, a minute apart.
        for i in 0..50 {
            let ip = format!("198.51.100.{}", i % 10);
            r.observe(&login(i * 60_000, &ip, &format!("user{}", i % 10), true), Some(Label::Benign));
            let who = user(&format!("u{}", i % 10), &ip);
            r.observe(&call(i * 60_000 + 1_000, who, "GET", "/accounts", 200), Some(Label::Benign));
        }
        // Then one address guesses one password 40 times in 4 s.
        for i in 0..40 {
            r.observe(
                &login(3_600_000 + i * 100, "203.0.113.7", "alice", false),
                Some(Label::Attack(Attack::BruteForce)),
            );
        }
        let report = r.report();
        assert_eq!((report.events, report.benign_events, report.unlabelled_events), (140, 100, 0));
        let brute = &report.attacks[0];
        assert_eq!((brute.attack, brute.events, brute.detected), (Attack::BruteForce, 40, true));
        let n = brute.events_until_detection.unwrap();
        assert!((1..=40).contains(&n), "{n}");
        assert_eq!((report.false_alerts, report.false_alerts_per_10k), (0, Some(0.0)));
        assert!(report.alerts.get("brute_force").is_some_and(|n| *n >= 1));
        let text = report.to_string();
        assert!(text.contains(&format!("brute_force          detected after {n} of its 40 events")), "{text}");
        assert!(text.contains("false alerts: 0 on 100 benign events (0.00 per 10,000)"), "{text}");
    }

    #[test]
    fn undetected_attacks_and_false_alerts_are_reported() {
        let mut r = replay();
        // "Benign" traffic that is in fact a decoy hit: a false alert by the labels.
        let mut decoy = call(0, anonymous("192.0.2.1"), "GET", "/admin/export", 200);
        crate::testing::with_call(&mut decoy, |c| c.decoy = true);
        r.observe(&decoy, Some(Label::Benign));
        // One failed sign-in labelled brute force: far too little to detect.
        r.observe(&login(1_000, "203.0.113.9", "bob", false), Some(Label::Attack(Attack::BruteForce)));
        r.observe(&login(2_000, "203.0.113.9", "bob", true), None);
        let report = r.report();
        assert_eq!(report.false_alerts, 1);
        assert_eq!(report.false_alerts_per_10k, Some(10_000.0));
        assert_eq!(report.attacks[0].events_until_detection, None);
        assert!(report.to_string().contains("brute_force          NOT detected (1 events)"));
        assert_eq!(report.unlabelled_events, 1);
    }
}
