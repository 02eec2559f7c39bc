//! The issuer's signing keys, fetched over HTTP and cached: the shared `argus-jwks` cache, which the watch API
//! verifies admin tokens with too.

pub(crate) use argus_jwks::{JwksCache, http_uri};
