//! Configurable triggers (`[[issuer.triggers]]`): rules over events, each with actions.
//!
//! ```toml
//! [[issuer.triggers]]
//! name = "new-device-step-up"
//! when = "event.type == 'Account' && event.activity == 'new_device'"
//! actions = ["require_step_up", "notify_user"]
//! message = "New sign-in from {principal.ip}"
//! ```
//!
//! `when` is a CEL expression over `event`, the event's JSON form (`event.type`, `event.node`, `event.time`,
//! `event.principal.sub`, `event.activity`, `event.outcome.result` ...). A rule matches when it is `true`; anything
//! else, an evaluation error included, does not match. The actions: `notify_user` (a notice to the event's user,
//! its summary rendered from `message`), `admin_webhook` (the event to the administrators' webhook),
//! `require_step_up` (the event's session must sign in again before its next call at any gate) and
//! `revoke_session` (the event's session ends, its tokens refused at every gate).
//!
//! Shipped defaults ([`default_triggers`]) notify the user of a new device, a changed password or factor and a
//! first grant to an app. Configured rules are added to them; one with a default's name replaces it (so
//! `enabled = false` turns that default off), and `default_triggers = false` drops them all.
//!
//! This module decides and does no I/O: [`Triggers::evaluate`] takes an event and returns the actions to take.
//! Events caused by triggers' own actions are never evaluated ([`caused_by_trigger`]), so a rule cannot feed
//! itself.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use argus_model::{Event, EventKind};
use serde::{Deserialize, Serialize};

/// Most trigger rules a configuration may have.
pub const MAX_TRIGGERS: usize = 128;
/// Longest `when` expression, in bytes.
pub const MAX_WHEN_BYTES: usize = 4096;
/// Longest rule name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest `message` template, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 500;
/// Longest value a `message` placeholder renders to, in characters (a user agent can be long).
const MAX_PLACEHOLDER_CHARS: usize = 120;
/// The `by` of revocations a trigger makes; such `Revoked` events are not evaluated again.
pub const TRIGGER_ACTOR: &str = "trigger";
/// The event types a rule may name in `events`.
pub const EVENT_TYPES: &[&str] =
    &["ApiCall", "Login", "TokenIssued", "RefreshReuse", "Revoked", "Alert", "AdminChange", "Action", "Account"];

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerAction {
    /// Leave a notice for the event's user (`principal.sub`), delivered as notices are (account page, log,
    /// webhook, e-mail).
    NotifyUser,
    /// Send the event to the administrators' webhook (`[notify] admin_webhook_url`).
    AdminWebhook,
    /// The event's session (`principal.sid`) must sign in again: its tokens from an earlier sign-in get the RFC 9470
    /// challenge at every gate.
    RequireStepUp,
    /// End the event's session (`principal.sid`): its refresh tokens at the issuer and its access tokens at every
    /// gate.
    RevokeSession,
}

impl TriggerAction {
    /// The name in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotifyUser => "notify_user",
            Self::AdminWebhook => "admin_webhook",
            Self::RequireStepUp => "require_step_up",
            Self::RevokeSession => "revoke_session",
        }
    }
}

/// `[[issuer.triggers]]`: one rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Names the rule in logs and webhooks: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`, unique. A rule named like a
    /// shipped default replaces it.
    pub name: String,
    /// The event types (`type`) the rule looks at, e.g. `["Account", "Login"]`; default all. Naming them spares
    /// evaluating the rule on every other event — the gate's `ApiCall` events are one per API call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// A CEL expression over `event`, the event's JSON form. The rule matches when it evaluates to `true`.
    pub when: String,
    /// `notify_user`, `admin_webhook`, `require_step_up`, `revoke_session`; at least one.
    pub actions: Vec<TriggerAction>,
    /// The notice's text for `notify_user` (also sent with `admin_webhook`): `{field.path}` is replaced by that field
    /// of the event (`{principal.ip}`, `{activity}`, `{time}`), `unknown` when it is absent; `{{` and `}}` are
    /// braces. Default: the issuer's own text for account activity, else the rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Default `true`; `false` keeps the rule in the file (checked) but never evaluates it.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Decide and log what would be done, but do nothing. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observe_only: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The shipped defaults: new device, password or factor changed, first grant to an app → notify the user.
