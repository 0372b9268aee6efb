//! Typed configuration, layered: defaults → `--config` TOML file → `QUICKTALK_*`
//! environment → command-line flags. Each option has all four forms.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Deserialize;

use crate::limits::Rates;
use crate::store::sqlite::Synchronous;

/// Every setting, after layering.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; `None` means `sqlite://<data_dir>/quicktalk.db`.
    pub database_url: Option<String>,
    /// PostgreSQL connections per node.
    pub database_pool: u32,
    /// Kafka bootstrap servers (`HOST:PORT,…`): the multi-node message pipeline.
    pub kafka_brokers: Option<String>,
    /// Prefix of the Kafka topics QuickTalk creates and uses.
    pub kafka_topic_prefix: String,
    /// Partitions of the message topic (rooms are spread over them).
    pub kafka_partitions: i32,
    /// Replication factor of the topics QuickTalk creates.
    pub kafka_replication: i32,
    /// A SEND the pipeline has not answered after this long gets `outcome_unknown`.
    pub kafka_reply_timeout_ms: u64,
    /// The consumers' `fetch.wait.max.ms`: how long the broker may hold a fetch
    /// that finds nothing new.
    pub kafka_fetch_wait_ms: u32,
    /// Raw STOMP over TCP; off when `None`.
    pub stomp_listen: Option<SocketAddr>,
    pub max_frame_bytes: usize,
    pub max_body_bytes: usize,
    /// What the server offers in CONNECTED: (can send every, wants to receive every) ms.
    pub heartbeat_send_ms: u32,
    pub heartbeat_recv_ms: u32,
    pub outbound_queue: usize,
    pub token_ttl_secs: u64,
    pub sqlite_synchronous: Synchronous,
    pub presence_interval_ms: u64,
    pub max_batch: usize,
    pub log: String,
    /// Random matching: how long interests/language are honoured.
    pub match_window_ms: u64,
    /// Random matching: how long a dropped user's match is kept.
    pub match_grace_ms: u64,
    /// Random matching: least time between two `match.next` of one user.
    pub match_next_interval_ms: u64,
    /// A socket write (to a peer that stopped reading) may take this long before
    /// the peer is dropped.
    pub write_timeout_ms: u64,
    /// A connection that negotiated no client heart-beats is dropped after this
    /// long without receiving a byte.
    pub idle_timeout_ms: u64,
    /// A STOMP or WebSocket frame must be complete this long after its first byte.
    pub frame_timeout_ms: u64,
    /// Abuse limits (contract §4) on or off (off: benchmarks and tests).
    pub rate_limits: bool,
    /// Every rate limit's `N/PERIOD` (defaults in `limits::Limit::default_rate`).
    pub rates: Rates,
    /// Moderation of messages (contract §5) on, or off for every room
    /// (benchmarks: the cost of the classifier on the hot path).
    pub moderation: bool,
    /// Concurrent STOMP sockets (WebSocket or TCP) per client IP / per user.
    pub max_sockets_per_ip: usize,
    pub max_sockets_per_user: usize,
    /// Concurrent HTTP connections (before any WebSocket upgrade) per client IP.
    pub max_http_connections_per_ip: usize,
    /// Peers whose `X-Forwarded-For` names the client (rightmost untrusted hop).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A separate listener for `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Also serve `/metrics` on the public listener.
    pub metrics_public: bool,
    /// Longest time a client may take to send a request body, in ms.
    pub http_body_timeout_ms: u64,
    /// Where uploaded files live: `file://DIR` or `s3://BUCKET?endpoint=…`;
    /// `None` means `file://<data_dir>/media`.
    pub media_store: Option<String>,
    /// The `file://` media directory is storage every node mounts (NFS, a
    /// shared volume): allowed in cluster mode.
    pub media_store_shared: bool,
    /// Largest uploaded file, in bytes (contract §6).
    pub max_upload_bytes: u64,
    /// Bytes of files a registered user / a guest may keep stored.
    pub media_quota_bytes: u64,
    pub guest_media_quota_bytes: u64,
    /// A file no message carries is removed this long after its upload (and an
    /// unfinished resumable upload this long after its last piece), in seconds.
    pub media_grace_secs: u64,
    /// How often the media cleanup runs, in seconds.
    pub media_sweep_secs: u64,
    /// Web Push (contract §8): the VAPID contact (`mailto:` or `https:`).
    pub push_subject: Option<String>,
    /// Accept `http://` push endpoints on any host (tests only).
    pub push_allow_http: bool,
    /// Push service hosts allowed besides the browsers' own (`*`: any public host).
    pub push_hosts: Vec<String>,
    /// A user with no session active for this long is away (and may be pushed).
    pub push_idle_ms: u64,
    /// A room's first message waits this long for more (one push per burst).
    pub push_delay_ms: u64,
    /// Least time between two pushes of one room to one user.
    pub push_repeat_ms: u64,
    /// Pushes say only "New message" (no names, no text).
    pub push_hide_text: bool,
    /// How long a push service keeps an undelivered notification.
    pub push_ttl_secs: u64,
    /// Notifications (and committed messages) that may wait for the push worker.
    pub push_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid"),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_pool: 16,
            kafka_brokers: None,
            kafka_topic_prefix: "quicktalk".into(),
            kafka_partitions: 12,
            kafka_replication: 1,
            kafka_reply_timeout_ms: 30_000,
            kafka_fetch_wait_ms: 5,
            stomp_listen: None,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024,
            heartbeat_send_ms: 10_000,
            heartbeat_recv_ms: 10_000,
            outbound_queue: 4096,
            token_ttl_secs: 30 * 24 * 3600,
            sqlite_synchronous: Synchronous::Full,
            presence_interval_ms: 250,
            max_batch: 1024,
            log: "info".into(),
            match_window_ms: 3_000,
            match_grace_ms: 10_000,
            match_next_interval_ms: 1_000,
            write_timeout_ms: 15_000,
            idle_timeout_ms: 300_000,
            frame_timeout_ms: 30_000,
            rate_limits: true,
            rates: Rates::default(),
            moderation: true,
            max_sockets_per_ip: 50,
            max_sockets_per_user: 10,
            max_http_connections_per_ip: 64,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            metrics_public: false,
            http_body_timeout_ms: 10_000,
            media_store: None,
            media_store_shared: false,
            max_upload_bytes: 25 * 1024 * 1024,
            media_quota_bytes: 1024 * 1024 * 1024,
            guest_media_quota_bytes: 100 * 1024 * 1024,
            media_grace_secs: 24 * 3600,
            media_sweep_secs: 600,
            push_subject: None,
            push_allow_http: false,
            push_hosts: Vec::new(),
            push_idle_ms: 60_000,
            push_delay_ms: 1_500,
            push_repeat_ms: 10_000,
            push_hide_text: false,
            push_ttl_secs: 12 * 3600,
            push_queue: 10_000,
        }
    }
}

