//! The demo API that `argus up --demo` puts behind the gate: a small bank with accounts owned by users and transfers
//! between them, so that later issues can show ownership (BOLA) and enumeration attacks and their defence.
//!
//! The API trusts the gate: it reads the caller's `sub` from the forwarded bearer token without verifying it (see
//! [`Caller`] for why). `GET /accounts/{id}` and `GET /transfers/{id}` deliberately skip the ownership
//! check; the spec ([`OPENAPI_YAML`]) marks them with `x-argus-note`.
#![forbid(unsafe_code)]

mod auth;
mod bank;
mod problem;
mod routes;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use argus_model::{Clock, SystemClock};

pub use auth::Caller;
pub use bank::{Account, Currency, DemoUser, MAX_AMOUNT, MAX_MEMO_CHARS, NewTransfer, Transfer, TransferError};

/// The API's own OpenAPI 3.1 description, served at `GET /openapi.yaml` and loaded by the gate.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The demo bank: in-memory state behind a lock, cheap to clone (all clones share the state).
#[derive(Clone)]
pub struct DemoApi {
    bank: Arc<RwLock<bank::Bank>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DemoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoApi").finish_non_exhaustive()
    }
}

impl DemoApi {
    /// The accounts owned by `sub`, by id (what `GET /accounts` returns to that user).
    pub fn accounts_of(&self, sub: &str) -> Vec<Account> {
        self.read().accounts_of(sub)
    }

    // A panic while the lock is held cannot leave the bank half-changed: `Bank::transfer` checks everything before
    // it writes, and its writes cannot panic. So a poisoned lock still guards consistent data and is used as is.
    fn read(&self) -> RwLockReadGuard<'_, bank::Bank> {
        self.bank.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, bank::Bank> {
        self.bank.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Seed data for `users`: 2-3 accounts each with sequential integer ids (from 1001) and a few transfers between
/// them (ids from 5001), dated by the system clock.
pub fn seed(users: &[DemoUser]) -> DemoApi {
    seed_with_clock(users, Arc::new(SystemClock))
}

/// [`seed`] with an injected clock, which also dates the transfers created later through the API.
pub fn seed_with_clock(users: &[DemoUser], clock: Arc<dyn Clock>) -> DemoApi {
    let bank = bank::Bank::seeded(users, clock.now());
    DemoApi { bank: Arc::new(RwLock::new(bank)), clock }
}

/// The demo API's HTTP routes. Serve with `into_make_service_with_connect_info::<SocketAddr>()` like every Argus
/// server (the demo itself does not need the peer address).
pub fn router(api: DemoApi) -> axum::Router {
    routes::router(api)
}
