//! Devices as users see them, notices, and the outbox that delivers notices: the storage they need
//! ([`NoticeStore`]) and the pure rules — what a user agent is called ([`device_label`]), when a sign-in is on a new
//! device ([`DeviceNovelty`]), what a notice says ([`NoticeBody`]) and when a failed delivery is tried again
//! ([`retry_delay`]).
//!
//! A notice is what a user is told about their account (a sign-in from a new device, a new factor, a first grant to
//! an app). It is stored for the account page and, when delivery is configured, queued in the outbox, one row per
//! channel, in the same transaction: a notice is never stored without its deliveries, nor the other way round.

use std::time::Duration;

use argus_model::{Activity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::store::StorageError;

/// Longest user agent kept for a device or session; the rest is noise or abuse.
pub const MAX_USER_AGENT: usize = 256;

/// What a sign-in tells about the device it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSighting {
    pub device_id: String,
    pub sub: String,
    pub sid: String,
    pub ip: Option<String>,
    /// Already cut to [`MAX_USER_AGENT`].
    pub user_agent: Option<String>,
    pub ua: UserAgentInfo,
    pub now: Timestamp,
}

/// Whether a sign-in's device is new to its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceNovelty {
    /// The user had signed in on this device before, from the same browser family and OS.
    Known,
    /// The user's first sign-in on this device. `first_for_user`: the user's first device ever.
    New { first_for_user: bool },
    /// A known device cookie came from another browser family or OS than recorded: the cookie may have been copied
    /// to another machine. Treated as a new device for the notice.
    Changed { previous_label: String },
}

impl DeviceNovelty {
    /// The `detail` of the event and notice, if the sign-in is worth telling.
    pub fn notice_detail(&self) -> Option<&'static str> {
        match self {
            Self::Known => None,
            Self::New { first_for_user: true } => Some("first_sign_in"),
            Self::New { first_for_user: false } => Some("new_device"),
            Self::Changed { .. } => Some("browser_changed"),
        }
    }
}

/// A device of one user, for the account page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserDevice {
    pub device_id: String,
    pub label: Option<String>,
    pub user_agent: Option<String>,
    pub last_ip: Option<String>,
    /// This user's first and last sign-in on it.
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// A live session of one user, for the account page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub sid: String,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `None` for sessions started before this was recorded.
    pub created_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub auth_time: Timestamp,
    pub expires_at: Timestamp,
}

/// A notice as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoticeRecord {
    pub id: String,
    pub sub: String,
    pub kind: Activity,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
    pub device_id: Option<String>,
    pub body: NoticeBody,
}

/// What a notice says: what happened, where, when. Never a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeBody {
    /// One line a person can read.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The device's friendly label ("Firefox on Linux").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The "this wasn't me" link of a new-device notice (signed, single use: `/account/not-me?t=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_me_url: Option<String>,
}

/// Where a delivery goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The operator's notice webhook (Standard Webhooks), one message per notice.
    Webhook,
    /// E-mail to the user's address.
    Smtp,
    /// An administrator's webhook (configured triggers).
    AdminWebhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Smtp => "smtp",
            Self::AdminWebhook => "admin_webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "smtp" => Some(Self::Smtp),
            "admin_webhook" => Some(Self::AdminWebhook),
            _ => None,
        }
    }
}

/// One delivery in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Stable across attempts, so receivers can drop duplicates (at-least-once delivery).
    pub id: String,
    pub notice_id: Option<String>,
    pub channel: Channel,
    /// A URL (webhooks) or an e-mail address.
    pub target: String,
    /// JSON.
    pub payload: String,
    pub created_at: Timestamp,
    /// Attempts made before this one.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
}

/// Where notices go besides the account page and the log: the `[notify]` configuration as filing a notice needs
/// it. Every part that tells users something (the issuer, watch) files notices with the same routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoticeRoutes {
    /// The operator's notice webhook (`notify.webhook_url`).
    pub webhook_url: Option<String>,
    /// Whether e-mail is configured (`[notify.smtp]`): users with an address get one.
    pub email: bool,
}

/// A notice as delivered: the webhook body as sent, and what the e-mail is written from. Standard Webhooks shape
/// (`type`, `timestamp`, `data`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticePayload {
    /// `account.new_device`, `account.security_alert`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Timestamp,
    pub data: NoticePayloadData,
}