/// Where the data lives, from `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Config {
    /// The database this config points at (SQLite under the data dir by default).
    pub fn database(&self) -> anyhow::Result<Database> {
        match &self.database_url {
            None => Ok(Database::Sqlite(self.data_dir.join("quicktalk.db"))),
            Some(url) => {
                if let Some(path) = url.strip_prefix("sqlite://") {
                    Ok(Database::Sqlite(PathBuf::from(path)))
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(Database::Postgres(url.clone()))
                } else {
                    anyhow::bail!(
                        "unsupported --database-url {url:?}: expected sqlite://PATH or postgres://…"
                    )
                }
            }
        }
    }
}

#[derive(Debug, Parser)]
#[command(name = "quicktalk", version, about = "QuickTalk real-time chat server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Classify UTF-8 lines from stdin: one JSON verdict per line on stdout
    /// (no server, database or network needed).
    Moderate(ModerateArgs),
    /// Administration on the database itself (with or without a running server).
    Admin(AdminArgs),
}

/// `quicktalk admin …`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Set a registered user's role: `user`, `moderator` or `admin`.
    Grant {
        /// The user's username (case-insensitive).
        username: String,
        /// `user`, `moderator` or `admin`.
        #[arg(value_parser = parse_role)]
        role: crate::model::Role,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_role(s: &str) -> Result<crate::model::Role, String> {
    crate::model::Role::parse(s).ok_or_else(|| "expected `user`, `moderator` or `admin`".into())
}

/// Where the data is: the same options (and environment, and `--config` file)
/// as `quicktalk serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Directory for the embedded database and the signing key.
    #[arg(long, env = "QUICKTALK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` (default: under the data dir) or `postgres://…`.
    #[arg(long, env = "QUICKTALK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// TOML file with any of `serve`'s options (snake_case keys).
    #[arg(long, env = "QUICKTALK_CONFIG")]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// The configuration `serve` would use with these options.
    pub fn resolve(self) -> anyhow::Result<Config> {
        resolve(ServeArgs {
            data_dir: self.data_dir,
            database_url: self.database_url,
            config: self.config,
            ..ServeArgs::default()
        })
    }
}

