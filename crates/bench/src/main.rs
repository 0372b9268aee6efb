//! `quicktalk-bench`: a load generator comparing QuickTalk with RabbitMQ's
//! Web-STOMP and with NATS (core NATS over WebSocket, JetStream) on the same
//! machine.
//!
//! ```text
//! quicktalk-bench compare [--quick] [--pin|--no-pin]   # every scenario, three targets
//! quicktalk-bench idle    --target quicktalk|rabbitmq|nats [--quick] [--levels 1000,5000]
//! quicktalk-bench fanout  --target ... [--rooms R --members M --publishers P --rates 500,1000 --repeats 3]
//! quicktalk-bench connect --target ... [--concurrency C]
//! quicktalk-bench persist --target ... [--connections N --window W]
//! quicktalk-bench media   [--quick] [--stream-mib 100 --uploaders 2 ...]   # QuickTalk only
//! ```
//!
//! Modules: `target` (servers, auth, destinations), `conn` (a connection of
//! either protocol), `nats` (the NATS protocol, client and nats-server
//! process), `pin` (taskset), `scenario::{idle, fanout, connect, persist,
//! media}`, `report` (markdown, SVG, ratio lines),
//! `media_report` (the media results file), `proc` (`/proc` readers), `sampler`
//! (peak RSS on a thread), `stats` (HDR histograms), `payload` (stamped
//! bodies), `upload` (the upload client), `photo` (the synthetic JPEG), `clock`
//! (the shared monotonic epoch).

mod clock;
mod conn;
mod kafka_probe;
mod media_report;
mod nats;
mod payload;
mod photo;
mod pin;
mod proc;
mod push_sink;
mod report;
mod sampler;
mod scenario;
mod stats;
mod target;
mod upload;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use report::{Outcome, TargetRun};
use scenario::connect::ConnectParams;
use scenario::fanout::FanoutParams;
use scenario::idle::IdleParams;
use scenario::media::MediaParams;
use scenario::persist::PersistParams;
use target::{Kind, Server, TargetOpts};

#[derive(Parser)]
#[command(
    name = "quicktalk-bench",
    version,
    about = "Load generator: QuickTalk vs RabbitMQ Web-STOMP and NATS"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Smaller, faster parameters (the whole `compare` in under 3 minutes).
    #[arg(long)]
    quick: bool,
    /// QuickTalk binary (default: $CARGO_TARGET_DIR or <repo>/target, then release/quicktalk; built if missing).
    #[arg(long)]
    quicktalk_bin: Option<PathBuf>,
    /// Extra flag for `quicktalk serve` (repeatable), e.g. --quicktalk-arg=--outbound-queue=4096.
    #[arg(long = "quicktalk-arg", allow_hyphen_values = true)]
    quicktalk_args: Vec<String>,
    /// RabbitMQ Web-STOMP endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:15674/ws")]
    rabbitmq_ws: String,
    /// Kafka-protocol broker for `--target quicktalk-cluster`.
    #[arg(long, env = "QUICKTALK_BENCH_KAFKA", default_value = "127.0.0.1:19092")]
    kafka_brokers: String,
    /// PostgreSQL for `--target quicktalk-cluster` (a fresh schema per run).
    #[arg(
        long,
        env = "QUICKTALK_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// nats-server >= 2.10 for `--target nats` (default: the venv install,
    /// ~/.cache/quicktalk-nats/bin/nats-server; see bench/README.md).
    #[arg(long, env = "QUICKTALK_BENCH_NATS_SERVER")]
    nats_server: Option<PathBuf>,
    /// Pin with taskset: servers on core 0 (RabbitMQ's threads moved there for
    /// each scenario, then restored), the bench on core 1.
    #[arg(long, overrides_with = "no_pin")]
    pin: bool,
    /// Do not pin (the default; see bench/README.md for the measurement).
    #[arg(long, overrides_with = "pin")]
    no_pin: bool,
}

/// Whether `compare` and the scenarios pin when neither flag is given.
const PIN_BY_DEFAULT: bool = false;

impl ServerArgs {
    /// Pinning asked for (flags, else [`PIN_BY_DEFAULT`]).
    fn pin_wanted(&self) -> bool {
        if self.pin {
            true
        } else if self.no_pin {
            false
        } else {
            PIN_BY_DEFAULT
        }
    }

    /// Pinning in effect: wanted and possible here.
    fn pinned(&self) -> bool {
        self.pin_wanted() && pin::available()
    }

