//! The false-alarm budget through a running Argus (issue 6): a simulated week of ten people and a batch job, each
//! with habits of their own, signing in through the real login form and calling the real gate from their own
//! addresses, raise at most one alert per 10,000 events watch saw, and no response is taken against any of them.
//!
//! The cast: office workers behind one shared NAT (weekdays 9-17), a power user with five times anyone's volume,
//! evening and weekend users, a night owl, an early bird, a lunch-break phone user, a commuter whose phone app moves
//! between home wifi and mobile data with the same token (and who signs in on a new laptop midweek), two people who
//! mistype their password once, a refresh-token rotation each morning, list and detail reads of their own accounts
//! and transfers, a stale bookmark (404) and a mistyped id (400) now and then, the odd transfer after a step-up
//! sign-in, and a batch client (client credentials) syncing every three minutes around the clock. The demo's own
//! responses (`demo.toml`) are in force, so a false alert would act on someone.
//!
//! Time moves a minute at a time on the injected clock; a minute in which nobody works costs no wall time, and
//! the people active in a minute make their calls concurrently. About 15,000 events in some 15 s of wall time.

use std::sync::Arc;

use argus_model::Clock;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::harness::{Demo, FIREFOX, Person};

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36";
const PHONE_APP: &str = "BankApp/5.2.1 (iPhone; iOS 18.1)";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                      Version/18.1 Safari/605.1.15";
/// The office's NAT, shared by everyone who works there.
const OFFICE: &str = "192.0.2.10";
const BATCH_SECRET: &str = "ledger-sync-secret-0123456789abcdef";

/// A small seeded generator: the same week every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// When someone uses the API: the hours of a weekday (0 = Monday) in which they may open it.
#[derive(Clone, Copy)]
enum Habit {
    /// Weekdays 9-17 at the office, nothing at weekends.
    Office,
    /// Every evening 19-22; weekend late mornings too.
    Evenings,
    /// Weekday mornings and evenings on the move (home wifi, then mobile data), weekend afternoons at home.
    Commuter,
    /// Saturday and Sunday 10-12 only.
    Weekends,
    /// Lunch breaks, on the phone.
    Lunch,
    /// Late nights 22-01.
    NightOwl,
    /// Early weekday mornings 6-8.
    EarlyBird,
}

impl Habit {
    fn active(self, weekday: u64, hour: u64) -> bool {
        let weekend = weekday >= 5;
        match self {
            Self::Office => !weekend && (9..17).contains(&hour),
            Self::Evenings => (19..22).contains(&hour) || (weekend && (10..12).contains(&hour)),
            Self::Commuter => {
                (!weekend && (hour == 7 || hour == 8 || hour == 17 || hour == 18 || hour == 20))
                    || (weekend && (14..17).contains(&hour))
            }
            Self::Weekends => weekend && (10..12).contains(&hour),
            Self::Lunch => hour == 12 || (weekend && hour == 16),
            Self::NightOwl => hour >= 22 || hour == 0,
            Self::EarlyBird => !weekend && (6..8).contains(&hour),
        }
    }
}

/// One simulated person (or the batch job), what they did and what came back.
struct Actor {
    person: Person,
    habit: Habit,
    /// Calls per active minute: 2 for most, 10 for the power user.
    pace: u64,
    /// Percent of active hours in which they open the app at all.
    engagement: u64,
    /// The minutes of the current hour they are working, `[start, end)`.
    session: (u64, u64),
    /// The simulated day their token was last refreshed.
    refreshed_day: u64,
    rng: Rng,
    calls: u64,
    /// Calls answered other than expected (a benign call refused): must stay empty.
    surprises: Vec<String>,
}

impl Actor {
    fn new(person: Person, habit: Habit, pace: u64, engagement: u64, seed: u64) -> Self {
        let rng = Rng(seed);
        Self { person, habit, pace, engagement, session: (0, 0), refreshed_day: 0, rng, calls: 0, surprises: vec![] }
    }

    /// At the top of each hour: whether and when they use the app during it.
    fn plan_hour(&mut self, weekday: u64, hour: u64) {
        self.session = (0, 0);
        if self.habit.active(weekday, hour) && self.rng.chance(self.engagement) {
            let start = self.rng.below(45);
            self.session = (start, start + 8 + self.rng.below(13));
        }
    }

