//! `idle`: hold N connections (CONNECT + SUBSCRIBE to one room each; NATS:
//! CONNECT + SUB, each confirmed by a PING/PONG) and measure
//! the server's RSS growth per connection and the kernel's TCP socket memory.
//!
//! Levels are cumulative (e.g. 1k, then 4k more for 5k, then 5k more for 10k),
//! so no level reuses memory freed by a previous one; growth per connection at
//! level N is `(RSS(N) - RSS(0)) / N`, read after a settle period. Connections
//! are held by worker processes (this binary re-executed as `worker-idle`), at
//! most [`IdleParams::per_worker`] each, so no process nears the 20,000
//! open-files limit. A worker gets its [`WorkerSpec`] as one JSON line on stdin,
//! answers one JSON [`WorkerReady`] line, and closes everything when stdin
//! closes or says `stop`.
//!
//! `/proc/net/sockstat` is machine-wide and counts both ends of each loopback
//! connection; an idle socket holds (almost) no buffer memory, so expect ~0
//! (the least of five readings is taken, to filter other traffic).

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command as Proc};
use tokio::sync::watch;

use super::{open_subscriber, partition, run_bounded, MAX_CONNS_PER_PROCESS};
use crate::conn::{Event, Proto};
use crate::proc::{self, TcpSockstat, PAGE_BYTES};
use crate::target::{Creds, Server};

#[derive(Debug, Clone)]
pub struct IdleParams {
    /// Connection counts to measure at, ascending.
    pub levels: Vec<usize>,
    pub per_worker: usize,
    pub settle: Duration,
    pub rooms: usize,
    pub users: usize,
    /// Connection attempts in flight per worker.
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct IdleLevel {
    pub n: usize,
    /// Connections actually open at this level.
    pub connected: usize,
    pub rss_kb: u64,
    pub sock: TcpSockstat,
    /// Server RSS growth per connection since the baseline, bytes.
    pub rss_per_conn: f64,
    /// Kernel TCP buffer memory growth per connection (both ends), bytes.
    pub sock_per_conn: f64,
    /// Seconds to open this level's new connections.
    pub setup_secs: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdleResult {
    pub baseline_rss_kb: u64,
    pub baseline_sock: TcpSockstat,
    pub levels: Vec<IdleLevel>,
    /// Levels not attempted, with why.
    pub skipped: Vec<(usize, String)>,
}

impl IdleResult {
    /// Levels where every connection was open.
    pub fn complete(&self) -> impl Iterator<Item = &IdleLevel> {
        self.levels.iter().filter(|l| l.error.is_none())
    }
}

/// What a worker is asked to hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub proto: Proto,
    pub url: String,
    pub creds: Vec<Creds>,
    pub dests: Vec<String>,
    /// Global index of this worker's first connection (for round-robin).
    pub offset: usize,
    pub count: usize,
    pub concurrency: usize,
}

/// A worker's answer once its connections are open (or failed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerReady {
    pub ok: usize,
    pub failed: usize,
    pub error: Option<String>,
}

/// Failed connects after which a worker stops trying.
const FAIL_FAST: usize = 8;

struct Worker {
    child: Child,
    stdin: ChildStdin,
}