/// Flags of `quicktalk moderate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModerateArgs {
    /// Policy: `standard` (group rooms), `strict` (random chats) or `off`.
    #[arg(long, env = "QUICKTALK_POLICY", default_value = "standard", value_parser = parse_policy)]
    pub policy: quicktalk_moderation::Policy,
}

fn parse_policy(s: &str) -> Result<quicktalk_moderation::Policy, String> {
    quicktalk_moderation::Policy::from_name(s)
        .ok_or_else(|| "expected `standard`, `strict` or `off`".into())
}

/// Flags of `quicktalk serve`; each also reads `QUICKTALK_<NAME>`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ServeArgs {
    /// HTTP/WebSocket listen address (port 0 picks a free one).
    #[arg(long, env = "QUICKTALK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database and the signing key.
    #[arg(long, env = "QUICKTALK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with any of these options (snake_case keys).
    #[arg(long, env = "QUICKTALK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// `sqlite://PATH` (default: under the data dir) or `postgres://…`.
    #[arg(long, env = "QUICKTALK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PostgreSQL connections per node.
    #[arg(long, env = "QUICKTALK_DATABASE_POOL")]
    pub database_pool: Option<u32>,
    /// Kafka bootstrap servers `HOST:PORT[,…]`: run the multi-node message pipeline.
    #[arg(long, env = "QUICKTALK_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Prefix of the Kafka topics QuickTalk creates and uses.
    #[arg(long, env = "QUICKTALK_KAFKA_TOPIC_PREFIX")]
    pub kafka_topic_prefix: Option<String>,
    /// Partitions of the message topic, when QuickTalk creates it.
    #[arg(long, env = "QUICKTALK_KAFKA_PARTITIONS")]
    pub kafka_partitions: Option<i32>,
    /// Replication factor of the topics, when QuickTalk creates them (3 on a
    /// production cluster).
    #[arg(long, env = "QUICKTALK_KAFKA_REPLICATION")]
    pub kafka_replication: Option<i32>,
    /// Ms a SEND may wait for the pipeline's answer before it gets
    /// `outcome_unknown` (retry with the same `client_id`).
    #[arg(long, env = "QUICKTALK_KAFKA_REPLY_TIMEOUT_MS")]
    pub kafka_reply_timeout_ms: Option<u64>,
    /// Ms the broker may hold a consumer's fetch that finds nothing new
    /// (`fetch.wait.max.ms`). A Kafka broker answers as soon as records
    /// arrive, so this bounds only idle polling; some Kafka-protocol brokers
    /// (tansu 0.6) hold every fetch this long, and there it is latency.
    #[arg(long, env = "QUICKTALK_KAFKA_FETCH_WAIT_MS")]
    pub kafka_fetch_wait_ms: Option<u32>,
    /// Also serve raw STOMP over TCP on this address.
    #[arg(long, env = "QUICKTALK_STOMP_LISTEN")]
    pub stomp_listen: Option<SocketAddr>,
    /// Largest STOMP frame accepted, in bytes.
    #[arg(long, env = "QUICKTALK_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Largest HTTP request body accepted, in bytes.
    #[arg(long, env = "QUICKTALK_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Heart-beat the server offers to send, in ms (0 = none).
    #[arg(long, env = "QUICKTALK_HEARTBEAT_SEND_MS")]
    pub heartbeat_send_ms: Option<u32>,
    /// Heart-beat the server wants to receive, in ms (0 = none).
    #[arg(long, env = "QUICKTALK_HEARTBEAT_RECV_MS")]
    pub heartbeat_recv_ms: Option<u32>,
    /// Per-connection outbound queue length; a full queue disconnects the client.
    #[arg(long, env = "QUICKTALK_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, env = "QUICKTALK_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// `full` (survives power loss) or `normal` (survives a process crash).
    #[arg(long, env = "QUICKTALK_SQLITE_SYNCHRONOUS", value_parser = parse_sync)]
    pub sqlite_synchronous: Option<Synchronous>,
    /// How often presence changes are broadcast, in ms.
    #[arg(long, env = "QUICKTALK_PRESENCE_INTERVAL_MS")]
    pub presence_interval_ms: Option<u64>,
    /// Most messages committed in one transaction.
    #[arg(long, env = "QUICKTALK_MAX_BATCH")]
    pub max_batch: Option<usize>,
    /// Log filter, e.g. `info` or `quicktalk=debug`.
    #[arg(long, env = "QUICKTALK_LOG")]
    pub log: Option<String>,
    /// Random matching: ms during which interests/language are preferred.
    #[arg(long, env = "QUICKTALK_MATCH_WINDOW_MS")]
    pub match_window_ms: Option<u64>,
    /// Random matching: ms a dropped user's match is kept for them.
    #[arg(long, env = "QUICKTALK_MATCH_GRACE_MS")]
    pub match_grace_ms: Option<u64>,
    /// Random matching: least ms between two `match.next` of one user.
    #[arg(long, env = "QUICKTALK_MATCH_NEXT_INTERVAL_MS")]
    pub match_next_interval_ms: Option<u64>,
    /// Ms a socket write may take before a peer that stopped reading is dropped.
    #[arg(long, env = "QUICKTALK_WRITE_TIMEOUT_MS")]
    pub write_timeout_ms: Option<u64>,
    /// Ms without any received byte before a connection with no client
    /// heart-beats is dropped.
    #[arg(long, env = "QUICKTALK_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Ms within which a STOMP or WebSocket frame must complete after its first byte.
    #[arg(long, env = "QUICKTALK_FRAME_TIMEOUT_MS")]
    pub frame_timeout_ms: Option<u64>,
    /// Abuse limits (`on`, the default) or none (`off`: benchmarks and tests).
    #[arg(long, env = "QUICKTALK_RATE_LIMITS")]
    pub rate_limits: Option<Switch>,
    /// Override a rate limit: `NAME=N/PERIOD` (e.g. `send_user=20/4s`), repeatable
    /// or comma-separated; README lists the names and defaults.
    #[arg(long, env = "QUICKTALK_RATE_LIMIT", value_delimiter = ',')]
    pub rate_limit: Option<Vec<String>>,
    /// Moderation of messages (`on`, the default) or none in any room (`off`:
    /// benchmarks). Names and report reasons are checked either way.
    #[arg(long, env = "QUICKTALK_MODERATION")]
    pub moderation: Option<Switch>,
    /// Most concurrent STOMP sockets from one client IP.
    #[arg(long, env = "QUICKTALK_MAX_SOCKETS_PER_IP")]
    pub max_sockets_per_ip: Option<usize>,
    /// Most concurrent STOMP sockets of one user.
    #[arg(long, env = "QUICKTALK_MAX_SOCKETS_PER_USER")]
    pub max_sockets_per_user: Option<usize>,
    /// Most concurrent HTTP connections from one client IP.
    #[arg(long, env = "QUICKTALK_MAX_HTTP_CONNECTIONS_PER_IP")]
    pub max_http_connections_per_ip: Option<usize>,
    /// Where uploaded files live: `file://DIR` (default `<data-dir>/media`; one
    /// node only) or `s3://BUCKET?endpoint=URL&region=R` (any number of nodes).
    #[arg(long, env = "QUICKTALK_MEDIA_STORE")]
    pub media_store: Option<String>,
    /// The `file://` media directory is mounted by every node (NFS, a shared
    /// volume), so cluster mode may use it.
    #[arg(long, env = "QUICKTALK_MEDIA_STORE_SHARED", num_args = 0..=1, default_missing_value = "true")]
    pub media_store_shared: Option<bool>,
    /// Largest uploaded file, in bytes (default 25 MiB).
    #[arg(long, env = "QUICKTALK_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Bytes of files one registered user may keep stored (default 1 GiB).
    #[arg(long, env = "QUICKTALK_MEDIA_QUOTA_BYTES")]
    pub media_quota_bytes: Option<u64>,
    /// Bytes of files one guest may keep stored (default 100 MiB).
    #[arg(long, env = "QUICKTALK_GUEST_MEDIA_QUOTA_BYTES")]
    pub guest_media_quota_bytes: Option<u64>,
    /// Seconds before a file no message carries (or an unfinished resumable
    /// upload) is removed (default 86400).
    #[arg(long, env = "QUICKTALK_MEDIA_GRACE_SECS")]
    pub media_grace_secs: Option<u64>,
    /// Seconds between two runs of the media cleanup (default 600).
    #[arg(long, env = "QUICKTALK_MEDIA_SWEEP_SECS")]
    pub media_sweep_secs: Option<u64>,
    /// Proxies (`CIDR` or IP, comma-separated) whose `X-Forwarded-For` is believed.
    #[arg(long, env = "QUICKTALK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Serve `/metrics` on this address (port 0 picks one and prints it).
    #[arg(long, env = "QUICKTALK_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Also serve `/metrics` on the public listener.
    #[arg(long, env = "QUICKTALK_METRICS_PUBLIC", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: Option<bool>,
    /// Longest time a client may take to send a request body, in ms.
    #[arg(long, env = "QUICKTALK_HTTP_BODY_TIMEOUT_MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// Web Push contact for push services: `mailto:you@example.org` or an `https:` URL.
    #[arg(long, env = "QUICKTALK_PUSH_SUBJECT")]
    pub push_subject: Option<String>,
    /// Accept `http://` push endpoints on any host, loopback included (tests only).
    #[arg(long, env = "QUICKTALK_PUSH_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub push_allow_http: Option<bool>,
    /// Push service hosts (suffixes, comma-separated) allowed besides the
    /// browsers' own; `*` allows any public host.
    #[arg(long, env = "QUICKTALK_PUSH_HOSTS", value_delimiter = ',')]
    pub push_hosts: Option<Vec<String>>,
    /// Ms without activity before a user is away and may get pushes (default 60000).
    #[arg(long, env = "QUICKTALK_PUSH_IDLE_MS")]
    pub push_idle_ms: Option<u64>,
    /// Ms a room's first message waits for more before its push (default 1500).
    #[arg(long, env = "QUICKTALK_PUSH_DELAY_MS")]
    pub push_delay_ms: Option<u64>,
    /// Least ms between two pushes of one room to one user (default 10000).
    #[arg(long, env = "QUICKTALK_PUSH_REPEAT_MS")]
    pub push_repeat_ms: Option<u64>,
    /// Pushes carry no names or text, only "New message".
    #[arg(long, env = "QUICKTALK_PUSH_HIDE_TEXT", num_args = 0..=1, default_missing_value = "true")]
    pub push_hide_text: Option<bool>,
    /// Seconds a push service keeps an undelivered notification (default 43200).
    #[arg(long, env = "QUICKTALK_PUSH_TTL_SECS")]
    pub push_ttl_secs: Option<u64>,
    /// Push work that may wait before more is dropped (default 10000).
    #[arg(long, env = "QUICKTALK_PUSH_QUEUE")]
    pub push_queue: Option<usize>,
}

