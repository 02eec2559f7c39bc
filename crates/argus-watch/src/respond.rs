//! The responder, the pipeline's last stage: for each alert a batch changed, the response rules decide
//! (`argus_detect::Responses`, pure) and this module acts: it records the action first (so two consumers, or two
//! changes of one alert, cannot act twice), then blocks at the gates, revokes at the issuer and the gates, demands
//! a step-up of a session at every gate, tells the user (a notice of the issuer's, so the account page and the
//! `[notify]` deliveries carry it, and a notification record for the watch API) or only records, and tells the bus
//! (`Action`, and `Revoked` for each revocation).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use argus_bus::{ControlChannel, EventBus};
use argus_detect::{
    ActionKind, ActionRecord, ActionStatus, ActionStore, Alert, AlertChange, Attack, Notification, PlannedAction,
    Responses, Target,
};
use argus_model::id::new_id;
use argus_model::{ActionTaken, Activity, Clock, ControlMessage, Event, EventKind, Revoked, Timestamp};
use argus_oauth::notice::{NoticeBody, NoticeRecord, device_label};

use crate::issuer::IssuerLink;
use crate::sink::NODE;
use crate::stats::Stats;

/// Most (alert, rule) pairs remembered as acted on; beyond, the memory starts over (the store still knows).
const MEMO_MAX: usize = 10_000;

/// Turns alert changes into actions.
pub(crate) struct Responder {
    responses: Responses,
    actions: Arc<dyn ActionStore>,
    issuer: IssuerLink,
    control: ControlChannel,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    /// (alert id, rule) this responder recorded an action for, with the action's end: while it stands, a repeat of
    /// the alert needs no evidence read and no write transaction to learn that it stands (an attack going on
    /// changes its alert in every batch).
    acted: HashMap<(String, String), Option<Timestamp>>,
}

impl Responder {
    pub(crate) fn new(
        responses: Responses,
        actions: Arc<dyn ActionStore>,
        issuer: IssuerLink,
        control: ControlChannel,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        stats: Arc<Stats>,
    ) -> Self {
        Self { responses, actions, issuer, control, bus, clock, stats, acted: HashMap::new() }
    }

    /// Whether this responder knows that `rule` acted on `alert` and the action still stands at `now`.
    fn stands(&self, alert: &str, rule: &str, now: Timestamp) -> bool {
        let key = (alert.to_owned(), rule.to_owned());
        self.acted.get(&key).is_some_and(|until| until.is_none_or(|until| until > now))
    }

    fn remember(&mut self, alert: &str, rule: &str, until: Option<Timestamp>) {
        if self.acted.len() >= MEMO_MAX {
            self.acted.clear();
        }
        self.acted.insert((alert.to_owned(), rule.to_owned()), until);
    }

    /// Responds to the alerts `changes` leave behind, each as of its last change in the batch.
    pub(crate) async fn respond(&mut self, changes: &[AlertChange]) {
        if self.responses.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        let latest: Vec<&Alert> =
            changes.iter().rev().map(AlertChange::alert).filter(|a| seen.insert(a.id.as_str())).collect();
        for alert in latest.into_iter().rev() {
            let now = self.clock.now();
            let matching = self.responses.matching(alert);
            if matching.iter().all(|rule| self.stands(&alert.id, rule, now)) {
                continue;
            }
            let evidence = self.actions.events(&alert.evidence).await.unwrap_or_else(|error| {
                // Without its evidence an alert can still be acted on by its key.
                tracing::warn!(%error, alert_id = %alert.id, "cannot read an alert's evidence");
                Vec::new()
            });
            let plan = self.responses.plan(alert, &evidence);
            for passed in &plan.passed {
                tracing::debug!(rule = %passed.rule, alert_id = %alert.id, reason = %passed.reason, "no action");
            }
            for planned in plan.actions {
                if !self.stands(&alert.id, &planned.rule, now) {
                    self.take(alert, &evidence, planned).await;
                }
            }
        }
    }