/// The `data` of a [`NoticePayload`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticePayloadData {
    pub notice_id: String,
    pub sub: String,
    pub activity: Activity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(flatten)]
    pub body: NoticeBody,
}

impl NoticePayload {
    pub fn of(n: &NoticeRecord) -> Self {
        Self {
            kind: format!("account.{}", n.kind.as_str()),
            timestamp: n.created_at,
            data: NoticePayloadData {
                notice_id: n.id.clone(),
                sub: n.sub.clone(),
                activity: n.kind,
                device_id: n.device_id.clone(),
                body: n.body.clone(),
            },
        }
    }
}

/// Tell a user: store `notice` (the account page) with one delivery per route it takes — the notice webhook, an
/// e-mail when one is configured and the user has an address — in one transaction, queued at `notice.created_at`.
/// The one way notices are filed, whoever files them. Returns the deliveries queued.
pub async fn file_notice<S: NoticeStore + ?Sized>(
    store: &S,
    routes: &NoticeRoutes,
    notice: &NoticeRecord,
) -> Result<Vec<Delivery>, StorageError> {
    let mut targets = Vec::new();
    if let Some(url) = &routes.webhook_url {
        targets.push((Channel::Webhook, url.clone()));
    }
    if routes.email
        && let Some(email) = store.user_email(&notice.sub).await?
    {
        targets.push((Channel::Smtp, email));
    }
    // Plain data: serialising it cannot fail.
    let payload = serde_json::to_string(&NoticePayload::of(notice)).unwrap_or_default();
    let now = notice.created_at;
    let deliveries: Vec<Delivery> = targets
        .into_iter()
        .map(|(channel, target)| Delivery {
            id: argus_model::id::new_id(),
            notice_id: Some(notice.id.clone()),
            channel,
            target,
            payload: payload.clone(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
        })
        .collect();
    store.insert_notice(notice, &deliveries).await?;
    Ok(deliveries)
}

/// Storage of devices as users see them, notices and the outbox. Implemented by `argus_store::Store`.
#[async_trait::async_trait]
pub trait NoticeStore: Send + Sync + 'static {
    /// Record a complete sign-in on a device: the device's last IP, user agent and label, the session's IP and user
    /// agent, and the user's link to the device. Says whether the device is new to the user (or its browser or OS
    /// changed). Atomic: two sign-ins at once see one of them as the first.
    async fn record_device_sign_in(&self, sighting: &DeviceSighting) -> Result<DeviceNovelty, StorageError>;
    /// The session was used now (its cookie at `/authorize`, a refresh of one of its families).
    async fn touch_session(&self, sid: &str, now: Timestamp) -> Result<(), StorageError>;

    /// The user's devices, most recently seen first.
    async fn user_devices(&self, sub: &str) -> Result<Vec<UserDevice>, StorageError>;
    /// The user's sessions live at `now`, most recently used first.
    async fn user_sessions(&self, sub: &str, now: Timestamp) -> Result<Vec<SessionView>, StorageError>;

    /// The user's e-mail address for notices, if any.
    async fn user_email(&self, sub: &str) -> Result<Option<String>, StorageError>;
    /// Set or clear it; `false` if there is no such user.
    async fn set_user_email(&self, sub: &str, email: Option<&str>) -> Result<bool, StorageError>;

    /// Store a notice and its deliveries in one transaction.
    async fn insert_notice(&self, notice: &NoticeRecord, deliveries: &[Delivery]) -> Result<(), StorageError>;
    /// Queue deliveries that belong to no notice (admin webhooks).
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StorageError>;
    /// The user's most recent notices, newest first.
    async fn notices(&self, sub: &str, limit: usize) -> Result<Vec<NoticeRecord>, StorageError>;
    /// Mark a notice of `sub` read; `false` if there is no such notice of that user.
    async fn mark_notice_read(&self, sub: &str, id: &str, now: Timestamp) -> Result<bool, StorageError>;

    /// Claim at most `limit` deliveries due at `now`: each is hidden from other claims until `lease_until`, so two
    /// workers (two issuer processes) do not send it at once. A worker that dies holding one lets it come back.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StorageError>;
    async fn delivery_succeeded(&self, id: &str, now: Timestamp) -> Result<(), StorageError>;
    /// Record a failed attempt (the `attempts`-th); `retry_at: None` gives up.
    async fn delivery_failed(
        &self,
        id: &str,
        attempts: u32,
        retry_at: Option<Timestamp>,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StorageError>;
    /// Delete deliveries finished (delivered or given up) before `before`, and notices created before
    /// `notices_before`. Returns the rows removed.
    async fn purge_notices(&self, before: Timestamp, notices_before: Timestamp) -> Result<u64, StorageError>;
}

/// The browser and OS a user agent names, coarsely: what a person recognises their device by, and what must not
/// change while a device cookie stays the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAgentInfo {
    pub browser: &'static str,
    pub os: &'static str,
}

