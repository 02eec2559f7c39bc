//! Alerts: what detectors draft, and how a stored alert absorbs repeats.
//!
//! A detector returns an [`AlertDraft`] each time its feature is over the line. The store keeps at most one open
//! alert per (attack, key type, key): a draft for a key that already has one is merged into it ([`Alert::absorb`])
//! instead of opening another, so an attack that goes on for an hour is one alert that grows, not thousands.

use std::fmt;
use std::str::FromStr;

use argus_model::{AlertRaised, Timestamp};
use serde::{Deserialize, Serialize};

use crate::bucket::EVIDENCE_MAX;

/// The attack an alert names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// Many passwords tried against one account, or from one IP against one or a few accounts.
    BruteForce,
    /// Leaked username/password pairs tried from one IP across many accounts.
    CredentialStuffing,
    /// Not an attack seen but one that may have been missed: events were lost before watch could audit them or
    /// run the detectors (watch fell behind the event bus). The audit log has a hole here.
    AuditGap,
    /// A token, session or refresh family used by someone other than its owner: from a second user agent, from a
    /// network its user never used, from two places at once, or a rotated refresh token presented again.
    StolenToken,
    /// Object ids walked through: many distinct ids of one operation, or ids in sequence.
    Enumeration,
    /// Broken object-level authorization probed: a walk over object ids that are mostly refused (403/404).
    Bola,
    /// Sustained reading of many distinct paths or of most list endpoints: a crawler or scraper.
    Scraping,
    /// Far more records or bytes returned than the principal's own baseline and its peers'.
    Exfiltration,
    /// A client (app) whose call rate or error ratio jumped far above its baseline.
    ClientAnomaly,
    /// Many calls refused as malformed (invalid input, unknown paths or methods): probing or fuzzing.
    Probing,
    /// A decoy operation was called: no legitimate client knows it.
    DecoyHit,
    /// An actor's window of activity is an outlier to the multivariate model of everyone's windows.
    Anomaly,
    /// A sequence of calls that normal users almost never follow (rare endpoint transitions).
    UnusualFlow,
}

/// The kind of key an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// A client IP address.
    Ip,
    /// An account, by the user name as typed (trimmed, lower-cased).
    Account,
    /// A part of Argus, by node name (`watch`, `issuer`, ...): for alerts about Argus itself or about everything a
    /// part serves (e.g. credential stuffing spread over many IPs, seen only in the login form's totals).
    Node,
    /// A verified end user, by `sub`.
    User,
    /// An OAuth client (app), by `client_id`.
    Client,
    /// A sign-in session at the issuer, by `sid`.
    Session,
    /// One access token, by `jti`.
    Token,
    /// A refresh-token family.
    Family,
}

/// How urgent an alert is. Ordered: `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// An attack is likely: a threshold was crossed.
    Medium,
    /// An attack is under way: the threshold was far exceeded.
    High,
    /// Damage is likely done or imminent.
    Critical,
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Still collecting repeats; new drafts for its key merge into it.
    Open,
    /// Handled by a person; a new draft for its key opens a new alert.
    Resolved,
}

/// Implements `as_str`, `Display` and `FromStr` with the same snake_case names serde uses, so that the database
/// columns, the HTTP filters and the JSON all spell a value the same way.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name used in JSON, the database and the API filters.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(UnknownName { kind: stringify!($ty), value: s.chars().take(64).collect() }),
                }
            }
        }
    };
}

names!(Attack {
    BruteForce => "brute_force",
    CredentialStuffing => "credential_stuffing",
    AuditGap => "audit_gap",
    StolenToken => "stolen_token",
    Enumeration => "enumeration",
    Bola => "bola",
    Scraping => "scraping",
    Exfiltration => "exfiltration",
    ClientAnomaly => "client_anomaly",
    Probing => "probing",
    DecoyHit => "decoy_hit",
    Anomaly => "anomaly",
    UnusualFlow => "unusual_flow",
});
names!(KeyType {
    Ip => "ip",
    Account => "account",
    Node => "node",
    User => "user",
    Client => "client",
    Session => "session",
    Token => "token",
    Family => "family",
});
names!(Severity { Low => "low", Medium => "medium", High => "high", Critical => "critical" });
names!(AlertStatus { Open => "open", Resolved => "resolved" });

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    kind: &'static str,
    value: String,
}