    /// Records one action, then takes it (unless observe-only) and announces it.
    async fn take(&mut self, alert: &Alert, evidence: &[Event], planned: PlannedAction) {
        let now = self.clock.now();
        let until = planned.ttl.map(|ttl| now.plus(ttl));
        let mut record = ActionRecord {
            id: new_id(),
            alert_id: alert.id.clone(),
            detail: describe(planned.kind, &loggable(&planned.target), until, planned.observe_only),
            rule: planned.rule,
            kind: planned.kind,
            target: planned.target,
            status: if planned.observe_only { ActionStatus::Observed } else { ActionStatus::Applied },
            time: now,
            until,
            undone_at: None,
        };
        match self.actions.claim_action(&record, now).await {
            Ok(true) => self.remember(&alert.id, &record.rule, until),
            // This rule already acted on this alert (here or in another consumer), and that still stands. Asked
            // again on the alert's next change: that action's end is not known here.
            Ok(false) => return,
            Err(error) => {
                tracing::error!(%error, alert_id = %alert.id, rule = %record.rule, "cannot record an action: not taken");
                self.stats.action_failed();
                return;
            }
        }
        if planned.observe_only {
            tracing::info!(alert_id = %alert.id, rule = %record.rule, "observe-only: {}", record.detail);
            self.stats.action_observed();
        } else if let Err(reason) = self.apply(alert, evidence, &record, now).await {
            record.status = ActionStatus::Failed;
            record.detail = format!("{} failed: {reason}", record.detail);
            tracing::error!(alert_id = %alert.id, rule = %record.rule, "{}", record.detail);
            if let Err(error) = self.actions.set_action_status(&record.id, record.status, &record.detail).await {
                tracing::error!(%error, action_id = %record.id, "cannot record that an action failed");
            }
            self.stats.action_failed();
        } else {
            tracing::warn!(alert_id = %alert.id, rule = %record.rule, action_id = %record.id, "{}", record.detail);
            self.stats.action_taken();
        }
        announce(&self.bus, self.clock.now(), &record);
    }

    /// Takes the action; the error says why it could not be.
    async fn apply(
        &self,
        alert: &Alert,
        evidence: &[Event],
        record: &ActionRecord,
        now: Timestamp,
    ) -> Result<(), String> {
        match record.kind {
            ActionKind::Block => {
                record.target.block_target().ok_or("the target cannot be blocked")?;
                record.until.ok_or("a block needs an end")?;
                let block = record.as_block().ok_or("not a block")?;
                self.control.publish(ControlMessage::Block(block));
                Ok(())
            }
            ActionKind::Revoke => {
                let scope = record.target.revocation_scope().ok_or("the target cannot be revoked")?;
                let revocations = self
                    .issuer
                    .revoke(scope, now, &self.control)
                    .await
                    .map_err(|e| format!("the issuer's store: {e}"))?;
                for r in revocations {
                    let event = EventKind::Revoked(Revoked { scope: r.scope, by: NODE.to_owned() });
                    self.bus.publish(Event::new(now, NODE, record.target.principal(), event));
                }
                Ok(())
            }
            ActionKind::StepUp => {
                let Target::Session(sid) = &record.target else {
                    return Err("only a session can be asked to sign in again".into());
                };
                self.issuer
                    .demand_step_up(sid, alert.last_seen, now, &self.control)
                    .await
                    .map(drop)
                    .map_err(|e| format!("the issuer's store: {e}"))
            }
            ActionKind::Notify => {
                let Target::User(sub) = &record.target else { return Err("only a user can be notified".into()) };
                let notice = security_notice(alert, evidence, sub, now);
                let deliveries = self
                    .issuer
                    .store
                    .file_notice(&self.issuer.notify, &notice)
                    .await
                    .map_err(|e| format!("the issuer's store: {e}"))?;
                tracing::info!(notice = %notice.id, %sub, deliveries = deliveries.len(), "{}", notice.body.summary);
                // Kept for the watch API too, which names the alert and the action.
                let notification = Notification {
                    id: new_id(),
                    sub: sub.clone(),
                    alert_id: alert.id.clone(),
                    action_id: record.id.clone(),
                    time: now,
                    message: format!("{} (reference {})", notice.body.summary, alert.id),
                };
                self.actions.add_notification(&notification).await.map_err(|e| format!("the store: {e}"))
            }
            ActionKind::Record => Ok(()),
        }
    }
}

