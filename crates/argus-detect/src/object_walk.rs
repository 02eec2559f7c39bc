//! Object-id enumeration and BOLA walks: one caller going through the ids of one operation.
//!
//! A person reads their own handful of accounts or orders; an enumerator requests id after id. Per caller (user,
//! client or IP) and per operation, over a tumbling window: the distinct object ids requested, the longest run of
//! consecutive numeric ids, and how many calls were refused 403 or 404. It fires on
//!
//! - **BOLA** (broken object-level authorization probed): many ids, mostly refused: the caller asks for objects
//!   that are not theirs and is told so (by the gate's ownership rule or the API). High;
//! - **enumeration**: many distinct ids, or a long run of ids in sequence, whether or not they were served.
//!
//! A caller's operations are tracked up to four at a time (the least recently used is replaced): an enumerator
//! works one operation at a time, and four bounds the memory.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Event, Timestamp};
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, object, operation};
use crate::alert::{AlertDraft, Attack, Feature, Severity};
use crate::baseline::{human, round2, window_index};
use crate::distinct::{Distinct, hash64};
use crate::evidence::Recent;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "object_walk";

/// Operations tracked per caller.
const OPERATIONS: usize = 4;

/// `[watch.detectors.object_walk]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectWalkConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `600`.
    pub window_secs: NonZeroU64,
    /// Distinct ids of one operation in a window that make an enumeration. Default `100`.
    pub distinct_ids: NonZeroU32,
    /// Consecutive numeric ids (each one more or one less than the one before) that make an enumeration.
    /// Default `20`.
    pub sequential_run: NonZeroU32,
    /// Refused (403/404) calls on distinct ids in a window that make a BOLA walk... Default `10`.
    pub denied_min: NonZeroU32,
    /// ... when at least this share of the calls was refused. Default `0.5`.
    pub denied_ratio: f64,
    /// Callers tracked. Default `100000`.
    pub max_keys: NonZeroUsize,
}

