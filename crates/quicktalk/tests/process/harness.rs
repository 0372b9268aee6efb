//! Runs the real `quicktalk` binary as a child process and talks to it over
//! HTTP, so a test can kill, signal and restart it on the same data dir.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

/// How long the server may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout for a single HTTP request from a test.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One running `quicktalk serve` process. Dropping it kills the process.
pub struct ServerProcess {
    child: Child,
    http: SocketAddr,
    /// The `--metrics-listen` address.
    metrics: SocketAddr,
    stomp: Option<SocketAddr>,
    stderr_path: PathBuf,
    /// Holds the stderr log file; separate from the data dir so restarts start clean.
    _log_dir: TempDir,
    client: reqwest::Client,
    exit: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts `quicktalk serve --listen 127.0.0.1:0 --data-dir DATA_DIR EXTRA…` and
    /// waits (up to [`STARTUP_TIMEOUT`]) for the `listening on` line, and for the
    /// `stomp listening on` line too when `extra` has `--stomp-listen`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let log_dir = tempfile::Builder::new()
            .prefix("quicktalk-log-")
            .tempdir()
            .expect("creating a temp dir for the server log");
        let stderr_path = log_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("creating the stderr log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_quicktalk"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env_remove("QUICKTALK_LISTEN")
            .env_remove("QUICKTALK_DATA_DIR")
            .env_remove("QUICKTALK_CONFIG")
            .env_remove("QUICKTALK_STOMP_LISTEN")
            .env("QUICKTALK_LOG", "info")
            // Limits off (contract §4: for tests) and metrics on their own
            // listener; flags in `extra` override both.
            .env("QUICKTALK_RATE_LIMITS", "off")
            .env("QUICKTALK_METRICS_LISTEN", "127.0.0.1:0")
            .env_remove("QUICKTALK_METRICS_PUBLIC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawning the quicktalk binary");

        // A thread reads stdout line by line for the whole life of the process,
        // so the pipe never fills up; the first lines come back over a channel.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once nobody listens any more, keep draining anyway.
                let _ = tx.send(line);
            }
        });

        let want_stomp = extra.iter().any(|a| a.starts_with("--stomp-listen"));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut http = None;
        let mut stomp = None;
        let mut metrics = None;
        let mut seen = Vec::new();
        while http.is_none() || metrics.is_none() || (want_stomp && stomp.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        http = Some(parse_addr(rest, &line));
                    } else if let Some(rest) = line.strip_prefix("metrics on http://") {
                        metrics = Some(parse_addr(rest, &line));
                    } else if let Some(rest) = line.strip_prefix("stomp listening on tcp://") {
                        stomp = Some(parse_addr(rest, &line));
                    }
                    seen.push(line);
                }
                Err(e) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "quicktalk did not report its address within {STARTUP_TIMEOUT:?} ({e}); \
                         exit status: {status:?}\nstdout so far: {seen:?}\n--- stderr ---\n{}",
                        read_lossy(&stderr_path)
                    );
                }
            }
        }

        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .no_proxy()
            .build()
            .expect("building the HTTP client");
        ServerProcess {
            child,
            http: http.expect("checked above"),
            metrics: metrics.expect("checked above"),
            stomp,
            stderr_path,
            _log_dir: log_dir,
            client,
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// The raw STOMP-over-TCP address; panics unless started with `--stomp-listen`.
    pub fn stomp_tcp_addr(&self) -> SocketAddr {
        self.stomp
            .expect("server was not started with --stomp-listen")
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// SIGKILL (std's `Child::kill` is SIGKILL on unix) and reap.
    pub fn kill9(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let _ = self.child.kill();
        self.exit = Some(self.child.wait().expect("reaping the killed server"));
    }

    /// Sends SIGTERM (through the `kill` utility, so no `libc`/unsafe is needed).
    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    /// Sends `SIG<name>` (e.g. `"INT"`) through the `kill` utility.
    pub fn signal(&mut self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running `kill`");
        assert!(
            status.success(),
            "`kill -{name} {}` failed: {status}",
            self.pid()
        );
    }

    /// Waits up to `timeout` for the process to exit; panics (after SIGKILL) if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exit {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("polling the server process") {
                self.exit = Some(s);
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "quicktalk did not exit within {timeout:?}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // ---- HTTP helpers --------------------------------------------------------

    /// POSTs JSON; returns (status, body as JSON or `Null`).
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.http_base()))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// GETs JSON; returns (status, body as JSON or `Null`).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.http_base()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Signs up `name` (password `password-<name>`); returns (user id, token).
    pub async fn signup(&self, name: &str) -> (i64, String) {
        let (status, body) = self
            .post(
                "/api/v1/auth/signup",
                None,
                &json!({"username": name, "password": format!("password-{name}")}),
            )
            .await;
        assert_eq!(status, 201, "signup {name}: {body}");
        let id = body["user"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("signup {name}: no user.id in {body}"));
        let token = body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("signup {name}: no token in {body}"))
            .to_owned();
        (id, token)
    }

    /// Creates a public room with moderation off; returns its id. These tests
    /// compare what was stored with what was sent, texts like `a55` included
    /// (which the standard policy masks as leet for "ass"); moderation has
    /// its own tests.
    pub async fn create_room(&self, token: &str, name: &str) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/rooms",
                Some(token),
                &json!({"name": name, "visibility": "public", "moderation": "off"}),
            )
            .await;
        assert_eq!(status, 201, "create room {name}: {body}");
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("create room {name}: no id in {body}"))
    }

    /// A metric's value from `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The whole history of a room, paged through `after_seq` (200 at a time).
    pub async fn history(&self, token: &str, room: i64) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        let mut after = 0i64;
        for _page in 0..10_000 {
            let (status, body) = self
                .get(
                    &format!("/api/v1/rooms/{room}/messages?after_seq={after}&limit=200"),
                    Some(token),
                )
                .await;
            assert_eq!(status, 200, "history of room {room} after {after}: {body}");
            let msgs = body["messages"]
                .as_array()
                .unwrap_or_else(|| panic!("no messages array in {body}"))
                .clone();
            let has_more = body["has_more"].as_bool().unwrap_or(false);
            let Some(last) = msgs.last() else { break };
            let last_seq = last["seq"]
                .as_i64()
                .unwrap_or_else(|| panic!("message without seq: {last}"));
            assert!(
                last_seq > after,
                "paging after_seq={after} did not advance (last seq {last_seq})"
            );
            after = last_seq;
            all.extend(msgs);
            if !has_more {
                break;
            }
        }
        all
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: String = {
                let lines: Vec<&str> = log.lines().collect();
                let from = lines.len().saturating_sub(60);
                lines[from..].join("\n")
            };
            eprintln!(
                "--- quicktalk (pid {}) stderr, last lines ---\n{tail}\n--- end stderr ---",
                self.child.id()
            );
        }
    }
}

fn parse_addr(rest: &str, line: &str) -> SocketAddr {
    rest.trim()
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"))
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A fresh data dir for a test.
pub fn data_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("quicktalk-data-")
        .tempdir()
        .expect("creating a temp data dir")
}

/// Asserts `msgs` (ascending) have seq exactly 1..=n; returns n.
pub fn assert_gapless(msgs: &[Value]) -> i64 {
    for (i, m) in msgs.iter().enumerate() {
        let want = i as i64 + 1;
        let got = m["seq"].as_i64();
        assert_eq!(
            got,
            Some(want),
            "seq gap or duplicate at index {i}: want seq {want}, got {m}"
        );
    }
    msgs.len() as i64
}