/// `on` / `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

fn parse_sync(s: &str) -> Result<Synchronous, String> {
    match s {
        "full" => Ok(Synchronous::Full),
        "normal" => Ok(Synchronous::Normal),
        _ => Err("expected `full` or `normal`".into()),
    }
}

impl ServeArgs {
    /// Fields set in `other` win.
    fn overlay(self, other: ServeArgs) -> ServeArgs {
        ServeArgs {
            listen: other.listen.or(self.listen),
            data_dir: other.data_dir.or(self.data_dir),
            config: other.config.or(self.config),
            database_url: other.database_url.or(self.database_url),
            database_pool: other.database_pool.or(self.database_pool),
            kafka_brokers: other.kafka_brokers.or(self.kafka_brokers),
            kafka_topic_prefix: other.kafka_topic_prefix.or(self.kafka_topic_prefix),
            kafka_partitions: other.kafka_partitions.or(self.kafka_partitions),
            kafka_replication: other.kafka_replication.or(self.kafka_replication),
            kafka_reply_timeout_ms: other.kafka_reply_timeout_ms.or(self.kafka_reply_timeout_ms),
            kafka_fetch_wait_ms: other.kafka_fetch_wait_ms.or(self.kafka_fetch_wait_ms),
            stomp_listen: other.stomp_listen.or(self.stomp_listen),
            max_frame_bytes: other.max_frame_bytes.or(self.max_frame_bytes),
            max_body_bytes: other.max_body_bytes.or(self.max_body_bytes),
            heartbeat_send_ms: other.heartbeat_send_ms.or(self.heartbeat_send_ms),
            heartbeat_recv_ms: other.heartbeat_recv_ms.or(self.heartbeat_recv_ms),
            outbound_queue: other.outbound_queue.or(self.outbound_queue),
            token_ttl_secs: other.token_ttl_secs.or(self.token_ttl_secs),
            sqlite_synchronous: other.sqlite_synchronous.or(self.sqlite_synchronous),
            presence_interval_ms: other.presence_interval_ms.or(self.presence_interval_ms),
            max_batch: other.max_batch.or(self.max_batch),
            log: other.log.or(self.log),
            match_window_ms: other.match_window_ms.or(self.match_window_ms),
            match_grace_ms: other.match_grace_ms.or(self.match_grace_ms),
            match_next_interval_ms: other.match_next_interval_ms.or(self.match_next_interval_ms),
            write_timeout_ms: other.write_timeout_ms.or(self.write_timeout_ms),
            idle_timeout_ms: other.idle_timeout_ms.or(self.idle_timeout_ms),
            frame_timeout_ms: other.frame_timeout_ms.or(self.frame_timeout_ms),
            rate_limits: other.rate_limits.or(self.rate_limits),
            rate_limit: other.rate_limit.or(self.rate_limit),
            moderation: other.moderation.or(self.moderation),
            max_sockets_per_ip: other.max_sockets_per_ip.or(self.max_sockets_per_ip),
            max_sockets_per_user: other.max_sockets_per_user.or(self.max_sockets_per_user),
            max_http_connections_per_ip: other
                .max_http_connections_per_ip
                .or(self.max_http_connections_per_ip),
            trusted_proxies: other.trusted_proxies.or(self.trusted_proxies),
            metrics_listen: other.metrics_listen.or(self.metrics_listen),
            metrics_public: other.metrics_public.or(self.metrics_public),
            http_body_timeout_ms: other.http_body_timeout_ms.or(self.http_body_timeout_ms),
            media_store: other.media_store.or(self.media_store),
            media_store_shared: other.media_store_shared.or(self.media_store_shared),
            max_upload_bytes: other.max_upload_bytes.or(self.max_upload_bytes),
            media_quota_bytes: other.media_quota_bytes.or(self.media_quota_bytes),
            guest_media_quota_bytes: other
                .guest_media_quota_bytes
                .or(self.guest_media_quota_bytes),
            media_grace_secs: other.media_grace_secs.or(self.media_grace_secs),
            media_sweep_secs: other.media_sweep_secs.or(self.media_sweep_secs),
            push_subject: other.push_subject.or(self.push_subject),
            push_allow_http: other.push_allow_http.or(self.push_allow_http),
            push_hosts: other.push_hosts.or(self.push_hosts),
            push_idle_ms: other.push_idle_ms.or(self.push_idle_ms),
            push_delay_ms: other.push_delay_ms.or(self.push_delay_ms),
            push_repeat_ms: other.push_repeat_ms.or(self.push_repeat_ms),
            push_hide_text: other.push_hide_text.or(self.push_hide_text),
            push_ttl_secs: other.push_ttl_secs.or(self.push_ttl_secs),
            push_queue: other.push_queue.or(self.push_queue),
        }
    }

