//! Stolen tokens and sessions: one token, session or refresh family used from a place its owner is not.
//!
//! Each access token (`jti`), sign-in session (`sid`) and refresh family keeps the few *contexts* it was used
//! from: a network (the IP's /16 or /48, see [`crate::actor::network`]) and a program (the user agent without
//! version numbers). Each user keeps the networks and programs it habitually uses. A draft fires when:
//!
//! - a token or family is used by a **second program** (a browser's token replayed from curl or a script): high;
//!   for a session, medium;
//! - an access token is used from a **network its user never used** (once the user's habits have been learned
//!   for `learn_secs`): medium. Moving between the user's own networks (home wifi, mobile data) is normal, and so
//!   is a session or refresh family, which live for days, turning up wherever its laptop or phone goes;
//! - a token, session or family **alternates between contexts** `flips` times within `concurrent_window_secs`:
//!   two holders using it at once. A clean move from one network to another is one switch and never fires;
//! - the issuer reports a rotated refresh token presented again (`RefreshReuse`): the family leaked. High.

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use argus_model::{Event, EventKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::actor::{agent, api_call, bounded, network, network_label};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::human;
use crate::evidence::EventRef;
use crate::keyed::{KeyState, Keyed};
use crate::pipeline::{ConfigError, Detector, Memory};

/// The detector's name in alerts.
pub const DETECTOR: &str = "token_use";

/// Contexts kept per token, session or family (the least recently used is replaced).
const CONTEXTS: usize = 4;
/// Networks and programs kept per user.
const HABITS: usize = 8;
/// The most `flips` can be set to.
const MAX_FLIPS: u32 = 16;

/// `[watch.detectors.token_use]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenUseConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The window in which alternating contexts mean "used by two at once", in seconds. Default `300`.
    pub concurrent_window_secs: NonZeroU64,
    /// Context switches within that window that fire. Default `4` (A, B, A, B, A): a phone that falls back from
    /// wifi to mobile data and back is two switches, one whose wifi flaps may make three. At most 16.
    pub flips: NonZeroU32,
    /// How long a user's habits must have been watched before a network new to the user counts, in seconds.
    /// Default `259200` (three days: long enough to have seen most people at home, at work and on the move).
    pub learn_secs: NonZeroU64,
    /// How long an access token's contexts are kept after its last use, in seconds. Default `3600` (access tokens
    /// live minutes).
    pub token_ttl_secs: NonZeroU64,
    /// How long a session's or family's contexts are kept after its last use, in seconds. Default `86400`.
    pub session_ttl_secs: NonZeroU64,
    /// How long a user's habits are kept after its last call, in seconds. Default `2592000` (30 days).
    pub user_ttl_secs: NonZeroU64,
    /// Keys tracked per table (tokens, sessions, families, users). Default `100000`.
    pub max_keys: NonZeroUsize,
}

impl Default for TokenUseConfig {
    fn default() -> Self {
        let secs = |s: u64| NonZeroU64::new(s).unwrap_or(NonZeroU64::MIN);
        Self {
            enabled: true,
            concurrent_window_secs: secs(300),
            flips: NonZeroU32::new(4).unwrap_or(NonZeroU32::MIN),
            learn_secs: secs(3 * 86_400),
            token_ttl_secs: secs(3600),
            session_ttl_secs: secs(86_400),
            user_ttl_secs: secs(30 * 86_400),
            max_keys: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl TokenUseConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.flips.get() > MAX_FLIPS {
            return Err(ConfigError::new("watch.detectors.token_use.flips", format!("must be at most {MAX_FLIPS}")));
        }
        Ok(())
    }
}

/// Where a credential was used from.
#[derive(Clone, Debug)]
struct Context {
    network: u64,
    /// 0: no user agent.
    agent: u64,
    first: Timestamp,
    last: Timestamp,
    /// The first event from this context.
    event: EventRef,
    /// The first IP seen in this context, for explanations.
    ip: Box<str>,
}

/// One credential's contexts and recent switches between them.
#[derive(Debug, Default)]
struct Trail {
    contexts: Vec<Context>,
    /// Index of the context of the latest use; `u8::MAX` before the first.
    current: u8,
    /// Times of the latest switches, at most `flips` of them.
    switches: Vec<Timestamp>,
}

impl KeyState for Trail {
    fn heap_bytes(&self) -> usize {
        self.contexts.capacity() * std::mem::size_of::<Context>()
            + self.contexts.iter().map(|c| c.ip.len() + c.event.heap_bytes()).sum::<usize>()
            + self.switches.capacity() * std::mem::size_of::<Timestamp>()
    }
}

/// A user's habitual networks and programs.
#[derive(Debug)]
struct Habits {
    since: Timestamp,
    /// (network, last seen), at most [`HABITS`].
    networks: Vec<(u64, Timestamp)>,
}

impl KeyState for Habits {
    fn heap_bytes(&self) -> usize {
        self.networks.capacity() * std::mem::size_of::<(u64, Timestamp)>()
    }
}

impl Habits {
    fn knows(&self, net: u64) -> bool {
        self.networks.iter().any(|(n, _)| *n == net)
    }

