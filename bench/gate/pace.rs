//! pace: an open-loop HTTP/1.1 load generator that holds a fixed request rate and reports latency percentiles.
//!
//! Built by `bench/gate/run.sh` with plain `rustc -O` (std only, no crates), because the fixed-rate tools at hand
//! cannot send a different header on every request, and every DPoP request needs a fresh, single-use proof.
//!
//!   pace --addr 127.0.0.1:8080 --path '/items/42?verbose=true' --rate 5000 --seconds 5 \
//!        [--connections 32] [--header 'Authorization: Bearer ...'] [--dpop-file proofs.txt] [--expect 200]
//!
//! Model (wrk2's): each of the `connections` threads owns one keep-alive connection and a fixed schedule, one
//! request every `connections / rate` seconds, the threads' schedules evenly interleaved, so the whole sends `rate`
//! requests a second at evenly spaced instants. Latency runs from the scheduled instant when the connection was
//! still busy with the previous answer at that instant (the server's slowness delayed the send: coordinated
//! omission corrected), else from the moment the request was written (a thread waking a little late is the load
//! generator's delay, not the server's). Threads sleep between requests (no spinning), so a server process
//! sharing the generator's core is not starved.
//!
//! Prints one line: `RESULT target=.. achieved=.. requests=.. errors=.. late=.. p50_us=.. p90_us=.. p99_us=..
//! p999_us=.. max_us=..`. `errors` counts answers whose status is not `--expect`, broken connections and
//! timeouts; `late` counts requests written more than 1 ms after their scheduled instant for any reason. With
//! `--dpop-file`, request i carries line i of the file as its `DPoP` header; running out of lines is an error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Options {
    addr: SocketAddr,
    path: String,
    rate: f64,
    seconds: f64,
    connections: usize,
    headers: Vec<String>,
    dpop_file: Option<String>,
    expect: u16,
}

fn usage() -> String {
    "usage: pace --addr HOST:PORT --path PATH --rate N --seconds S [--connections C] [--header 'K: V']... \
     [--dpop-file FILE] [--expect STATUS]"
        .to_owned()
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut path, mut rate, mut seconds) = (None, None, None, None);
    let mut o = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        path: String::new(),
        rate: 0.0,
        seconds: 0.0,
        connections: 32,
        headers: Vec::new(),
        dpop_file: None,
        expect: 200,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--path" => path = Some(value),
            "--rate" => rate = Some(value.parse::<f64>().map_err(|e| bad(&e))?),
            "--seconds" => seconds = Some(value.parse::<f64>().map_err(|e| bad(&e))?),
            "--connections" => o.connections = value.parse().map_err(|e| bad(&e))?,
            "--header" => o.headers.push(value),
            "--dpop-file" => o.dpop_file = Some(value),
            "--expect" => o.expect = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}\n{}", usage())),
        }
    }
    o.addr = addr.ok_or_else(usage)?;
    o.path = path.ok_or_else(usage)?;
    o.rate = rate.filter(|r| *r > 0.0).ok_or_else(usage)?;
    o.seconds = seconds.filter(|s| *s > 0.0).ok_or_else(usage)?;
    if o.connections == 0 {
        return Err("--connections must be at least 1".to_owned());
    }
    Ok(o)
}

/// What every thread shares: the request text around the optional DPoP header, and the proofs.
struct Plan {
    head: String,
    tail: String,
    proofs: Vec<String>,
    next_proof: AtomicUsize,
}

