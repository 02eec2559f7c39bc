//! Watch's detectors alone: events per second through all default detectors on one thread, and memory per
//! tracked key. Run by hand: `bench/watch-detect/run.sh` (see bench/README.md).
//!
//! The events are the detector tests' simulation (`tests/sim`): USERS users with their own habits over DAYS days,
//! two services and internet noise, generated before timing starts. Each round runs fresh default `Detectors`
//! over all of them; the figure is the median round. Memory is what the detectors account for themselves
//! (`Detector::memory`: entries, index, key texts, per-key heap, plus fixed parts such as the trained forest),
//! cross-checked against the growth of the process's resident set over the round (a counting global allocator
//! would need `unsafe`, which the workspace forbids).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::Instant;

use argus_detect::forest::SplitMix64;
use argus_detect::{Detectors, DetectorsConfig, Memory};
use argus_model::{ApiCall, Decision, Event, EventKind, Principal};

type BoxError = Box<dyn std::error::Error>;

fn env_number(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|e| format!("{name}={v:?}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// Resident set size of this process, in bytes (Linux), or 0 if unknown.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Round {
    events_per_sec: f64,
    drafts: usize,
    memory: Vec<(&'static str, Memory)>,
    rss_growth: usize,
}

fn round(events: &[Event]) -> Result<Round, BoxError> {
    let before = rss();
    let mut detectors = Detectors::from_config(&DetectorsConfig::default())?;
    let start = Instant::now();
    let mut drafts = 0;
    for e in events {
        drafts += detectors.observe(e).len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss_growth = rss().saturating_sub(before);
    let memory = detectors.memory();
    Ok(Round { events_per_sec: events.len() as f64 / elapsed, drafts, memory, rss_growth })
}

/// An untimed pass that samples the detectors' memory every `every` events and returns the sample with the most
/// keys held: memory per key at the busiest moment, not after the quiet end of the day has swept most keys away.
fn peak_memory(events: &[Event], every: usize) -> Result<Vec<(&'static str, Memory)>, BoxError> {
    let mut detectors = Detectors::from_config(&DetectorsConfig::default())?;
    let mut peak: Vec<(&'static str, Memory)> = Vec::new();
    let keys = |m: &[(&'static str, Memory)]| m.iter().map(|(_, m)| m.keys).sum::<usize>();
    for (i, e) in events.iter().enumerate() {
        detectors.observe(e);
        if i % every == 0 {
            let m = detectors.memory();
            if keys(&m) > keys(&peak) {
                peak = m;
            }
        }
    }
    Ok(peak)
}

/// A flood: `n` calls, each from a new address with a forged user, session and token id: the worst case for
/// every table.
fn flood(n: usize) -> Vec<Event> {
    let mut call: ApiCall = sim::base_call();
    call.operation_id = Some("getAccount".into());
    call.path_template = Some("/accounts/{accountId}".into());
    (0..n)
        .map(|i| {
            let mut c = call.clone();
            c.object_ids = vec![("accountId".into(), i.to_string())];
            // Every other call refused as malformed, so the probing tables fill too.
            if i % 2 == 1 {
                c.status = 400;
                c.decision = Decision::Refused;
                c.reason = Some("invalid-request".into());
            }
            let p = Principal {
                sub: Some(format!("forged-user-{i}")),
                jti: Some(format!("forged-token-{i:012}")),
                sid: Some(format!("forged-session-{i:012}")),
                ip: Some(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)),
                user_agent: Some("flood/1.0".into()),
                ..Principal::default()
            };
            Event::new(sim::at(i as i64), "gate", p, EventKind::ApiCall(c))
        })
        .collect()
}

fn print_memory(memory: &[(&'static str, Memory)]) -> Memory {
    let total = memory.iter().fold(Memory::default(), |a, (_, m)| a + *m);
    for (name, m) in memory {
        let per_key = m.bytes.checked_div(m.keys).map_or_else(|| "-".to_owned(), |b| format!("{b} B/key"));
        println!("    {name:<18} {:>9} keys {:>12} B  {per_key}", thousands(m.keys as f64), thousands(m.bytes as f64));
    }
    total
}

fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let users = env_number("USERS", 5000)?;
    let days = env_number("DAYS", 1)? as i64;
    let rounds = env_number("ROUNDS", 5)?.max(1);
    let flood_n = env_number("FLOOD", 300_000)?;

    let mut rng = SplitMix64::new(42);
    let world = sim::World::new(&mut rng, users);
    let events = sim::benign(&mut rng, &world, days);
    let mut kinds = std::collections::BTreeMap::new();
    for e in &events {
        *kinds.entry(e.type_name()).or_insert(0usize) += 1;
    }
    println!("watch detectors: {} events ({kinds:?}) of {users} simulated users over {days} day(s)", events.len());

    let _warm = round(&events)?;
    let mut results = Vec::new();
    for r in 0..rounds {
        let x = round(&events)?;
        println!("  round {}: {} events/s, {} drafts", r + 1, thousands(x.events_per_sec), x.drafts);
        results.push(x);
    }
    results.sort_by(|a, b| a.events_per_sec.total_cmp(&b.events_per_sec));
    let median = &results[results.len() / 2];
    let (lo, hi) = (results[0].events_per_sec, results[results.len() - 1].events_per_sec);
    println!(
        "events/s through all {} detectors, one thread: median {} (range {}..{})",
        median.memory.len(),
        thousands(median.events_per_sec),
        thousands(lo),
        thousands(hi)
    );
    println!("  memory at the moment the most keys were held (sampled every 10,000 events, untimed):");
    let total = print_memory(&peak_memory(&events, 10_000)?);
    println!(
        "  total: {} keys, {} B accounted, {} B per key (fixed parts such as the trained forest included)",
        thousands(total.keys as f64),
        thousands(total.bytes as f64),
        total.bytes / total.keys.max(1),
    );
    let end: Memory = median.memory.iter().fold(Memory::default(), |a, (_, m)| a + *m);
    println!(
        "  at the end of the median round: {} keys, {} B accounted; the resident set grew {} B over the round",
        thousands(end.keys as f64),
        thousands(end.bytes as f64),
        thousands(median.rss_growth as f64),
    );

    if flood_n > 0 {
        let flood = flood(flood_n);
        let x = round(&flood)?;
        println!(
            "flood: {} calls, each a new IP, user, session and token: {} events/s",
            thousands(flood_n as f64),
            thousands(x.events_per_sec)
        );
        let total = print_memory(&x.memory);
        println!(
            "  total: {} keys (capped per table), {} B accounted ({} B per key); resident set grew {} B",
            thousands(total.keys as f64),
            thousands(total.bytes as f64),
            total.bytes / total.keys.max(1),
            thousands(x.rss_growth as f64),
        );
    }
    Ok(())
}