    fn busy(&self, minute: u64) -> bool {
        (self.session.0..self.session.1).contains(&minute)
    }
}

/// One call a person makes and the statuses they expect.
fn pick_call(actor: &mut Actor) -> (String, &'static [StatusCode]) {
    const OK: &[StatusCode] = &[StatusCode::OK];
    let accounts = &actor.person.accounts;
    let roll = actor.rng.below(100);
    let own = (!accounts.is_empty()).then(|| accounts[actor.rng.below(accounts.len() as u64) as usize]);
    match (roll, own) {
        // A stale bookmark: an account that is gone, answered 404 by the API.
        (0, _) => ("/accounts/999999".into(), &[StatusCode::NOT_FOUND]),
        // A mistyped id: refused by the gate's validation.
        (1, _) => ("/accounts/12a".into(), &[StatusCode::BAD_REQUEST]),
        (2..=5, _) => ("/health".into(), OK),
        (6..=40, Some(id)) => (format!("/accounts/{id}"), OK),
        (41..=55, Some(id)) => (format!("/accounts/{id}/transfers"), OK),
        _ => ("/accounts".into(), OK),
    }
}

/// What one actor does in one busy minute; hands the actor back.
async fn work_minute(demo: Arc<Demo>, mut actor: Actor, (day, hour, minute): (u64, u64, u64)) -> Actor {
    if actor.person.user_agent == PHONE_APP && actor.person.name == "commuter" {
        // The phone on home wifi until about 07:40, then on mobile data until the office, and from 17:00 until home.
        let on_the_move = (hour == 7 && minute >= 40) || hour == 8 || hour == 17;
        actor.person.ip = if on_the_move { "100.64.7.21".into() } else { "198.51.100.30".into() };
    }
    if actor.refreshed_day < day && actor.person.refresh.is_some() {
        refresh(&demo, &mut actor).await;
        actor.refreshed_day = day;
    }
    for _ in 0..actor.pace {
        let (path, expected) = pick_call(&mut actor);
        let r = demo.call(&actor.person, "GET", &path).await;
        actor.calls += 1;
        if !expected.contains(&r.status) {
            actor.surprises.push(format!("{} GET {path}: {} {}", actor.person.name, r.status, r.body));
        }
    }
    actor
}

/// A refresh-token rotation at the issuer, as an app does each morning.
async fn refresh(demo: &Demo, actor: &mut Actor) {
    let p = &mut actor.person;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", p.refresh.as_deref().unwrap_or_default()),
            ("client_id", p.client_id.as_str()),
        ])
        .finish();
    let url = format!("{}/token", demo.up.issuer_url);
    let r = demo.send("POST", &url, (&p.ip, &p.user_agent), None, &[], Some(body)).await;
    if r.status != StatusCode::OK {
        actor.surprises.push(format!("{} refresh: {} {}", p.name, r.status, r.body));
        return;
    }
    let tokens = r.json();
    p.access = tokens["access_token"].as_str().map(str::to_owned);
    p.refresh = tokens["refresh_token"].as_str().map(str::to_owned);
}

/// What the app asks for when money is to move.
const TRANSFER_SCOPE: &str = "openid accounts:read transfers:read transfers:write";

