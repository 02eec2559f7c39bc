//! The issuer's signing keys: loaded from the store (an ES256 key is created on first start), published in the JWKS
//! and chosen for signing by the schedule of `argus_oauth::admin::key_schedule`.
//!
//! `argus keys rotate` adds a key to the store from another process, so the running issuer looks at the store every
//! `key_reload_secs`. Between looks the schedule still moves on its own (a pending key starts signing, a retired
//! key leaves the JWKS): the current view is recomputed, without I/O, when the clock passes its next change.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use argus_jose::{JwkSet, KeyError, SigningKey};
use argus_model::{Clock, Timestamp};
use argus_oauth::admin::{KeyState, KeyTiming, ScheduledKey, key_schedule, next_key_change};
use argus_oauth::{ClientRegistration, IssuerStore, StoredSigningKey};
use serde::Serialize;

use crate::config::IssuerConfig;
use crate::error::IssuerError;

/// The algorithm of the key created on first start.
const FIRST_KEY_ALG: &str = argus_jose::ES256;

/// The timing of the key schedule for this configuration and these clients: the lead from the configuration, and
/// the longest lifetime of any token the issuer signs (access tokens, including per-client overrides, and
/// id_tokens). `argus keys list` uses it too, so the CLI and the running issuer agree.
pub fn key_timing(config: &IssuerConfig, clients: &[ClientRegistration]) -> KeyTiming {
    let longest_client = clients.iter().filter_map(|c| c.access_token_ttl_secs).max().unwrap_or(0);
    let longest = config.access_token_ttl_secs.max(config.id_token_ttl_secs).max(longest_client);
    KeyTiming {
        publish_lead: Duration::from_secs(config.key_publish_lead_secs),
        longest_token_ttl: Duration::from_secs(longest),
    }
}

/// The issuer's keys. Cheap to read per request: one read lock and an `Arc` clone.
pub(crate) struct Keys {
    /// The key that signs now.
    pub active: ActiveKey,
    ring: Arc<Ring>,
}

/// The key that signs, as the schedule stands when it is used.
pub(crate) struct ActiveKey {
    ring: Arc<Ring>,
}

impl ActiveKey {
    /// Sign `claims` with the key the schedule makes active now.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        self.ring.view().signer.sign(typ, claims)
    }

    /// The key that signs now, kept: claims that depend on the key (an id_token's `at_hash` on its `alg`) are made
    /// for it and signed by it, even if the schedule moves on in between.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.ring.view().signer.clone()
    }
}

impl Keys {
    /// Load the stored keys (creating an ES256 key if there is none) and start looking for new ones every
    /// `key_reload_secs`. The task ends with the issuer.
    pub async fn start(
        store: Arc<dyn IssuerStore>,
        clock: Arc<dyn Clock>,
        config: &IssuerConfig,
    ) -> Result<Self, IssuerError> {
        let mut stored = store.signing_keys().await?;
        if stored.is_empty() {
            stored.push(create_first_key(store.as_ref(), clock.now()).await?);
        }
        let loaded = stored.into_iter().map(load).collect::<Result<Vec<_>, _>>()?;
        let timing = key_timing(config, &store.clients().await?);
        let view = View::compute(loaded, timing, clock.now())
            .ok_or_else(|| IssuerError::Config("the store holds no usable signing key".into()))?;
        let ring = Arc::new(Ring { view: RwLock::new(Arc::new(view)), clock, config: config.clone() });
        let every = Duration::from_secs(config.key_reload_secs);
        tokio::spawn(reload_periodically(Arc::downgrade(&ring), store, every));
        Ok(Self { active: ActiveKey { ring: ring.clone() }, ring })
    }

    /// The published keys: the JWKS.
    pub fn jwks(&self) -> Arc<JwkSet> {
        self.ring.view().jwks.clone()
    }

    /// Every stored key and where it is in its life.
    pub fn schedule(&self) -> Vec<ScheduledKey> {
        self.ring.view().schedule.clone()
    }

    /// The algorithms of the published keys, the active one first.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let view = self.ring.view();
        let mut algs = vec![view.signer.alg_name()];
        for k in view.loaded.iter().filter(|k| view.published(&k.kid)) {
            if !algs.contains(&k.key.alg_name()) {
                algs.push(k.key.alg_name());
            }
        }
        algs
    }
}

/// A stored key, parsed.
#[derive(Clone)]
struct Loaded {
    kid: String,
    created_at: Timestamp,
    key: Arc<SigningKey>,
}

fn load(k: StoredSigningKey) -> Result<Loaded, KeyError> {
    let key = SigningKey::from_stored(Some(k.kid.clone()), &k.alg, k.pkcs8_der)?;
    Ok(Loaded { kid: k.kid, created_at: k.created_at, key: Arc::new(key) })
}

async fn create_first_key(store: &dyn IssuerStore, now: Timestamp) -> Result<StoredSigningKey, IssuerError> {
    let key = SigningKey::generate(FIRST_KEY_ALG)?;
    let stored = StoredSigningKey {
        kid: key.kid().to_owned(),
        alg: key.alg_name().to_owned(),
        pkcs8_der: key.pkcs8_der().to_vec(),
        created_at: now,
    };
    store.add_signing_key(&stored).await?;
    Ok(stored)
}

/// The keys as the schedule stands at one moment.
struct View {
    loaded: Vec<Loaded>,
    timing: KeyTiming,
    schedule: Vec<ScheduledKey>,
    signer: Arc<SigningKey>,
    jwks: Arc<JwkSet>,
    /// When this view goes stale by the clock alone.
    next_change: Option<Timestamp>,
}

