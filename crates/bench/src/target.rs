//! The targets: starting or locating the server, authenticating, and the
//! destinations each scenario uses.
//!
//! - QuickTalk: the release binary, started fresh on a temp data dir for every
//!   scenario (`--listen 127.0.0.1:0 --log warn`), torn down with SIGTERM. Users
//!   are REST guests, rooms public rooms; subscribers use `/topic/rooms.{id}`,
//!   publishers `/app/rooms.{id}` (the room creator, a member, publishes).
//! - RabbitMQ: the local broker, already running; Web-STOMP is enabled here if its
//!   port is closed. `guest`/`guest`, vhost `/`; rooms are `/topic/room.N`,
//!   persisted SENDs go to the durable queue `/queue/bench-persist`.
//! - NATS: the bench's own nats-server ([`crate::nats::server`]), started fresh
//!   for every scenario like QuickTalk. No auth; rooms are subjects `room.N`;
//!   persisted publishes go to `bench.persist`, captured by the JetStream
//!   stream `BENCH_PERSIST` (file storage) that [`Server::persist_reset`]
//!   creates.
//!
//! With `pin`, servers the bench starts run on [`crate::pin::SERVER_CORE`] and
//! RabbitMQ's threads are moved there for the scenario (restored on stop).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use quicktalk_client::StompClient;
use quicktalk_stomp::Command;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command as Proc};

use crate::conn::Proto;
use crate::{nats, pin, proc};

/// Which server is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Quicktalk,
    /// Two QuickTalk nodes on PostgreSQL and a Kafka-protocol broker.
    QuicktalkCluster,
    Rabbitmq,
    /// The bench's own nats-server: core NATS over WebSocket, JetStream for persist.
    Nats,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Quicktalk => "quicktalk",
            Kind::QuicktalkCluster => "quicktalk-cluster",
            Kind::Rabbitmq => "rabbitmq",
            Kind::Nats => "nats",
        }
    }

    /// Display name for reports.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Quicktalk => "QuickTalk",
            Kind::QuicktalkCluster => "QuickTalk ×2 (Kafka + PostgreSQL)",
            Kind::Rabbitmq => "RabbitMQ",
            Kind::Nats => "NATS",
        }
    }
}

/// How to find or start the targets.
#[derive(Debug, Clone)]
pub struct TargetOpts {
    /// QuickTalk release binary; default [`default_quicktalk_bin`].
    pub quicktalk_bin: Option<PathBuf>,
    /// Extra flags for `quicktalk serve`.
    pub quicktalk_args: Vec<String>,
    /// RabbitMQ Web-STOMP endpoint.
    pub rabbitmq_ws: String,
    /// The cluster target's broker and database.
    pub kafka_brokers: String,
    pub postgres_url: String,
    /// The nats-server binary for `Kind::Nats`.
    pub nats_server: PathBuf,
    /// Servers on [`pin::SERVER_CORE`] (the bench pins itself in `main`).
    pub pin: bool,
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the repository
/// root, as cargo takes it there) or `<repo>/target`.
pub fn cargo_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => repo_root().join(d),
        _ => repo_root().join("target"),
    }
}

/// The release `quicktalk` binary in [`cargo_target_dir`] (the `cargo build`
/// that makes it when missing inherits the same `CARGO_TARGET_DIR`).
pub fn default_quicktalk_bin() -> PathBuf {
    cargo_target_dir().join("release/quicktalk")
}

/// CONNECT headers of one identity (serializable: idle workers get them on stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Creds(pub Vec<(String, String)>);

impl Creds {
    fn bearer(token: &str) -> Creds {
        Creds(vec![("Authorization".into(), format!("Bearer {token}"))])
    }

    fn rabbit() -> Creds {
        Creds(vec![
            ("login".into(), "guest".into()),
            ("passcode".into(), "guest".into()),
            ("host".into(), "/".into()),
        ])
    }
}

