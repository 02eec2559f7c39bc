//! Watch's throughput, run by hand (never a timed test): synthetic events through the real consumer into a
//! temp-file SQLite store, and the detectors alone. `bench/watch/run.sh` pins it to one core and explains the
//! figures; see bench/README.md.
//!
//! Environment (optional): EVENTS per pipeline run (default 100000), ROUNDS per figure (3), MIXES (default
//! "api mixed login"), LONE (lone events timed for latency, 200), REFERENCE (events appended one transaction each,
//! the previous watch path, 3000; 0 skips it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argus_bus::{ControlChannel, EventBus};
use argus_detect::{
    Alert, AlertChange, AlertDraft, AlertFilter, AlertStore, AuditLog, AuditRecord, BatchAppended, ChainVerdict,
    Detectors, DetectorsConfig, WatchStore, WatchStoreError,
};
use argus_model::{
    ApiCall, Decision, Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, SystemClock, Timestamp,
};
use argus_store::Store;
use argus_watch::{IssuerLink, Watch, WatchConfig, WatchDeps, WatchStats};
use tokio::sync::Notify;

type BoxError = Box<dyn std::error::Error>;

const T0: i64 = 1_764_000_000_000;

fn env_number(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|_| format!("{name} must be a whole number, not {v:?}"))?),
        Err(_) => Ok(default),
    }
}

/// A small deterministic generator (64-bit LCG): the same inputs every run, no dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The event mixes measured.
#[derive(Clone, Copy, Debug)]
enum Mix {
    /// Gate traffic only: `ApiCall`s from 1,000 users and IPs. The detectors skip them at once.
    Api,
    /// 90% `ApiCall`, 10% `Login` (70% of sign-ins succeed; the failures come from 2,000 IPs, plus one IP
    /// stuffing credentials, which keeps one alert open and growing).
    Mixed,
    /// `Login` failures only: 50 IPs stuffing credentials over 100,000 accounts. Nearly every event fires a draft:
    /// the worst case for the alert path.
    Login,
}

impl Mix {
    fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "api" => Ok(Self::Api),
            "mixed" => Ok(Self::Mixed),
            "login" => Ok(Self::Login),
            _ => Err(format!("unknown mix {name:?} (api, mixed, login)").into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Mixed => "mixed",
            Self::Login => "login",
        }
    }

    /// `n` events, 100 µs apart in event time (10k/s, the issuer's peak).
    fn events(self, n: usize, seed: u64) -> Vec<Event> {
        let mut rng = Lcg(seed);
        (0..n)
            .map(|i| {
                let time = Timestamp::from_millis(T0 + i as i64 / 10);
                match self {
                    Self::Api => api_call(time, &mut rng),
                    Self::Mixed if rng.below(10) != 0 => api_call(time, &mut rng),
                    Self::Mixed => mixed_login(time, &mut rng),
                    Self::Login => login(time, format!("203.0.113.{}", rng.below(50)), rng.below(100_000), false),
                }
            })
            .collect()
    }
}

