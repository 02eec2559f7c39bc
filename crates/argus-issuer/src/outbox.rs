//! Telling users what happens to their account: account activity becomes an event, a notice (stored for the
//! account page, written to the log) and deliveries in the outbox; a worker delivers them.
//!
//! Delivery is at least once: a claimed row is leased, a failed attempt is retried with exponential backoff and
//! jitter until `max_attempts`, then marked failed. Every delivery keeps one id across attempts (`webhook-id`, the
//! e-mail's `Message-ID`), so receivers can drop duplicates.
//!
//! Webhooks follow the Standard Webhooks specification (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the
//! `whsec_` secret of the config, so any Standard Webhooks library verifies them.

use std::sync::Arc;
use std::time::Duration;

use argus_model::id::new_id;
use argus_model::{AccountActivity, Activity, Clock, EventKind, Principal};
use argus_oauth::StorageError;
use argus_oauth::notice::{
    Channel, Delivery, NoticeBody, NoticePayload, NoticeRecord, NoticeRoutes, NoticeStore, file_notice, retry_delay,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::state::Issuer;

/// The `[notify]` table of `argus.toml`: where notices go besides the account page and the log. Default: nowhere
/// else.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// An http(s) URL that receives every notice as a Standard Webhooks message (`POST`, JSON). Default none.
    pub webhook_url: Option<String>,
    /// The key webhooks are signed with, in the Standard Webhooks form `whsec_<base64 of 24 to 64 random bytes>`.
    /// Required with `webhook_url` or `admin_webhook_url`.
    pub webhook_secret: Option<String>,
    /// An http(s) URL for administrators' messages (configured triggers), signed the same way. Default none.
    pub admin_webhook_url: Option<String>,
    /// E-mail to the user's address (set through the admin API or CLI) when configured. Default none.
    pub smtp: Option<SmtpConfig>,
    /// Attempts per delivery before it is marked failed. Default 10; between 1 and 100.
    pub max_attempts: u32,
    /// Wait after the first failed attempt, in milliseconds; doubled each time. Default 5,000.
    pub retry_base_ms: u64,
    /// Longest wait between attempts, in milliseconds. Default 3,600,000 (one hour).
    pub retry_max_ms: u64,
    /// How often the worker looks for due deliveries, in milliseconds. Default 1,000.
    pub poll_ms: u64,
    /// Time limit of one delivery attempt (connect, send, answer), in seconds. Default 10.
    pub timeout_secs: u64,
    /// How long notices are kept, in days. Finished deliveries are kept 7 days. Default 90.
    pub keep_days: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            webhook_secret: None,
            admin_webhook_url: None,
            smtp: None,
            max_attempts: 10,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            poll_ms: 1_000,
            timeout_secs: 10,
            keep_days: 90,
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the webhook secret.
        f.debug_struct("NotifyConfig")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<set>"))
            .field("admin_webhook_url", &self.admin_webhook_url)
            .field("smtp", &self.smtp)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("poll_ms", &self.poll_ms)
            .field("timeout_secs", &self.timeout_secs)
            .field("keep_days", &self.keep_days)
            .finish()
    }
}

/// `[notify.smtp]`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 25 with `tls = "none"`, 587 with `starttls`, 465 with `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// The sender, e.g. `Argus <no-reply@example.com>`.
    pub from: String,
    /// `none` (plain text, for a relay on the same host), `starttls` (default) or `tls` (implicit TLS).
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    #[default]
    Starttls,
    Tls,
}

/// Days notices are kept at most (ten years).
const MAX_KEEP_DAYS: u64 = 3650;
/// How long finished deliveries stay in the outbox, for the operator to look at.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Deliveries claimed per round.
const CLAIM_BATCH: usize = 16;
/// How often old notices and finished deliveries are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(300);