pub fn default_triggers() -> Vec<TriggerConfig> {
    let notify = |name: &str, when: &str| TriggerConfig {
        name: name.into(),
        events: vec!["Account".into()],
        when: when.into(),
        actions: vec![TriggerAction::NotifyUser],
        message: None,
        enabled: true,
        observe_only: false,
    };
    vec![
        notify("new-device", "event.type == 'Account' && event.activity == 'new_device'"),
        notify(
            "credentials-changed",
            "event.type == 'Account' && event.activity in ['password_changed', 'factor_added', 'factor_removed']",
        ),
        notify("first-grant", "event.type == 'Account' && event.activity == 'first_grant'"),
    ]
}

/// A rule that cannot be used: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("triggers[{index}] ({name:?}): {problem}")]
pub struct TriggerError {
    /// The rule's position among the configured ones.
    pub index: usize,
    pub name: String,
    pub problem: Problem,
}

/// What is wrong with a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("name: 1 to {MAX_NAME_BYTES} of a-z, 0-9, '-', '_', '.'")]
    BadName,
    #[error("name: used by another rule")]
    DuplicateName,
    #[error("actions: name at least one")]
    NoActions,
    #[error("actions: {0} is named twice")]
    DuplicateAction(&'static str),
    #[error(
        "events: {0:?} is not an event type (ApiCall, Login, TokenIssued, RefreshReuse, Revoked, Alert, AdminChange, Account)"
    )]
    UnknownEventType(String),
    #[error("when: {0}")]
    When(ExprError),
    #[error("message: {0}")]
    Message(String),
    #[error("at most {MAX_TRIGGERS} rules")]
    TooMany,
}

/// A `when` that does not compile, with its position in the expression when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    /// 1-based line and column in the expression.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl std::fmt::Display for ExprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One action to take for one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAction {
    /// The rule that decided it.
    pub rule: String,
    pub action: TriggerAction,
    /// The rule's `message` rendered over the event, when it has one.
    pub message: Option<String>,
    /// Log it, do nothing.
    pub observe_only: bool,
}

struct Rule {
    config: TriggerConfig,
    program: cel::Program,
    message: Option<Template>,
}

impl Rule {
    fn applies_to(&self, type_name: &str) -> bool {
        self.config.events.is_empty() || self.config.events.iter().any(|t| t == type_name)
    }
}

/// The compiled, enabled rules.
pub struct Triggers {
    rules: Vec<Rule>,
    env: Arc<cel::Env>,
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| r.config.name.as_str()).collect();
        f.debug_struct("Triggers").field("rules", &names).finish()
    }
}

/// The rules in force: the defaults (when `defaults`), each replaced by a configured rule of the same name, then
/// the other configured rules in order.
pub fn effective(configured: &[TriggerConfig], defaults: bool) -> Vec<TriggerConfig> {
    let mut rules = if defaults { default_triggers() } else { Vec::new() };
    for rule in configured {
        match rules.iter_mut().find(|r| r.name == rule.name) {
            Some(slot) => *slot = rule.clone(),
            None => rules.push(rule.clone()),
        }
    }
    rules
}