impl Default for ObjectWalkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(600).unwrap_or(NonZeroU64::MIN),
            distinct_ids: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            sequential_run: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            denied_min: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            denied_ratio: 0.5,
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl ObjectWalkConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.denied_ratio > 0.0 && self.denied_ratio <= 1.0) {
            return Err(ConfigError::new("watch.detectors.object_walk.denied_ratio", "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// One caller's walk over one operation's ids in the current window.
#[derive(Debug)]
struct Walk {
    operation: u64,
    window: i64,
    since: Timestamp,
    last: Timestamp,
    ids: Distinct,
    calls: u32,
    denied: u32,
    run: u32,
    longest_run: u32,
    /// The direction of the current run: 1 up, -1 down, 0 none yet.
    run_direction: i8,
    /// The previous numeric id; `u64::MAX` for none.
    last_number: u64,
    evidence: Recent<6>,
}

impl Walk {
    fn new(operation: u64, window: i64, now: Timestamp) -> Self {
        Self {
            operation,
            window,
            since: now,
            last: now,
            ids: Distinct::default(),
            calls: 0,
            denied: 0,
            run: 0,
            longest_run: 0,
            run_direction: 0,
            last_number: u64::MAX,
            evidence: Recent::default(),
        }
    }

    fn restart(&mut self, window: i64, now: Timestamp) {
        let mut evidence = std::mem::take(&mut self.evidence);
        evidence.clear();
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        *self = Self { evidence, ids, ..Self::new(self.operation, window, now) };
    }

    /// Distinct ids: the sketch's estimate past 16, never more than the calls made.
    fn distinct(&self) -> u64 {
        self.ids.count().min(u64::from(self.calls))
    }

    /// A run is a walk in one direction: 7, 8, 9, ... or 9, 8, 7, .... Going back and forth between two
    /// neighbouring ids (a person switching between their accounts 1003 and 1004 all day) is no walk: turning
    /// round starts a new run, so it never grows past 2. A repeated id neither extends nor breaks the run.
    fn step_run(&mut self, n: u64) {
        let step = if self.last_number == u64::MAX {
            0
        } else if n == self.last_number.wrapping_add(1) {
            1
        } else if n.wrapping_add(1) == self.last_number {
            -1
        } else {
            0
        };
        if n == self.last_number {
            return;
        }
        if step != 0 && (step == self.run_direction || self.run == 1) {
            self.run += 1;
        } else {
            self.run = if step != 0 { 2 } else { 1 };
        }
        self.run_direction = step;
        self.longest_run = self.longest_run.max(self.run);
        self.last_number = n;
    }

    fn add(&mut self, id: u64, number: Option<u64>, denied: bool, now: Timestamp, event_id: &str) {
        self.calls = self.calls.saturating_add(1);
        self.denied += u32::from(denied);
        self.ids.insert_hash(id);
        self.last = self.last.max(now);
        if let Some(n) = number {
            self.step_run(n);
        }
        self.evidence.push(event_id);
    }
}

/// A caller's walks.
#[derive(Debug, Default)]
struct Walks(Vec<Walk>);

impl KeyState for Walks {
    fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Walk>()
            + self.0.iter().map(|w| w.ids.heap_bytes() + w.evidence.heap_bytes()).sum::<usize>()
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct ObjectWalk {
    config: ObjectWalkConfig,
    window: Duration,
    actors: Keyed<Walks>,
    key_buf: String,
}

impl ObjectWalk {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &ObjectWalkConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window = Duration::from_secs(config.window_secs.get());
        Ok(Self {
            config: config.clone(),
            window,
            actors: Keyed::new(config.max_keys.get(), window),
            key_buf: String::new(),
        })
    }

    fn verdict(&self, walk: &Walk) -> Option<(Attack, Severity, &'static str, f64, f64)> {
        let c = &self.config;
        let ids = walk.distinct() as f64;
        let denied_share = f64::from(walk.denied) / f64::from(walk.calls.max(1));
        let denied_min = f64::from(c.denied_min.get());
        if f64::from(walk.denied) >= denied_min && denied_share >= c.denied_ratio && ids >= denied_min {
            return Some((Attack::Bola, Severity::High, "refused_object_ids", f64::from(walk.denied), denied_min));
        }
        let distinct = f64::from(c.distinct_ids.get());
        if ids >= distinct {
            let severity = if ids >= 3.0 * distinct { Severity::High } else { Severity::Medium };
            return Some((Attack::Enumeration, severity, "distinct_object_ids", ids, distinct));
        }
        let run = f64::from(c.sequential_run.get());
        if f64::from(walk.longest_run) >= run {
            return Some((
                Attack::Enumeration,
                Severity::Medium,
                "sequential_object_ids",
                f64::from(walk.longest_run),
                run,
            ));
        }
        None
    }
}

impl Detector for ObjectWalk {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event) else {
            return Vec::new();
        };
        let (Some((id, number)), Some(op), Some(actor)) = (object(call), operation(call), Actor::of(&event.principal))
        else {
            return Vec::new();
        };
        let op_hash = hash64(op);
        let w = window_index(event.time, self.window);
        actor.table_key(&mut self.key_buf);
        let walks = self.actors.entry(&self.key_buf, event.time, Walks::default);
        let at = match walks.0.iter().position(|x| x.operation == op_hash) {
            Some(at) => at,
            None if walks.0.len() < OPERATIONS => {
                walks.0.reserve_exact(1);
                walks.0.push(Walk::new(op_hash, w, event.time));
                walks.0.len() - 1
            }
            None => {
                let oldest = (0..walks.0.len()).min_by_key(|&i| walks.0[i].last).unwrap_or(0);
                walks.0[oldest] = Walk::new(op_hash, w, event.time);
                oldest
            }
        };
        let walk = &mut walks.0[at];
        if walk.window != w {
            walk.restart(w, event.time);
        }
        walk.add(id, number, matches!(call.status, 403 | 404), event.time, &event.id);
        let Some(walk) = self.actors.get(&self.key_buf, event.time).map(|ws| &ws.0[at]) else {
            return Vec::new();
        };
        let Some((attack, severity, feature, observed, threshold)) = self.verdict(walk) else {
            return Vec::new();
        };
        let explanation = format!(
            "{} {} requested {} distinct ids of {op:?} in {} calls within the current {} window, {} refused \
             (403/404), longest run of consecutive ids {} (thresholds: {} ids, {} refused at {}%, a run of {})",
            actor.key_type,
            actor.key,
            walk.distinct(),
            walk.calls,
            human(self.window),
            walk.denied,
            walk.longest_run,
            self.config.distinct_ids,
            self.config.denied_min,
            (self.config.denied_ratio * 100.0).round(),
            self.config.sequential_run,
        );
        vec![AlertDraft {
            detector: DETECTOR.to_owned(),
            attack,
            key_type: actor.key_type,
            key: actor.key.to_owned(),
            severity,
            time: event.time,
            first_seen: Some(walk.since),
            feature: Feature {
                name: feature.to_owned(),
                observed: round2(observed),
                threshold,
                leak: format!("window {}", human(self.window)),
                explanation,
                ..Feature::default()
            },
            evidence: walk.evidence.ids(),
        }]
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.actors.len(), bytes: self.actors.heap_bytes() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::KeyType;
    use crate::testing::{op_call, user};

    fn detector() -> ObjectWalk {
        ObjectWalk::new(&ObjectWalkConfig::default()).unwrap()
    }

    #[test]
    fn a_sequential_walk_alerts_after_twenty_consecutive_ids() {
        let mut d = detector();
        let mut drafts = Vec::new();
        for i in 0..30 {
            drafts.extend(d.observe(&op_call(
                i * 1000,
                user("mallory", "203.0.113.5"),
                "getAccount",
                Some(&(5000 + i).to_string()),
                200,
            )));
        }
        assert_eq!(drafts.len(), 11, "from the 20th id on");
        let first = &drafts[0];
        assert_eq!(first.alert_key(), (Attack::Enumeration, KeyType::User, "mallory"));
        assert_eq!(
            (first.feature.name.as_str(), first.feature.observed, first.severity),
            ("sequential_object_ids", 20.0, Severity::Medium)
        );
        assert!(
            first
                .feature
                .explanation
                .starts_with("user mallory requested 20 distinct ids of \"getAccount\" in 20 calls"),
            "{}",
            first.feature.explanation
        );
    }

    #[test]
    fn many_random_ids_are_an_enumeration_and_mostly_refused_ones_a_bola_walk() {
        let mut d = detector();
        let mut drafts = Vec::new();
        for i in 0..200u64 {
            let id = format!("{:x}", crate::distinct::hash64(&i.to_string()));
            drafts.extend(d.observe(&op_call(i as i64 * 250, user("eve", "203.0.113.6"), "getOrder", Some(&id), 200)));
        }
        assert_eq!(
            drafts.first().map(|x| (x.attack, x.feature.name.as_str())),
            Some((Attack::Enumeration, "distinct_object_ids"))
        );

        let mut bola = Vec::new();
        for i in 0..12 {
            let status = if i % 4 == 3 { 200 } else { 403 };
            bola.extend(d.observe(&op_call(
                i * 2000,
                user("trudy", "198.51.100.6"),
                "getAccount",
                Some(&format!("acc-{i}")),
                status,
            )));
        }
        // Nine of twelve calls refused: not yet ten.
        assert!(bola.is_empty());
        bola.extend(d.observe(&op_call(30_000, user("trudy", "198.51.100.6"), "getAccount", Some("acc-x"), 404)));
        assert_eq!(bola.len(), 1);
        assert_eq!((bola[0].attack, bola[0].severity, bola[0].key.as_str()), (Attack::Bola, Severity::High, "trudy"));
        assert_eq!(bola[0].feature.observed, 10.0);
    }

    #[test]
    fn a_person_reading_their_own_objects_all_day_never_alerts() {
        let mut d = detector();
        let mine = ["11", "12", "57", "58", "90"];
        for i in 0..5000 {
            let id = mine[(i * 7 % 5) as usize];
            let status = if i % 97 == 0 { 404 } else { 200 };
            assert!(
                d.observe(&op_call(i * 15_000, user("alice", "192.0.2.1"), "getAccount", Some(id), status)).is_empty()
            );
        }
    }

    #[test]
    fn switching_between_two_neighbouring_accounts_is_no_sequential_walk() {
        // bob owns accounts 1003 and 1004 and flips between them all morning (a false alarm seen in the simulated
        // week through a running Argus: "3 distinct ids ... longest run of consecutive ids 20").
        let mut d = detector();
        for i in 0..200 {
            let id = [1003, 1004, 1003, 1005, 1004, 1004][i % 6].to_string();
            let call = op_call(i as i64 * 3000, user("bob", "192.0.2.2"), "getAccount", Some(&id), 200);
            assert!(d.observe(&call).is_empty(), "call {i}");
        }
        let walk = &d.actors.get("user\u{1f}bob", crate::testing::at(600_000)).unwrap().0[0];
        assert!(walk.longest_run <= 3, "{}", walk.longest_run);
        // A walk downwards is a walk too; turning round starts over.
        let mut w = Walk::new(0, 0, crate::testing::at(0));
        for n in (100..130).rev().chain(131..135) {
            w.step_run(n);
        }
        assert_eq!(w.longest_run, 30);
        assert_eq!(w.run, 4);
    }

    #[test]
    fn the_window_restarts_counts_and_operations_are_bounded() {
        let mut d = detector();
        for i in 0..15 {
            assert!(
                d.observe(&op_call(i * 1000, user("bob", "192.0.2.2"), "getAccount", Some(&i.to_string()), 200))
                    .is_empty()
            );
        }
        // Ten minutes later the run starts over.
        for i in 15..30 {
            assert!(
                d.observe(&op_call(
                    700_000 + i * 1000,
                    user("bob", "192.0.2.2"),
                    "getAccount",
                    Some(&i.to_string()),
                    200
                ))
                .is_empty()
            );
        }
        for op in 0..10 {
            d.observe(&op_call(800_000, user("bob", "192.0.2.2"), &format!("op{op}"), Some("1"), 200));
        }
        let key = "user\u{1f}bob";
        assert_eq!(d.actors.get(key, crate::testing::at(800_000)).map(|w| w.0.len()), Some(OPERATIONS));
    }
}
