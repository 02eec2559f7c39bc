//! A seeded simulation of an API's ordinary traffic and of attacks on it, for the detector tests and benchmark.
//!
//! The API is a small bank (accounts, transactions, cards, profile, transfers) behind the gate, with an issuer
//! in front. Benign users have habits of their own: how often and when they come, which devices (a browser, a
//! phone app) from which networks (home, work, a mobile carrier), how many accounts and cards they own, how often
//! they mistype their password, how they move through the app. Two services call the API around the clock, and
//! internet noise probes unknown paths now and then. Everything random comes from one seed.
#![allow(dead_code)]

use argus_detect::forest::SplitMix64;
use argus_model::{
    ApiCall, Decision, Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp, TokenIssued,
};

/// The simulation's time zero (a Monday, 00:00 UTC).
pub const T0: i64 = 1_763_942_400_000;
pub const SEC: i64 = 1000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
pub const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                          Version/17.5 Safari/605.1.15";
pub const APP: &str = "BankApp/5.2.1 (iPhone; iOS 17.5)";

/// An event at `ms` after [`T0`].
pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// The smallest valid call (built from JSON so that optional fields added to the schema later need no change).
pub fn base_call() -> ApiCall {
    serde_json::from_str(
        r#"{"request_id":"r","method":"GET","path":"/","status":200,"decision":"allowed","bytes_in":0,
            "bytes_out":0,"latency_us":900}"#,
    )
    .expect("the minimal ApiCall JSON parses")
}

/// The operations of the API: (operation id, method, path template).
pub const OPERATIONS: [(&str, &str, &str); 10] = [
    ("listAccounts", "GET", "/accounts"),
    ("getAccount", "GET", "/accounts/{accountId}"),
    ("listTransactions", "GET", "/accounts/{accountId}/transactions"),
    ("getTransaction", "GET", "/accounts/{accountId}/transactions/{transactionId}"),
    ("listCards", "GET", "/cards"),
    ("getCard", "GET", "/cards/{cardId}"),
    ("getProfile", "GET", "/me"),
    ("updateProfile", "PUT", "/me"),
    ("createTransfer", "POST", "/transfers"),
    ("exportAll", "GET", "/admin/export"),
];

/// A call of operation `op` with `ids` for its path parameters, by `principal`.
pub fn api(ms: i64, principal: Principal, op: &str, ids: &[String], status: u16) -> Event {
    let (_, method, template) = OPERATIONS.iter().find(|(o, _, _)| *o == op).copied().unwrap_or((op, "GET", "/"));
    let mut call = base_call();
    let mut path = template.to_owned();
    let names: Vec<&str> = template.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
    for (name, id) in names.iter().zip(ids) {
        path = path.replace(&format!("{{{name}}}"), id);
    }
    call.method = method.to_owned();
    call.path = path;
    call.route = Some("bank".to_owned());
    call.operation_id = Some(op.to_owned());
    call.path_template = Some(template.to_owned());
    call.object_ids = names.iter().zip(ids).map(|(n, v)| (n.to_string(), v.clone())).collect();
    // The gate let it through and the API answered `status`; refusals by the gate set `decision` and `reason`.
    call.status = status;
    call.decision = Decision::Allowed;
    Event::new(at(ms), "gate", principal, EventKind::ApiCall(call))
}

/// Changes the call of an `ApiCall` event.
pub fn with_call(event: &mut Event, f: impl FnOnce(&mut ApiCall)) {
    if let EventKind::ApiCall(c) = &mut event.kind {
        f(c);
    }
}

/// A sign-in attempt at the issuer.
pub fn login(ms: i64, ip: &str, ua: &str, username: &str, outcome: LoginOutcome) -> Event {
    let principal = Principal { ip: Some(ip.into()), user_agent: Some(ua.into()), ..Principal::default() };
    Event::new(at(ms), "issuer", principal, EventKind::Login(Login { username: username.into(), outcome }))
}

/// Tokens issued at the issuer.
pub fn issued(ms: i64, principal: Principal, grant: &str, family: Option<&str>) -> Event {
    Event::new(
        at(ms),
        "issuer",
        principal,
        EventKind::TokenIssued(TokenIssued {
            grant_type: grant.into(),
            scope: "accounts:read cards:read".into(),
            family: family.map(str::to_owned),
            expires_at: at(ms + 5 * MIN),
        }),
    )
}