/// WebSocket upgrade + CONNECT; fails unless the server answers CONNECTED.
pub async fn connect(url: &str, creds: &Creds) -> anyhow::Result<StompClient> {
    let headers: Vec<(&str, &str)> = creds
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (client, first) = StompClient::connect_with(url, &headers).await?;
    if first.command != Command::Connected {
        bail!(
            "expected CONNECTED, got {:?} ({})",
            first.command,
            first.header("message").unwrap_or("")
        );
    }
    Ok(client)
}

/// Identities and destinations prepared for one scenario.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// What the connections speak.
    pub proto: Proto,
    /// Every node's endpoint; connection `i` uses `ws_urls[i % n]`.
    pub ws_urls: Vec<String>,
    /// Allowed to publish into every room.
    pub publisher: Creds,
    /// Subscriber identities, used round-robin.
    pub subscribers: Vec<Creds>,
    /// Where subscriber `i` of room `r` subscribes: `sub_dests[r]`.
    pub sub_dests: Vec<String>,
    /// Where a publisher sends for room `r`.
    pub pub_dests: Vec<String>,
    /// Durable-SEND destination and its extra SEND headers.
    pub persist_dest: String,
    pub persist_headers: Vec<(String, String)>,
}

impl Fixture {
    /// The endpoint for connection `i` (spread over the nodes).
    pub fn ws_url(&self, i: usize) -> &str {
        &self.ws_urls[i % self.ws_urls.len()]
    }

    pub fn subscriber(&self, i: usize) -> &Creds {
        &self.subscribers[i % self.subscribers.len()]
    }
}

/// What the server wrote to stderr (with `--log warn`: warnings and errors).
#[derive(Debug, Default)]
pub struct ServerLog {
    pub lines: u64,
    pub first: Vec<String>,
    pub last: VecDeque<String>,
}

impl ServerLog {
    fn push(&mut self, line: String) {
        self.lines += 1;
        if self.first.len() < 5 {
            self.first.push(line);
        } else {
            if self.last.len() == 5 {
                self.last.pop_front();
            }
            self.last.push_back(line);
        }
    }

    /// A short summary for the report, or `None` when nothing was logged.
    pub fn summary(&self) -> Option<String> {
        if self.lines == 0 {
            return None;
        }
        let mut s = format!("{} stderr line(s):", self.lines);
        for l in self.first.iter().chain(self.last.iter()) {
            s.push_str("\n    ");
            s.push_str(&l.chars().take(300).collect::<String>());
        }
        Some(s)
    }
}

/// A running (or located) server.
pub struct Server {
    pub kind: Kind,
    pub ws_url: String,
    /// Every node's endpoint (one for a single server).
    pub ws_urls: Vec<String>,
    /// Further nodes of a cluster (stopped with the first).
    more: Vec<Server>,
    /// A PostgreSQL schema to drop afterwards (cluster target).
    schema: Option<(String, String)>,
    /// The process whose RSS and CPU are measured.
    pub pid: u32,
    child: Option<Child>,
    _data_dir: Option<tempfile::TempDir>,
    http_base: String,
    http: reqwest::Client,
    pub log: Arc<Mutex<ServerLog>>,
    /// Setup facts worth reporting (plugin enabled, limits, ...).
    pub notes: Vec<String>,
    /// Most client connections the bench may open at once without exhausting
    /// the server's descriptors (RabbitMQ: its socket limit less a margin).
    pub conn_cap: Option<usize>,
    /// A process whose CPU list the bench changed, and the list to restore.
    restore_affinity: Option<(u32, String)>,
}

impl Server {
    pub async fn start(kind: Kind, opts: &TargetOpts) -> anyhow::Result<Server> {
        match kind {
            Kind::Quicktalk => start_quicktalk(opts, &[]).await,
            Kind::QuicktalkCluster => start_cluster(opts).await,
            Kind::Rabbitmq => locate_rabbitmq(opts).await,
            Kind::Nats => start_nats(opts).await,
        }
    }