/// The feature that fired, in terms a person can check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// What was measured, e.g. `failed_logins_per_ip`.
    pub name: String,
    /// The measured value when the alert last fired (a bucket level, a count in a window, a score).
    pub observed: f64,
    /// The value it crossed: configured, or derived from the baseline.
    pub threshold: f64,
    /// How fast the measure drains, e.g. `10/min`, or the window it is counted over, e.g. `window 10 min`.
    pub leak: String,
    /// What is normal for this measure, when the detector learns it (the key's own or its peers' mean, a median).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// How far the observed value is from the baseline, in the unit the explanation names (standard deviations,
    /// a ratio, bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<f64>,
    /// One sentence, e.g. "23 failed sign-ins from 203.0.113.7 on 1 account within ~2 min (threshold 20, leaks
    /// 10/min)".
    pub explanation: String,
}

/// What a detector hands the store: an alert to open, or to merge into the open one for the same key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertDraft {
    /// The detector, e.g. `failed_login`.
    pub detector: String,
    /// The attack the detector recognised.
    pub attack: Attack,
    /// What `key` is.
    pub key_type: KeyType,
    /// The IP or account the alert is about.
    pub key: String,
    /// How urgent, judged by the detector from this one observation.
    pub severity: Severity,
    /// The time of the event that made the detector fire.
    pub time: Timestamp,
    /// When the activity behind the draft began (the burst, the window, the first use), if earlier than `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// The feature that fired, with its explanation.
    pub feature: Feature,
    /// Ids of the events behind it, oldest first, at most [`EVIDENCE_MAX`].
    pub evidence: Vec<String>,
}

impl AlertDraft {
    /// The key open alerts are unique on: a draft with the same key merges into the open alert.
    pub fn alert_key(&self) -> (Attack, KeyType, &str) {
        (self.attack, self.key_type, &self.key)
    }

    /// When the activity behind the draft began: `first_seen`, never later than `time`.
    pub fn started(&self) -> Timestamp {
        self.first_seen.map_or(self.time, |t| t.min(self.time))
    }
}

/// An alert as stored and served by the watch API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, time-ordered (UUIDv7).
    pub id: String,
    /// The detector that fired, e.g. `failed_login`.
    pub detector: String,
    /// The attack it names.
    pub attack: Attack,
    /// What `key` is.
    pub key_type: KeyType,
    /// The IP or account the alert is about.
    pub key: String,
    /// The highest severity of any draft merged so far.
    pub severity: Severity,
    /// Open alerts absorb repeats; resolved ones do not.
    pub status: AlertStatus,
    /// The event time of the first draft.
    pub first_seen: Timestamp,
    /// The event time of the latest draft.
    pub last_seen: Timestamp,
    /// How many drafts were merged into this alert (the first included).
    pub count: u64,
    /// The feature as of the latest draft.
    pub feature: Feature,
    /// Ids of the most recent evidence events, oldest first, at most [`EVIDENCE_MAX`].
    pub evidence: Vec<String>,
}

impl Alert {
    /// A new open alert from its first draft.
    pub fn open(id: String, draft: AlertDraft) -> Self {
        let first_seen = draft.started();
        let mut evidence = Vec::new();
        merge_evidence(&mut evidence, draft.evidence);
        Self {
            id,
            detector: draft.detector,
            attack: draft.attack,
            key_type: draft.key_type,
            key: draft.key,
            severity: draft.severity,
            status: AlertStatus::Open,
            first_seen,
            last_seen: draft.time,
            count: 1,
            feature: draft.feature,
            evidence,
        }
    }