    fn opts(&self) -> TargetOpts {
        TargetOpts {
            quicktalk_bin: self.quicktalk_bin.clone(),
            quicktalk_args: self.quicktalk_args.clone(),
            rabbitmq_ws: self.rabbitmq_ws.clone(),
            kafka_brokers: self.kafka_brokers.clone(),
            postgres_url: self.postgres_url.clone(),
            nats_server: self
                .nats_server
                .clone()
                .unwrap_or_else(nats::server::default_binary),
            pin: self.pinned(),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Every scenario against QuickTalk, RabbitMQ and NATS, interleaved; writes
    /// bench/results/<date>.md and <date>-latency.svg and ends with the two ratio lines.
    Compare {
        #[command(flatten)]
        server: ServerArgs,
        /// Where results go (default: <repo>/bench/results).
        #[arg(long)]
        results_dir: Option<PathBuf>,
        /// Fan-out runs per offered rate (default 3).
        #[arg(long)]
        repeats: Option<usize>,
    },
    /// Idle connections: server RSS and kernel socket memory per connection.
    Idle {
        #[arg(long, value_enum)]
        target: Kind,
        #[command(flatten)]
        server: ServerArgs,
        /// Connection counts, ascending (cumulative).
        #[arg(long, value_delimiter = ',')]
        levels: Option<Vec<usize>>,
        /// Connections per worker process.
        #[arg(long)]
        per_worker: Option<usize>,
        /// Settle time before reading memory (ms).
        #[arg(long)]
        settle_ms: Option<u64>,
    },
    /// R rooms × M members, P publishers at rising rates until saturation.
    Fanout {
        #[arg(long, value_enum)]
        target: Kind,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        rooms: Option<usize>,
        #[arg(long)]
        members: Option<usize>,
        #[arg(long)]
        publishers: Option<usize>,
        #[arg(long)]
        body_bytes: Option<usize>,
        /// Offered publish rates (msgs/s, total), e.g. 500,1000,2000.
        #[arg(long, value_delimiter = ',')]
        rates: Option<Vec<f64>>,
        #[arg(long)]
        warmup_ms: Option<u64>,
        #[arg(long)]
        measure_ms: Option<u64>,
        /// QuickTalk: add away members with push subscriptions, this fraction
        /// of the subscribers (e.g. 0.1), so every message is planned as a push.
        #[arg(long)]
        push_away: Option<f64>,
        /// Runs per offered rate: the table gives median and min–max (default 3).
        #[arg(long)]
        repeats: Option<usize>,
    },
    /// Connects/s (WebSocket + CONNECT + SUBSCRIBE with receipt) and latency.
    Connect {
        #[arg(long, value_enum)]
        target: Kind,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        concurrency: Option<usize>,
        #[arg(long)]
        warmup_ms: Option<u64>,
        #[arg(long)]
        measure_ms: Option<u64>,
    },
    /// QuickTalk: push latency, a message's commit (RECEIPT) → the push
    /// service receiving its push (burst window and repeat spacing set to 0).
    Push {
        #[command(flatten)]
        server: ServerArgs,
        /// Rooms, one away member with a push subscription in each.
        #[arg(long, default_value_t = 8)]
        rooms: usize,
        /// Messages, one at a time.
        #[arg(long, default_value_t = 400)]
        messages: usize,
    },
    /// SENDs with receipts (durable): receipts/s and receipt latency.
    Persist {
        #[arg(long, value_enum)]
        target: Kind,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        connections: Option<usize>,
        /// Receipts in flight per connection.
        #[arg(long)]
        window: Option<usize>,
        #[arg(long)]
        body_bytes: Option<usize>,
        #[arg(long)]
        warmup_ms: Option<u64>,
        #[arg(long)]
        measure_ms: Option<u64>,
    },
    /// Uploads on one QuickTalk server: a streamed 100 MiB file (throughput, RSS
    /// growth), 12 MP JPEG thumbnail time, fan-out latency with and without
    /// concurrent photo uploads; writes bench/results/<date>-media.md.
    Media {
        #[command(flatten)]
        server: ServerArgs,
        /// Where results go (default: <repo>/bench/results).
        #[arg(long)]
        results_dir: Option<PathBuf>,
        /// Size of the streamed upload, MiB.
        #[arg(long)]
        stream_mib: Option<u64>,
        #[arg(long)]
        stream_runs: Option<usize>,
        /// Sequential photo uploads for the thumbnail time.
        #[arg(long)]
        thumb_runs: Option<usize>,
        /// Concurrent photo uploaders during the second fan-out run.
        #[arg(long)]
        uploaders: Option<usize>,
        /// Fan-out publish rate (msgs/s, total).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long)]
        measure_ms: Option<u64>,
    },
    /// QuickTalk: search latency on a large store (issue 15): R rooms filled
    /// with M generated Korean messages through the message path, a reader in
    /// K rooms; p50/p95 of 3+ and 2-character queries, index size; writes
    /// bench/results/<date>-search-<backend>.md.
    Search {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, default_value_t = 1000)]
        rooms: usize,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        /// Rooms the reader is a member of.
        #[arg(long, default_value_t = 50)]
        member_rooms: usize,
        /// Queries of each kind.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Receipts in flight per loading connection.
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// One node on PostgreSQL (`--postgres-url`, a fresh schema) instead of SQLite.
        #[arg(long)]
        postgres: bool,
        #[arg(long)]
        results_dir: Option<PathBuf>,
    },
    /// One node and two cluster nodes (Kafka + PostgreSQL) in one run: fan-out
    /// at chat rates, each rate repeated, and persist; for the cluster, where a
    /// message's time goes hop by hop (from every node's /metrics); writes
    /// bench/results/<date>-cluster.md.
    Cluster {
        #[command(flatten)]
        server: ServerArgs,
        /// Offered fan-out rates (msgs/s, total).
        #[arg(long, value_delimiter = ',', default_value = "250,1000")]
        rates: Vec<f64>,
        /// Runs of each rate (the tables show the median and the spread).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long)]
        measure_ms: Option<u64>,
        #[arg(long)]
        results_dir: Option<PathBuf>,
    },
    /// The Kafka-protocol broker alone, with a node's producer and consumer
    /// settings: produce → ack and produce → consumed latency at a fixed rate,
    /// per time slice (the broker's floor under the cluster's hops).
    KafkaProbe {
        #[arg(long, env = "QUICKTALK_BENCH_KAFKA", default_value = "127.0.0.1:19092")]
        kafka_brokers: String,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// The consumer's fetch.wait.max.ms.
        #[arg(long, default_value_t = 10)]
        fetch_wait_ms: u64,
        #[arg(long, default_value_t = 0)]
        linger_ms: u64,
        /// The producer's enable.idempotence (a node's producer has it on).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        idempotence: bool,
        #[arg(long, default_value_t = 100)]
        body_bytes: usize,
        /// Length of one reported slice, seconds.
        #[arg(long, default_value_t = 5)]
        slice_s: u64,
    },
    /// Internal: hold idle connections for `idle` (spec on stdin).
    #[command(hide = true)]
    WorkerIdle,
}

