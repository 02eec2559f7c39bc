//! Responses: what watch does about an alert, as the operator's rules decide (`[[watch.responses]]`).
//!
//! A rule is a CEL expression over the alert (`when`), an action and its options:
//!
//! ```toml
//! [[watch.responses]]
//! name = "decoy-block"
//! when = "alert.attack == 'decoy_hit'"
//! action = "block"
//! ttl_secs = 3600
//! ```
//!
//! The actions: `revoke` (at the issuer and every gate; `scope` = token, session, family, user or client), `block`
//! (at every gate for `ttl_secs`: the alert's IP, or its range with `prefix_len`, user, client, session or token),
//! `step_up` (the session behind the alert must sign in again: a step-up demand at every gate), `notify` (a notice
//! for the user behind the alert) and `record` (only write it down). `observe_only = true`
//! decides as usual but does nothing: the action is recorded as observed. The allow-list (`[watch] allow`) names
//! addresses, ranges, apps and users that are never acted on; their alerts are still recorded.
//!
//! This module decides, and does no I/O: [`Responses::plan`] takes an alert and its evidence events and returns
//! the actions to take. `argus-watch` takes them and records each through [`ActionStore`].

mod allow;
mod store;
mod target;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use argus_model::Event;
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::pipeline::ConfigError;

pub use allow::AllowList;
pub use store::{
    ActionFilter, ActionRecord, ActionStatus, ActionStore, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, Notification,
    TIMELINE_SCAN, TimelineEntry, TimelinePage, TimelineQuery, UndoRefusal,
};
pub use target::Target;

/// Most response rules a configuration may have.
pub const MAX_RULES: usize = 256;
/// Longest `when` expression, in bytes.
pub const MAX_WHEN_BYTES: usize = 4096;
/// Longest rule name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest block: 30 days. An attacker blocked for longer is better handled by a firewall rule.
pub const MAX_BLOCK_SECS: u64 = 30 * 24 * 3600;

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Revoke at the issuer (refresh tokens, sessions) and at every gate (live access tokens).
    Revoke,
    /// Refuse the alert's key at every gate until the block expires.
    Block,
    /// Demand a fresh sign-in of the session behind the alert: every gate answers its tokens from the old sign-in
    /// with the RFC 9470 challenge (the issuer's step-up demand), so a thief holding them is stopped.
    StepUp,
    /// Tell the user behind the alert (a notice of the issuer's, and a notification for the watch API).
    Notify,
    /// Only record that the rule matched.
    Record,
}

impl ActionKind {
    /// The name in configuration, events, the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Block => "block",
            Self::StepUp => "step_up",
            Self::Notify => "notify",
            Self::Record => "record",
        }
    }
}

impl std::str::FromStr for ActionKind {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Revoke, Self::Block, Self::StepUp, Self::Notify, Self::Record]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAction(s.chars().take(64).collect()))
    }
}

/// A name that is no [`ActionKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(String);

/// What a `revoke` covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeScope {
    /// One access token (`jti`).
    Token,
    /// One sign-in session (`sid`): its access and refresh tokens.
    Session,
    /// One refresh-token family: one sign-in of one app, across rotations.
    Family,
    /// Every token of a user (`sub`).
    User,
    /// Every token of an app (`client_id`).
    Client,
}

/// `[[watch.responses]]`: one response rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRuleConfig {
    /// Names the rule in actions, logs and the API: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`, unique.
    pub name: String,
    /// A CEL expression over `alert`: `attack`, `severity` (`low` .. `critical`), `severity_level` (1 .. 4),
    /// `detector`, `key_type`, `key`, `count`, `status`, `first_seen` and `last_seen` (Unix seconds),
    /// `duration_secs`, `evidence_count` and `feature` (`name`, `observed`, `threshold`, `baseline`, `deviation`,
    /// `leak`, `explanation`; `baseline` and `deviation` are `null` when the detector learns none). The rule
    /// matches when it evaluates to `true`; anything else, an error included, does not match.
    pub when: String,
    /// `revoke`, `block`, `step_up`, `notify` or `record`.
    pub action: ActionKind,
    /// `revoke` only, and required there: `token`, `session`, `family`, `user` or `client`. The value comes from
    /// the alert's key when it is of that type, else from its evidence events when they all name the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RevokeScope>,
    /// `block` only, and required there: how long the block lasts, 1 s to 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// `block` of an IP alert only: block the address's whole range of this prefix length (e.g. 24 blocks the
    /// /24 of an IPv4 address; up to 32 for IPv4 and 128 for IPv6, longer prefixes block the address alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// Decide, log "would have" and record the action as observed, but do nothing. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observe_only: bool,
}

/// A compiled rule.
struct Rule {
    config: ResponseRuleConfig,
    program: cel::Program,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("name", &self.config.name).field("when", &self.config.when).finish()
    }
}