    fn learn(&mut self, net: u64, now: Timestamp) {
        if let Some(slot) = self.networks.iter_mut().find(|(n, _)| *n == net) {
            slot.1 = slot.1.max(now);
        } else if self.networks.len() < HABITS {
            self.networks.reserve_exact(1);
            self.networks.push((net, now));
        } else if let Some(oldest) = self.networks.iter_mut().min_by_key(|(_, t)| *t) {
            *oldest = (net, now);
        }
    }
}

/// What was used, by whom, from where.
struct Use<'a> {
    key_type: KeyType,
    key: &'a str,
    network: u64,
    agent: u64,
    ip: &'a str,
    /// Whether the user's habits are learned and do not include this network.
    network_new_to_user: bool,
}

/// The detector's state.
#[derive(Debug)]
pub struct TokenUse {
    window: Duration,
    flips: usize,
    learn: Duration,
    tokens: Keyed<Trail>,
    sessions: Keyed<Trail>,
    families: Keyed<Trail>,
    users: Keyed<Habits>,
}

impl TokenUse {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &TokenUseConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let keys = config.max_keys.get();
        let secs = |s: NonZeroU64| Duration::from_secs(s.get());
        Ok(Self {
            window: secs(config.concurrent_window_secs),
            flips: config.flips.get() as usize,
            learn: secs(config.learn_secs),
            tokens: Keyed::new(keys, secs(config.token_ttl_secs)),
            sessions: Keyed::new(keys, secs(config.session_ttl_secs)),
            families: Keyed::new(keys, secs(config.session_ttl_secs)),
            users: Keyed::new(keys, secs(config.user_ttl_secs)),
        })
    }

    /// Checks the user's habits for `net` and then learns it.
    fn network_new_to_user(&mut self, sub: Option<&str>, net: u64, now: Timestamp) -> bool {
        let Some(sub) = sub else {
            return false;
        };
        let habits = self.users.entry(bounded(sub), now, || Habits { since: now, networks: Vec::new() });
        let new = now.since(habits.since) >= self.learn && !habits.networks.is_empty() && !habits.knows(net);
        habits.learn(net, now);
        new
    }

    fn observe_use(&mut self, event: &Event, u: &Use<'_>) -> Vec<AlertDraft> {
        let (window, flips) = (self.window, self.flips);
        let table = match u.key_type {
            KeyType::Token => &mut self.tokens,
            KeyType::Session => &mut self.sessions,
            _ => &mut self.families,
        };
        let trail = table.entry(u.key, event.time, Trail::default);
        let mut drafts = Vec::new();
        let at = match trail.contexts.iter().position(|c| c.network == u.network && c.agent == u.agent) {
            Some(at) => at,
            None => {
                drafts.extend(novelty(trail, u, event));
                remember(trail, u, event)
            }
        };
        let previous = trail.current;
        trail.current = at as u8;
        trail.contexts[at].last = trail.contexts[at].last.max(event.time);
        if previous != u8::MAX && usize::from(previous) != at {
            if trail.switches.len() == flips {
                trail.switches.remove(0);
            }
            trail.switches.push(event.time);
            let first = trail.switches[0];
            if trail.switches.len() == flips && event.time.since(first) <= window {
                drafts.push(concurrent(trail, u, event, first, window));
            }
        }
        drafts
    }
}

/// The draft for a context never seen on this credential, if it is suspicious.
fn novelty(trail: &Trail, u: &Use<'_>, event: &Event) -> Option<AlertDraft> {
    let first_use = trail.contexts.first()?;
    let new_agent = u.agent != 0
        && trail.contexts.iter().any(|c| c.agent != 0)
        && trail.contexts.iter().all(|c| c.agent != u.agent);
    let new_network = trail.contexts.iter().all(|c| c.network != u.network);
    let (severity, what, feature) = if new_agent {
        let severity = if u.key_type == KeyType::Session { Severity::Medium } else { Severity::High };
        (severity, "a second program (user agent)", "new_user_agent")
    } else if new_network && u.network_new_to_user && u.key_type == KeyType::Token {
        // Only an access token: it lives minutes, while a session or a refresh family lives for days and goes
        // wherever its laptop or phone goes.
        (Severity::Medium, "a network its user never used", "new_network")
    } else {
        return None;
    };
    let explanation = format!(
        "{} {} used from {what}: first from {} ({}), now from {} ({})",
        u.key_type,
        u.key,
        first_use.ip,
        network_label(&first_use.ip),
        u.ip,
        network_label(u.ip),
    );
    let mut evidence: Vec<String> = trail.contexts.iter().map(|c| c.event.id()).collect();
    evidence.push(event.id.clone());
    Some(draft(u, event, severity, first_use.first, feature, trail.contexts.len() as f64 + 1.0, explanation, evidence))
}