/// The odd transfer: moving money needs a recent sign-in (the spec's `x-argus-step-up: {max_age: 300}`), so the
/// app signs its user in again, asking for `transfers:write` too, and sends the transfer with the fresh token,
/// which it keeps using afterwards. From the person's Everyday account to their Savings (both EUR).
async fn transfer(demo: &Demo, actor: &mut Actor) {
    let mut p = Person { scope: TRANSFER_SCOPE.into(), ..actor.person.clone() };
    demo.sign_in(&mut p).await;
    let (Some(from), Some(to)) = (p.accounts.first(), p.accounts.get(1)) else {
        panic!("{} has no two accounts to move money between", p.name);
    };
    let body = serde_json::json!({"from_account": from, "to_account": to, "amount": 2_000 + actor.rng.below(50_000),
        "currency": "EUR", "memo": "Rainy day"});
    let request = http::Request::post(format!("{}/transfers", demo.up.gate_url))
        .header("x-forwarded-for", &p.ip)
        .header(http::header::USER_AGENT, &p.user_agent)
        .header(http::header::AUTHORIZATION, format!("Bearer {}", p.token()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::from(body.to_string()))
        .unwrap();
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    actor.calls += 1;
    if status != StatusCode::CREATED {
        actor.surprises.push(format!("{} POST /transfers: {status} {}", p.name, String::from_utf8_lossy(&text)));
    }
    actor.person = p;
}

/// A machine client (client credentials, `client_secret_basic`) that syncs a ledger every three minutes, around the
/// clock.
async fn add_batch_client(demo: &Demo) {
    let app = argus_oauth::ClientRegistration {
        client_id: "ledger-sync".into(),
        name: "Ledger sync".into(),
        allowed_scopes: vec!["accounts:read".into()],
        public: false,
        token_endpoint_auth_method: argus_oauth::TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(argus_oauth::hash_client_secret(BATCH_SECRET)),
        grant_types: vec![argus_oauth::GrantType::ClientCredentials],
        ..argus_oauth::ClientRegistration::default()
    };
    argus_issuer::provision::ensure_client_at(&demo.up.store, app, demo.clock.now()).await.unwrap();
}

async fn batch_token(demo: &Demo, batch: &Person) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ledger-sync:{BATCH_SECRET}"));
    let body = "grant_type=client_credentials&scope=accounts%3Aread".to_owned();
    let url = format!("{}/token", demo.up.issuer_url);
    let extra = [("authorization", format!("Basic {basic}"))];
    let r = demo.send("POST", &url, (&batch.ip, &batch.user_agent), None, &extra, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "batch token: {}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// A sign-in with a typo first: the wrong password refused, the right one accepted.
async fn sign_in_after_typo(demo: &Demo, p: &mut Person) {
    let typo = format!("{}!", crate::harness::PASSWORD);
    assert!(demo.try_sign_in(p, &p.name.clone(), &typo).await.is_err(), "{}: a wrong password accepted", p.name);
    demo.sign_in(p).await;
}

/// The people of the week and their habits.
async fn cast(demo: &Demo) -> Vec<Actor> {
    let who: [(&str, &str, &str, Habit, u64, u64); 10] = [
        ("alice", OFFICE, FIREFOX, Habit::Office, 2, 70),
        // The power user: five times anyone else's volume, all working day.
        ("bob", "198.51.100.7", CHROME, Habit::Office, 10, 90),
        ("ivan", OFFICE, CHROME, Habit::Office, 2, 50),
        ("erin", "198.51.100.60", SAFARI, Habit::Evenings, 2, 60),
        ("commuter", "198.51.100.30", PHONE_APP, Habit::Commuter, 2, 80),
        ("dave", "100.64.3.9", PHONE_APP, Habit::Weekends, 3, 90),
        ("frank", "100.64.12.40", PHONE_APP, Habit::Lunch, 2, 60),
        ("grace", "198.51.100.90", FIREFOX, Habit::NightOwl, 2, 50),
        ("heidi", "192.0.2.77", SAFARI, Habit::EarlyBird, 2, 70),
        ("judy", "198.51.100.120", CHROME, Habit::Evenings, 1, 40),
    ];
    let mut actors = Vec::new();
    for (i, (name, ip, agent, habit, pace, engagement)) in who.into_iter().enumerate() {
        if !["alice", "bob"].contains(&name) {
            demo.add_user(name).await;
        }
        let mut p = Person { user_agent: agent.into(), ..Person::new(name, ip) };
        // frank and grace mistype their password once.
        if name == "frank" || name == "grace" {
            sign_in_after_typo(demo, &mut p).await;
        } else {
            demo.sign_in(&mut p).await;
        }
        actors.push(Actor::new(p, habit, pace, engagement, 2026 + i as u64));
    }
    actors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_of_benign_people_raises_at_most_one_alert_per_10000_events() {
    let demo = Arc::new(Demo::start("").await);
    add_batch_client(&demo).await;
    // Start on a Monday at 00:00 (the epoch was a Thursday).
    let now = demo.clock.now().as_secs() as u64;
    let days = now / 86_400;
    demo.advance((7 - (days + 3) % 7) * 86_400 - now % 86_400);
    let mut actors = cast(&demo).await;
    let mut batch =
        Person { user_agent: "ledger-sync/3.2 (+cron)".into(), ..Person::new("ledger-sync", "192.0.2.200") };
    batch.client_id = "ledger-sync".into();
    let mut batch_calls = 0u64;

    for day in 0..7u64 {
        for hour in 0..24u64 {
            if hour % 6 == 0 {
                batch.access = Some(batch_token(&demo, &batch).await);
            }
            if day == 2 && hour == 21 {
                // Wednesday evening: the commuter signs in on a new laptop at home, and uses both from then on.
                let mut p = Person { user_agent: CHROME.into(), ..Person::new("commuter", "198.51.100.30") };
                demo.sign_in(&mut p).await;
                actors.push(Actor::new(p, Habit::Evenings, 2, 60, 77));
            }
            // alice pays into her savings on Tuesday and Friday afternoons; bob on Thursday morning.
            for (who, when) in [("alice", (1, 14)), ("alice", (4, 16)), ("bob", (3, 10))] {
                if when == (day, hour) {
                    let actor = actors.iter_mut().find(|a| a.person.name == who).unwrap();
                    transfer(&demo, actor).await;
                }
            }
            let weekday = day % 7;
            for a in &mut actors {
                a.plan_hour(weekday, hour);
            }
            for minute in 0..60u64 {
                if minute % 3 == 0 {
                    for path in ["/accounts", "/health"] {
                        let r = demo.call(&batch, "GET", path).await;
                        assert_eq!(r.status, StatusCode::OK, "ledger-sync {path}: {}", r.body);
                        batch_calls += 1;
                    }
                }
                let (busy, idle): (Vec<Actor>, Vec<Actor>) = actors.into_iter().partition(|a| a.busy(minute));
                let at = (day, hour, minute);
                let tasks: Vec<_> = busy.into_iter().map(|a| tokio::spawn(work_minute(demo.clone(), a, at))).collect();
                actors = idle;
                for t in tasks {
                    actors.push(t.await.unwrap());
                }
                demo.advance(60);
            }
        }
    }
    let surprises: Vec<&String> = actors.iter().flat_map(|a| &a.surprises).collect();
    assert!(surprises.is_empty(), "benign calls answered unexpectedly: {surprises:#?}");
    demo.settle().await;
    let health: Value = {
        let url = format!("{}/healthz", demo.up.watch_url.as_deref().unwrap());
        demo.send("GET", &url, ("127.0.0.1", "argus-test"), None, &[], None).await.json()
    };
    let consumer = &health["consumer"];
    let events = consumer["events"].as_u64().unwrap();
    let calls: u64 = actors.iter().map(|a| a.calls).sum::<u64>() + batch_calls;
    let alerts = demo.alerts().await;
    let actions = demo.watch("/api/actions?limit=1000").await;
    let actions = actions["actions"].as_array().cloned().unwrap_or_default();
    let per_person: Vec<String> = actors.iter().map(|a| format!("{}={}", a.person.name, a.calls)).collect();
    println!(
        "a simulated week: {events} events in watch ({calls} API calls: {}, ledger-sync={batch_calls}), {} alerts, \
         {} actions",
        per_person.join(" "),
        alerts.len(),
        actions.len()
    );
    for a in &alerts {
        println!("  alert {} {} {}: {}", a["attack"], a["key_type"], a["key"], a["feature"]["explanation"]);
    }
    assert_eq!(consumer["events_lost"], 0, "watch fell behind: {consumer:#}");
    assert!(events >= 10_000, "too few events for the bound to mean anything: {events}");
    assert!(alerts.len() as u64 * 10_000 <= events, "{} alerts for {events} events: {alerts:#?}", alerts.len());
    assert!(actions.is_empty(), "responses taken against benign people: {actions:#?}");
    Arc::try_unwrap(demo).ok().expect("no task holds the demo").shutdown().await;
}
