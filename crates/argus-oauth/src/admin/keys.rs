//! The signing-key schedule: when a key added by `argus keys rotate` starts signing, and when an old key leaves the
//! JWKS.
//!
//! A new key is published in the JWKS at once but signs only after `publish_lead`, so every verifier that caches
//! the JWKS for at most that long has it before the first token it signed arrives (the gate also refetches on an
//! unknown `kid`; other resource servers may not). A key stops signing when its successor starts, and stays
//! published until the last token it signed has expired: `longest_token_ttl` plus the verifiers' clock leeway.

use std::time::Duration;

use argus_jose::LEEWAY_SECS;
use argus_model::Timestamp;
use serde::Serialize;

use crate::store::StoredSigningKey;

/// The timings of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTiming {
    /// How long a new key is published before it signs.
    pub publish_lead: Duration,
    /// The longest lifetime of a token the issuer signs (access tokens, id_tokens, per-client overrides included).
    pub longest_token_ttl: Duration,
}

/// Where a key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// Published; signs from `signs_from` on.
    Pending { signs_from: Timestamp },
    /// Published and signing.
    Active,
    /// Published for verification only, until every token it signed has expired.
    Retiring { until: Timestamp },
    /// No longer published: every token it signed has expired.
    Retired,
}

impl KeyState {
    /// Whether the key belongs in the JWKS.
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Retired)
    }
}

/// One stored key and its state at the time the schedule was computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduledKey {
    pub kid: String,
    pub alg: String,
    /// When it was added (and published).
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub state: KeyState,
}

/// The state of every stored key at `now`, oldest first.
///
/// The active key is the newest one whose lead has passed; when none has (the very first key), the oldest signs,
/// since no token signed by another key can exist yet. Keys after it wait for their lead; keys before it retire
/// once their successor has been signing for longer than any token lives.
pub fn key_schedule(keys: &[StoredSigningKey], now: Timestamp, timing: KeyTiming) -> Vec<ScheduledKey> {
    let mut sorted: Vec<&StoredSigningKey> = keys.iter().collect();
    sorted.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    let signs_from = |k: &StoredSigningKey| k.created_at.plus(timing.publish_lead);
    let active = sorted.iter().rposition(|k| signs_from(k) <= now).unwrap_or(0);
    let verify_for = timing.longest_token_ttl.plus_leeway();
    sorted
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let state = match i.cmp(&active) {
                std::cmp::Ordering::Equal => KeyState::Active,
                std::cmp::Ordering::Greater => KeyState::Pending { signs_from: signs_from(k) },
                std::cmp::Ordering::Less => {
                    // Its successor is older than the active key, so it has started signing: this key stopped then.
                    let stopped = signs_from(sorted[i + 1]);
                    let until = stopped.plus(verify_for);
                    if now >= until { KeyState::Retired } else { KeyState::Retiring { until } }
                }
            };
            ScheduledKey { kid: k.kid.clone(), alg: k.alg.clone(), created_at: k.created_at, state }
        })
        .collect()
}

/// The next instant at which the schedule changes by itself (a pending key starts signing, a retiring key leaves
/// the JWKS), if any.
pub fn next_key_change(schedule: &[ScheduledKey]) -> Option<Timestamp> {
    schedule
        .iter()
        .filter_map(|k| match k.state {
            KeyState::Pending { signs_from } => Some(signs_from),
            KeyState::Retiring { until } => Some(until),
            KeyState::Active | KeyState::Retired => None,
        })
        .min()
}

/// A token lifetime with the verifiers' clock leeway added: how long after signing a token can still be accepted.
trait PlusLeeway {
    fn plus_leeway(self) -> Duration;
}

impl PlusLeeway for Duration {
    fn plus_leeway(self) -> Duration {
        self.saturating_add(Duration::from_secs(LEEWAY_SECS.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: KeyTiming =
        KeyTiming { publish_lead: Duration::from_secs(300), longest_token_ttl: Duration::from_secs(600) };

    fn key(kid: &str, created: i64) -> StoredSigningKey {
        StoredSigningKey {
            kid: kid.into(),
            alg: "ES256".into(),
            pkcs8_der: Vec::new(),
            created_at: Timestamp::from_secs(created),
        }
    }

    fn states(keys: &[StoredSigningKey], now: i64) -> Vec<(String, KeyState)> {
        key_schedule(keys, Timestamp::from_secs(now), TIMING).into_iter().map(|k| (k.kid, k.state)).collect()
    }

    #[test]
    fn the_first_key_signs_at_once() {
        assert_eq!(states(&[key("a", 1000)], 1000), [("a".into(), KeyState::Active)]);
    }

    #[test]
    fn a_rotation_publishes_first_then_signs_then_retires_the_old_key() {
        let keys = [key("b", 2000), key("a", 1000)]; // any order in
        let ts = Timestamp::from_secs;
        // Rotated at 2000: b is published, a still signs.
        assert_eq!(
            states(&keys, 2000),
            [("a".into(), KeyState::Active), ("b".into(), KeyState::Pending { signs_from: ts(2300) })]
        );
        // After the lead b signs; a verifies until b has signed for longer than any token lives (+ leeway).
        let until = ts(2300 + 600 + LEEWAY_SECS);
        assert_eq!(states(&keys, 2300), [("a".into(), KeyState::Retiring { until }), ("b".into(), KeyState::Active)]);
        assert_eq!(states(&keys, until.as_secs()), [("a".into(), KeyState::Retired), ("b".into(), KeyState::Active)]);
        let schedule = key_schedule(&keys, ts(2000), TIMING);
        assert_eq!(next_key_change(&schedule), Some(ts(2300)));
        assert_eq!(next_key_change(&key_schedule(&keys, ts(2300), TIMING)), Some(until));
        assert_eq!(next_key_change(&key_schedule(&keys, until, TIMING)), None);
        assert!(!KeyState::Retired.is_published() && KeyState::Active.is_published());
    }

    #[test]
    fn two_rotations_within_the_lead_skip_the_middle_key() {
        let keys = [key("a", 0), key("b", 1000), key("c", 1100)];
        let s = states(&keys, 1350);
        assert_eq!(s[0].1, KeyState::Retiring { until: Timestamp::from_secs(1300 + 600 + LEEWAY_SECS) });
        assert_eq!(s[1].1, KeyState::Active);
        assert_eq!(s[2].1, KeyState::Pending { signs_from: Timestamp::from_secs(1400) });
        let s = states(&keys, 1400);
        assert_eq!(s[1].1, KeyState::Retiring { until: Timestamp::from_secs(1400 + 600 + LEEWAY_SECS) });
        assert_eq!(s[2].1, KeyState::Active);
    }

    #[test]
    fn json_shape() {
        let s = key_schedule(&[key("a", 0), key("b", 10)], Timestamp::from_secs(20), TIMING);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json[0]["state"], "active");
        assert_eq!(json[1]["state"], "pending");
        assert_eq!(json[1]["signs_from"], "1970-01-01T00:05:10Z");
        assert!(json[0].get("pkcs8_der").is_none());
    }
}