/// Parameters of all scenarios for one mode.
struct Preset {
    idle: IdleParams,
    fanout: FanoutParams,
    connect: ConnectParams,
    persist: PersistParams,
    /// Upper bound on one scenario on one target.
    scenario_limit: Duration,
}

/// The `media` scenario's parameters for one mode.
fn media_params(quick: bool) -> MediaParams {
    let s = Duration::from_secs;
    MediaParams {
        stream_bytes: if quick { 32 } else { 100 } << 20,
        stream_runs: 3,
        photo_width: 4000,
        photo_height: 3000,
        thumb_runs: if quick { 5 } else { 20 },
        uploaders: 2,
        sample_period: Duration::from_millis(5),
        settle: Duration::from_millis(1000),
        fanout: FanoutParams {
            rooms: 4,
            members: 25,
            publishers: 4,
            body_bytes: 100,
            rates: vec![500.0],
            warmup: s(2),
            measure: if quick { s(4) } else { s(10) },
            drain: s(3),
            users: 16,
            push_away: 0.0,
            repeats: 1,
        },
    }
}

impl Preset {
    fn new(quick: bool) -> Preset {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        if quick {
            Preset {
                idle: IdleParams {
                    levels: vec![400, 800, 2000, 8000],
                    per_worker: 5000,
                    settle: ms(1500),
                    rooms: 4,
                    users: 16,
                    concurrency: 64,
                },
                fanout: FanoutParams {
                    rooms: 4,
                    members: 25,
                    publishers: 4,
                    body_bytes: 100,
                    rates: FanoutParams::geometric(250.0, 2.0, 9),
                    warmup: s(1),
                    measure: s(2),
                    drain: s(2),
                    users: 16,
                    push_away: 0.0,
                    repeats: 3,
                },
                connect: ConnectParams {
                    concurrency: 8,
                    warmup: s(1),
                    measure: s(3),
                    max_connects: 60_000,
                    users: 16,
                },
                persist: PersistParams {
                    connections: 4,
                    window: 64,
                    body_bytes: 100,
                    warmup: s(1),
                    measure: s(3),
                },
                scenario_limit: s(120),
            }
        } else {
            Preset {
                idle: IdleParams {
                    levels: vec![800, 1000, 5000, 10000],
                    per_worker: 5000,
                    settle: s(3),
                    rooms: 10,
                    users: 64,
                    concurrency: 64,
                },
                fanout: FanoutParams {
                    rooms: 10,
                    members: 75,
                    publishers: 10,
                    body_bytes: 100,
                    rates: FanoutParams::geometric(500.0, 2.0, 10),
                    warmup: s(2),
                    measure: s(5),
                    drain: s(3),
                    users: 64,
                    push_away: 0.0,
                    repeats: 3,
                },
                connect: ConnectParams {
                    concurrency: 32,
                    warmup: s(2),
                    measure: s(10),
                    max_connects: 120_000,
                    users: 64,
                },
                persist: PersistParams {
                    connections: 8,
                    window: 256,
                    body_bytes: 100,
                    warmup: s(2),
                    measure: s(10),
                },
                scenario_limit: s(600),
            }
        }
    }
}