impl Triggers {
    /// Compile the configured rules (checking all, disabled ones included) and keep the enabled ones of
    /// [`effective`]. The error names the first bad configured rule.
    pub fn compile(configured: &[TriggerConfig], defaults: bool) -> Result<Self, TriggerError> {
        let env = Arc::new(cel::Env::stdlib());
        if configured.len() > MAX_TRIGGERS {
            return Err(TriggerError { index: MAX_TRIGGERS, name: String::new(), problem: Problem::TooMany });
        }
        // Every configured rule compiled once, by name (names are unique).
        let mut checked = HashMap::with_capacity(configured.len());
        for (index, rule) in configured.iter().enumerate() {
            let fail = |problem| TriggerError { index, name: rule.name.clone(), problem };
            if checked.contains_key(rule.name.as_str()) {
                return Err(fail(Problem::DuplicateName));
            }
            checked.insert(rule.name.as_str(), compile_rule(&env, rule).map_err(fail)?);
        }
        let rules = effective(configured, defaults)
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| match checked.remove(r.name.as_str()) {
                Some(rule) => Ok(rule),
                // A shipped default that no configured rule replaces (the tests compile every one).
                None => compile_rule(&env, &r).map_err(|problem| TriggerError {
                    index: configured.len(),
                    name: r.name.clone(),
                    problem,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules, env })
    }

    /// No rules at all.
    pub fn none() -> Self {
        Self { rules: Vec::new(), env: Arc::new(cel::Env::stdlib()) }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule looks at events of type `type_name`.
    pub fn wants(&self, type_name: &str) -> bool {
        self.rules.iter().any(|r| r.applies_to(type_name))
    }

    /// Whether any rule looks at events other than `Account` ones: only then must the issuer follow the whole
    /// event bus (account activity is evaluated where it happens).
    pub fn wants_other_than_account(&self) -> bool {
        self.rules.iter().any(|r| r.config.events.is_empty() || r.config.events.iter().any(|t| t != "Account"))
    }

    /// What to do about `event`: each action of each matching rule, in rule order, each action once (the first
    /// rule naming it decides its message). Nothing for an event a trigger caused.
    pub fn evaluate(&self, event: &Event) -> Vec<PlannedAction> {
        if !self.wants(event.type_name()) || caused_by_trigger(event) {
            return Vec::new();
        }
        let Ok(json) = serde_json::to_value(event) else { return Vec::new() };
        let Ok(value) = cel::to_value(&json) else { return Vec::new() };
        let mut planned: Vec<PlannedAction> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies_to(event.type_name()) && self.matches(r, &value)) {
            for &action in &rule.config.actions {
                if planned.iter().any(|p| p.action == action) {
                    continue;
                }
                planned.push(PlannedAction {
                    rule: rule.config.name.clone(),
                    action,
                    message: rule.message.as_ref().map(|t| t.render(&json)),
                    observe_only: rule.config.observe_only,
                });
            }
        }
        planned
    }

    /// The interpreter is third-party code run on values attackers choose (user names, user agents): a panic in it
    /// is a non-match.
    fn matches(&self, rule: &Rule, event: &cel::Value) -> bool {
        let mut ctx = cel::Context::with_env(Arc::clone(&self.env));
        ctx.add_variable_from_value("event", event.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| rule.program.execute(&ctx)));
        matches!(outcome, Ok(Ok(cel::Value::Bool(true))))
    }
}

/// Events that triggers' own actions cause, which are never evaluated: watch's and operators' `Action` events, and
/// revocations a trigger made. Without this, "on every revocation, revoke the session" would feed itself.
pub fn caused_by_trigger(event: &Event) -> bool {
    match &event.kind {
        EventKind::Action(_) => true,
        EventKind::Revoked(r) => r.by == TRIGGER_ACTOR,
        _ => false,
    }
}

fn compile_rule(env: &cel::Env, rule: &TriggerConfig) -> Result<Rule, Problem> {
    let name_ok = !rule.name.is_empty()
        && rule.name.len() <= MAX_NAME_BYTES
        && rule.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !name_ok {
        return Err(Problem::BadName);
    }
    if rule.actions.is_empty() {
        return Err(Problem::NoActions);
    }
    for (i, a) in rule.actions.iter().enumerate() {
        if rule.actions[..i].contains(a) {
            return Err(Problem::DuplicateAction(a.as_str()));
        }
    }
    if let Some(bad) = rule.events.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(Problem::UnknownEventType(bad.clone()));
    }
    let program = compile_when(env, &rule.when).map_err(Problem::When)?;
    let message = rule.message.as_deref().map(Template::parse).transpose().map_err(Problem::Message)?;
    Ok(Rule { config: rule.clone(), program, message })
}

