//! Scraping and crawling: a caller reading at a sustained high rate, over many distinct paths or most of the
//! API's list endpoints.
//!
//! A dashboard that polls the same three endpoints every few seconds is busy but reads nothing new; a person reads
//! many different things but not hundreds a window for half an hour. A scraper does both. Per caller, over
//! tumbling windows: successful reads (GET/HEAD), their distinct paths, and which list endpoints (operations that
//! name no object) were visited. It fires when `sustain_windows` consecutive windows each hold at least `min_calls`
//! reads and the current one is spread out: at least `distinct_path_ratio` of the reads on distinct paths, or at
//! least `list_coverage` of the known list endpoints visited.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Event, Timestamp};
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, bounded, operation};
use crate::alert::{AlertDraft, Attack, Feature, Severity};
use crate::baseline::{human, window_index, window_start};
use crate::distinct::{Distinct, hash64};
use crate::evidence::Recent;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "scraping";

/// List endpoints tracked (a bit each).
const LIST_OPERATIONS: usize = 64;

/// `[watch.detectors.scraping]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapingConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window, in seconds. Default `600`.
    pub window_secs: NonZeroU64,
    /// Reads a window needs to count as busy. Default `300` (one every two seconds, for the whole window).
    pub min_calls: NonZeroU32,
    /// Consecutive busy windows that make the reading sustained. Default `3` (half an hour).
    pub sustain_windows: NonZeroU32,
    /// Share of a window's reads on distinct paths that makes it a crawl. Default `0.5`.
    pub distinct_path_ratio: f64,
    /// Share of the known list endpoints visited in a window that makes it a crawl. Default `0.8`.
    pub list_coverage: f64,
    /// List endpoints that must be known before coverage counts. Default `5`: with fewer, a dashboard polling
    /// all of them would look like a crawl of the whole API.
    pub min_list_operations: NonZeroU32,
    /// Callers tracked. Default `100000`.
    pub max_keys: NonZeroUsize,
}

impl Default for ScrapingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: NonZeroU64::new(600).unwrap_or(NonZeroU64::MIN),
            min_calls: NonZeroU32::new(300).unwrap_or(NonZeroU32::MIN),
            sustain_windows: NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN),
            distinct_path_ratio: 0.5,
            list_coverage: 0.8,
            min_list_operations: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl ScrapingConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [("distinct_path_ratio", self.distinct_path_ratio), ("list_coverage", self.list_coverage)] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(ConfigError::new(format!("watch.detectors.scraping.{name}"), "must be in (0, 1]"));
            }
        }
        if self.sustain_windows.get() > 255 {
            return Err(ConfigError::new("watch.detectors.scraping.sustain_windows", "must be at most 255"));
        }
        Ok(())
    }
}

/// One caller's reading.
#[derive(Debug, Default)]
struct Crawl {
    window: i64,
    calls: u32,
    paths: Distinct,
    lists: u64,
    /// Busy windows in a row just before the current one.
    busy: u8,
    /// The start of the first of them.
    since: Timestamp,
    evidence: Recent<6>,
}

impl KeyState for Crawl {
    fn heap_bytes(&self) -> usize {
        self.paths.heap_bytes() + self.evidence.heap_bytes()
    }
}