fn api_call(time: Timestamp, rng: &mut Lcg) -> Event {
    let user = rng.below(1_000);
    let principal = Principal {
        sub: Some(format!("user-{user}")),
        client_id: Some("demo-app".into()),
        jti: Some(format!("jti-{}", rng.below(u64::MAX))),
        ip: Some(format!("198.51.{}.{}", user / 250, user % 250)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
        ..Principal::default()
    };
    let order = rng.below(100_000);
    Event::new(
        time,
        "gate",
        principal,
        EventKind::ApiCall(ApiCall {
            request_id: format!("req-{}", rng.below(u64::MAX)),
            method: "GET".into(),
            path: format!("/accounts/{user}/orders/{order}"),
            route: Some("orders".into()),
            operation_id: Some("getOrder".into()),
            status: 200,
            decision: Decision::Allowed,
            reason: None,
            bytes_in: 0,
            bytes_out: 300 + rng.below(4_000),
            latency_us: 400 + rng.below(2_000),
            path_template: None,
            object_ids: Vec::new(),
            records: None,
            decoy: false,
            response_check: None,
        }),
    )
}

fn mixed_login(time: Timestamp, rng: &mut Lcg) -> Event {
    match rng.below(10) {
        0..=6 => login(time, format!("198.51.100.{}", rng.below(250)), rng.below(5_000), true),
        7 => login(time, "203.0.113.7".into(), rng.below(100_000), false),
        _ => login(time, format!("192.0.{}.{}", rng.below(8), rng.below(250)), rng.below(5_000), false),
    }
}

fn login(time: Timestamp, ip: String, account: u64, success: bool) -> Event {
    let outcome = if success { LoginOutcome::Success } else { LoginOutcome::Failure(LoginFailure::BadPassword) };
    Event::new(
        time,
        "issuer",
        Principal { ip: Some(ip), user_agent: Some("python-requests/2.32".into()), ..Principal::default() },
        EventKind::Login(Login { username: format!("user{account}@example.com"), outcome }),
    )
}

/// The real store, reporting each batch it appended: lets the bench wait without polling.
struct Signalling {
    inner: Store,
    appended: AtomicU64,
    batch_done: Notify,
}

#[async_trait::async_trait]
impl AuditLog for Signalling {
    async fn append(&self, event: &Event) -> Result<AuditRecord, WatchStoreError> {
        self.inner.append(event).await
    }

    async fn head(&self) -> Result<Option<(u64, String)>, WatchStoreError> {
        self.inner.head().await
    }

    async fn append_batch(&self, records: &[AuditRecord]) -> Result<BatchAppended, WatchStoreError> {
        let done = self.inner.append_batch(records).await;
        if let Ok(d) = &done {
            self.appended.fetch_add(d.appended, Ordering::Relaxed);
        }
        self.batch_done.notify_one();
        done
    }

    async fn records_after(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, WatchStoreError> {
        self.inner.records_after(after, limit).await
    }

    async fn verify_chain(&self) -> Result<ChainVerdict, WatchStoreError> {
        self.inner.verify_chain().await
    }
}

#[async_trait::async_trait]
impl AlertStore for Signalling {
    async fn record_alert(&self, draft: AlertDraft) -> Result<AlertChange, WatchStoreError> {
        self.inner.record_alert(draft).await
    }

    async fn record_alerts(&self, drafts: Vec<AlertDraft>) -> Result<Vec<AlertChange>, WatchStoreError> {
        self.inner.record_alerts(drafts).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, WatchStoreError> {
        self.inner.alerts(filter).await
    }

    async fn alert(&self, id: &str) -> Result<Option<Alert>, WatchStoreError> {
        self.inner.alert(id).await
    }
}

/// A fresh temp-file store (WAL, as `argus up` opens it) and a watch over a bus of `capacity`.
struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Signalling>,
    bus: EventBus,
    watch: Watch,
}

async fn rig(capacity: usize) -> Result<Rig, BoxError> {
    let dir = tempfile::tempdir()?;
    let inner = Store::open_dir(dir.path()).await?;
    let store = Arc::new(Signalling { inner, appended: AtomicU64::new(0), batch_done: Notify::new() });
    let bus = EventBus::new(capacity);
    let issuer_store = Arc::new(store.inner.clone());
    let deps = WatchDeps {
        store: store.clone() as Arc<dyn WatchStore>,
        actions: issuer_store.clone(),
        // No response rules and no API calls here: the issuer is never reached.
        issuer: IssuerLink {
            store: issuer_store,
            url: "http://127.0.0.1:9".into(),
            audience: "http://127.0.0.1:9".into(),
            access_token_ttl: std::time::Duration::from_secs(300),
            refresh_token_ttl: std::time::Duration::from_secs(3600),
            notify: Default::default(),
        },
        control: ControlChannel::new(16),
        events: bus.clone(),
        clock: Arc::new(SystemClock),
    };
    let watch = Watch::start(&WatchConfig::default(), deps).await?;
    Ok(Rig { _dir: dir, store, bus, watch })
}

/// One pipeline run: `events` are queued on the bus first (publishing is the emitters' cost, not watch's), then
/// the clock runs until watch has audited them, run the detectors and stored the alerts of the last batch.
async fn pipeline_run(events: Vec<Event>) -> Result<(f64, WatchStats), BoxError> {
    let n = events.len() as u64;
    let r = rig(events.len() + 1024).await?;
    for e in events {
        r.bus.publish(e);
    }
    let start = Instant::now();
    while r.watch.stats().events < n {
        r.store.batch_done.notified().await;
    }
    let stats = r.watch.stats();
    // Finishes the batch in hand (its detectors and alerts) and stops.
    r.watch.stop().await;
    let elapsed = start.elapsed().as_secs_f64();
    if stats.events_lost > 0 || stats.audit_failures > 0 || stats.alert_failures > 0 {
        return Err(format!("invalid run: {stats:?}").into());
    }
    if !r.store.verify_chain().await?.is_intact() {
        return Err("invalid run: the chain does not verify".into());
    }
    Ok((n as f64 / elapsed, stats))
}

/// The detectors alone over `events`, in this thread: events per second and drafts fired.
fn detectors_run(events: &[Event]) -> Result<(f64, usize), BoxError> {
    let mut detectors = Detectors::from_config(&DetectorsConfig::default())?;
    let start = Instant::now();
    let drafts: usize = events.iter().map(|e| detectors.observe(e).len()).sum();
    Ok((events.len() as f64 / start.elapsed().as_secs_f64(), drafts))
}

/// Lone events on an idle bus: time from publish to the audit row committed.
async fn lone_event_latency(count: usize) -> Result<Vec<Duration>, BoxError> {
    let r = rig(1024).await?;
    let mut rng = Lcg(7);
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let event = api_call(Timestamp::from_millis(T0 + i as i64), &mut rng);
        let start = Instant::now();
        r.bus.publish(event);
        while r.store.appended.load(Ordering::Relaxed) < i as u64 + 1 {
            r.store.batch_done.notified().await;
        }
        latencies.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    r.watch.stop().await;
    latencies.sort_unstable();
    Ok(latencies)
}

/// The previous watch path, for reference: one `append` (one transaction) per event.
async fn per_event_reference(events: &[Event]) -> Result<f64, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::open_dir(dir.path()).await?;
    let start = Instant::now();
    for e in events {
        store.append(e).await?;
    }
    Ok(events.len() as f64 / start.elapsed().as_secs_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

fn range(xs: &[f64]) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(0.0, f64::max);
    format!("{}..{}", thousands(lo), thousands(hi))
}

fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        return Err("no arguments: configure with EVENTS, ROUNDS, MIXES, LONE, REFERENCE".into());
    }
    let n = env_number("EVENTS", 100_000)?;
    let rounds = env_number("ROUNDS", 3)?.max(1);
    let lone = env_number("LONE", 200)?;
    let reference = env_number("REFERENCE", 3_000)?;
    let mixes = std::env::var("MIXES").unwrap_or_else(|_| "api mixed login".into());
    let mixes = mixes.split_whitespace().map(Mix::parse).collect::<Result<Vec<_>, _>>()?;
    // One thread runs watch (sqlx adds one per connection): what it does on one core is what is measured.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    println!("watch pipeline: {n} events per run, {rounds} rounds, max_batch {}", WatchConfig::default().max_batch);
    println!(
        "{:<6} {:>22} {:>13} {:>8} {:>8} {:>9} {:>26}",
        "mix", "pipeline events/s", "(range)", "batches", "drafts", "alerts", "detectors alone events/s"
    );
    for mix in mixes {
        let mut pipeline = Vec::new();
        let mut detectors = Vec::new();
        let mut last = WatchStats::default();
        let mut drafts = 0;
        for round in 0..rounds {
            let events = mix.events(n, 42 + round as u64);
            let (rate, fired) = detectors_run(&events)?;
            detectors.push(rate);
            drafts = fired;
            let (rate, stats) = rt.block_on(pipeline_run(events))?;
            pipeline.push(rate);
            last = stats;
        }
        println!(
            "{:<6} {:>22} {:>13} {:>8} {:>8} {:>9} {:>15} ({})",
            mix.name(),
            thousands(median(pipeline.clone())),
            range(&pipeline),
            last.batches,
            drafts,
            last.alerts_announced,
            thousands(median(detectors.clone())),
            range(&detectors),
        );
    }
    if lone > 0 {
        let latencies = rt.block_on(lone_event_latency(lone))?;
        println!(
            "lone event on an idle bus, publish to committed audit row: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({lone} events)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
        );
    }
    if reference > 0 {
        let events = Mix::Api.events(reference, 1);
        let rate = rt.block_on(per_event_reference(&events))?;
        println!(
            "reference, one transaction per event (AuditLog::append, the previous path): {} events/s",
            thousands(rate)
        );
    }
    Ok(())
}