    /// Merges a repeat for the same key into this alert: the latest feature and evidence win, the count grows and
    /// the severity only ever goes up. Returns the previous severity if it went up.
    pub fn absorb(&mut self, draft: AlertDraft) -> Option<Severity> {
        self.first_seen = self.first_seen.min(draft.started());
        self.last_seen = self.last_seen.max(draft.time);
        self.count = self.count.saturating_add(1);
        self.feature = draft.feature;
        merge_evidence(&mut self.evidence, draft.evidence);
        let before = self.severity;
        self.severity = before.max(draft.severity);
        (self.severity > before).then_some(before)
    }

    /// The alert as it travels the bus.
    pub fn raised(&self) -> AlertRaised {
        AlertRaised {
            alert_id: self.id.clone(),
            detector: self.detector.clone(),
            attack: self.attack.as_str().to_owned(),
            key_type: self.key_type.as_str().to_owned(),
            key: self.key.clone(),
            severity: self.severity.as_str().to_owned(),
            summary: self.feature.explanation.clone(),
        }
    }
}

/// Appends the ids not already present, keeping the most recent [`EVIDENCE_MAX`].
fn merge_evidence(kept: &mut Vec<String>, new: Vec<String>) {
    for id in new {
        if !kept.contains(&id) {
            kept.push(id);
        }
    }
    let excess = kept.len().saturating_sub(EVIDENCE_MAX);
    kept.drain(..excess);
}

/// What recording a draft did to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertChange {
    /// No open alert for the key: this one was opened.
    Opened(Alert),
    /// Merged into the open alert, whose severity went up from `from`.
    Escalated {
        /// The alert after the merge.
        alert: Alert,
        /// Its severity before the merge.
        from: Severity,
    },
    /// Merged into the open alert, same severity.
    Updated(Alert),
}

impl AlertChange {
    /// Records `draft` against `open`, the open alert for the draft's key if there is one: opens an alert with the
    /// id `new_id` gives, or merges the draft into the open one ([`Alert::absorb`]). `open` holds the alert after
    /// the change, so a store can apply several drafts in order and write each alert once.
    pub fn apply(open: &mut Option<Alert>, draft: AlertDraft, new_id: impl FnOnce() -> String) -> Self {
        match open {
            None => {
                let alert = Alert::open(new_id(), draft);
                *open = Some(alert.clone());
                Self::Opened(alert)
            }
            Some(alert) => match alert.absorb(draft) {
                Some(from) => Self::Escalated { alert: alert.clone(), from },
                None => Self::Updated(alert.clone()),
            },
        }
    }

    /// The alert after the change.
    pub fn alert(&self) -> &Alert {
        match self {
            Self::Opened(a) | Self::Updated(a) | Self::Escalated { alert: a, .. } => a,
        }
    }

    /// Whether this change is news for the bus (a new or escalated alert). Plain repeats are not announced, so an
    /// ongoing attack does not flood the bus.
    pub fn is_news(&self) -> bool {
        !matches!(self, Self::Updated(_))
    }
}

/// The default number of alerts a listing returns.
pub const DEFAULT_ALERT_LIMIT: u32 = 100;
/// The most alerts one listing may return.
pub const MAX_ALERT_LIMIT: u32 = 1000;

/// Which alerts to list, newest (by `last_seen`) first.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertFilter {
    /// Only this attack.
    pub attack: Option<Attack>,
    /// Only this kind of key.
    pub key_type: Option<KeyType>,
    /// Only this exact key.
    pub key: Option<String>,
    /// Only alerts in this status.
    pub status: Option<AlertStatus>,
    /// At most this many, 1 to [`MAX_ALERT_LIMIT`].
    pub limit: u32,
    /// Only alerts after this one in the listing order: the next page.
    pub before: Option<AlertCursor>,
}

impl Default for AlertFilter {
    fn default() -> Self {
        Self { attack: None, key_type: None, key: None, status: None, limit: DEFAULT_ALERT_LIMIT, before: None }
    }
}