/// Announces an action (taken, observed, failed or undone) on the bus, for the audit log.
pub(crate) fn announce(bus: &EventBus, now: Timestamp, record: &ActionRecord) {
    let taken = ActionTaken {
        action_id: record.id.clone(),
        alert_id: record.alert_id.clone(),
        rule: record.rule.clone(),
        action: record.kind.as_str().to_owned(),
        target: loggable(&record.target),
        status: record.status.as_str().to_owned(),
    };
    bus.publish(Event::new(now, NODE, record.target.principal(), EventKind::Action(taken)));
}

/// The target as logs and events may show it: a user name as typed may be a password typed into the wrong field.
pub(crate) fn loggable(target: &Target) -> String {
    match target {
        Target::Account(_) => "account:(name)".to_owned(),
        other => other.to_string(),
    }
}

/// One sentence for the action's `detail`.
fn describe(kind: ActionKind, target: &str, until: Option<Timestamp>, observe_only: bool) -> String {
    let what = match (kind, until) {
        (ActionKind::Block, Some(until)) => format!("block {target} until {until}"),
        (ActionKind::Block, None) => format!("block {target}"),
        (ActionKind::Revoke, _) => format!("revoke {target} at the issuer and every gate"),
        (ActionKind::StepUp, _) => format!("demand that {target} sign in again at every gate (step-up)"),
        (ActionKind::Notify, _) => format!("notify {target} (account page and [notify])"),
        (ActionKind::Record, _) => format!("record the alert on {target}"),
    };
    if observe_only { format!("would {what} (observe-only)") } else { what }
}

/// The notice a user gets for `alert`: what was seen in plain words, when, and from where (the address and device
/// of the user's last evidence event). No detail an attacker holding the account could use, no detector's name.
fn security_notice(alert: &Alert, evidence: &[Event], sub: &str, now: Timestamp) -> NoticeRecord {
    let last = evidence.iter().rev().find(|e| e.principal.sub.as_deref() == Some(sub) && e.principal.ip.is_some());
    let principal = last.map(|e| &e.principal);
    let user_agent = principal.and_then(|p| p.user_agent.clone());
    let summary = format!(
        "We noticed {} on your account, last at {}. If it was not you, change your password and sign out the \
         devices you do not know.",
        plain_words(alert.attack),
        alert.last_seen.to_rfc3339()
    );
    NoticeRecord {
        id: new_id(),
        sub: sub.to_owned(),
        kind: Activity::SecurityAlert,
        created_at: now,
        read_at: None,
        device_id: principal.and_then(|p| p.device_id.clone()),
        body: NoticeBody {
            summary,
            ip: principal.and_then(|p| p.ip.clone()),
            device: user_agent.as_deref().map(|ua| device_label(Some(ua)).label()),
            user_agent,
            client_id: principal.and_then(|p| p.client_id.clone()),
            ..NoticeBody::default()
        },
    }
}

/// What an attack looks like to the person whose account it is.
fn plain_words(attack: Attack) -> &'static str {
    match attack {
        Attack::BruteForce => "many wrong passwords tried",
        Attack::CredentialStuffing => "sign-in attempts with passwords leaked elsewhere",
        Attack::AuditGap => "activity that could not be fully checked",
        Attack::StolenToken => "your sign-in being used from another device or place",
        Attack::Enumeration => "requests walking through many records one after another",
        Attack::Bola => "attempts to read records that are not yours",
        Attack::Scraping => "automated reading of everything your account can see",
        Attack::Exfiltration => "far more of your data read than usual",
        Attack::ClientAnomaly => "an app calling far more than usual",
        Attack::Probing => "many malformed requests",
        Attack::DecoyHit => "a request no app of ours makes",
        Attack::Anomaly => "activity unlike your usual",
        Attack::UnusualFlow => "requests in an order people do not follow",
    }
}
