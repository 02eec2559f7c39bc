//! The vocabulary every part of Argus shares: time, identifiers, the versioned event schema, the control channel's
//! messages and the principal keys that tie an event to a user, an app, a session or a token.
//!
//! This crate is a pure core: no I/O beyond reading the system clock and the OS random source.
#![forbid(unsafe_code)]

mod clock;
pub mod control;
pub mod event;
pub mod id;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary. Events cap what callers
/// control (user agents, user names) with it.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub use clock::{Clock, SystemClock, Timestamp};
pub use control::{Block, BlockTarget, ControlMessage, Revocation, RevocationScope, StepUpDemand, TokenKeys};
pub use event::{
    AccountActivity, ActionTaken, Activity, AdminChange, AlertRaised, ApiCall, Decision, EVENT_SCHEMA_VERSION, Event,
    EventKind, Login, LoginFailure, LoginOutcome, Principal, RefreshReuse, ResponseCheck, Revoked, TokenIssued,
};