    /// Users, rooms and destinations for a scenario: `rooms` rooms and up to
    /// `users` distinct subscriber identities.
    pub async fn fixture(&self, rooms: usize, users: usize) -> anyhow::Result<Fixture> {
        let rooms = rooms.max(1);
        match self.kind {
            Kind::Nats => Ok(Fixture {
                proto: Proto::Nats,
                ws_urls: vec![self.ws_url.clone()],
                publisher: Creds(Vec::new()),
                subscribers: vec![Creds(Vec::new())],
                sub_dests: (0..rooms).map(|r| format!("room.{r}")).collect(),
                pub_dests: (0..rooms).map(|r| format!("room.{r}")).collect(),
                persist_dest: NATS_PERSIST_SUBJECT.into(),
                persist_headers: Vec::new(),
            }),
            Kind::Rabbitmq => Ok(Fixture {
                proto: Proto::Stomp,
                ws_urls: vec![self.ws_url.clone()],
                publisher: Creds::rabbit(),
                subscribers: vec![Creds::rabbit()],
                sub_dests: (0..rooms).map(|r| format!("/topic/room.{r}")).collect(),
                pub_dests: (0..rooms).map(|r| format!("/topic/room.{r}")).collect(),
                persist_dest: "/queue/bench-persist".into(),
                persist_headers: vec![("persistent".into(), "true".into())],
            }),
            Kind::Quicktalk | Kind::QuicktalkCluster => {
                let owner = self.guest("bench-owner").await?;
                let mut ids = Vec::with_capacity(rooms);
                for r in 0..rooms {
                    let room = self
                        .post(
                            "/api/v1/rooms",
                            &owner,
                            json!({"name": format!("bench-{r}"), "visibility": "public"}),
                        )
                        .await?;
                    ids.push(
                        room["id"]
                            .as_u64()
                            .ok_or_else(|| anyhow!("room without id: {room}"))?,
                    );
                }
                let mut subscribers = Vec::new();
                for u in 0..users.max(1) {
                    subscribers.push(Creds::bearer(&self.guest(&format!("bench-{u}")).await?));
                }
                Ok(Fixture {
                    proto: Proto::Stomp,
                    ws_urls: self.ws_urls.clone(),
                    publisher: Creds::bearer(&owner),
                    subscribers,
                    sub_dests: ids.iter().map(|id| format!("/topic/rooms.{id}")).collect(),
                    pub_dests: ids.iter().map(|id| format!("/app/rooms.{id}")).collect(),
                    persist_dest: format!("/app/rooms.{}", ids[0]),
                    persist_headers: Vec::new(),
                })
            }
        }
    }

