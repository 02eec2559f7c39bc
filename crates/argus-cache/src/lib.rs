//! The shared cache of Argus: state that every gate and issuer must agree on, such as which DPoP proof `jti`s and
//! client-assertion `jti`s were already used.
//!
//! In-memory implementation for one process; Redis comes behind the same trait for several gates.
#![forbid(unsafe_code)]

mod replay;

pub use replay::{MemoryReplayCache, ReplayCache};