impl Crawl {
    fn roll(&mut self, w: i64, width: Duration, min_calls: u32) {
        if w <= self.window {
            return;
        }
        let busy_before = w == self.window + 1 && self.calls >= min_calls;
        self.busy = if busy_before { self.busy.saturating_add(1) } else { 0 };
        if self.busy == 0 {
            self.since = window_start(w, width);
        }
        self.window = w;
        self.calls = 0;
        self.paths.clear();
        self.lists = 0;
        self.evidence.clear();
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct Scraping {
    config: ScrapingConfig,
    window: Duration,
    /// List endpoints seen so far, by operation hash, each with its bit.
    lists: HashMap<u64, u8>,
    actors: Keyed<Crawl>,
    key_buf: String,
}

impl Scraping {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &ScrapingConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window = Duration::from_secs(config.window_secs.get());
        Ok(Self {
            config: config.clone(),
            window,
            lists: HashMap::new(),
            // A caller quiet for a whole window has broken its run: nothing to keep.
            actors: Keyed::new(config.max_keys.get(), 2 * window),
            key_buf: String::new(),
        })
    }

    fn list_bit(&mut self, op: &str) -> Option<u64> {
        let h = hash64(op);
        let next = self.lists.len();
        let bit = match self.lists.get(&h) {
            Some(&bit) => bit,
            None if next < LIST_OPERATIONS => {
                self.lists.insert(h, next as u8);
                next as u8
            }
            None => return None,
        };
        Some(1 << bit)
    }
}

impl Detector for Scraping {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event) else {
            return Vec::new();
        };
        if call.status >= 400 || !matches!(call.method.as_str(), "GET" | "HEAD") {
            return Vec::new();
        }
        let Some(actor) = Actor::of(&event.principal) else {
            return Vec::new();
        };
        let list = match operation(call) {
            Some(op) if call.object_ids.is_empty() => self.list_bit(op),
            _ => None,
        };
        let c = &self.config;
        let (min_calls, width) = (c.min_calls.get(), self.window);
        let w = window_index(event.time, width);
        actor.table_key(&mut self.key_buf);
        let crawl = self.actors.entry(&self.key_buf, event.time, || Crawl {
            window: w,
            since: window_start(w, width),
            ..Crawl::default()
        });
        crawl.roll(w, width, min_calls);
        crawl.calls = crawl.calls.saturating_add(1);
        crawl.paths.insert(bounded(&call.path));
        crawl.lists |= list.unwrap_or(0);
        crawl.evidence.push(&event.id);
        if crawl.calls < min_calls || u32::from(crawl.busy) + 1 < c.sustain_windows.get() {
            return Vec::new();
        }
        let path_ratio = crawl.paths.count().min(u64::from(crawl.calls)) as f64 / f64::from(crawl.calls);
        let known = self.lists.len();
        let visited = crawl.lists.count_ones() as usize;
        let coverage = visited as f64 / known.max(1) as f64;
        let covers = known >= c.min_list_operations.get() as usize && coverage >= c.list_coverage;
        if path_ratio < c.distinct_path_ratio && !covers {
            return Vec::new();
        }
        let severity = if crawl.calls >= 3 * min_calls { Severity::High } else { Severity::Medium };
        let explanation = format!(
            "{} {} made {} successful reads in the current {} window ({} distinct paths, {visited} of {known} list \
             endpoints), after {} busy windows in a row (thresholds: {} reads a window for {} windows, with {}% \
             distinct paths or {}% of the list endpoints)",
            actor.key_type,
            actor.key,
            crawl.calls,
            human(width),
            crawl.paths.count().min(u64::from(crawl.calls)),
            crawl.busy,
            min_calls,
            c.sustain_windows,
            (c.distinct_path_ratio * 100.0).round(),
            (c.list_coverage * 100.0).round(),
        );
        vec![AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::Scraping,
            key_type: actor.key_type,
            key: actor.key.to_owned(),
            severity,
            time: event.time,
            first_seen: Some(crawl.since),
            feature: Feature {
                name: "sustained_reads".to_owned(),
                observed: f64::from(crawl.calls),
                threshold: f64::from(min_calls),
                leak: format!("window {}", human(width)),
                explanation,
                ..Feature::default()
            },
            evidence: crawl.evidence.ids(),
        }]
    }

    fn memory(&self) -> Memory {
        let lists = self.lists.capacity() * (std::mem::size_of::<(u64, u8)>() + 1);
        Memory { keys: self.actors.len(), bytes: self.actors.heap_bytes() + lists }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::KeyType;
    use crate::testing::{op_call, user};

    fn detector() -> Scraping {
        Scraping::new(&ScrapingConfig::default()).unwrap()
    }

    #[test]
    fn a_crawler_reading_distinct_paths_for_half_an_hour_alerts() {
        let mut d = detector();
        let mut drafts = Vec::new();
        // One read a second, every one a different object, for 40 minutes.
        for i in 0..2400 {
            drafts.extend(d.observe(&op_call(
                i * 1000,
                user("bot", "203.0.113.8"),
                "getProduct",
                Some(&i.to_string()),
                200,
            )));
        }
        let first = drafts.first().expect("alert");
        assert_eq!(first.alert_key(), (Attack::Scraping, KeyType::User, "bot"));
        // Busy from the first window: the third window's 300th read fires (2 busy windows before it).
        assert_eq!(first.time, crate::testing::at((1200 + 299) * 1000));
        assert_eq!(first.first_seen, Some(crate::testing::at(0)));
        assert!(first.feature.explanation.contains("after 2 busy windows in a row"), "{}", first.feature.explanation);
    }

    #[test]
    fn a_dashboard_polling_the_same_paths_never_alerts() {
        let mut d = detector();
        // One call a second, for two hours: busy, but the same three paths over and over.
        for i in 0..(2 * 3600) {
            let op = ["getStatus", "listAlerts", "getSummary"][i as usize % 3];
            assert!(d.observe(&op_call(i * 1000, user("dashboard", "192.0.2.9"), op, None, 200)).is_empty());
        }
    }

    #[test]
    fn covering_most_list_endpoints_at_a_sustained_rate_alerts() {
        let mut d = detector();
        let lists = ["listAccounts", "listOrders", "listProducts", "listUsers", "listInvoices"];
        // Others have used these list endpoints before.
        for (i, op) in lists.iter().enumerate() {
            d.observe(&op_call(i as i64, user("someone", "192.0.2.3"), op, None, 200));
        }
        let mut drafts = Vec::new();
        for i in 0..2400 {
            drafts.extend(d.observe(&op_call(
                i * 1000,
                user("harvester", "203.0.113.9"),
                lists[i as usize % 5],
                None,
                200,
            )));
        }
        let first = drafts.first().expect("alert");
        assert!(first.feature.explanation.contains("5 of 5 list endpoints"), "{}", first.feature.explanation);
    }

    #[test]
    fn a_gap_breaks_the_run_and_config_is_checked() {
        let mut d = detector();
        for i in 0..3000 {
            // Busy for 10 minutes, then quiet for 10 minutes, over and over.
            let t = (i / 600) * 1_200_000 + (i % 600) * 1000;
            assert!(
                d.observe(&op_call(t, user("burst", "192.0.2.4"), "getThing", Some(&i.to_string()), 200)).is_empty()
            );
        }
        let bad = ScrapingConfig { list_coverage: 0.0, ..ScrapingConfig::default() };
        assert_eq!(bad.validate().unwrap_err().key, "watch.detectors.scraping.list_coverage");
    }
}
