//! What watch records of its responses, and the storage it needs for them and for the API's timelines.

use argus_model::{Block, Event, Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ActionKind, Target};
use crate::alert::KeyType;
use crate::store::WatchStoreError;

/// The default number of rows a listing returns.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The most rows one listing may return.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// The most audit records one timeline page reads: a key seen rarely gives short (even empty) pages with a cursor
/// to go on, rather than a scan of the whole log.
pub const TIMELINE_SCAN: u64 = 20_000;

/// Where an action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Done.
    Applied,
    /// The rule is observe-only: decided, logged, not done.
    Observed,
    /// Tried and failed (the reason is in `detail`); a later change of the alert may try again.
    Failed,
    /// Lifted by an operator.
    Undone,
}

impl ActionStatus {
    /// The name in JSON, the database and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Observed => "observed",
            Self::Failed => "failed",
            Self::Undone => "undone",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Applied, Self::Observed, Self::Failed, Self::Undone].into_iter().find(|v| v.as_str() == s)
    }
}

/// One response watch took (or, observe-only, would have taken) to an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Unique, time-ordered (UUIDv7). A block is sent with this id, so that undoing it can lift exactly it.
    pub id: String,
    /// The alert it responds to.
    pub alert_id: String,
    /// The rule that decided it.
    pub rule: String,
    pub kind: ActionKind,
    pub target: Target,
    pub status: ActionStatus,
    /// When it was taken.
    pub time: Timestamp,
    /// When it stops having effect: a block's end (or, observe-only, the end it would have had). `None`: no end
    /// (a revocation, a step-up, a notification, a record), so the rule acts once per alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// One sentence: what was done, or would have been, or why it failed.
    pub detail: String,
    /// When an operator undid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<Timestamp>,
}

/// Why an action cannot be undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UndoRefusal {
    /// A revocation (or step-up, which revokes) cannot be taken back: tokens refused once must be replaced.
    #[error("a {} cannot be undone: the tokens it revoked stay revoked; the user signs in again", .0.as_str())]
    Irreversible(ActionKind),
    /// Nothing was done: an observe-only or failed action, a notification or a record.
    #[error("this action changed nothing that could be undone")]
    NothingToUndo,
    #[error("the action was undone already")]
    AlreadyUndone,
    #[error("the block has expired already")]
    Expired,
}

impl ActionRecord {
    /// The block this action sends to the gates, if it is a block (whatever its status). Its id is the action's,
    /// so that undoing the action lifts exactly it.
    pub fn as_block(&self) -> Option<Block> {
        if self.kind != ActionKind::Block {
            return None;
        }
        Some(Block {
            id: self.id.clone(),
            target: self.target.block_target()?,
            until: self.until?,
            reason: format!("watch rule {} on alert {}", self.rule, self.alert_id),
        })
    }

    /// The block in force at `now`: taken (not observe-only, not failed), not undone, not ended. A gate that starts
    /// later loads these, so it refuses what the running gates refuse.
    pub fn standing_block(&self, now: Timestamp) -> Option<Block> {
        let in_force = self.status == ActionStatus::Applied && self.undone_at.is_none();
        self.as_block().filter(|b| in_force && b.until > now)
    }

    /// Whether the action can be undone at `now`: only a block in force can (it is lifted).
    pub fn check_undo(&self, now: Timestamp) -> Result<(), UndoRefusal> {
        match (self.status, self.kind) {
            (ActionStatus::Undone, _) => Err(UndoRefusal::AlreadyUndone),
            (ActionStatus::Observed | ActionStatus::Failed, _) => Err(UndoRefusal::NothingToUndo),
            (ActionStatus::Applied, ActionKind::Revoke | ActionKind::StepUp) => {
                Err(UndoRefusal::Irreversible(self.kind))
            }
            (ActionStatus::Applied, ActionKind::Notify | ActionKind::Record) => Err(UndoRefusal::NothingToUndo),
            (ActionStatus::Applied, ActionKind::Block) => match self.until {
                Some(until) if until <= now => Err(UndoRefusal::Expired),
                _ => Ok(()),
            },
        }
    }