/// The compiled response rules and allow-list.
pub struct Responses {
    rules: Vec<Rule>,
    allow: AllowList,
    env: Arc<cel::Env>,
}

impl std::fmt::Debug for Responses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responses").field("rules", &self.rules).field("allow", &self.allow).finish_non_exhaustive()
    }
}

/// One action to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAction {
    /// The rule that decided it.
    pub rule: String,
    pub kind: ActionKind,
    /// What it applies to.
    pub target: Target,
    /// How long a block lasts.
    pub ttl: Option<Duration>,
    /// Record only: the rule is observe-only.
    pub observe_only: bool,
}

/// A matching rule that leads to no action, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    pub rule: String,
    /// E.g. "the alert names no session", "ip:10.0.0.1 is allow-listed (10.0.0.0/8)".
    pub reason: String,
}

/// What to do about one alert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The actions, in rule order.
    pub actions: Vec<PlannedAction>,
    /// Rules that matched but lead to no action.
    pub passed: Vec<Passed>,
}

impl Responses {
    /// No rules: nothing is ever done.
    pub fn none() -> Self {
        Self { rules: Vec::new(), allow: AllowList::default(), env: Arc::new(cel::Env::stdlib()) }
    }

    /// Compiles `rules` and `allow`; an error names the first bad key (`watch.responses[2].when`, ...).
    pub fn compile(rules: &[ResponseRuleConfig], allow: &[String]) -> Result<Self, ConfigError> {
        if rules.len() > MAX_RULES {
            return Err(ConfigError::new("watch.responses", format!("at most {MAX_RULES} rules")));
        }
        let env = Arc::new(cel::Env::stdlib());
        let mut compiled: Vec<Rule> = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let key = |field: &str| format!("watch.responses[{i}].{field}");
            check_rule(rule, &key)?;
            if compiled.iter().any(|r| r.config.name == rule.name) {
                return Err(ConfigError::new(key("name"), format!("{:?} is used by another rule", rule.name)));
            }
            let program = compile_when(&env, &rule.when).map_err(|reason| ConfigError::new(key("when"), reason))?;
            compiled.push(Rule { config: rule.clone(), program });
        }
        let allow = AllowList::parse(allow)?;
        Ok(Self { rules: compiled, allow, env })
    }

    /// Whether there is any rule at all (without rules, alerts need no evaluation).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The names of the rules whose `when` is true for `alert`, in order.
    pub fn matching(&self, alert: &Alert) -> Vec<&str> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let value = alert_value(alert);
        self.rules.iter().filter(|r| self.evaluate(r, &value)).map(|r| r.config.name.as_str()).collect()
    }

    /// What to do about `alert`, given the events its evidence names (those still in the audit log, in any order):
    /// one action per matching rule whose target can be told and is not allow-listed. An alert whose key is
    /// allow-listed, or whose evidence comes only from allow-listed callers, gets no action at all.
    pub fn plan(&self, alert: &Alert, evidence: &[Event]) -> Plan {
        let matching = self.matching(alert);
        let mut plan = Plan::default();
        if matching.is_empty() {
            return plan;
        }
        let allowed = self.allow.allows_alert(alert, evidence);
        for rule in self.rules.iter().filter(|r| matching.contains(&r.config.name.as_str())) {
            let c = &rule.config;
            let passed = |reason: String| Passed { rule: c.name.clone(), reason };
            if let Some(reason) = &allowed {
                plan.passed.push(passed(reason.clone()));
                continue;
            }
            match target::resolve(c, alert, evidence) {
                Err(reason) => plan.passed.push(passed(reason)),
                Ok(target) => match self.allow.allows(&target) {
                    Some(entry) => plan.passed.push(passed(format!("{target} is allow-listed ({entry})"))),
                    None => plan.actions.push(PlannedAction {
                        rule: c.name.clone(),
                        kind: c.action,
                        target,
                        ttl: c.ttl_secs.map(Duration::from_secs),
                        observe_only: c.observe_only,
                    }),
                },
            }
        }
        plan
    }

    /// Whether the rule's `when` is `true`. The interpreter is third-party code run on values attackers choose
    /// (keys, user names): a panic in it is a non-match, not the end of watch.
    fn evaluate(&self, rule: &Rule, alert: &cel::Value) -> bool {
        let mut ctx = cel::Context::with_env(Arc::clone(&self.env));
        ctx.add_variable_from_value("alert", alert.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| rule.program.execute(&ctx)));
        matches!(outcome, Ok(Ok(cel::Value::Bool(true))))
    }
}