    /// A fresh guest's bearer token (QuickTalk only).
    pub async fn guest(&self, nickname: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/guest", self.http_base))
            .json(&json!({ "nickname": nickname }))
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if status.as_u16() != 201 {
            bail!("POST /api/v1/auth/guest: {status} {v}");
        }
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("guest without token: {v}"))
    }

    /// A REST call that must succeed; the JSON answer (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.http_base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}{path}", self.http_base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// The data directory of a QuickTalk server this process started.
    pub fn data_dir(&self) -> Option<&Path> {
        self._data_dir.as_ref().map(|d| d.path())
    }

    /// `(database URL, schema)` of a server on PostgreSQL.
    pub fn pg_schema(&self) -> Option<(&str, &str)> {
        self.schema.as_ref().map(|(u, s)| (u.as_str(), s.as_str()))
    }

    /// The REST base URL (`http://host:port`; empty for RabbitMQ).
    pub fn http_base(&self) -> &str {
        &self.http_base
    }

    /// The REST base URL of every node (one for a single server).
    pub fn http_bases(&self) -> Vec<&str> {
        std::iter::once(self.http_base.as_str())
            .chain(self.more.iter().map(|m| m.http_base.as_str()))
            .collect()
    }

    /// Prepares the persist destination before a run: RabbitMQ purges the
    /// queue; NATS creates the JetStream stream (the server is fresh).
    pub async fn persist_reset(&self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Rabbitmq => {
                // The queue may not exist yet: a failure here is fine.
                let _ = rabbitmqctl(&["purge_queue", "bench-persist"]).await;
            }
            Kind::Nats => create_nats_stream(&self.ws_url).await?,
            Kind::Quicktalk | Kind::QuicktalkCluster => {}
        }
        Ok(())
    }

    /// Removes what the persist run left behind (RabbitMQ: deletes the queue).
    pub async fn persist_cleanup(&self) {
        if self.kind == Kind::Rabbitmq {
            let _ = rabbitmqctl(&["delete_queue", "bench-persist"]).await;
        }
    }

    /// Stops a server this process started (SIGTERM, then SIGKILL after 10 s);
    /// leaves RabbitMQ running (its CPU list restored). Returns a note when the
    /// exit was not clean.
    pub async fn stop(mut self) -> Option<String> {
        let mut notes = Vec::new();
        if let Some((pid, list)) = self.restore_affinity.take() {
            if let Err(e) = pin::set_all(pid, &list) {
                notes.push(format!("restoring the CPU list {list} of pid {pid}: {e:#}"));
            }
        }
        for node in std::mem::take(&mut self.more) {
            if let Some(n) = Box::pin(node.stop()).await {
                notes.push(n);
            }
        }
        if let Some((url, schema)) = self.schema.take() {
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await;
            }
        }
        let own = self.stop_own().await;
        notes.extend(own);
        (!notes.is_empty()).then(|| notes.join("; "))
    }

    async fn stop_own(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        let _ = Proc::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(st)) if st.success() => None,
            Ok(Ok(st)) => Some(format!("server exited with {st} after SIGTERM")),
            Ok(Err(e)) => Some(format!("waiting for the server: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Some("server did not exit within 10 s of SIGTERM; killed".into())
            }
        }
    }
}

/// A fresh schema in `opts.postgres_url`: `(schema, database URL inside it)`.
async fn fresh_schema(opts: &TargetOpts, id: &str) -> anyhow::Result<(String, String)> {
    let schema = format!("bench_{id}");
    let pool = sqlx::PgPool::connect(&opts.postgres_url)
        .await
        .with_context(|| format!("connecting to {}", opts.postgres_url))?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let sep = if opts.postgres_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let db = format!(
        "{}{sep}options=-c%20search_path%3D{schema}",
        opts.postgres_url
    );
    Ok((schema, db))
}

/// One node on a fresh PostgreSQL schema (in-process bus).
pub async fn start_quicktalk_postgres(opts: &TargetOpts) -> anyhow::Result<Server> {
    let id = format!("{:x}", rand::random::<u32>());
    let (schema, db) = fresh_schema(opts, &id).await?;
    let mut s = start_quicktalk(opts, &["--database-url".to_owned(), db]).await?;
    s.notes.push(format!("PostgreSQL schema {schema}"));
    s.schema = Some((opts.postgres_url.clone(), schema));
    Ok(s)
}