impl NotifyConfig {
    /// Check the values; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, url) in [("webhook_url", &self.webhook_url), ("admin_webhook_url", &self.admin_webhook_url)] {
            if let Some(url) = url {
                let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                if !ok {
                    return Err(format!("notify.{name} {url:?} must be an absolute http(s) URL"));
                }
                if self.webhook_secret.is_none() {
                    return Err(format!("notify.{name} needs notify.webhook_secret to sign its messages"));
                }
            }
        }
        if let Some(secret) = &self.webhook_secret {
            webhook_key(secret)?;
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!("notify.max_attempts must be between 1 and 100, not {}", self.max_attempts));
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err("notify.retry_base_ms must be at least 1 and at most notify.retry_max_ms".into());
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            return Err(format!("notify.poll_ms must be between 10 and 60000, not {}", self.poll_ms));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(format!("notify.timeout_secs must be between 1 and 300, not {}", self.timeout_secs));
        }
        if !(1..=MAX_KEEP_DAYS).contains(&self.keep_days) {
            return Err(format!("notify.keep_days must be between 1 and {MAX_KEEP_DAYS}, not {}", self.keep_days));
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return Err("notify.smtp.host must not be empty".into());
            }
            smtp.from.parse::<lettre::message::Mailbox>().map_err(|e| format!("notify.smtp.from: {e}"))?;
            if smtp.username.is_some() != smtp.password.is_some() {
                return Err("notify.smtp.username and notify.smtp.password go together".into());
            }
        }
        Ok(())
    }

    /// Where notices go besides the account page: what [`file_notice`] needs of this table.
    pub fn routes(&self) -> NoticeRoutes {
        NoticeRoutes { webhook_url: self.webhook_url.clone(), email: self.smtp.is_some() }
    }

    fn retry(&self, attempts: u32) -> Option<Duration> {
        (attempts < self.max_attempts).then(|| {
            let (base, cap) = (Duration::from_millis(self.retry_base_ms), Duration::from_millis(self.retry_max_ms));
            retry_delay(attempts, base, cap, jitter())
        })
    }
}

/// The HMAC key of a `whsec_<base64>` secret.
fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b| B64.decode(b).ok())
        .ok_or("notify.webhook_secret must be whsec_ followed by base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err("notify.webhook_secret must hold 24 to 64 bytes".into());
    }
    Ok(key)
}

/// A uniform number in 0..1 for backoff jitter; not security relevant.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

/// The Standard Webhooks signature header value: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
pub(crate) fn sign_webhook(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let signed = format!("{id}.{timestamp}.");
    format!("v1,{}", B64.encode(argus_jose::hmac_sha256(key, &[signed.as_bytes(), body])))
}

/// The subject line of a notice of this kind, for e-mail.
fn subject(kind: Activity) -> &'static str {
    match kind {
        Activity::NewDevice => "New sign-in to your account",
        Activity::PasswordChanged => "Your password was changed",
        Activity::FactorAdded => "A sign-in factor was added to your account",
        Activity::FactorRemoved => "A sign-in factor was removed from your account",
        Activity::FirstGrant => "You gave an app access to your account",
        Activity::GrantRevoked => "An app's access to your account was revoked",
        Activity::DeviceRevoked => "A device was signed out of your account",
        Activity::NotMe => "You reported activity that was not you",
        Activity::SecurityAlert => "Unusual activity on your account",
    }
}

impl Issuer {
    /// Account activity of a user (`principal.sub`): an `Account` event always; whether the user is told (`body`,
    /// unless a rule writes its own text) and what else happens, the configured triggers decide — by default a
    /// notice for a new device, a changed password or factor and a first grant ([`crate::triggers`]). A storage
    /// failure is logged; it never fails the request that caused the activity.
    pub(crate) async fn account_activity(&self, principal: Principal, activity: AccountActivity, body: NoticeBody) {
        let event = argus_model::Event::new(self.now(), crate::events::NODE, principal, EventKind::Account(activity));
        self.events.publish(event.clone());
        self.run_triggers(&event, Some(&body)).await;
    }