impl Plan {
    fn new(o: &Options) -> Result<Self, String> {
        let mut head = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", o.path, o.addr);
        for h in &o.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        let proofs = match &o.dpop_file {
            Some(file) => {
                let f = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
                BufReader::new(f)
                    .lines()
                    .map(|l| l.map_err(|e| format!("{file}: {e}")))
                    .filter(|l| l.as_ref().map_or(true, |l| !l.is_empty()))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        Ok(Self { head, tail: "\r\n".to_owned(), proofs, next_proof: AtomicUsize::new(0) })
    }

    /// The bytes of the next request; `None` when the proofs have run out.
    fn request(&self, dpop: bool) -> Option<Vec<u8>> {
        let mut r = self.head.clone();
        if dpop {
            let proof = self.proofs.get(self.next_proof.fetch_add(1, Ordering::Relaxed))?;
            r.push_str("DPoP: ");
            r.push_str(proof);
            r.push_str("\r\n");
        }
        r.push_str(&self.tail);
        Some(r.into_bytes())
    }
}

/// One connection's tally.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    late: u64,
}

/// A keep-alive connection that reads one HTTP/1.1 answer at a time.
struct Conn {
    stream: BufReader<TcpStream>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(5);

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Self { stream: BufReader::with_capacity(64 * 1024, s) })
    }

    /// Send one request and read its answer: `(status, keep the connection)`.
    fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, bool)> {
        self.stream.get_mut().write_all(request)?;
        let mut line = String::new();
        self.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("status line"))?;
        let (mut length, mut chunked, mut keep) = (None, false, !line.starts_with("HTTP/1.0"));
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { return Err(invalid("header line")) };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<u64>().map_err(|_| invalid("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep = !value.eq_ignore_ascii_case("close");
            }
        }
        match (chunked, length) {
            (true, _) => self.skip_chunked()?,
            (false, Some(n)) => self.skip(n)?,
            // No length: the body runs to the end of the connection.
            (false, None) => {
                std::io::copy(&mut self.stream, &mut std::io::sink())?;
                keep = false;
            }
        }
        Ok((status, keep))
    }

    fn read_line(&mut self, line: &mut String) -> std::io::Result<()> {
        if self.stream.read_line(line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let copied = std::io::copy(&mut (&mut self.stream).take(n), &mut std::io::sink())?;
        if copied == n { Ok(()) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) }
    }

    fn skip_chunked(&mut self) -> std::io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size.trim(), 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    self.read_line(&mut line)?;
                    if line.trim_end().is_empty() {
                        return Ok(());
                    }
                }
            }
            self.skip(size + 2)?;
        }
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad {what}"))
}

/// One thread: its connection, its schedule, its tally.
fn run_connection(o: &Options, plan: &Plan, start: Instant, index: usize) -> Tally {
    let mut tally = Tally::default();
    let interval = Duration::from_secs_f64(o.connections as f64 / o.rate);
    let first = start + Duration::from_secs_f64(index as f64 / o.rate);
    let end = start + Duration::from_secs_f64(o.seconds);
    let dpop = o.dpop_file.is_some();
    let mut conn: Option<Conn> = None;
    // When the previous answer arrived: a send after its slot because of it counts from the slot.
    let mut free_at = start;
    let mut k: u32 = 0;
    loop {
        let slot = first + interval * k;
        k += 1;
        if slot >= end {
            return tally;
        }
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
        let Some(request) = plan.request(dpop) else {
            tally.errors += 1; // out of DPoP proofs
            return tally;
        };
        let sent = Instant::now();
        if sent.duration_since(slot) > Duration::from_millis(1) {
            tally.late += 1;
        }
        let from = if free_at > slot { slot } else { sent };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(o.addr) {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    tally.errors += 1;
                    free_at = Instant::now();
                    continue;
                }
            },
        };
        match c.exchange(&request) {
            Ok((status, keep)) => {
                let done = Instant::now();
                tally.latencies_us.push(u32::try_from(done.duration_since(from).as_micros()).unwrap_or(u32::MAX));
                if status != o.expect {
                    tally.errors += 1;
                }
                if !keep {
                    conn = None;
                }
                free_at = done;
            }
            Err(_) => {
                tally.errors += 1;
                conn = None;
                free_at = Instant::now();
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pace: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = match Plan::new(&o) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("pace: {e}");
            return ExitCode::from(2);
        }
    };
    let o = Arc::new(o);
    // A little ahead, so every thread is up and connected before the first slot.
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..o.connections)
        .map(|i| {
            let (o, plan) = (o.clone(), plan.clone());
            std::thread::spawn(move || run_connection(&o, &plan, start, i))
        })
        .collect();
    let mut all = Tally::default();
    for t in threads {
        match t.join() {
            Ok(t) => {
                all.latencies_us.extend(t.latencies_us);
                all.errors += t.errors;
                all.late += t.late;
            }
            Err(_) => all.errors += 1,
        }
    }
    all.latencies_us.sort_unstable();
    let l = &all.latencies_us;
    println!(
        "RESULT target={:.0} achieved={:.0} requests={} errors={} late={} \
         p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        o.rate,
        l.len() as f64 / o.seconds,
        l.len(),
        all.errors,
        all.late,
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 99.9),
        l.last().copied().unwrap_or(0),
    );
    ExitCode::SUCCESS
}