/// Parse `when` and check that it reads nothing but `event`.
pub fn compile_when(env: &cel::Env, source: &str) -> Result<cel::Program, ExprError> {
    let plain = |message: String| ExprError { position: None, message };
    if source.trim().is_empty() {
        return Err(plain("the expression is empty".into()));
    }
    if source.len() > MAX_WHEN_BYTES {
        return Err(plain(format!("the expression is {} bytes long; at most {MAX_WHEN_BYTES}", source.len())));
    }
    // The parser is third-party code; configuration is checked at load, so a panic is a refusal.
    let parsed = catch_unwind(AssertUnwindSafe(|| env.compile(source)))
        .map_err(|_| plain("the expression cannot be parsed".into()))?;
    let program = parsed.map_err(|e| parse_error(source, &e))?;
    let references = program.references();
    if let Some(unknown) = references.variables().into_iter().find(|v| *v != "event") {
        return Err(ExprError {
            position: word_position(source, unknown),
            message: format!("unknown variable {unknown:?}; a trigger reads only `event`"),
        });
    }
    Ok(program)
}

/// The first parser error, at its line and column (the parser's, both 1-based).
pub fn parse_error(source: &str, errors: &cel::ParseErrors) -> ExprError {
    let Some(first) = errors.errors.first() else {
        return ExprError { position: None, message: "the expression does not parse".into() };
    };
    let line = usize::try_from(first.pos.0).ok().filter(|l| *l >= 1);
    let column = usize::try_from(first.pos.1).ok();
    let position = line.zip(column).filter(|(l, c)| *l <= source.lines().count().max(1) && *c >= 1);
    ExprError { position, message: first.msg.lines().next().unwrap_or("syntax error").trim().to_owned() }
}

/// Where `word` first appears in `source` as a whole identifier, 1-based.
fn word_position(source: &str, word: &str) -> Option<(usize, usize)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (l, line) in source.lines().enumerate() {
        for (at, _) in line.match_indices(word) {
            let before = line[..at].chars().next_back();
            let after = line[at + word.len()..].chars().next();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                return Some((l + 1, line[..at].chars().count() + 1));
            }
        }
    }
    None
}

/// A `message`: text with `{field.path}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template(Vec<Piece>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A path into the event's JSON.
    Field(Vec<String>),
}

impl Template {
    fn parse(source: &str) -> Result<Self, String> {
        if source.len() > MAX_MESSAGE_BYTES {
            return Err(format!("at most {MAX_MESSAGE_BYTES} bytes"));
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let end = rest.find('}').ok_or_else(|| format!("the '{{' at byte {at} is not closed"))?;
                    let path = &rest[..end];
                    let ok = !path.is_empty()
                        && path
                            .split('.')
                            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                    if !ok {
                        return Err(format!("{{{path}}} is not a field path like {{principal.ip}}"));
                    }
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Field(path.split('.').map(str::to_owned).collect()));
                    for _ in 0..=path.chars().count() {
                        chars.next();
                    }
                }
                '}' => return Err(format!("the '}}' at byte {at} closes nothing; write '}}}}' for a brace")),
                c => text.push(c),
            }
        }
        pieces.push(Piece::Text(text));
        pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
        Ok(Self(pieces))
    }

    fn render(&self, event: &serde_json::Value) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(path) => {
                    let value = path.iter().try_fold(event, |v, key| v.get(key.as_str()));
                    let shown = match value {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
                        _ => "unknown".to_owned(),
                    };
                    // Control characters from attacker-chosen values (user agents) stay out of notices and mails.
                    out.extend(shown.chars().filter(|c| !c.is_control()).take(MAX_PLACEHOLDER_CHARS));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