impl UserAgentInfo {
    /// "Firefox on Linux".
    pub fn label(&self) -> String {
        format!("{} on {}", self.browser, self.os)
    }

    /// What is compared between sign-ins on one device cookie: `firefox/linux`.
    pub fn family(&self) -> String {
        format!("{}/{}", self.browser.to_ascii_lowercase(), self.os.to_ascii_lowercase())
    }
}

/// Browser and OS of a user agent. A tiny table, not a full parser: order matters because browsers name each other
/// (Edge says Chrome and Safari; Chrome says Safari).
pub fn device_label(user_agent: Option<&str>) -> UserAgentInfo {
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests/", "Python"),
        ("python-httpx/", "Python"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ];
    let ua = user_agent.unwrap_or("");
    let find = |table: &[(&str, &'static str)]| {
        table.iter().find(|(needle, _)| ua.contains(needle)).map_or("an unknown", |(_, name)| *name)
    };
    let browser = match find(BROWSERS) {
        "an unknown" => "Unknown browser",
        b => b,
    };
    let os = match find(SYSTEMS) {
        "an unknown" => "an unknown system",
        o => o,
    };
    UserAgentInfo { browser, os }
}

/// How long to wait before attempt `attempts + 1` after `attempts` failed ones: `base` doubled each time, capped at
/// `cap`, then between 50% and 100% of that (`jitter` in 0..1), so receivers coming back from an outage are not hit
/// by every sender at once.
pub fn retry_delay(attempts: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(cap);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const CHROME_WIN: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
    const EDGE_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) \
        Chrome/126.0 Safari/537.36 Edg/126.0";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    #[test]
    fn labels_name_browser_and_system() {
        assert_eq!(device_label(Some(FIREFOX_LINUX)).label(), "Firefox on Linux");
        assert_eq!(device_label(Some(CHROME_WIN)).label(), "Chrome on Windows");
        assert_eq!(device_label(Some(EDGE_MAC)).label(), "Edge on macOS");
        assert_eq!(device_label(Some(SAFARI_IPHONE)).label(), "Safari on iOS");
        assert_eq!(device_label(None).label(), "Unknown browser on an unknown system");
        assert_eq!(device_label(Some(CHROME_WIN)).family(), "chrome/windows");
    }

    #[test]
    fn a_browser_update_keeps_the_family() {
        let old = device_label(Some(FIREFOX_LINUX));
        let new = device_label(Some(&FIREFOX_LINUX.replace("128.0", "131.0")));
        assert_eq!(old.family(), new.family());
        assert_ne!(old.family(), device_label(Some(CHROME_WIN)).family());
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_a_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(retry_delay(1, base, cap, 1.0), Duration::from_secs(5));
        assert_eq!(retry_delay(2, base, cap, 1.0), Duration::from_secs(10));
        assert_eq!(retry_delay(3, base, cap, 1.0), Duration::from_secs(20));
        assert_eq!(retry_delay(3, base, cap, 0.0), Duration::from_secs(10));
        assert_eq!(retry_delay(30, base, cap, 1.0), cap);
        assert_eq!(retry_delay(u32::MAX, base, cap, 1.0), cap, "no overflow");
    }

    #[test]
    fn novelty_details() {
        assert_eq!(DeviceNovelty::Known.notice_detail(), None);
        assert_eq!(DeviceNovelty::New { first_for_user: true }.notice_detail(), Some("first_sign_in"));
        let changed = DeviceNovelty::Changed { previous_label: "Firefox on Linux".into() };
        assert_eq!(changed.notice_detail(), Some("browser_changed"));
    }
}