    fn apply(self, c: &mut Config) -> anyhow::Result<()> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            listen,
            data_dir,
            database_pool,
            kafka_topic_prefix,
            kafka_partitions,
            kafka_replication,
            kafka_reply_timeout_ms,
            kafka_fetch_wait_ms,
            max_frame_bytes,
            max_body_bytes,
            heartbeat_send_ms,
            heartbeat_recv_ms,
            outbound_queue,
            token_ttl_secs,
            sqlite_synchronous,
            presence_interval_ms,
            max_batch,
            log,
            match_window_ms,
            match_grace_ms,
            match_next_interval_ms,
            write_timeout_ms,
            idle_timeout_ms,
            frame_timeout_ms,
            max_sockets_per_ip,
            max_sockets_per_user,
            max_http_connections_per_ip,
            metrics_public,
            http_body_timeout_ms,
            media_store_shared,
            max_upload_bytes,
            media_quota_bytes,
            guest_media_quota_bytes,
            media_grace_secs,
            media_sweep_secs,
            push_allow_http,
            push_idle_ms,
            push_delay_ms,
            push_repeat_ms,
            push_hide_text,
            push_ttl_secs,
            push_queue
        );
        if let Some(s) = &self.push_subject {
            anyhow::ensure!(
                s.starts_with("mailto:") || s.starts_with("https:"),
                "--push-subject must be a mailto: or https: URL"
            );
            c.push_subject = Some(s.clone());
        }
        if let Some(h) = &self.push_hosts {
            c.push_hosts = h
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(m) = &self.media_store {
            c.media_store = Some(m.clone());
        }
        if let Some(s) = self.rate_limits {
            c.rate_limits = s == Switch::On;
        }
        if let Some(s) = self.moderation {
            c.moderation = s == Switch::On;
        }
        if let Some(o) = &self.rate_limit {
            c.rates
                .apply(o)
                .map_err(|e| anyhow::anyhow!("--rate-limit: {e}"))?;
        }
        if let Some(list) = &self.trusted_proxies {
            c.trusted_proxies = list
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_net(s.trim()))
                .collect::<anyhow::Result<_>>()?;
        }
        if self.metrics_listen.is_some() {
            c.metrics_listen = self.metrics_listen;
        }
        if self.database_url.is_some() {
            c.database_url = self.database_url;
        }
        if self.stomp_listen.is_some() {
            c.stomp_listen = self.stomp_listen;
        }
        if self.kafka_brokers.is_some() {
            c.kafka_brokers = self.kafka_brokers;
        }
        Ok(())
    }
}