impl View {
    /// `None` without any key.
    fn compute(loaded: Vec<Loaded>, timing: KeyTiming, now: Timestamp) -> Option<Self> {
        let meta: Vec<StoredSigningKey> = loaded
            .iter()
            .map(|k| StoredSigningKey {
                kid: k.kid.clone(),
                alg: k.key.alg_name().to_owned(),
                pkcs8_der: Vec::new(),
                created_at: k.created_at,
            })
            .collect();
        let schedule = key_schedule(&meta, now, timing);
        let find = |kid: &str| loaded.iter().find(|k| k.kid == kid).map(|k| k.key.clone());
        let signer = schedule
            .iter()
            .find(|k| k.state == KeyState::Active)
            .and_then(|k| find(&k.kid))
            .or_else(|| loaded.last().map(|k| k.key.clone()))?;
        let jwks = JwkSet {
            keys: schedule
                .iter()
                .filter(|k| k.state.is_published())
                .filter_map(|k| find(&k.kid).map(|key| key.public_jwk().clone()))
                .collect(),
        };
        let next_change = next_key_change(&schedule);
        Some(Self { signer, loaded, timing, schedule, jwks: Arc::new(jwks), next_change })
    }

    fn published(&self, kid: &str) -> bool {
        self.schedule.iter().any(|k| k.kid == kid && k.state.is_published())
    }
}

struct Ring {
    view: RwLock<Arc<View>>,
    clock: Arc<dyn Clock>,
    config: IssuerConfig,
}

impl Ring {
    /// The current view, recomputed first if the clock has passed its next change.
    fn view(&self) -> Arc<View> {
        let now = self.clock.now();
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner).clone();
        if view.next_change.is_none_or(|at| now < at) {
            return view;
        }
        match View::compute(view.loaded.clone(), view.timing, now) {
            Some(fresh) => {
                let fresh = Arc::new(fresh);
                *self.view.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                fresh
            }
            None => view,
        }
    }

    /// Read the store and replace the view. Keys already loaded are reused; a key that does not load is logged and
    /// left out, so one bad row cannot stop the issuer from signing.
    async fn reload(&self, store: &dyn IssuerStore) -> Result<(), IssuerError> {
        let stored = store.signing_keys().await?;
        let clients = store.clients().await?;
        let previous = self.view.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut loaded = Vec::with_capacity(stored.len());
        for k in stored {
            if let Some(known) = previous.loaded.iter().find(|l| l.kid == k.kid) {
                loaded.push(known.clone());
                continue;
            }
            let kid = k.kid.clone();
            match load(k) {
                Ok(l) => {
                    tracing::info!(kid = %kid, alg = l.key.alg_name(), "new signing key published");
                    loaded.push(l);
                }
                Err(error) => tracing::error!(kid = %kid, %error, "a stored signing key does not load; ignored"),
            }
        }
        let view = View::compute(loaded, key_timing(&self.config, &clients), self.clock.now())
            .ok_or_else(|| IssuerError::Config("the store holds no usable signing key".into()))?;
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(view);
        Ok(())
    }
}

/// Look for keys added by `argus keys rotate` (and for changed client lifetimes) until the issuer is dropped.
async fn reload_periodically(ring: Weak<Ring>, store: Arc<dyn IssuerStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the keys were just loaded
    loop {
        tick.tick().await;
        let Some(ring) = ring.upgrade() else { return };
        if let Err(error) = ring.reload(store.as_ref()).await {
            tracing::warn!(%error, "reloading the signing keys failed; the current keys stay in use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(created: i64) -> Loaded {
        let key = SigningKey::generate_es256().unwrap();
        Loaded { kid: key.kid().to_owned(), created_at: Timestamp::from_secs(created), key: Arc::new(key) }
    }

    const TIMING: KeyTiming =
        KeyTiming { publish_lead: Duration::from_secs(300), longest_token_ttl: Duration::from_secs(300) };

    #[test]
    fn a_new_key_is_published_before_it_signs() {
        let (old, new) = (loaded(0), loaded(1000));
        let view = View::compute(vec![old.clone(), new.clone()], TIMING, Timestamp::from_secs(1000)).unwrap();
        assert_eq!(view.signer.kid(), old.kid);
        let kids: Vec<_> = view.jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        assert_eq!(kids, [old.kid.clone(), new.kid.clone()]);
        assert_eq!(view.next_change, Some(Timestamp::from_secs(1300)));

        let later = View::compute(view.loaded.clone(), TIMING, Timestamp::from_secs(1300)).unwrap();
        assert_eq!(later.signer.kid(), new.kid);
        assert_eq!(later.jwks.keys.len(), 2, "the old key verifies its tokens until they expire");
        let much_later = View::compute(view.loaded.clone(), TIMING, Timestamp::from_secs(1300 + 330)).unwrap();
        assert_eq!(much_later.jwks.keys.len(), 1);
        assert_eq!(much_later.next_change, None);
        assert!(View::compute(Vec::new(), TIMING, Timestamp::from_secs(0)).is_none());
    }

    #[test]
    fn timing_takes_the_longest_lifetime() {
        let config = IssuerConfig { access_token_ttl_secs: 60, id_token_ttl_secs: 120, ..IssuerConfig::default() };
        let client = ClientRegistration { access_token_ttl_secs: Some(900), ..ClientRegistration::default() };
        assert_eq!(key_timing(&config, &[]).longest_token_ttl, Duration::from_secs(120));
        assert_eq!(key_timing(&config, &[client]).longest_token_ttl, Duration::from_secs(900));
        assert_eq!(key_timing(&config, &[]).publish_lead, Duration::from_secs(config.key_publish_lead_secs));
    }
}
