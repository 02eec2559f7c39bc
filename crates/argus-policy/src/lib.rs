//! Argus's policy core: which configured route a request belongs to and which scopes it needs.
//!
//! Pure: no I/O, no HTTP types. The gate (`argus-gate`) calls these functions in its route and scope phases and
//! turns their answers into responses. OpenAPI operations, input validation and rate-limit math come here later.
#![forbid(unsafe_code)]

pub mod blocklist;
mod config;
pub mod forwarded;
pub mod openapi;
mod path;
pub mod ratelimit;
pub mod rules;
pub mod stepup;
mod table;
pub mod triggers;

pub use config::{AuthMode, ResponseMode, RouteConfig, RuleConfig};
pub use path::{PathError, canonical_path, segment_prefix_matches};
pub use table::{PolicyError, Route, RouteTable, Rule, missing_scopes};
