//! The audit-gap alert: events were lost before watch could audit them or run the detectors on them.
//!
//! Not a detector over events (the lost events are gone) but the draft watch files when its source reports a
//! loss, so that an operator learns about the hole in the audit log and in detection from the alert list, where
//! every attack is reported, and not only from a log line.

use argus_model::Timestamp;

use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};

/// The detector name of audit-gap alerts.
pub const DETECTOR: &str = "event_loss";

/// One loss, as the consumer that suffered it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventLoss<'a> {
    /// The consumer that lost the events (the alert's key), e.g. `watch`.
    pub node: &'a str,
    /// Events lost this time.
    pub lost: u64,
    /// Events lost since the consumer started, this time included.
    pub lost_total: u64,
    /// When the loss was noticed.
    pub time: Timestamp,
    /// The last event received before the loss: where the hole is in the audit log.
    pub last_before: Option<&'a str>,
}

impl EventLoss<'_> {
    /// The alert draft: attack `audit_gap`, key type `node`, severity high. Repeats merge into one open alert per
    /// node, whose count is the number of gaps.
    pub fn draft(&self) -> AlertDraft {
        let explanation = format!(
            "{} fell behind the event bus and lost {} events, neither audited nor seen by the detectors \
             ({} lost since start)",
            self.node, self.lost, self.lost_total
        );
        AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::AuditGap,
            key_type: KeyType::Node,
            key: self.node.to_owned(),
            severity: Severity::High,
            time: self.time,
            first_seen: None,
            feature: Feature {
                name: "events_lost".to_owned(),
                observed: self.lost as f64,
                threshold: 0.0,
                leak: "none".to_owned(),
                explanation,
                ..Feature::default()
            },
            evidence: self.last_before.map(str::to_owned).into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_is_a_high_audit_gap_alert_on_the_node() {
        let loss = EventLoss {
            node: "watch",
            lost: 120,
            lost_total: 300,
            time: Timestamp::from_secs(7),
            last_before: Some("e1"),
        };
        let d = loss.draft();
        assert_eq!(d.alert_key(), (Attack::AuditGap, KeyType::Node, "watch"));
        assert_eq!(
            (d.severity, d.time, d.evidence.as_slice()),
            (Severity::High, Timestamp::from_secs(7), &["e1".to_owned()][..])
        );
        assert_eq!((d.feature.name.as_str(), d.feature.observed), ("events_lost", 120.0));
        assert_eq!(
            d.feature.explanation,
            "watch fell behind the event bus and lost 120 events, neither audited nor seen by the detectors \
             (300 lost since start)"
        );
        assert!(EventLoss { last_before: None, ..loss }.draft().evidence.is_empty());
    }
}