/// A device a user signs in from.
#[derive(Clone, Debug)]
pub struct Device {
    pub agent: &'static str,
    /// The networks (first two octets) it is used from, the first most often.
    pub networks: Vec<[u8; 2]>,
}

/// One benign user and its habits.
#[derive(Clone, Debug)]
pub struct User {
    pub index: usize,
    pub sub: String,
    pub username: String,
    pub accounts: Vec<String>,
    pub cards: Vec<String>,
    pub devices: Vec<Device>,
    /// Visits per day, on average.
    pub visits: f64,
    /// The hour around which the user comes.
    pub peak_hour: f64,
    /// Chance of a mistyped password at a sign-in.
    pub typo: f64,
    /// Calls per visit, on average.
    pub calls: f64,
    /// How much the user likes transactions over cards and profile (0..1).
    pub taste: f64,
}

impl User {
    pub fn session(&self, device: usize) -> String {
        format!("sid-{}-{device}", self.index)
    }

    pub fn family(&self, device: usize) -> String {
        format!("fam-{}-{device}", self.index)
    }
}

/// The simulated population.
#[derive(Clone, Debug)]
pub struct World {
    pub users: Vec<User>,
}

fn pick<'a, T>(rng: &mut SplitMix64, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

impl World {
    /// `n` users with habits drawn from `rng`.
    pub fn new(rng: &mut SplitMix64, n: usize) -> Self {
        let carriers: [[u8; 2]; 4] = [[100, 64], [100, 65], [172, 56], [37, 120]];
        let users = (0..n)
            .map(|index| {
                let home = [(81 + rng.below(100)) as u8, rng.below(256) as u8];
                let work = [(20 + rng.below(50)) as u8, rng.below(256) as u8];
                let browsers: [&'static str; 3] = [FIREFOX, CHROME, SAFARI];
                let mut devices = vec![Device {
                    agent: browsers[rng.below(3)],
                    networks: if rng.below(2) == 0 { vec![home, work] } else { vec![home] },
                }];
                if rng.below(3) > 0 {
                    let carrier = *pick(rng, &carriers);
                    devices.push(Device { agent: APP, networks: vec![carrier, home] });
                }
                let n_accounts = 1 + rng.below(5);
                User {
                    index,
                    sub: format!("user-{index:04}"),
                    username: format!("customer{index}@example.com"),
                    accounts: (0..n_accounts).map(|_| (10_000 + rng.below(90_000)).to_string()).collect(),
                    cards: (0..rng.below(4)).map(|_| format!("card-{:06x}", rng.next_u64() & 0xff_ffff)).collect(),
                    devices,
                    visits: 0.3 + 2.5 * rng.next_f64(),
                    peak_hour: 8.0 + 13.0 * rng.next_f64(),
                    typo: 0.12 * rng.next_f64(),
                    calls: 8.0 + 40.0 * rng.next_f64(),
                    taste: rng.next_f64(),
                }
            })
            .collect();
        Self { users }
    }
}

/// The next operation of a user in the app, from the current one: each successor with its weight.
fn next_op(rng: &mut SplitMix64, user: &User, op: &str) -> &'static str {
    let t = user.taste;
    let successors: &[(f64, &'static str)] = match op {
        "listAccounts" => {
            &[(0.55, "getAccount"), (0.25 * t, "listTransactions"), (0.35 - 0.25 * t, "listCards"), (0.1, "getProfile")]
        }
        "getAccount" => {
            &[(0.5, "listTransactions"), (0.3, "listAccounts"), (0.1, "getAccount"), (0.1, "createTransfer")]
        }
        "listTransactions" => &[(0.45, "getTransaction"), (0.25, "getAccount"), (0.3, "listAccounts")],
        "getTransaction" => &[(0.6, "listTransactions"), (0.4, "getAccount")],
        "listCards" => &[(0.6, "getCard"), (0.4, "listAccounts")],
        "getCard" => &[(0.5, "listCards"), (0.5, "listAccounts")],
        "getProfile" => &[(0.2, "updateProfile"), (0.8, "listAccounts")],
        "updateProfile" => &[(1.0, "getProfile")],
        "createTransfer" => &[(0.7, "getAccount"), (0.3, "listTransactions")],
        _ => &[(1.0, "listAccounts")],
    };
    let total: f64 = successors.iter().map(|(w, _)| w).sum();
    let mut r = rng.next_f64() * total;
    for &(w, next) in successors {
        if r < w {
            return next;
        }
        r -= w;
    }
    successors.last().map_or("listAccounts", |(_, next)| next)
}

/// The ids, status, bytes and records of a benign call of `op` by `user`.
fn shape(rng: &mut SplitMix64, user: &User, op: &str) -> (Vec<String>, u64, Option<u64>) {
    let mut account = || pick(rng, &user.accounts).clone();
    match op {
        "listAccounts" => (vec![], 400 + 600 * user.accounts.len() as u64, Some(user.accounts.len() as u64)),
        "getAccount" => (vec![account()], 700, None),
        "listTransactions" => {
            let records = 10 + rng.below(40) as u64;
            (vec![pick(rng, &user.accounts).clone()], 300 * records, Some(records))
        }
        "getTransaction" => {
            let a = pick(rng, &user.accounts).clone();
            (vec![a, format!("tx-{:x}", rng.next_u64() & 0xffff_ffff)], 900, None)
        }
        "listCards" => (vec![], 300 + 400 * user.cards.len() as u64, Some(user.cards.len() as u64)),
        "getCard" if !user.cards.is_empty() => (vec![pick(rng, &user.cards).clone()], 600, None),
        "getCard" => (vec!["card-000000".into()], 200, None),
        "getProfile" => (vec![], 800, None),
        _ => (vec![], 150, None),
    }
}

fn ip_in(rng: &mut SplitMix64, net: [u8; 2]) -> String {
    format!("{}.{}.{}.{}", net[0], net[1], rng.below(256), 1 + rng.below(254))
}

/// One visit of `user` from device `d` starting at `start`: sign-in if needed, tokens, calls. Returns when it
/// ended.
fn visit(rng: &mut SplitMix64, user: &User, d: usize, start: i64, visit_no: usize, out: &mut Vec<Event>) -> i64 {
    let device = &user.devices[d];
    let mut net = device.networks[if rng.below(4) == 0 { rng.below(device.networks.len()) } else { 0 }];
    let mut ip = ip_in(rng, net);
    let mut t = start;
    let signs_in = visit_no == 0 || rng.below(3) == 0;
    if signs_in {
        while rng.next_f64() < user.typo {
            let failure = LoginOutcome::Failure(LoginFailure::BadPassword);
            out.push(login(t, &ip, device.agent, &user.username, failure));
            t += 5 * SEC + rng.below(20) as i64 * SEC;
        }
        out.push(login(t, &ip, device.agent, &user.username, LoginOutcome::Success));
        t += 2 * SEC;
    }
    let mut principal = Principal {
        sub: Some(user.sub.clone()),
        client_id: Some("web".into()),
        sid: Some(user.session(d)),
        jti: None,
        jkt: None,
        ip: Some(ip.clone()),
        user_agent: Some(device.agent.into()),
        device_id: None,
    };
    let grant = if signs_in { "authorization_code" } else { "refresh_token" };
    out.push(issued(t, principal.clone(), grant, Some(&user.family(d))));
    let mut token = 0;
    let mut token_at = t;
    principal.jti = Some(format!("jti-{}-{d}-{visit_no}-{token}", user.index));
    // Calls per visit: geometric around the user's mean.
    let calls = 1 + (-(1.0 - rng.next_f64()).ln() * user.calls) as usize;
    let mut op = "listAccounts";
    for i in 0..calls.min(200) {
        t += 2 * SEC + (rng.below(30) as i64) * SEC;
        if t - token_at > 5 * MIN {
            token += 1;
            token_at = t;
            principal.jti = None;
            out.push(issued(t, principal.clone(), "refresh_token", Some(&user.family(d))));
            principal.jti = Some(format!("jti-{}-{d}-{visit_no}-{token}", user.index));
        }
        // A phone moving from one of its networks to another now and then.
        if d > 0 && i > 0 && rng.below(150) == 0 {
            net = device.networks[rng.below(device.networks.len())];
            ip = ip_in(rng, net);
            principal.ip = Some(ip.clone());
        }
        if i > 0 {
            op = next_op(rng, user, op);
        }
        let (ids, bytes, records) = shape(rng, user, op);
        let r = rng.below(1000);
        let status = match r {
            0..=7 => 404,
            8..=10 => 400,
            11 => 500,
            _ if op == "createTransfer" || op == "updateProfile" => 201,
            _ => 200,
        };
        let mut e = api(t, principal.clone(), op, &ids, status);
        with_call(&mut e, |c| {
            c.bytes_out = if status < 300 { bytes } else { 120 };
            c.records = records.filter(|_| status < 300);
            c.latency_us = 800 + rng.below(20_000) as u64;
            if status == 400 {
                c.decision = Decision::Refused;
                c.reason = Some("invalid-request".into());
            }
        });
        out.push(e);
    }
    t
}

/// Two services: a reporting job reading transactions every minute, a monitor checking the profile endpoint
/// every 30 s. Around the clock, one token an hour each.
fn services(rng: &mut SplitMix64, days: i64, out: &mut Vec<Event>) {
    let reporting = |ms: i64| Principal {
        client_id: Some("reporting".into()),
        jti: Some(format!("rep-{}", ms / HOUR)),
        ip: Some("10.0.5.20".into()),
        user_agent: Some("reporting-service/2.1".into()),
        ..Principal::default()
    };
    let monitor = |ms: i64| Principal {
        client_id: Some("monitor".into()),
        jti: Some(format!("mon-{}", ms / HOUR)),
        ip: Some("10.0.7.3".into()),
        user_agent: Some("kube-probe/1.29".into()),
        ..Principal::default()
    };
    let accounts: Vec<String> = (0..40).map(|i| (50_000 + i * 17).to_string()).collect();
    let mut t = 0;
    while t < days * DAY {
        let records = 50 + rng.below(150) as u64;
        let mut e =
            api(t + rng.below(900) as i64, reporting(t), "listTransactions", &[pick(rng, &accounts).clone()], 200);
        with_call(&mut e, |c| {
            c.records = Some(records);
            c.bytes_out = 300 * records;
        });
        out.push(e);
        for half in [0, 30 * SEC] {
            let mut e = api(t + half, monitor(t), "getProfile", &[], 200);
            with_call(&mut e, |c| c.bytes_out = 80);
            out.push(e);
        }
        t += MIN;
    }
}

/// Internet noise: scanners trying a few well-known paths, a few times an hour, each from a new address.
fn noise(rng: &mut SplitMix64, days: i64, out: &mut Vec<Event>) {
    let paths = ["/wp-login.php", "/.env", "/admin", "/phpmyadmin/", "/.git/config", "/api/v1/users"];
    let mut t = 0;
    while t < days * DAY {
        t += (5 + rng.below(30) as i64) * MIN;
        let ip = format!("{}.{}.{}.{}", 1 + rng.below(220), rng.below(256), rng.below(256), 1 + rng.below(254));
        for _ in 0..1 + rng.below(4) {
            let mut call = base_call();
            call.path = pick(rng, &paths).to_string();
            call.status = 404;
            call.decision = Decision::Refused;
            call.reason = Some("no-route".into());
            let principal = Principal {
                ip: Some(ip.clone()),
                user_agent: Some("Mozilla/5.0 zgrab/0.x".into()),
                ..Principal::default()
            };
            out.push(Event::new(at(t), "gate", principal, EventKind::ApiCall(call)));
            t += SEC;
        }
    }
}

/// `days` of ordinary traffic of `world`, sorted by time.
pub fn benign(rng: &mut SplitMix64, world: &World, days: i64) -> Vec<Event> {
    let mut out = Vec::new();
    for user in &world.users {
        let mut visits = 0;
        // A device is used for one visit at a time.
        let mut free_at = vec![i64::MIN; user.devices.len()];
        for day in 0..days {
            // Weekends a little quieter.
            let rate = if day % 7 >= 5 { 0.7 * user.visits } else { user.visits };
            for _ in 0..6 {
                if rng.next_f64() >= rate / 6.0 {
                    continue;
                }
                let spread: f64 = (0..3).map(|_| rng.next_f64() - 0.5).sum::<f64>() * 4.0;
                let hour = (user.peak_hour + spread).clamp(0.0, 23.5);
                let start = day * DAY + (hour * HOUR as f64) as i64 + rng.below(3600) as i64 * SEC / 60;
                let d = rng.below(user.devices.len());
                let start = start.max(free_at[d].saturating_add(MIN));
                free_at[d] = visit(rng, user, d, start, visits, &mut out);
                visits += 1;
            }
        }
    }
    services(rng, days, &mut out);
    noise(rng, days, &mut out);
    out.sort_by_key(|e| e.time);
    out
}

/// Merges `extra` into the time-ordered `events`.
pub fn merge(events: &mut Vec<Event>, extra: Vec<Event>) {
    events.extend(extra);
    events.sort_by_key(|e| e.time);
}
