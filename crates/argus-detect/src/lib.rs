//! Watch's pure core: detectors, alerts, the audit chain and the storage traits watch needs.
//!
//! No I/O and no clock: detectors take time from the events they observe, so the same events always give the same
//! alerts, live or replayed. `argus-watch` feeds events in and writes what comes out through the [`WatchStore`]
//! traits, which `argus-store` implements.
//!
//! The detectors ([`DetectorsConfig`] has one table each): [`failed_login`] and [`slow_brute_force`] (brute force,
//! credential stuffing from one IP), [`stuffing_spread`] (stuffing over many IPs), [`token_use`] (stolen tokens,
//! sessions, refresh families), [`object_walk`] (enumeration, BOLA), [`scraping`], [`exfiltration`],
//! [`client_spike`] (a client acting up), [`probing`] (fuzzing), [`decoy`], [`multivariate`] (a seeded
//! isolation forest over per-caller windows, [`forest`]) and [`flow`] (rare endpoint transitions). Their state
//! lives in bounded tables ([`keyed`]) with compact distinct counters ([`distinct`]) and evidence ([`evidence`]).
//!
//! What watch does about an alert is decided here too ([`respond`]: CEL rules and an allow-list), and
//! [`replay`] runs recorded events through the detectors to measure them.
#![forbid(unsafe_code)]

pub mod actor;
pub mod alert;
pub mod audit;
pub mod baseline;
pub mod bucket;
pub mod burst;
pub mod client_spike;
pub mod decoy;
pub mod distinct;
pub mod evidence;
pub mod exfiltration;
pub mod failed_login;
pub mod flow;
pub mod forest;
pub mod gap;
pub mod keyed;
pub mod multivariate;
pub mod object_walk;
pub mod pipeline;
pub mod probing;
pub mod rate;
pub mod replay;
pub mod respond;
pub mod scraping;
pub mod slow_brute_force;
pub mod store;
pub mod stuffing_spread;
pub mod token_use;

#[cfg(test)]
mod testing;

pub use alert::{
    Alert, AlertChange, AlertCursor, AlertDraft, AlertFilter, AlertStatus, Attack, BadCursor, DEFAULT_ALERT_LIMIT,
    Feature, KeyType, MAX_ALERT_LIMIT, Severity, UnknownName,
};
pub use audit::{
    AuditRecord, BatchAppended, BreakReason, ChainBreak, ChainHead, ChainLinker, ChainVerdict, ChainVerifier,
    GENESIS_HASH, chain_hash,
};
pub use bucket::{BucketConfig, EVIDENCE_MAX};
pub use failed_login::{FailedLogin, FailedLoginConfig};
pub use gap::EventLoss;
pub use keyed::{KeyState, Keyed};
pub use pipeline::{ConfigError, Detector, Detectors, DetectorsConfig, Memory, is_watch_output};
pub use rate::{LeakRate, LeakRateError, RatePeriod};
pub use replay::{AttackReport, Label, Replay, ReplayLineError, ReplayReport, parse_line};
pub use respond::{
    ActionFilter, ActionKind, ActionRecord, ActionStatus, ActionStore, AllowList, Notification, Plan, PlannedAction,
    ResponseRuleConfig, Responses, RevokeScope, Target, TimelineEntry, TimelinePage, TimelineQuery, UndoRefusal,
};
pub use store::{AlertStore, AuditLog, WatchStore, WatchStoreError};