/// Two nodes on a fresh PostgreSQL schema and fresh topics of the broker.
async fn start_cluster(opts: &TargetOpts) -> anyhow::Result<Server> {
    let id = format!("{:x}", rand::random::<u32>());
    let (schema, db) = fresh_schema(opts, &id).await?;
    let args = [
        "--database-url".to_owned(),
        db,
        "--kafka-brokers".to_owned(),
        opts.kafka_brokers.clone(),
        "--kafka-topic-prefix".to_owned(),
        format!("bench{id}"),
        "--kafka-partitions".to_owned(),
        "4".to_owned(),
        // Both nodes run on this machine: one directory is storage they share.
        "--media-store".to_owned(),
        format!(
            "file://{}",
            std::env::temp_dir()
                .join(format!("quicktalk-bench-media-{id}"))
                .display()
        ),
        "--media-store-shared".to_owned(),
    ];
    let mut first = start_quicktalk(opts, &args).await?;
    let second = start_quicktalk(opts, &args).await?;
    first.kind = Kind::QuicktalkCluster;
    first.ws_urls.push(second.ws_url.clone());
    first.notes.push(format!(
        "two nodes ({} and {}), broker {}, PostgreSQL schema {schema}; RSS and CPU are the first node's",
        first.ws_url, second.ws_url, opts.kafka_brokers
    ));
    first.more.push(second);
    first.schema = Some((opts.postgres_url.clone(), schema));
    Ok(first)
}

async fn start_quicktalk(opts: &TargetOpts, extra: &[String]) -> anyhow::Result<Server> {
    let bin = match &opts.quicktalk_bin {
        Some(p) => p.clone(),
        None => {
            let p = default_quicktalk_bin();
            if !p.exists() {
                eprintln!(
                    "# {} missing: cargo build --release -p quicktalk",
                    p.display()
                );
                let st = Proc::new("cargo")
                    .args(["build", "--release", "-p", "quicktalk"])
                    .current_dir(repo_root())
                    .stdout(Stdio::null())
                    .status()
                    .await
                    .context("running cargo build")?;
                if !st.success() {
                    bail!("cargo build --release -p quicktalk failed: {st}");
                }
            }
            p
        }
    };
    let data = tempfile::Builder::new()
        .prefix("quicktalk-bench-")
        .tempdir()?;
    let mut cmd = if opts.pin {
        let p = pin::server_prefix();
        let mut c = Proc::new(&p[0]);
        c.args(&p[1..]).arg(&bin);
        c
    } else {
        Proc::new(&bin)
    };
    let mut child = cmd
        .arg("serve")
        // No abuse limits in a benchmark (contract §4); a flag in the extra
        // arguments still wins over this.
        .env("QUICKTALK_RATE_LIMITS", "off")
        // The fan-out scenario's away users subscribe to the bench's own push
        // sink on 127.0.0.1 (`--push-away`).
        .env("QUICKTALK_PUSH_ALLOW_HTTP", "true")
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(data.path())
        .args(&opts.quicktalk_args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().ok_or_else(|| anyhow!("server exited at once"))?;
    let log = Arc::new(Mutex::new(ServerLog::default()));
    let stderr = child.stderr.take().expect("piped");
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            log2.lock().unwrap().push(l);
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let base = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stdout.next_line().await? {
            if let Some(rest) = line.trim().strip_prefix("listening on ") {
                return Ok(rest.trim().to_owned());
            }
        }
        bail!("server closed stdout without printing its address")
    })
    .await
    .map_err(|_| anyhow!("server printed no address within 20 s"))??;
    // Keep draining stdout so the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
    Ok(Server {
        kind: Kind::Quicktalk,
        ws_urls: vec![ws_url.clone()],
        more: Vec::new(),
        schema: None,
        ws_url,
        pid,
        child: Some(child),
        _data_dir: Some(data),
        http_base: base,
        http: reqwest::Client::new(),
        log,
        notes: vec![format!("binary {}", bin.display())],
        conn_cap: None,
        restore_affinity: None,
    })
}

/// `host:port` of a `ws://host:port/path` URL.
fn ws_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("not a ws:// URL: {url}"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport
        .parse()
        .with_context(|| format!("need an IP:port in {url}"))
}

