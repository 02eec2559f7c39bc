//! Configured triggers at work (`[[issuer.triggers]]`, decided by `argus_policy::triggers`): the issuer carries out
//! what the rules decide for an event — a notice to the user, a message to the administrators' webhook, a step-up
//! demand or the end of the session at every gate.
//!
//! Account activity (`Account` events) is evaluated where it happens ([`Issuer::account_activity`]): the notice is
//! stored before the answer goes out, carries the text of the code that saw the activity, and cannot be lost to a
//! busy bus. Every other event — the issuer's, the gate's, watch's — is evaluated by a task following the event bus,
//! started only when some rule looks at events other than account activity (the shipped defaults do not), so the
//! gate's one-event-per-call costs nothing here unless asked for.
//!
//! Loops: actions emit no event a rule sees again — revocations made here are `Revoked` events `by` "trigger",
//! which are never evaluated (`argus_policy::triggers::caused_by_trigger`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use argus_bus::Received;
use argus_model::id::new_id;
use argus_model::{Activity, ControlMessage, Event, EventKind, LoginOutcome, Principal, RevocationScope};
use argus_oauth::StorageError;
use argus_oauth::admin::{admin_revocation, backstop_revocations};
use argus_oauth::notice::{Channel, Delivery, NoticeBody, device_label};
use argus_oauth::step_up_demand::step_up_demand;
use argus_policy::triggers::{PlannedAction, TRIGGER_ACTOR, TriggerAction, Triggers};
use serde_json::json;

use crate::config::IssuerConfig;
use crate::outbox::NotifyConfig;
use crate::state::Issuer;

impl IssuerConfig {
    /// Check the triggers against `[notify]`: an enabled `admin_webhook` action needs `notify.admin_webhook_url`.
    /// (Each rule alone is checked by [`IssuerConfig::validate`].)
    pub fn check_triggers(&self, notify: &NotifyConfig) -> Result<(), String> {
        let needs_url = self.triggers.iter().find(|t| t.enabled && t.actions.contains(&TriggerAction::AdminWebhook));
        match needs_url {
            Some(t) if notify.admin_webhook_url.is_none() => {
                Err(format!("issuer.triggers ({:?}): admin_webhook needs notify.admin_webhook_url", t.name))
            }
            _ => Ok(()),
        }
    }
}

/// The issuer's triggers, `config.notify` being the `[notify]` it runs with.
pub(crate) fn compile(config: &IssuerConfig) -> Result<Triggers, String> {
    config.check_triggers(&config.notify)?;
    Triggers::compile(&config.triggers, config.default_triggers).map_err(|e| format!("issuer.{e}"))
}

/// What became of one planned action.
enum Outcome {
    Done(String),
    /// Nothing to do it to, and why.
    Skipped(&'static str),
}

impl Issuer {
    /// Evaluate the triggers on `event` and carry out what they decide. `notice`: what the code that saw account
    /// activity would tell the user; a rule's own `message` replaces its summary. Failures are logged: a trigger
    /// never fails the request that caused its event.
    pub(crate) async fn run_triggers(&self, event: &Event, notice: Option<&NoticeBody>) {
        for planned in self.triggers.evaluate(event) {
            let (rule, action) = (planned.rule.as_str(), planned.action.as_str());
            if planned.observe_only {
                tracing::info!(rule, action, event = %event.id, "trigger matched (observe only: nothing done)");
                continue;
            }
            let outcome = match planned.action {
                TriggerAction::NotifyUser => self.trigger_notify(event, &planned, notice).await,
                TriggerAction::AdminWebhook => self.trigger_admin_webhook(event, &planned).await,
                TriggerAction::RequireStepUp => self.trigger_step_up(event).await,
                TriggerAction::RevokeSession => self.trigger_revoke_session(event).await,
            };
            match outcome {
                Ok(Outcome::Done(what)) => tracing::info!(rule, action, event = %event.id, "trigger: {what}"),
                Ok(Outcome::Skipped(why)) => tracing::info!(rule, action, event = %event.id, "trigger skipped: {why}"),
                Err(error) => tracing::error!(%error, rule, action, event = %event.id, "trigger action failed"),
            }
        }
    }