    /// Tell user `sub`: store the notice (account page), log it, and queue its deliveries (the notice webhook; an
    /// e-mail when SMTP is configured and the user has an address), all in one transaction.
    pub(crate) async fn notify_user(
        &self,
        sub: &str,
        kind: Activity,
        device_id: Option<String>,
        body: NoticeBody,
    ) -> Result<NoticeRecord, StorageError> {
        let now = self.now();
        let notice =
            NoticeRecord { id: new_id(), sub: sub.to_owned(), kind, created_at: now, read_at: None, device_id, body };
        // A new-device notice carries its "this wasn't me" link, in every channel.
        let notice = crate::account::not_me::with_link(self, notice).await;
        let deliveries = file_notice(&*self.store, &self.config.notify.routes(), &notice).await?;
        tracing::info!(
            notice = %notice.id,
            %sub,
            activity = kind.as_str(),
            device = notice.body.device.as_deref().unwrap_or("-"),
            ip = notice.body.ip.as_deref().unwrap_or("-"),
            deliveries = deliveries.len(),
            "{}",
            notice.body.summary
        );
        Ok(notice)
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Delivers what is in the outbox.
struct Worker {
    config: NotifyConfig,
    store: Arc<dyn NoticeStore>,
    clock: Arc<dyn Clock>,
    http: HttpsClient,
    webhook_key: Option<Vec<u8>>,
}

/// Start the delivery worker; it stops when `stop` turns true. Also deletes old notices and finished deliveries.
pub fn spawn(
    config: NotifyConfig,
    store: Arc<dyn NoticeStore>,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(config.timeout_secs)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let webhook_key = config.webhook_secret.as_deref().and_then(|s| webhook_key(s).ok());
    let worker =
        Worker { http: Client::builder(TokioExecutor::new()).build(connector), webhook_key, config, store, clock };
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(Duration::from_millis(worker.config.poll_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                _ = poll.tick() => worker.round().await,
                _ = purge.tick() => worker.purge().await,
                _ = stop.changed() => if *stop.borrow() { return },
            }
        }
    })
}

impl Worker {
    /// Claim what is due and deliver it, one at a time (notices are few; order is kept per claim).
    async fn round(&self) {
        let now = self.clock.now();
        // The lease outlasts one attempt of every row of the batch, so nothing is sent twice at once.
        let lease = Duration::from_secs(self.config.timeout_secs * (CLAIM_BATCH as u64 + 1));
        let due = match self.store.claim_deliveries(now, now.plus(lease), CLAIM_BATCH).await {
            Ok(due) => due,
            Err(error) => return tracing::warn!(%error, "could not read the outbox"),
        };
        for d in due {
            let result = tokio::time::timeout(Duration::from_secs(self.config.timeout_secs), self.deliver(&d))
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            let now = self.clock.now();
            let attempts = d.attempts.saturating_add(1);
            let stored = match result {
                Ok(()) => {
                    tracing::info!(delivery = %d.id, channel = d.channel.as_str(), attempts, "notice delivered");
                    self.store.delivery_succeeded(&d.id, now).await
                }
                Err(error) => {
                    let retry_at = self.config.retry(attempts).map(|wait| now.plus(wait));
                    match retry_at {
                        Some(_) => tracing::warn!(delivery = %d.id, channel = d.channel.as_str(), attempts, %error,
                            "notice delivery failed; will retry"),
                        None => tracing::error!(delivery = %d.id, channel = d.channel.as_str(), attempts, %error,
                            "notice delivery failed; giving up"),
                    }
                    self.store.delivery_failed(&d.id, attempts, retry_at, &error, now).await
                }
            };
            if let Err(error) = stored {
                tracing::warn!(%error, delivery = %d.id, "could not record a delivery attempt");
            }
        }
    }

    async fn purge(&self) {
        let now = self.clock.now();
        let keep = Duration::from_secs(self.config.keep_days * 24 * 3600);
        match self.store.purge_notices(now.minus(KEEP_FINISHED), now.minus(keep)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged old notices and deliveries"),
            Err(error) => tracing::warn!(%error, "purging old notices failed"),
        }
    }

    async fn deliver(&self, d: &Delivery) -> Result<(), String> {
        match d.channel {
            Channel::Webhook | Channel::AdminWebhook => self.post_webhook(d).await,
            Channel::Smtp => self.send_mail(d).await,
        }
    }

