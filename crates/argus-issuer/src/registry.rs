//! The issuer's in-memory copy of what every token request reads and what rarely changes: client registrations and
//! whether a user is enabled. Without it, each client_credentials request costs a database round trip for the
//! client, and each refresh two (client and user).
//!
//! Entries live `registry_cache_secs` (by the injected clock), so a change made by another process (another issuer,
//! `argus admin` on the database) shows within that time. A change made through this issuer's admin API shows at
//! once: the admin handlers call [`Registry::forget_client`] / [`Registry::forget_user`] after writing. Only what
//! exists is kept (an unknown client id costs a lookup every time, and cannot fill the cache), and each map is
//! bounded: when full, expired entries go, and if that is not enough, everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use argus_model::Timestamp;
use argus_oauth::{ClientRegistration, IssuerStore, StorageError};

/// Most client registrations kept.
const MAX_CLIENTS: usize = 10_000;
/// Most users' enabled flags kept.
const MAX_USERS: usize = 100_000;

/// Client registrations by `client_id` and users' enabled flags by `sub`.
pub(crate) struct Registry {
    ttl: Duration,
    clients: Mutex<Bounded<Arc<ClientRegistration>>>,
    users: Mutex<Bounded<bool>>,
}

impl Registry {
    /// A registry whose entries live `ttl`; zero keeps nothing (every lookup reads the store).
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, clients: Mutex::new(Bounded::new(MAX_CLIENTS)), users: Mutex::new(Bounded::new(MAX_USERS)) }
    }

    /// The registration of `client_id`, disabled or not; `None` if there is no such client.
    pub async fn client(
        &self,
        store: &dyn IssuerStore,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Option<Arc<ClientRegistration>>, StorageError> {
        let generation = match locked(&self.clients).fresh(client_id, now) {
            Ok(hit) => return Ok(Some(hit)),
            Err(generation) => generation,
        };
        let Some(client) = store.client(client_id).await?.map(Arc::new) else {
            return Ok(None);
        };
        locked(&self.clients).insert(client_id, client.clone(), generation, now, now.plus(self.ttl));
        Ok(Some(client))
    }

    /// Whether the user `sub` exists and is enabled.
    pub async fn user_enabled(&self, store: &dyn IssuerStore, sub: &str, now: Timestamp) -> Result<bool, StorageError> {
        let generation = match locked(&self.users).fresh(sub, now) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let Some(user) = store.user_by_sub(sub).await? else {
            return Ok(false);
        };
        let enabled = !user.disabled;
        locked(&self.users).insert(sub, enabled, generation, now, now.plus(self.ttl));
        Ok(enabled)
    }

    /// Drop the client's entry: call after changing its registration in the store.
    pub fn forget_client(&self, client_id: &str) {
        locked(&self.clients).forget(client_id);
    }

    /// Drop the user's entry: call after changing the user in the store.
    pub fn forget_user(&self, sub: &str) {
        locked(&self.users).forget(sub);
    }
}

/// The map, even if a thread panicked while holding it: every change to it is a single map operation, so it is
/// never left half-changed.
fn locked<T>(map: &Mutex<Bounded<T>>) -> MutexGuard<'_, Bounded<T>> {
    map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Entry<T> {
    value: T,
    until: Timestamp,
}

/// A map of at most `capacity` entries with expiry, and a generation that every `forget` moves on.
struct Bounded<T> {
    entries: HashMap<String, Entry<T>>,
    capacity: usize,
    /// Bumped by every `forget`. A value read from the store is kept only if no `forget` happened while it was
    /// being read: otherwise a read that started before an admin change could put the old value back after the
    /// change had dropped it.
    generation: u64,
}

impl<T: Clone> Bounded<T> {
    fn new(capacity: usize) -> Self {
        Self { entries: HashMap::new(), capacity, generation: 0 }
    }

    /// The unexpired value of `key`, or the generation to pass to `insert` after reading the store.
    fn fresh(&self, key: &str, now: Timestamp) -> Result<T, u64> {
        match self.entries.get(key) {
            Some(e) if now < e.until => Ok(e.value.clone()),
            _ => Err(self.generation),
        }
    }

    /// Keep `value` until `until`, unless a `forget` happened since `fresh` answered `read_at_generation`.
    fn insert(&mut self, key: &str, value: T, read_at_generation: u64, now: Timestamp, until: Timestamp) {
        if read_at_generation != self.generation || until <= now {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            self.make_room(now);
        }
        self.entries.insert(key.to_owned(), Entry { value, until });
    }

    /// Drop what has expired; if the map is still full, drop everything (a cache this full is being swept by many
    /// distinct keys, and evicting one by one would cost a scan per insert).
    fn make_room(&mut self, now: Timestamp) {
        self.entries.retain(|_, e| now < e.until);
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
    }

    fn forget(&mut self, key: &str) {
        self.generation += 1;
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests;