impl Cmd {
    fn server_args(&self) -> Option<&ServerArgs> {
        match self {
            Cmd::Compare { server, .. }
            | Cmd::Idle { server, .. }
            | Cmd::Fanout { server, .. }
            | Cmd::Connect { server, .. }
            | Cmd::Push { server, .. }
            | Cmd::Persist { server, .. }
            | Cmd::Media { server, .. }
            | Cmd::Search { server, .. }
            | Cmd::Cluster { server, .. } => Some(server),
            Cmd::WorkerIdle | Cmd::KafkaProbe { .. } => None,
        }
    }
}

fn main() -> anyhow::Result<()> {
    clock::epoch();
    let cli = Cli::parse();
    // The server child and the idle workers inherit this limit.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    // Before the runtime starts its threads: they, and the idle workers,
    // inherit the bench core.
    if let Some(server) = cli.cmd.server_args() {
        if server.pin_wanted() && !server.pinned() {
            eprintln!("# --pin: not pinning (needs 2 cores and taskset)");
        } else if server.pinned() {
            pin::pin_self().context("pinning the bench to its core")?;
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli.cmd))
}

async fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::WorkerIdle => scenario::idle::worker_main().await,
        Cmd::Compare {
            server,
            results_dir,
            repeats,
        } => compare(&server, results_dir, repeats).await,
        Cmd::Media {
            server,
            results_dir,
            stream_mib,
            stream_runs,
            thumb_runs,
            uploaders,
            rate,
            measure_ms,
        } => {
            let mut p = media_params(server.quick);
            if let Some(m) = stream_mib {
                p.stream_bytes = m.max(1) << 20;
            }
            p.stream_runs = stream_runs.unwrap_or(p.stream_runs).max(1);
            p.thumb_runs = thumb_runs.unwrap_or(p.thumb_runs).max(1);
            p.uploaders = uploaders.unwrap_or(p.uploaders).max(1);
            if let Some(r) = rate {
                p.fanout.rates = vec![r];
            }
            p.fanout.measure = measure_ms.map_or(p.fanout.measure, Duration::from_millis);
            media(&server, results_dir, p).await
        }
        Cmd::Search {
            server,
            rooms,
            messages,
            member_rooms,
            queries,
            connections,
            window,
            postgres,
            results_dir,
        } => {
            let p = scenario::search::SearchParams {
                rooms: rooms.max(1),
                messages,
                member_rooms: member_rooms.clamp(1, rooms.max(1)),
                queries: queries.max(1),
                connections: connections.max(1),
                window: window.max(1),
            };
            search(&server, p, postgres, results_dir).await
        }
        Cmd::KafkaProbe {
            kafka_brokers,
            rate,
            seconds,
            partitions,
            fetch_wait_ms,
            linger_ms,
            idempotence,
            body_bytes,
            slice_s,
        } => {
            let p = kafka_probe::ProbeParams {
                brokers: kafka_brokers,
                rate: rate.max(1.0),
                seconds: seconds.max(1),
                partitions: partitions.max(1),
                fetch_wait_ms,
                linger_ms,
                idempotence,
                body_bytes,
                slice: Duration::from_secs(slice_s.max(1)),
            };
            let r = kafka_probe::run(&p).await?;
            print!("{}", kafka_probe::report(&r));
            Ok(())
        }
        Cmd::Cluster {
            server,
            rates,
            repeats,
            measure_ms,
            results_dir,
        } => cluster(&server, rates, repeats, measure_ms, results_dir).await,
        Cmd::Idle {
            target,
            server,
            levels,
            per_worker,
            settle_ms,
        } => {
            let preset = Preset::new(server.quick);
            let mut p = preset.idle;
            if let Some(l) = levels {
                p.levels = l;
            }
            p.levels.sort_unstable();
            if let Some(w) = per_worker {
                p.per_worker = w.clamp(1, scenario::MAX_CONNS_PER_PROCESS);
            }
            if let Some(s) = settle_ms {
                p.settle = Duration::from_millis(s);
            }
            let run =
                move |s: std::sync::Arc<Server>| async move { scenario::idle::run(&s, &p).await };
            run_single(
                target,
                &server,
                preset.scenario_limit,
                run,
                |r, v| r.idle = Some(v),
                report::idle_table,
            )
            .await
        }
        Cmd::Fanout {
            target,
            server,
            rooms,
            members,
            publishers,
            body_bytes,
            rates,
            warmup_ms,
            measure_ms,
            push_away,
            repeats,
        } => {
            let preset = Preset::new(server.quick);
            let mut p = preset.fanout;
            p.repeats = repeats.unwrap_or(p.repeats).max(1);
            p.push_away = push_away.unwrap_or(0.0).clamp(0.0, 10.0);
            p.rooms = rooms.unwrap_or(p.rooms).max(1);
            p.members = members.unwrap_or(p.members).max(1);
            p.publishers = publishers.unwrap_or(p.publishers).max(1);
            p.body_bytes = body_bytes.unwrap_or(p.body_bytes);
            p.rates = rates.unwrap_or(p.rates);
            p.warmup = warmup_ms.map_or(p.warmup, Duration::from_millis);
            p.measure = measure_ms.map_or(p.measure, Duration::from_millis);
            let run =
                move |s: std::sync::Arc<Server>| async move { scenario::fanout::run(&s, &p).await };
            run_single(
                target,
                &server,
                preset.scenario_limit,
                run,
                |r, v| r.fanout = Some(v),
                report::fanout_table,
            )
            .await
        }
        Cmd::Connect {
            target,
            server,
            concurrency,
            warmup_ms,
            measure_ms,
        } => {
            let preset = Preset::new(server.quick);
            let mut p = preset.connect;
            p.concurrency = concurrency.unwrap_or(p.concurrency).max(1);
            p.warmup = warmup_ms.map_or(p.warmup, Duration::from_millis);
            p.measure = measure_ms.map_or(p.measure, Duration::from_millis);
            let run = move |s: std::sync::Arc<Server>| async move {
                scenario::connect::run(&s, &p).await
            };
            run_single(
                target,
                &server,
                preset.scenario_limit,
                run,
                |r, v| r.connect = Some(v),
                report::connect_table,
            )
            .await
        }
        Cmd::Push {
            server,
            rooms,
            messages,
        } => {
            // The server inherits these: no burst window, no repeat spacing.
            std::env::set_var("QUICKTALK_PUSH_DELAY_MS", "0");
            std::env::set_var("QUICKTALK_PUSH_REPEAT_MS", "0");
            let p = scenario::push::PushParams {
                rooms: rooms.max(1),
                messages: messages.max(1),
            };
            let mut notes = Vec::new();
            let run =
                move |s: std::sync::Arc<Server>| async move { scenario::push::run(&s, &p).await };
            let r = one(
                Kind::Quicktalk,
                &server.opts(),
                Duration::from_secs(900),
                &mut notes,
                run,
            )
            .await;
            match r {
                Ok(r) => {
                    let l = r.latency;
                    println!(
                        "push latency (commit → push service), {} messages over {} rooms: \
                         p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  missing {}",
                        l.count, r.params.rooms, l.p50, l.p90, l.p99, l.max, r.missing
                    );
                }
                Err(e) => println!("push: {e}"),
            }
            for n in notes {
                println!("note: {n}");
            }
            Ok(())
        }
        Cmd::Persist {
            target,
            server,
            connections,
            window,
            body_bytes,
            warmup_ms,
            measure_ms,
        } => {
            let preset = Preset::new(server.quick);
            let mut p = preset.persist;
            p.connections = connections.unwrap_or(p.connections).max(1);
            p.window = window.unwrap_or(p.window).max(1);
            p.body_bytes = body_bytes.unwrap_or(p.body_bytes);
            p.warmup = warmup_ms.map_or(p.warmup, Duration::from_millis);
            p.measure = measure_ms.map_or(p.measure, Duration::from_millis);
            let run = move |s: std::sync::Arc<Server>| async move {
                scenario::persist::run(&s, &p).await
            };
            run_single(
                target,
                &server,
                preset.scenario_limit,
                run,
                |r, v| r.persist = Some(v),
                report::persist_table,
            )
            .await
        }
    }
}