    /// Whether this action still stands for its (alert, rule) at `now`, so the rule must not act again on a later
    /// change of the alert: it is in force (or would have been, observe-only), or an operator undid it (a person
    /// decided; the rule must not overrule them). A failed action, or one whose effect has ended, does not stand.
    pub fn stands(&self, now: Timestamp) -> bool {
        match self.status {
            ActionStatus::Undone => true,
            ActionStatus::Failed => false,
            ActionStatus::Applied | ActionStatus::Observed => self.until.is_none_or(|until| until > now),
        }
    }
}

/// Which actions to list, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionFilter {
    /// Only those responding to this alert.
    pub alert_id: Option<String>,
    /// Only those with an id before this one (the previous page's last id).
    pub before: Option<String>,
    /// At most this many, 1 to [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

impl Default for ActionFilter {
    fn default() -> Self {
        Self { alert_id: None, before: None, limit: DEFAULT_LIST_LIMIT }
    }
}

/// A notification for a user (delivered to them by the issuer's account pages once those exist; stored and served
/// by the watch API until then).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    /// The user, by `sub`.
    pub sub: String,
    pub alert_id: String,
    pub action_id: String,
    pub time: Timestamp,
    /// What the user reads.
    pub message: String,
}

/// One page of the events of one key, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineQuery {
    pub key_type: KeyType,
    pub key: String,
    /// Only records with a `seq` below this (the previous page's `next`); `None`: from the newest.
    pub before: Option<u64>,
    /// At most this many, 1 to [`MAX_LIST_LIMIT`].
    pub limit: u32,
}

/// One event of a timeline, with its place in the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub seq: u64,
    pub event: Event,
}

/// A page of a timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimelinePage {
    pub events: Vec<TimelineEntry>,
    /// The `before` of the next page; `None` once the start of the log is reached. A page reads at most
    /// [`TIMELINE_SCAN`] records, so it may hold fewer events than asked (even none) and still have a next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// Actions, notifications and the reads the watch API makes of the audit log. Implemented by `argus_store::Store`.
#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Records `action` unless its alert already has an action of the same rule that [`ActionRecord::stands`] at
    /// `now`, atomically (two watch consumers cannot both act). Returns whether it was recorded: only then is the
    /// action to be taken.
    async fn claim_action(&self, action: &ActionRecord, now: Timestamp) -> Result<bool, WatchStoreError>;

    /// Sets the status and detail of a recorded action (e.g. to `failed` when taking it failed).
    async fn set_action_status(&self, id: &str, status: ActionStatus, detail: &str) -> Result<(), WatchStoreError>;

    /// Actions matching `filter`, newest first.
    async fn actions(&self, filter: &ActionFilter) -> Result<Vec<ActionRecord>, WatchStoreError>;

    /// One action by id.
    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, WatchStoreError>;

    /// Marks the action undone at `now` if [`ActionRecord::check_undo`] allows, atomically. `None`: no such
    /// action; else the action as it is afterwards, or why it cannot be undone.
    async fn undo_action(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<Result<ActionRecord, UndoRefusal>>, WatchStoreError>;

    async fn add_notification(&self, notification: &Notification) -> Result<(), WatchStoreError>;

    /// Notifications, newest first: of one user, or of everyone.
    async fn notifications(&self, sub: Option<&str>, limit: u32) -> Result<Vec<Notification>, WatchStoreError>;

    /// The events with these ids that are in the audit log, in log order (an alert's evidence).
    async fn events(&self, ids: &[String]) -> Result<Vec<Event>, WatchStoreError>;

    /// One page of the events naming a key, newest first (see [`TimelinePage`]).
    async fn timeline(&self, query: &TimelineQuery) -> Result<TimelinePage, WatchStoreError>;

    /// The blocks in force at `now` ([`ActionRecord::standing_block`]), for a gate that starts.
    async fn standing_blocks(&self, now: Timestamp) -> Result<Vec<Block>, WatchStoreError>;
}
