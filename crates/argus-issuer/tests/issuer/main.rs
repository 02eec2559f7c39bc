//! Black-box tests of the issuer: the real router on 127.0.0.1:0 over a temp-file SQLite store, driven over HTTP.
//! One test binary (modules below) so the heavy link happens once.

mod authorize;
mod clients;
mod common;
mod devices;
mod discovery;
mod dpop;
mod id_token;
mod introspection;
mod login;
mod par;
mod passkey;
mod registry;
mod resources;
mod revocation;
mod stepup;
mod tokens;
mod totp;