    /// A notice to the event's user, through the notices' one path (account page, log, outbox).
    async fn trigger_notify(
        &self,
        event: &Event,
        planned: &PlannedAction,
        notice: Option<&NoticeBody>,
    ) -> Result<Outcome, StorageError> {
        let Some(sub) = &event.principal.sub else { return Ok(Outcome::Skipped("the event names no user")) };
        // Account activity is filed under its own kind; anything else the rule thought worth telling (a failed
        // sign-in, an API call) is a security alert.
        let (kind, device_id) = match &event.kind {
            EventKind::Account(activity) => (activity.activity, activity.device_id.clone()),
            _ => (Activity::SecurityAlert, None),
        };
        let mut body = notice.cloned().unwrap_or_else(|| body_of(event, planned.rule.as_str()));
        if let Some(message) = &planned.message {
            body.summary.clone_from(message);
        }
        let device_id = device_id.or_else(|| event.principal.device_id.clone());
        let stored = self.notify_user(sub, kind, device_id, body).await?;
        Ok(Outcome::Done(format!("notice {} for {sub}", stored.id)))
    }

    /// The event to the administrators' webhook, through the outbox (signed, retried like notices).
    async fn trigger_admin_webhook(&self, event: &Event, planned: &PlannedAction) -> Result<Outcome, StorageError> {
        let Some(url) = &self.config.notify.admin_webhook_url else {
            return Ok(Outcome::Skipped("no notify.admin_webhook_url is configured"));
        };
        let now = self.now();
        let payload = json!({
            "type": "trigger.matched",
            "timestamp": now,
            "data": { "rule": planned.rule, "message": planned.message, "event": event },
        });
        let delivery = Delivery {
            id: new_id(),
            notice_id: None,
            channel: Channel::AdminWebhook,
            target: url.clone(),
            payload: payload.to_string(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
        };
        self.store.enqueue(std::slice::from_ref(&delivery)).await?;
        Ok(Outcome::Done(format!("admin webhook delivery {} queued", delivery.id)))
    }

    /// The event's session must sign in again: kept for gates that start later, told to every running gate.
    async fn trigger_step_up(&self, event: &Event) -> Result<Outcome, StorageError> {
        let Some(sid) = &event.principal.sid else { return Ok(Outcome::Skipped("the event names no session")) };
        let now = self.now();
        let minting = Duration::from_secs(self.config.refresh_token_absolute_ttl_secs);
        let demand = step_up_demand(sid, event.time, now, minting, self.longest_access_lifetime().await?);
        // A storage failure still tells the running gates, as revocations do.
        if let Err(error) = self.store.add_step_up_demand(&demand, now).await {
            tracing::error!(%error, demand = %demand.id, "could not store a step-up demand");
        }
        self.control.publish(ControlMessage::StepUp(demand.clone()));
        Ok(Outcome::Done(format!("session {sid} must sign in again (demand {})", demand.id)))
    }

    /// End the event's session as the admin API does: its refresh tokens in the store, its access tokens at every
    /// gate.
    async fn trigger_revoke_session(&self, event: &Event) -> Result<Outcome, StorageError> {
        let Some(sid) = &event.principal.sid else { return Ok(Outcome::Skipped("the event names no session")) };
        let now = self.now();
        let longest = self.longest_access_lifetime().await?;
        let scope = RevocationScope::Session { sid: sid.clone() };
        let effects = self.store.revoke_scope(&scope, now).await?;
        let mut all = backstop_revocations(&scope, &effects.live_accesses, now);
        all.insert(0, admin_revocation(scope, now, longest));
        let principal = Principal { sub: event.principal.sub.clone(), sid: Some(sid.clone()), ..Principal::default() };
        self.publish_revocations(all, &principal, TRIGGER_ACTOR).await;
        Ok(Outcome::Done(format!("session {sid} revoked ({} families)", effects.families_revoked)))
    }

    /// The longest lifetime an access token of this issuer can have: the configured one or a client's override.
    async fn longest_access_lifetime(&self) -> Result<Duration, StorageError> {
        let clients = self.store.clients().await?;
        let longest = clients.iter().filter_map(|c| c.access_token_ttl_secs).max().unwrap_or(0);
        Ok(Duration::from_secs(longest.max(self.config.access_token_ttl_secs)))
    }
}

/// A notice's body from the event alone, when no code wrote one: where and on what it happened.
fn body_of(event: &Event, rule: &str) -> NoticeBody {
    let p = &event.principal;
    let (client_id, detail) = match &event.kind {
        EventKind::Account(a) => (a.client_id.clone().or_else(|| p.client_id.clone()), a.detail.clone()),
        _ => (p.client_id.clone(), None),
    };
    NoticeBody {
        summary: summary_of(&event.kind).unwrap_or_else(|| format!("Activity on your account ({rule})")),
        detail,
        ip: p.ip.clone(),
        device: p.user_agent.as_deref().map(|ua| device_label(Some(ua)).label()),
        user_agent: p.user_agent.clone(),
        client_id,
        ..NoticeBody::default()
    }
}

/// What a notice about an event that is not account activity says, in plain words (account activity's notices
/// are written by the code that saw it).
fn summary_of(kind: &EventKind) -> Option<String> {
    let text = match kind {
        EventKind::Login(login) => match login.outcome {
            LoginOutcome::Success => "Someone signed in to your account".to_owned(),
            LoginOutcome::Failure(_) => "Someone tried to sign in to your account and failed".to_owned(),
        },
        EventKind::ApiCall(call) => match &call.path_template {
            Some(path) => format!("An app used your account to call {} {path}", call.method),
            None => "An app used your account to call an API".to_owned(),
        },
        EventKind::TokenIssued(_) => "An app was given access to your account".to_owned(),
        EventKind::RefreshReuse(_) => "An old sign-in of your account was used again".to_owned(),
        EventKind::Revoked(_) => "Access to your account was taken back".to_owned(),
        EventKind::Alert(_) | EventKind::Action(_) => "Unusual activity was noticed on your account".to_owned(),
        EventKind::AdminChange(_) => "An administrator changed your account".to_owned(),
        EventKind::Account(_) => return None,
    };
    Some(text)
}

/// Follow the event bus and evaluate every event but account activity (evaluated where it happens), when some rule
/// looks at such events. The task ends with the issuer.
pub(crate) fn follow_events(issuer: &Arc<Issuer>) {
    if !issuer.triggers.wants_other_than_account() {
        return;
    }
    let mut events = issuer.events.subscribe();
    let issuer: Weak<Issuer> = Arc::downgrade(issuer);
    tokio::spawn(async move {
        while let Some(received) = events.recv().await {
            let Some(issuer) = issuer.upgrade() else { return };
            match received {
                Received::Message(event) if !matches!(event.kind, EventKind::Account(_)) => {
                    issuer.run_triggers(&event, None).await;
                }
                Received::Message(_) => {}
                Received::Lagged(missed) => {
                    tracing::warn!(missed, "triggers fell behind the event bus; these events were not evaluated");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_model::Timestamp;

    #[test]
    fn other_events_are_told_in_plain_words() {
        let failed = EventKind::Login(argus_model::Login {
            username: "alice".into(),
            outcome: LoginOutcome::Failure(argus_model::LoginFailure::BadPassword),
        });
        let principal = Principal { sub: Some("u".into()), ip: Some("192.0.2.7".into()), ..Principal::default() };
        let body = body_of(&Event::new(Timestamp::from_secs(1), "issuer", principal, failed), "failed-burst");
        assert_eq!(body.summary, "Someone tried to sign in to your account and failed");
        assert_eq!(body.ip.as_deref(), Some("192.0.2.7"));
        assert!(!body.summary.contains("failed-burst") && !body.summary.contains("alice"));
    }

    #[test]
    fn a_body_from_the_event_alone() {
        let principal = Principal {
            sub: Some("u".into()),
            ip: Some("192.0.2.1".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into()),
            ..Principal::default()
        };
        let kind = EventKind::Account(argus_model::AccountActivity {
            activity: argus_model::Activity::PasswordChanged,
            device_id: None,
            client_id: None,
            detail: Some("admin".into()),
        });
        let body = body_of(&Event::new(Timestamp::from_secs(1), "issuer", principal, kind), "r");
        assert_eq!(body.device.as_deref(), Some("Firefox on Linux"));
        assert_eq!((body.ip.as_deref(), body.detail.as_deref()), (Some("192.0.2.1"), Some("admin")));
    }
}