/// The draft for a credential that alternated between contexts too often.
fn concurrent(trail: &Trail, u: &Use<'_>, event: &Event, first: Timestamp, window: Duration) -> AlertDraft {
    let ips: Vec<&str> = trail.contexts.iter().map(|c| &*c.ip).collect();
    let explanation = format!(
        "{} {} switched {} times within ~{} s between {} places ({}): used by two holders at once (fires at {} \
         switches within {})",
        u.key_type,
        u.key,
        trail.switches.len(),
        event.time.since(first).as_secs().max(1),
        trail.contexts.len(),
        ips.join(", "),
        trail.switches.len(),
        human(window)
    );
    let evidence = trail.contexts.iter().map(|c| c.event.id()).chain(std::iter::once(event.id.clone())).collect();
    let switches = trail.switches.len() as f64;
    draft(u, event, Severity::High, first, "context_switches", switches, explanation, evidence)
}

#[allow(clippy::too_many_arguments)]
fn draft(
    u: &Use<'_>,
    event: &Event,
    severity: Severity,
    first_seen: Timestamp,
    feature: &str,
    observed: f64,
    explanation: String,
    evidence: Vec<String>,
) -> AlertDraft {
    AlertDraft {
        detector: DETECTOR.to_owned(),
        attack: Attack::StolenToken,
        key_type: u.key_type,
        key: u.key.to_owned(),
        severity,
        time: event.time,
        first_seen: Some(first_seen),
        feature: Feature {
            name: feature.to_owned(),
            observed,
            threshold: observed,
            leak: "none".to_owned(),
            explanation,
            ..Feature::default()
        },
        evidence,
    }
}

/// Adds the use's context to the trail (replacing the least recently used if full); returns its index.
fn remember(trail: &mut Trail, u: &Use<'_>, event: &Event) -> usize {
    let context = Context {
        network: u.network,
        agent: u.agent,
        first: event.time,
        last: event.time,
        event: EventRef::new(&event.id),
        ip: u.ip.into(),
    };
    if trail.contexts.len() < CONTEXTS {
        trail.contexts.reserve_exact(1);
        trail.contexts.push(context);
        return trail.contexts.len() - 1;
    }
    let oldest = (0..trail.contexts.len()).min_by_key(|&i| trail.contexts[i].last).unwrap_or(0);
    trail.contexts[oldest] = context;
    oldest
}

impl Detector for TokenUse {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let p = &event.principal;
        let family = match &event.kind {
            EventKind::RefreshReuse(reuse) => return vec![reuse_draft(event, bounded(&reuse.family))],
            EventKind::TokenIssued(issued) => issued.family.as_deref(),
            EventKind::ApiCall(_) => None,
            _ => return Vec::new(),
        };
        let Some(ip) = p.ip.as_deref().map(bounded) else {
            return Vec::new();
        };
        let net = network(ip);
        let mut u = Use {
            key_type: KeyType::Token,
            key: "",
            network: net,
            agent: agent(p).unwrap_or(0),
            ip,
            network_new_to_user: self.network_new_to_user(p.sub.as_deref(), net, event.time),
        };
        let mut drafts = Vec::new();
        if api_call(event).is_some() {
            if let Some(jti) = p.jti.as_deref() {
                u.key = bounded(jti);
                drafts.extend(self.observe_use(event, &u));
            }
            if let Some(sid) = p.sid.as_deref() {
                u.key_type = KeyType::Session;
                u.key = bounded(sid);
                drafts.extend(self.observe_use(event, &u));
            }
        } else if let Some(family) = family {
            u.key_type = KeyType::Family;
            u.key = bounded(family);
            drafts.extend(self.observe_use(event, &u));
        }
        drafts
    }

    fn memory(&self) -> Memory {
        let tables = [&self.tokens, &self.sessions, &self.families];
        Memory {
            keys: tables.iter().map(|t| t.len()).sum::<usize>() + self.users.len(),
            bytes: tables.iter().map(|t| t.heap_bytes()).sum::<usize>() + self.users.heap_bytes(),
        }
    }
}

fn reuse_draft(event: &Event, family: &str) -> AlertDraft {
    let from = event.principal.ip.as_deref().map(|ip| format!(" from {}", bounded(ip))).unwrap_or_default();
    let u = Use { key_type: KeyType::Family, key: family, network: 0, agent: 0, ip: "", network_new_to_user: false };
    let explanation = format!(
        "refresh family {family}: a rotated refresh token was presented again{from}, so two holders have it; the \
         issuer revoked the family"
    );
    draft(&u, event, Severity::High, event.time, "refresh_token_reuse", 1.0, explanation, vec![event.id.clone()])
}

#[cfg(test)]
mod tests;