/// Where the next page of an alert listing starts: after the alert last seen at `last_seen` with `id` (the
/// listing is ordered by both, newest first). Keyset paging: an alert that is seen again while someone pages moves
/// to the front, and that walk does not list it again. Its text form is `<last_seen ms>.<id>`, which needs no
/// escaping in a URL or a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertCursor {
    pub last_seen: Timestamp,
    pub id: String,
}

impl AlertCursor {
    /// The cursor of the page that follows `alert`.
    pub fn after(alert: &Alert) -> Self {
        Self { last_seen: alert.last_seen, id: alert.id.clone() }
    }
}

impl fmt::Display for AlertCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.last_seen.as_millis(), self.id)
    }
}

/// A text that is not an alert cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an alert cursor")]
pub struct BadCursor;

impl FromStr for AlertCursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, BadCursor> {
        let (ms, id) = s.split_once('.').ok_or(BadCursor)?;
        let digits = !ms.is_empty() && ms.len() <= 18 && ms.bytes().all(|b| b.is_ascii_digit());
        let id_ok =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !digits || !id_ok {
            return Err(BadCursor);
        }
        let ms = ms.parse::<i64>().map_err(|_| BadCursor)?;
        Ok(Self { last_seen: Timestamp::from_millis(ms), id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_cursors_round_trip_and_refuse_anything_else() {
        let c = AlertCursor { last_seen: Timestamp::from_millis(1_764_000_000_123), id: "019a-7f_x".into() };
        assert_eq!(c.to_string(), "1764000000123.019a-7f_x");
        assert_eq!(c.to_string().parse::<AlertCursor>(), Ok(c));
        for bad in ["", ".", "12.", ".id", "-5.id", "1e3.id", "12.a b", "12.a%20b", "12.a.b", "99999999999999999999.x"]
        {
            assert_eq!(bad.parse::<AlertCursor>(), Err(BadCursor), "{bad:?}");
        }
    }

    fn draft(secs: i64, severity: Severity, evidence: &[&str]) -> AlertDraft {
        AlertDraft {
            detector: "failed_login".into(),
            attack: Attack::BruteForce,
            key_type: KeyType::Ip,
            key: "203.0.113.7".into(),
            severity,
            time: Timestamp::from_secs(secs),
            first_seen: None,
            feature: Feature {
                name: "failed_logins_per_ip".into(),
                observed: secs as f64,
                threshold: 20.0,
                leak: "10/min".into(),
                explanation: format!("at {secs}"),
                ..Feature::default()
            },
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn absorb_updates_and_escalates_only_upwards() {
        let mut a = Alert::open("a1".into(), draft(10, Severity::Medium, &["e1", "e2"]));
        assert_eq!(a.absorb(draft(20, Severity::Medium, &["e2", "e3"])), None);
        assert_eq!((a.count, a.last_seen, a.first_seen), (2, Timestamp::from_secs(20), Timestamp::from_secs(10)));
        assert_eq!(a.evidence, ["e1", "e2", "e3"]);
        assert_eq!(a.feature.explanation, "at 20");
        assert_eq!(a.absorb(draft(30, Severity::High, &[])), Some(Severity::Medium));
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.absorb(draft(40, Severity::Medium, &[])), None);
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.count, 4);
    }

    #[test]
    fn evidence_keeps_the_latest_twenty() {
        let ids: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut a = Alert::open("a1".into(), draft(1, Severity::Medium, &refs[..15]));
        a.absorb(draft(2, Severity::Medium, &refs[10..]));
        assert_eq!(a.evidence.len(), EVIDENCE_MAX);
        assert_eq!(a.evidence.first().map(String::as_str), Some("e10"));
        assert_eq!(a.evidence.last().map(String::as_str), Some("e29"));
    }

    #[test]
    fn apply_opens_then_merges_in_order() {
        let mut open = None;
        let opened = AlertChange::apply(&mut open, draft(10, Severity::Medium, &["e1"]), || "a1".into());
        assert!(matches!(&opened, AlertChange::Opened(a) if a.id == "a1" && a.count == 1));
        let updated = AlertChange::apply(&mut open, draft(20, Severity::Medium, &["e2"]), || unreachable!());
        assert!(matches!(&updated, AlertChange::Updated(a) if a.count == 2));
        let escalated = AlertChange::apply(&mut open, draft(30, Severity::High, &[]), || unreachable!());
        assert!(matches!(&escalated, AlertChange::Escalated { from: Severity::Medium, alert } if alert.count == 3));
        assert_eq!(open.as_ref(), Some(escalated.alert()));
        assert_eq!(opened.alert().count, 1, "each change keeps the alert as of that draft");
    }

    #[test]
    fn names_round_trip_like_serde() {
        for s in [Severity::Low, Severity::Medium, Severity::High, Severity::Critical] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert_eq!("credential_stuffing".parse::<Attack>().unwrap(), Attack::CredentialStuffing);
        assert!("Ip".parse::<KeyType>().is_err());
        assert_eq!((Attack::AuditGap.as_str(), KeyType::Node.as_str()), ("audit_gap", "node"));
        assert_eq!(serde_json::to_value(Attack::AuditGap).unwrap(), "audit_gap");
        assert!(Severity::Medium < Severity::High);
    }

    #[test]
    fn first_seen_of_a_draft_reaches_back_to_the_start_of_the_activity() {
        let mut a = Alert::open(
            "a1".into(),
            AlertDraft { first_seen: Some(Timestamp::from_secs(4)), ..draft(10, Severity::Low, &[]) },
        );
        assert_eq!((a.first_seen, a.last_seen), (Timestamp::from_secs(4), Timestamp::from_secs(10)));
        a.absorb(AlertDraft { first_seen: Some(Timestamp::from_secs(2)), ..draft(12, Severity::Low, &[]) });
        assert_eq!((a.first_seen, a.last_seen), (Timestamp::from_secs(2), Timestamp::from_secs(12)));
        // A first_seen after the draft's own time is nonsense and is ignored.
        let late = AlertDraft { first_seen: Some(Timestamp::from_secs(99)), ..draft(20, Severity::Low, &[]) };
        assert_eq!(late.started(), Timestamp::from_secs(20));
    }

    #[test]
    fn feature_baseline_and_deviation_are_optional_in_json() {
        let f = Feature { name: "n".into(), ..Feature::default() };
        let json = serde_json::to_value(&f).unwrap();
        assert!(json.get("baseline").is_none() && json.get("deviation").is_none());
        let old = r#"{"name":"n","observed":1.0,"threshold":2.0,"leak":"1/s","explanation":"e"}"#;
        assert_eq!(serde_json::from_str::<Feature>(old).unwrap().baseline, None);
        let g = Feature { baseline: Some(3.0), deviation: Some(4.5), ..f };
        assert_eq!(serde_json::from_value::<Feature>(serde_json::to_value(&g).unwrap()).unwrap(), g);
    }

    #[test]
    fn every_attack_and_key_type_name_round_trips() {
        use Attack::*;
        for a in [
            BruteForce,
            CredentialStuffing,
            AuditGap,
            StolenToken,
            Enumeration,
            Bola,
            Scraping,
            Exfiltration,
            ClientAnomaly,
            Probing,
            DecoyHit,
            Anomaly,
            UnusualFlow,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
            assert_eq!(a.as_str().parse::<Attack>().unwrap(), a);
        }
        for k in [
            KeyType::Ip,
            KeyType::Account,
            KeyType::Node,
            KeyType::User,
            KeyType::Client,
            KeyType::Session,
            KeyType::Token,
            KeyType::Family,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(k.as_str().parse::<KeyType>().unwrap(), k);
        }
    }

    #[test]
    fn raised_carries_the_explanation() {
        let a = Alert::open("a1".into(), draft(5, Severity::High, &["e1"]));
        let r = a.raised();
        assert_eq!((r.alert_id.as_str(), r.attack.as_str(), r.key_type.as_str()), ("a1", "brute_force", "ip"));
        assert_eq!((r.severity.as_str(), r.summary.as_str()), ("high", "at 5"));
    }
}