/// Runs one scenario against one target, then prints its table and notes.
async fn run_single<T, F, Fut>(
    target: Kind,
    server: &ServerArgs,
    limit: Duration,
    scenario: F,
    put: fn(&mut TargetRun, Result<T, String>),
    table: fn(&[&TargetRun]) -> String,
) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<Server>) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut r = TargetRun::new(target);
    let result = one(target, &server.opts(), limit, &mut r.notes, scenario).await;
    put(&mut r, result);
    print!("{}", table(&[&r]));
    print_notes(&r);
    Ok(())
}

fn print_notes(r: &TargetRun) {
    let p = report::problems(&[r]);
    if !p.is_empty() {
        println!("\n{}", p.trim_end());
    }
}

fn push_note(notes: &mut Vec<String>, n: String) {
    if !notes.contains(&n) {
        notes.push(n);
    }
}

/// Starts (or locates) the target, runs one scenario within `limit`, stops the
/// server, and files setup facts and server stderr under `notes`.
async fn one<T, F, Fut>(
    kind: Kind,
    opts: &TargetOpts,
    limit: Duration,
    notes: &mut Vec<String>,
    scenario: F,
) -> Result<T, String>
where
    F: FnOnce(std::sync::Arc<Server>) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let server = match Server::start(kind, opts).await {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => return Err(format!("starting {}: {e:#}", kind.name())),
    };
    for n in &server.notes {
        push_note(notes, n.clone());
    }
    let result = match tokio::time::timeout(limit, scenario(server.clone())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("scenario exceeded its {limit:?} bound")),
    };
    let log = server.log.lock().unwrap().summary();
    if let Some(l) = log {
        push_note(
            notes,
            format!("server stderr ({kind:?}): {l}", kind = kind.name()),
        );
    }
    match std::sync::Arc::try_unwrap(server) {
        Ok(s) => {
            if let Some(n) = s.stop().await {
                push_note(notes, n);
            }
        }
        Err(_) => push_note(notes, "server handle still shared; dropped (killed)".into()),
    }
    result
}