async fn port_open(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Runs `rabbitmqctl ARGS` (30 s at most) and returns its stdout.
pub async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Proc::new("rabbitmqctl").args(args).output(),
    )
    .await
    .map_err(|_| anyhow!("rabbitmqctl {args:?} timed out"))??;
    if !out.status.success() {
        bail!(
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn locate_rabbitmq(opts: &TargetOpts) -> anyhow::Result<Server> {
    let addr = ws_addr(&opts.rabbitmq_ws)?;
    let mut notes = Vec::new();
    if !port_open(addr).await {
        eprintln!("# Web-STOMP port {addr} closed: rabbitmq-plugins enable rabbitmq_web_stomp");
        let out = tokio::time::timeout(
            Duration::from_secs(90),
            Proc::new("rabbitmq-plugins")
                .args(["enable", "rabbitmq_web_stomp"])
                .output(),
        )
        .await
        .map_err(|_| anyhow!("rabbitmq-plugins timed out"))?
        .context("running rabbitmq-plugins")?;
        if !out.status.success() {
            bail!(
                "rabbitmq-plugins enable rabbitmq_web_stomp failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !port_open(addr).await {
            if tokio::time::Instant::now() > deadline {
                bail!("Web-STOMP port {addr} still closed 60 s after enabling the plugin");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        notes.push("this run enabled rabbitmq_web_stomp (port was closed)".into());
    }
    let pid = beam_pid().await?;
    let nofile = proc::nofile(pid);
    // RabbitMQ admits at most `sockets_limit` connections and leaves further ones
    // hanging while they hold descriptors; going past it exhausts the broker's
    // descriptors (its memory monitor then crashes on EMFILE). Stay below.
    let sockets = rabbit_sockets_limit()
        .await
        .or_else(|| nofile.map(|(soft, _)| (soft as usize).saturating_sub(100) * 9 / 10));
    let conn_cap = sockets.map(|s| s.saturating_sub(RABBIT_MARGIN));
    if let Some((soft, hard)) = nofile {
        notes.push(format!(
            "beam.smp pid {pid}: open-files limit {soft} (hard {hard}); RabbitMQ socket limit {}; \
             the bench opens at most {} connections to it",
            sockets.map_or("unknown".into(), |s| s.to_string()),
            conn_cap.map_or("unbounded".into(), |c| c.to_string())
        ));
    }
    let mut restore_affinity = None;
    if opts.pin {
        let before = pin::get(pid)?;
        pin::set_all(pid, &pin::SERVER_CORE.to_string())?;
        notes.push(format!(
            "pinned: beam.smp's threads moved to core {} for each scenario (their CPU list {before} restored after)",
            pin::SERVER_CORE
        ));
        restore_affinity = Some((pid, before));
    }
    Ok(Server {
        kind: Kind::Rabbitmq,
        ws_urls: vec![opts.rabbitmq_ws.clone()],
        more: Vec::new(),
        schema: None,
        ws_url: opts.rabbitmq_ws.clone(),
        pid,
        child: None,
        _data_dir: None,
        http_base: String::new(),
        http: reqwest::Client::new(),
        log: Arc::new(Mutex::new(ServerLog::default())),
        notes,
        conn_cap,
        restore_affinity,
    })
}

/// The subject persisted publishes go to, and the stream that stores it.
const NATS_PERSIST_SUBJECT: &str = "bench.persist";
const NATS_PERSIST_STREAM: &str = "BENCH_PERSIST";

/// The JetStream stream of the persist scenario: file storage, one replica,
/// no limits (the server's `sync_interval: always` fsyncs every write).
pub fn nats_stream_config() -> Value {
    json!({
        "name": NATS_PERSIST_STREAM,
        "subjects": [NATS_PERSIST_SUBJECT],
        "retention": "limits",
        "storage": "file",
        "num_replicas": 1,
        "discard": "old",
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
    })
}

async fn create_nats_stream(ws_url: &str) -> anyhow::Result<()> {
    let mut c = nats::NatsClient::connect(ws_url).await?;
    let reply = c
        .request(
            &format!("$JS.API.STREAM.CREATE.{NATS_PERSIST_STREAM}"),
            nats_stream_config().to_string().as_bytes(),
            Duration::from_secs(10),
        )
        .await
        .context("creating the JetStream stream")?;
    let _ = c.close().await;
    let v: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
    if reply.status().is_some() || !v["error"].is_null() || v["config"].is_null() {
        bail!(
            "creating the JetStream stream {NATS_PERSIST_STREAM}: {}",
            String::from_utf8_lossy(&reply.payload)
        );
    }
    Ok(())
}

/// A fresh nats-server of the bench's own (see [`crate::nats::server`]).
async fn start_nats(opts: &TargetOpts) -> anyhow::Result<Server> {
    let bin = &opts.nats_server;
    let version = nats::server::version(bin).await?;
    let prefix = if opts.pin {
        pin::server_prefix()
    } else {
        Vec::new()
    };
    let mut started = nats::server::start(bin, &prefix).await?;
    let log = Arc::new(Mutex::new(ServerLog::default()));
    let stderr = started.child.stderr.take().expect("piped");
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if nats::server::log_worthy(&l) {
                log2.lock().unwrap().push(l);
            }
        }
    });
    let ws_url = format!("ws://127.0.0.1:{}", started.layout.ws_port);
    Ok(Server {
        kind: Kind::Nats,
        ws_urls: vec![ws_url.clone()],
        more: Vec::new(),
        schema: None,
        ws_url,
        pid: started.pid,
        child: Some(started.child),
        _data_dir: Some(started.dir),
        http_base: String::new(),
        http: reqwest::Client::new(),
        log,
        notes: vec![format!(
            "nats-server {version} ({}), started by the bench on 127.0.0.1 (client and WebSocket ports free ones, \
             `websocket {{ no_tls: true }}`, `jetstream {{ store_dir: <temp>, sync_interval: always }}`, \
             max_payload 1MB, max_connections {})",
            bin.display(),
            nats::server::MAX_CONNECTIONS
        )],
        conn_cap: None,
        restore_affinity: None,
    })
}

/// Connections kept free below RabbitMQ's socket limit (publishers, rabbitmqctl).
const RABBIT_MARGIN: usize = 32;

/// `sockets_limit` from `file_handle_cache:info()` (all keys: asking for
/// unknown keys crashes that server).
async fn rabbit_sockets_limit() -> Option<usize> {
    let out = rabbitmqctl(&["eval", "file_handle_cache:info()."])
        .await
        .ok()?;
    parse_sockets_limit(&out)
}

fn parse_sockets_limit(info: &str) -> Option<usize> {
    let at = info.find("{sockets_limit,")? + "{sockets_limit,".len();
    let rest = &info[at..];
    rest[..rest.find('}')?].trim().parse().ok()
}

/// The RabbitMQ node's `beam.smp` PID.
async fn beam_pid() -> anyhow::Result<u32> {
    if let Ok(out) = Proc::new("pgrep").args(["-f", "beam.smp"]).output().await {
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(pid) = text.lines().find_map(|l| l.trim().parse::<u32>().ok()) {
            return Ok(pid);
        }
    }
    let out = rabbitmqctl(&["eval", "os:getpid()."]).await?;
    out.trim()
        .trim_matches('"')
        .parse()
        .context("parsing os:getpid() from rabbitmqctl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_addr_parses() {
        assert_eq!(
            ws_addr("ws://127.0.0.1:15674/ws").unwrap(),
            "127.0.0.1:15674".parse().unwrap()
        );
        assert!(ws_addr("http://x").is_err());
    }

    #[test]
    fn rabbit_sockets_limit_parses() {
        let info = "[{total_limit,927},{total_used,3},{sockets_limit,832},{sockets_used,1}]\n";
        assert_eq!(parse_sockets_limit(info), Some(832));
        assert_eq!(parse_sockets_limit("[]"), None);
    }
}