/// Checks a rule's name and the options its action needs.
fn check_rule(rule: &ResponseRuleConfig, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let name_ok = !rule.name.is_empty()
        && rule.name.len() <= MAX_NAME_BYTES
        && rule.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !name_ok {
        return Err(ConfigError::new(key("name"), format!("1 to {MAX_NAME_BYTES} of a-z, 0-9, '-', '_', '.'")));
    }
    let only = |field: &str, action: &str| ConfigError::new(key(field), format!("only a {action} rule has it"));
    match rule.action {
        ActionKind::Revoke if rule.scope.is_none() => {
            return Err(ConfigError::new(
                key("scope"),
                "a revoke rule needs one: token, session, family, user, client",
            ));
        }
        ActionKind::Block => match rule.ttl_secs {
            None => return Err(ConfigError::new(key("ttl_secs"), "a block rule needs one")),
            Some(t) if t == 0 || t > MAX_BLOCK_SECS => {
                return Err(ConfigError::new(key("ttl_secs"), format!("must be from 1 to {MAX_BLOCK_SECS}")));
            }
            Some(_) => {}
        },
        _ => {}
    }
    if rule.action != ActionKind::Revoke && rule.scope.is_some() {
        return Err(only("scope", "revoke"));
    }
    if rule.action != ActionKind::Block && rule.ttl_secs.is_some() {
        return Err(only("ttl_secs", "block"));
    }
    if rule.action != ActionKind::Block && rule.prefix_len.is_some() {
        return Err(only("prefix_len", "block"));
    }
    if rule.prefix_len.is_some_and(|p| p == 0 || p > 128) {
        return Err(ConfigError::new(key("prefix_len"), "must be from 1 to 128"));
    }
    Ok(())
}

/// Parses `when` and checks that it reads nothing but `alert`.
fn compile_when(env: &cel::Env, source: &str) -> Result<cel::Program, String> {
    if source.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    if source.len() > MAX_WHEN_BYTES {
        return Err(format!("the expression is {} bytes long; at most {MAX_WHEN_BYTES}", source.len()));
    }
    // The parser is third-party code too; configuration is checked at load, so a panic is a refusal.
    let parsed = catch_unwind(AssertUnwindSafe(|| env.compile(source)))
        .map_err(|_| "the expression cannot be parsed".to_owned())?;
    let program = parsed.map_err(|e| {
        let message = e.to_string();
        format!("the expression does not parse: {}", message.lines().next().unwrap_or("").trim())
    })?;
    let references = program.references();
    if let Some(unknown) = references.variables().into_iter().find(|v| *v != "alert") {
        return Err(format!("unknown variable {unknown:?}; a response rule reads only `alert`"));
    }
    Ok(program)
}

/// The alert as CEL sees it (see [`ResponseRuleConfig::when`]). Built once per alert, shared by every rule.
fn alert_value(alert: &Alert) -> cel::Value {
    use std::collections::HashMap;
    let s = |v: &str| cel::Value::String(Arc::new(v.to_owned()));
    let int = |v: u64| cel::Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let opt = |v: Option<f64>| v.map_or(cel::Value::Null, cel::Value::Float);
    let f = &alert.feature;
    let feature: HashMap<String, cel::Value> = HashMap::from([
        ("name".into(), s(&f.name)),
        ("observed".into(), cel::Value::Float(f.observed)),
        ("threshold".into(), cel::Value::Float(f.threshold)),
        ("baseline".into(), opt(f.baseline)),
        ("deviation".into(), opt(f.deviation)),
        ("leak".into(), s(&f.leak)),
        ("explanation".into(), s(&f.explanation)),
    ]);
    let level = match alert.severity {
        crate::Severity::Low => 1,
        crate::Severity::Medium => 2,
        crate::Severity::High => 3,
        crate::Severity::Critical => 4,
    };
    let duration = alert.last_seen.as_secs().saturating_sub(alert.first_seen.as_secs()).max(0);
    let map: HashMap<String, cel::Value> = HashMap::from([
        ("id".into(), s(&alert.id)),
        ("detector".into(), s(&alert.detector)),
        ("attack".into(), s(alert.attack.as_str())),
        ("severity".into(), s(alert.severity.as_str())),
        ("severity_level".into(), cel::Value::Int(level)),
        ("key_type".into(), s(alert.key_type.as_str())),
        ("key".into(), s(&alert.key)),
        ("status".into(), s(alert.status.as_str())),
        ("count".into(), int(alert.count)),
        ("first_seen".into(), cel::Value::Int(alert.first_seen.as_secs())),
        ("last_seen".into(), cel::Value::Int(alert.last_seen.as_secs())),
        ("duration_secs".into(), cel::Value::Int(duration)),
        ("evidence_count".into(), int(alert.evidence.len() as u64)),
        ("feature".into(), cel::Value::from(feature)),
    ]);
    cel::Value::from(map)
}

#[cfg(test)]
mod tests;