/// The report's facts about how the run was done (pinning, repeats).
fn run_notes(server: &ServerArgs, repeats: usize) -> Vec<String> {
    let pinning = if server.pinned() {
        format!(
            "CPU pinning: on (`--pin`). QuickTalk and nats-server run on core {s} (`taskset -c {s}`); \
             RabbitMQ's beam.smp threads are moved to core {s} for each of its scenarios and given their \
             previous CPU list back afterwards (`taskset -a -p`); the bench and its idle workers run on core {b}.",
            s = pin::SERVER_CORE,
            b = pin::BENCH_CORE
        )
    } else if server.pin_wanted() {
        "CPU pinning: asked for but not possible here (needs 2 cores and taskset): off.".into()
    } else {
        "CPU pinning: off (`--no-pin`, the default): servers and bench share both cores as the scheduler decides.".into()
    };
    vec![
        pinning,
        format!("fan-out: {repeats} run(s) per offered rate; medians and ranges reported."),
    ]
}

async fn compare(
    server: &ServerArgs,
    results_dir: Option<PathBuf>,
    repeats: Option<usize>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let machine = proc::Machine::describe();
    let mut preset = Preset::new(server.quick);
    preset.fanout.repeats = repeats.unwrap_or(preset.fanout.repeats).max(1);
    let opts = server.opts();
    let mut qt = TargetRun::new(Kind::Quicktalk);
    let mut rmq = TargetRun::new(Kind::Rabbitmq);
    let mut nats = TargetRun::new(Kind::Nats);
    let limit = preset.scenario_limit;
    for name in ["idle", "fanout", "connect", "persist"] {
        for run in [&mut qt, &mut rmq, &mut nats] {
            let kind = run.kind;
            eprintln!(
                "# {name} on {} ({:.0} s in)",
                kind.name(),
                t0.elapsed().as_secs_f64()
            );
            let notes = &mut run.notes;
            match name {
                "idle" => {
                    let p = preset.idle.clone();
                    run.idle = Some(
                        one(kind, &opts, limit, notes, |s| async move {
                            scenario::idle::run(&s, &p).await
                        })
                        .await,
                    );
                    log_failure(kind, name, &run.idle);
                }
                "fanout" => {
                    let p = preset.fanout.clone();
                    run.fanout = Some(
                        one(kind, &opts, limit, notes, |s| async move {
                            scenario::fanout::run(&s, &p).await
                        })
                        .await,
                    );
                    log_failure(kind, name, &run.fanout);
                }
                "connect" => {
                    let p = preset.connect.clone();
                    run.connect = Some(
                        one(kind, &opts, limit, notes, |s| async move {
                            scenario::connect::run(&s, &p).await
                        })
                        .await,
                    );
                    log_failure(kind, name, &run.connect);
                }
                _ => {
                    let p = preset.persist.clone();
                    run.persist = Some(
                        one(kind, &opts, limit, notes, |s| async move {
                            scenario::persist::run(&s, &p).await
                        })
                        .await,
                    );
                    log_failure(kind, name, &run.persist);
                }
            }
        }
    }
    let total = t0.elapsed().as_secs_f64();
    let ratios = [
        (Kind::Rabbitmq, report::ratios(&qt, &rmq)),
        (Kind::Nats, report::ratios(&qt, &nats)),
    ];
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let dir = results_dir.unwrap_or_else(|| target::repo_root().join("bench/results"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_name = format!("{date}-latency.svg");
    let command = std::iter::once("quicktalk-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let runs = [&qt, &rmq, &nats];
    let notes = run_notes(server, preset.fanout.repeats);
    let md = report::markdown(
        &date, &command, total, &machine, &runs, &ratios, &svg_name, &notes,
    );
    let md_path = dir.join(format!("{date}.md"));
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let svg = report::latency_svg(
        &runs,
        &format!("fan-out latency vs delivered rate ({date}; medians; p99 thick, p50 thin)"),
    )?;
    let svg_path = dir.join(&svg_name);
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;
    // The report without its ratio section, then the ratio lines once, last.
    let body = md.split("\n## Ratios").next().unwrap_or(&md);
    let rest = md
        .split_once("## Notes and problems observed")
        .map(|(_, r)| format!("\n\n## Notes and problems observed{r}"))
        .unwrap_or_default();
    println!("{}{}", body.trim_end(), rest.trim_end());
    println!();
    println!("wrote {} and {}", md_path.display(), svg_path.display());
    for (peer, r) in &ratios {
        println!("{}", report::ratio_line(*peer, r));
    }
    Ok(())
}

/// The `media` command: one QuickTalk server, the three measurements, the
/// summary on stdout and in bench/results/<date>-media.md.
async fn media(
    server: &ServerArgs,
    results_dir: Option<PathBuf>,
    p: MediaParams,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let machine = proc::Machine::describe();
    let mut opts = server.opts();
    // The scenario's flags first: a flag given with --quicktalk-arg still wins.
    let mut args = p.server_args();
    args.append(&mut opts.quicktalk_args);
    opts.quicktalk_args = args;
    let mut notes = vec![format!("server flags: {}", opts.quicktalk_args.join(" "))];
    let params = p.clone();
    let result = one(
        Kind::Quicktalk,
        &opts,
        Duration::from_secs(900),
        &mut notes,
        |s| async move { scenario::media::run(&s, &params).await },
    )
    .await;
    let total = t0.elapsed().as_secs_f64();
    let body = match &result {
        Ok(r) => media_report::summary(r),
        Err(e) => format!(
            "## Failed

{e}
"
        ),
    };
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let dir = results_dir.unwrap_or_else(|| target::repo_root().join("bench/results"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let command = std::iter::once("quicktalk-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let loadavg_after = proc::Machine::describe().loadavg;
    let md = media_report::markdown(
        &date,
        &command,
        total,
        &machine,
        &body,
        &notes,
        &loadavg_after,
    );
    let path = dir.join(format!("{date}-media.md"));
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", md.trim_end());
    println!("\nwrote {}", path.display());
    result.map(|_| ()).map_err(|e| anyhow::anyhow!(e))
}

async fn search(
    server: &ServerArgs,
    p: scenario::search::SearchParams,
    postgres: bool,
    results_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let machine = proc::Machine::describe();
    let mut opts = server.opts();
    // Moderation off: the load is about the store, not the classifier (a
    // flag given with --quicktalk-arg still wins).
    opts.quicktalk_args.insert(0, "--moderation=off".into());
    let s = if postgres {
        target::start_quicktalk_postgres(&opts).await?
    } else {
        Server::start(Kind::Quicktalk, &opts).await?
    };
    let result = scenario::search::run(&s, &p).await;
    let log = s.log.lock().unwrap().summary();
    let stopped = s.stop().await;
    let r = result?;
    let command = std::iter::once("quicktalk-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut m = String::new();
    report::machine_section(&mut m, &machine);
    let _ = std::fmt::Write::write_fmt(
        &mut m,
        format_args!("- load average at the start: {}\n", machine.loadavg),
    );
    let mut md = scenario::search::report(&r, m.trim_end(), &command);
    for n in log.into_iter().chain(stopped) {
        md.push_str(&format!("\nnote: {}\n", strip_ansi(&n)));
    }
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let dir = results_dir.unwrap_or_else(|| target::repo_root().join("bench/results"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let backend = if postgres { "postgres" } else { "sqlite" };
    let path = dir.join(format!("{date}-search-{backend}.md"));
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", md.trim_end());
    println!("\nwrote {}", path.display());
    Ok(())
}

/// The `cluster` command: both targets in one run, their tables and the
/// cluster's hops, on stdout and in bench/results/<date>-cluster.md.
async fn cluster(
    server: &ServerArgs,
    rates: Vec<f64>,
    repeats: usize,
    measure_ms: Option<u64>,
    results_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let machine = proc::Machine::describe();
    let preset = Preset::new(true);
    let mut fanout = preset.fanout.clone();
    fanout.rates = rates;
    fanout.measure = Duration::from_millis(measure_ms.unwrap_or(3_000));
    let p = scenario::hops::HopsParams {
        fanout,
        persist: Preset::new(server.quick).persist,
        repeats: repeats.max(1),
    };
    let mut opts = server.opts();
    // The hop histograms are read from every node's /metrics.
    opts.quicktalk_args.insert(0, "--metrics-public".into());
    let mut sections = Vec::new();
    let mut notes = Vec::new();
    for kind in [Kind::Quicktalk, Kind::QuicktalkCluster] {
        eprintln!(
            "# cluster bench on {} ({:.0} s in)",
            kind.name(),
            t0.elapsed().as_secs_f64()
        );
        let p = p.clone();
        let r = one(
            kind,
            &opts,
            Duration::from_secs(900),
            &mut notes,
            |s| async move { scenario::hops::run(&s, &p).await },
        )
        .await;
        sections.push(match r {
            Ok(r) => scenario::hops::table(kind.title(), &r),
            Err(e) => format!(
                "### {}

failed: {e}
",
                kind.title()
            ),
        });
    }
    let command = std::iter::once("quicktalk-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let mut md = format!(
        "# Cluster at chat speed — {date}\n\n`{command}` ({:.0} s)\n\n",
        t0.elapsed().as_secs_f64()
    );
    report::machine_section(&mut md, &machine);
    let _ = std::fmt::Write::write_fmt(
        &mut md,
        format_args!(
            "- load average at the start: {}\n- fan-out: {} rooms × {} subscribers, {} publishers, \
             {} B bodies, warm-up {:?}, measured {:?}, {} runs per rate\n\n",
            machine.loadavg,
            p.fanout.rooms,
            p.fanout.members,
            p.fanout.publishers,
            p.fanout.body_bytes,
            p.fanout.warmup,
            p.fanout.measure,
            p.repeats
        ),
    );
    for s in sections {
        md.push_str(&s);
        md.push('\n');
    }
    if !notes.is_empty() {
        md.push_str("## Notes\n\n");
        for n in notes {
            md.push_str(&format!("- {}\n", strip_ansi(&n)));
        }
    }
    let dir = results_dir.unwrap_or_else(|| target::repo_root().join("bench/results"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{date}-cluster.md"));
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", md.trim_end());
    println!("\nwrote {}", path.display());
    Ok(())
}

/// `s` without terminal colour sequences (`ESC [ … m`), for a markdown file.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn log_failure<T>(kind: Kind, name: &str, o: &Outcome<T>) {
    if let Some(Err(e)) = o {
        eprintln!("#   {name} on {} failed: {e}", kind.name());
    }
}