pub async fn run(server: &Server, p: &IdleParams) -> anyhow::Result<IdleResult> {
    let fx = server.fixture(p.rooms, p.users).await?;
    tokio::time::sleep(p.settle).await;
    let baseline_rss_kb = proc::rss_kb(server.pid)?;
    let baseline_sock = proc::sockstat_quiet(5).await?;
    eprintln!(
        "#   idle: baseline RSS {:.1} MB, TCP mem {} pages",
        baseline_rss_kb as f64 / 1024.0,
        baseline_sock.mem_pages
    );
    let mut workers: Vec<Worker> = Vec::new();
    let mut levels = Vec::new();
    let mut open = 0usize;
    let mut skipped = Vec::new();
    for &n in &p.levels {
        if n <= open {
            continue;
        }
        if let Some(cap) = server.conn_cap.filter(|&c| n > c) {
            skipped.push((
                n,
                format!(
                    "over the {cap} connections {} can take",
                    server.kind.title()
                ),
            ));
            continue;
        }
        let t0 = Instant::now();
        let mut error = None;
        let mut offset = open;
        while offset < n {
            let count = (n - offset).min(p.per_worker.min(MAX_CONNS_PER_PROCESS));
            let spec = WorkerSpec {
                proto: fx.proto,
                url: fx.ws_url(0).to_owned(),
                creds: fx.subscribers.clone(),
                dests: fx.sub_dests.clone(),
                offset,
                count,
                concurrency: p.concurrency,
            };
            match spawn_worker(&spec).await {
                Ok((w, ready)) => {
                    workers.push(w);
                    open += ready.ok;
                    if ready.failed > 0 {
                        error = Some(format!(
                            "{} of {count} connections failed: {}",
                            ready.failed,
                            ready.error.unwrap_or_default()
                        ));
                        break;
                    }
                }
                Err(e) => {
                    error = Some(format!("worker: {e:#}"));
                    break;
                }
            }
            offset += count;
        }
        let setup_secs = t0.elapsed().as_secs_f64();
        tokio::time::sleep(p.settle).await;
        let rss_kb = proc::rss_kb(server.pid)?;
        let sock = proc::sockstat_quiet(5).await?;
        let per = |after: u64, before: u64, unit: u64| {
            (after as f64 - before as f64) * unit as f64 / open.max(1) as f64
        };
        let level = IdleLevel {
            n,
            connected: open,
            rss_kb,
            sock,
            rss_per_conn: per(rss_kb, baseline_rss_kb, 1024),
            sock_per_conn: per(sock.mem_pages, baseline_sock.mem_pages, PAGE_BYTES),
            setup_secs,
            error,
        };
        eprintln!(
            "#   {} idle N={} (open {}): RSS {:.1} MB, {:.0} B/conn; TCP mem {} pages, {:.0} B/conn; setup {:.1} s{}",
            server.kind.name(),
            level.n,
            level.connected,
            level.rss_kb as f64 / 1024.0,
            level.rss_per_conn,
            level.sock.mem_pages,
            level.sock_per_conn,
            level.setup_secs,
            level.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default()
        );
        let failed = level.error.is_some();
        levels.push(level);
        if failed {
            break;
        }
    }
    stop_workers(workers).await;
    Ok(IdleResult {
        baseline_rss_kb,
        baseline_sock,
        levels,
        skipped,
    })
}

async fn spawn_worker(spec: &WorkerSpec) -> anyhow::Result<(Worker, WorkerReady)> {
    let exe = std::env::current_exe()?;
    let mut child = Proc::new(exe)
        .arg("worker-idle")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut line = serde_json::to_string(spec)?;
    line.push('\n');
    stdin.write_all(line.as_bytes()).await?;
    stdin.flush().await?;
    let stdout = child.stdout.take().expect("piped");
    let limit = Duration::from_secs(30 + spec.count as u64 / 20);
    let ready = tokio::time::timeout(limit, async {
        let mut lines = BufReader::new(stdout).lines();
        let l = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("worker exited before it was ready"))?;
        anyhow::Ok(serde_json::from_str::<WorkerReady>(&l)?)
    })
    .await
    .map_err(|_| anyhow::anyhow!("worker not ready within {limit:?}"))??;
    Ok((Worker { child, stdin }, ready))
}

async fn stop_workers(workers: Vec<Worker>) {
    let mut children = Vec::new();
    for mut w in workers {
        let _ = w.stdin.write_all(b"stop\n").await;
        drop(w.stdin);
        children.push(w.child);
    }
    for mut c in children {
        if tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }
}

/// The `worker-idle` process: read a spec, hold its connections, close them all
/// when told.
pub async fn worker_main() -> anyhow::Result<()> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no spec on stdin"))?;
    let spec: Arc<WorkerSpec> = Arc::new(serde_json::from_str(&line)?);
    let s2 = spec.clone();
    // After a few failures the rest are not attempted: the server is refusing.
    let failures = Arc::new(AtomicUsize::new(0));
    let opened = run_bounded(spec.count, spec.concurrency, move |i| {
        let s = s2.clone();
        let failures = failures.clone();
        async move {
            if failures.load(Ordering::Relaxed) >= FAIL_FAST {
                anyhow::bail!("not attempted after {FAIL_FAST} failures");
            }
            let g = s.offset + i;
            let r = open_subscriber(
                s.proto,
                &s.url,
                &s.creds[g % s.creds.len()],
                &s.dests[g % s.dests.len()],
                Duration::from_secs(10),
            )
            .await;
            if r.is_err() {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            r
        }
    })
    .await;
    let (clients, failed, error) = partition(opened);
    let ready = WorkerReady {
        ok: clients.len(),
        failed,
        error,
    };
    println!("{}", serde_json::to_string(&ready)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        r = c.next(Duration::from_secs(3600)) => match r {
                            Ok(Event::Closed) | Err(_) => return,
                            Ok(_) => {}
                        },
                    }
                }
                let _ = c.close().await;
            })
        })
        .collect();
    // Hold until told to stop (or the parent goes away).
    while let Ok(Some(l)) = stdin.next_line().await {
        if l.trim() == "stop" {
            break;
        }
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(())
}
