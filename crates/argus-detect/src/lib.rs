//! Watch's pure core: detectors, alerts, the audit chain and the storage traits watch needs.
//!
//! No I/O and no clock: detectors take time from the events they observe, so the same events always give the same
//! alerts, live or replayed. `argus-watch` feeds events in and writes what comes out through the [`WatchStore`]
//! traits, which `argus-store` implements.
#![forbid(unsafe_code)]

pub mod alert;
pub mod audit;
pub mod bucket;
pub mod failed_login;
pub mod gap;
pub mod pipeline;
pub mod rate;
pub mod store;

pub use alert::{
    Alert, AlertChange, AlertDraft, AlertFilter, AlertStatus, Attack, DEFAULT_ALERT_LIMIT, Feature, KeyType,
    MAX_ALERT_LIMIT, Severity, UnknownName,
};
pub use audit::{
    AuditRecord, BatchAppended, BreakReason, ChainBreak, ChainHead, ChainLinker, ChainVerdict, ChainVerifier,
    GENESIS_HASH, chain_hash,
};
pub use bucket::{BucketConfig, EVIDENCE_MAX};
pub use failed_login::{FailedLogin, FailedLoginConfig};
pub use gap::EventLoss;
pub use pipeline::{ConfigError, Detector, Detectors, DetectorsConfig, is_watch_output};
pub use rate::{LeakRate, LeakRateError, RatePeriod};
pub use store::{AlertStore, AuditLog, WatchStore, WatchStoreError};
