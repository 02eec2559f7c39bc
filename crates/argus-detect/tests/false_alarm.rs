//! The false-alarm budget: a simulated week of ordinary traffic through every default detector raises at most one
//! alert per 10,000 events.

mod sim;

use std::collections::BTreeMap;

use argus_detect::forest::SplitMix64;
use argus_detect::{Alert, AlertChange, Detectors, DetectorsConfig};

/// Runs `events` through the default detectors and folds the drafts into alerts as the store does.
fn alerts(events: &[argus_model::Event]) -> BTreeMap<String, Alert> {
    let mut detectors = Detectors::from_config(&DetectorsConfig::default()).unwrap();
    let mut open: BTreeMap<String, Option<Alert>> = BTreeMap::new();
    for e in events {
        for draft in detectors.observe(e) {
            let (attack, key_type, key) = draft.alert_key();
            let slot = open.entry(format!("{attack}/{key_type}/{key}")).or_default();
            AlertChange::apply(slot, draft, || "a".into());
        }
    }
    open.into_iter().filter_map(|(k, a)| a.map(|a| (k, a))).collect()
}

#[test]
fn a_week_of_ordinary_traffic_raises_at_most_one_alert_per_10000_events() {
    let mut rng = SplitMix64::new(2026);
    let world = sim::World::new(&mut rng, 200);
    let events = sim::benign(&mut rng, &world, 7);
    assert!(events.len() > 60_000, "{} events", events.len());
    let alerts = alerts(&events);
    let report: Vec<String> =
        alerts.values().map(|a| format!("{} {}: {}", a.detector, a.severity, a.feature.explanation)).collect();
    println!("{} events, {} alerts\n{}", events.len(), alerts.len(), report.join("\n"));
    assert!(
        alerts.len() * 10_000 <= events.len(),
        "{} alerts for {} events:\n{}",
        alerts.len(),
        events.len(),
        report.join("\n")
    );
}