    async fn post_webhook(&self, d: &Delivery) -> Result<(), String> {
        let key = self.webhook_key.as_deref().ok_or("no webhook secret configured")?;
        let timestamp = self.clock.now().as_millis() / 1000;
        let body = Bytes::from(d.payload.clone());
        let request = http::Request::post(&d.target)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "argus-notify")
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign_webhook(key, &d.id, timestamp, &body))
            .body(Full::new(body))
            .map_err(|e| format!("bad request: {e}"))?;
        let response = self.http.request(request).await.map_err(|e| format!("{e}"))?;
        let status = response.status();
        // The body is not needed; dropping the response closes or returns the connection.
        if status.is_success() { Ok(()) } else { Err(format!("HTTP {}", status.as_u16())) }
    }

    async fn send_mail(&self, d: &Delivery) -> Result<(), String> {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let smtp = self.config.smtp.as_ref().ok_or("SMTP is no longer configured")?;
        let payload: NoticePayload = serde_json::from_str(&d.payload).map_err(|e| format!("payload: {e}"))?;
        let message = mail(smtp, d, &payload)?;
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).port(25),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(|e| e.to_string())?.port(587)
            }
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| e.to_string())?.port(465)
            }
        };
        let mut builder = builder.timeout(Some(Duration::from_secs(self.config.timeout_secs)));
        if let Some(port) = smtp.port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder
                .credentials(lettre::transport::smtp::authentication::Credentials::new(user.clone(), password.clone()));
        }
        builder.build().send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The e-mail of a notice: plain text, what happened, on which device, from where, when.
fn mail(smtp: &SmtpConfig, d: &Delivery, payload: &NoticePayload) -> Result<lettre::Message, String> {
    let data = &payload.data;
    let mut text = format!("{}\n\n", data.body.summary);
    let when = payload.timestamp.to_rfc3339();
    text.push_str(&format!("When: {when}\n"));
    if let Some(device) = &data.body.device {
        text.push_str(&format!("Device: {device}\n"));
    }
    if let Some(ip) = &data.body.ip {
        text.push_str(&format!("IP address: {ip}\n"));
    }
    if let Some(client) = &data.body.client_id {
        text.push_str(&format!("App: {client}\n"));
    }
    match &data.body.not_me_url {
        Some(url) => text.push_str(&format!("\nIf this was you, there is nothing to do. If it was not:\n{url}\n")),
        None => {
            text.push_str("\nIf this was you, there is nothing to do. If it was not, change your password ");
            text.push_str("and sign out the devices you do not know from your account page.\n");
        }
    }
    lettre::Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("from: {e}"))?)
        .to(d.target.parse().map_err(|e| format!("to: {e}"))?)
        .subject(subject(data.activity))
        .message_id(Some(format!("<{}@argus>", d.id)))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign_webhook(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn config_is_checked() {
        assert!(NotifyConfig::default().validate().is_ok());
        let hook = |url: &str, secret: Option<&str>| NotifyConfig {
            webhook_url: Some(url.into()),
            webhook_secret: secret.map(str::to_owned),
            ..NotifyConfig::default()
        };
        let secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(hook("https://hooks.example/argus", secret).validate().is_ok());
        assert!(hook("https://hooks.example/argus", None).validate().unwrap_err().contains("webhook_secret"));
        assert!(hook("ftp://x", secret).validate().is_err());
        assert!(hook("https://x", Some("secret")).validate().is_err());
        assert!(hook("https://x", Some("whsec_c2hvcnQ=")).validate().is_err(), "too short");
        let smtp = |from: &str| NotifyConfig {
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(2525),
                from: from.into(),
                tls: SmtpTls::None,
                username: None,
                password: None,
            }),
            ..NotifyConfig::default()
        };
        assert!(smtp("Argus <no-reply@example.com>").validate().is_ok());
        assert!(smtp("not an address").validate().is_err());
        assert!(NotifyConfig { max_attempts: 0, ..NotifyConfig::default() }.validate().is_err());
        let shown = format!("{:?}", hook("https://x", secret));
        assert!(!shown.contains("MfKQ9r8G"), "the secret is never printed: {shown}");
    }

    #[test]
    fn retries_stop_after_max_attempts() {
        let c = NotifyConfig { max_attempts: 3, retry_base_ms: 100, retry_max_ms: 1000, ..NotifyConfig::default() };
        assert!(c.retry(1).is_some_and(|d| d <= Duration::from_millis(100) && d >= Duration::from_millis(50)));
        assert!(c.retry(2).is_some());
        assert_eq!(c.retry(3), None);
    }
}
