//! Hot reload of the real binary: `SIGHUP` makes `argus up` read its configuration and OpenAPI files again. A
//! keep-alive connection opened before the reload reaches the operation the new spec adds; a spec that does not
//! compile is refused with a log line and the running one stays; a setting that only a restart applies is named.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_testkit::EchoUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest the test waits for the binary to start, log or answer.
const PATIENCE: Duration = Duration::from_secs(30);

/// The running binary, killed when the test ends however it ends.
struct Argus {
    child: Child,
    stderr: mpsc::Receiver<String>,
    gate: String,
}

impl Drop for Argus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Argus {
    fn start(config: &Path, data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["up", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the argus binary starts");
        let (err_tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).try_for_each(|l| err_tx.send(l)));
        let (out_tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).try_for_each(|l| out_tx.send(l)));
        let deadline = Instant::now() + PATIENCE;
        let gate = loop {
            let line = stdout.recv_timeout(deadline - Instant::now()).expect("the banner names the gate");
            let mut words = line.split_whitespace();
            if words.next() == Some("gate") {
                break words.next().unwrap().to_owned();
            }
        };
        Self { child, stderr, gate }
    }

    /// Send `SIGHUP` and wait for the log line containing `outcome`; every line logged meanwhile.
    fn reload(&self, outcome: &str) -> Vec<String> {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        let mut lines = Vec::new();
        loop {
            let line = self.stderr.recv_timeout(deadline - Instant::now()).unwrap_or_else(|_| {
                panic!("no log line with {outcome:?}; logged: {lines:#?}");
            });
            let done = line.contains(outcome);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

const SPEC_V1: &str = r#"
openapi: 3.1.0
info: {title: reload, version: "1"}
paths:
  /a:
    get:
      operationId: getA
      security: []
      responses: {"200": {description: ok}}
"#;

const SPEC_V2: &str = r#"
openapi: 3.1.0
info: {title: reload, version: "2"}
paths:
  /a:
    get:
      operationId: getA
      security: []
      responses: {"200": {description: ok}}
  /b:
    get:
      operationId: getB
      security: []
      responses: {"200": {description: ok}}
"#;

fn config(upstream: &str, issuer_extra: &str) -> String {
    format!(
        "[issuer]\nlisten = \"127.0.0.1:0\"\n{issuer_extra}\n[watch]\nlisten = \"127.0.0.1:0\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[gate]\nlisten = \"127.0.0.1:0\"\n\
         [[gate.routes]]\nname = \"api\"\nprefix = \"/\"\nupstream = \"{upstream}\"\nauth = \"none\"\n\
         openapi = \"spec.yaml\"\n"
    )
}

/// `GET path` on a kept-alive connection; the status. The whole answer is read, so the connection can go on.
async fn get(conn: &mut TcpStream, path: &str) -> u16 {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: gate\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut chunk)).await.expect("an answer").unwrap();
        assert!(n > 0, "the gate closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a content-length");
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut chunk)).await.expect("a body").unwrap();
        assert!(n > 0, "the gate closed the connection mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    head[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_specs_on_live_connections_and_keeps_the_old_ones_on_error() {
    let upstream = EchoUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config_file, spec_file) = (dir.path().join("argus.toml"), dir.path().join("spec.yaml"));
    std::fs::write(&config_file, config(upstream.url(), "")).unwrap();
    std::fs::write(&spec_file, SPEC_V1).unwrap();
    let argus = Argus::start(&config_file, &dir.path().join("data"));

    let mut conn = TcpStream::connect(argus.gate.trim_start_matches("http://")).await.unwrap();
    assert_eq!(get(&mut conn, "/a").await, 200);
    assert_eq!(get(&mut conn, "/b").await, 404, "not in the spec yet");

    // A new operation, and an issuer setting that cannot change while running.
    std::fs::write(&spec_file, SPEC_V2).unwrap();
    std::fs::write(&config_file, config(upstream.url(), "access_token_ttl_secs = 120")).unwrap();
    let logged = argus.reload("configuration reloaded");
    let outcome = logged.last().unwrap();
    assert!(outcome.contains("[issuer]") && outcome.contains("only a restart"), "{outcome}");
    assert_eq!(get(&mut conn, "/b").await, 200, "the same connection reaches the new operation");
    let hits = upstream.hits();

    // A spec that does not parse: refused, named, and the running one stays.
    std::fs::write(&spec_file, "openapi: [this is not a spec").unwrap();
    let logged = argus.reload("configuration reload refused");
    assert!(logged.last().unwrap().contains("spec.yaml"), "the error names the file: {logged:#?}");
    assert_eq!(get(&mut conn, "/b").await, 200);
    assert_eq!(get(&mut conn, "/a").await, 200);
    assert_eq!(upstream.hits(), hits + 2);
}