/// A CIDR (`172.16.0.0/12`) or a single address.
fn parse_net(s: &str) -> anyhow::Result<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| anyhow::anyhow!("--trusted-proxies: {s:?} is not a CIDR or IP address"))
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Layers the file named by the flags/env (if any) under the flags/env.
/// (clap already resolved flag-over-env per option.)
pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
    let layered = match &args.config {
        Some(path) => read_file(path)?.overlay(args),
        None => args,
    };
    let mut c = Config::default();
    layered.apply(&mut c)?;
    if c.max_frame_bytes < 1024 {
        anyhow::bail!("max_frame_bytes must be at least 1024");
    }
    if c.outbound_queue < 16 {
        anyhow::bail!("outbound_queue must be at least 16");
    }
    if c.database_pool == 0 {
        anyhow::bail!("database_pool must be at least 1");
    }
    if c.kafka_partitions < 1 {
        anyhow::bail!("kafka_partitions must be at least 1");
    }
    if c.kafka_replication < 1 {
        anyhow::bail!("kafka_replication must be at least 1");
    }
    if c.kafka_reply_timeout_ms == 0 {
        anyhow::bail!("kafka_reply_timeout_ms must be at least 1");
    }
    if c.kafka_brokers.is_some() && !matches!(c.database()?, Database::Postgres(_)) {
        anyhow::bail!("--kafka-brokers needs a shared database: --database-url postgres://…");
    }
    if c.write_timeout_ms == 0 || c.idle_timeout_ms == 0 || c.frame_timeout_ms == 0 {
        anyhow::bail!("write_timeout_ms, idle_timeout_ms and frame_timeout_ms must be at least 1");
    }
    if c.http_body_timeout_ms == 0 {
        anyhow::bail!("http_body_timeout_ms must be at least 1");
    }
    if c.max_batch == 0 {
        anyhow::bail!("max_batch must be at least 1");
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nmax_frame_bytes = 2048\nlog = \"debug\"\n",
        )
        .unwrap();
        let cli = ServeArgs {
            config: Some(file),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(cli).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.max_frame_bytes, 2048);
        assert_eq!(c.log, "debug");
        assert_eq!(c.outbound_queue, Config::default().outbound_queue);
    }

    #[test]
    fn moderation_is_on_unless_switched_off() {
        assert!(resolve(ServeArgs::default()).unwrap().moderation);
        let off = ServeArgs {
            moderation: Some(Switch::Off),
            ..Default::default()
        };
        assert!(!resolve(off).unwrap().moderation);
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("lisen"));
    }
}
