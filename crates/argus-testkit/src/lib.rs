//! Development helpers for Argus's tests: a clock tests can move, signing keys and access tokens, a tiny
//! OIDC discovery + JWKS server and a counting echo upstream, all on `127.0.0.1:0`.
//!
//! Only for `[dev-dependencies]`: helpers panic with a clear message instead of returning errors, since a test
//! that cannot set itself up should stop right there.
#![forbid(unsafe_code)]

mod clock;
mod crs;
mod dpop;
mod jwks;
mod tokens;
mod upstream;

pub use clock::{FakeClock, TEST_EPOCH};
pub use crs::{crs_attack_values, lossy_form_decode, percent_encode_all};
pub use dpop::{DpopKey, DpopProofBuilder};
pub use jwks::JwksServer;
pub use tokens::{
    TEST_AUDIENCE, TEST_ISSUER, access_claims, forge_with_kid, mint_access_token, mint_with_typ, test_key,
    unsigned_token,
};
pub use upstream::{EchoUpstream, RecordedRequest, closed_port_url};
