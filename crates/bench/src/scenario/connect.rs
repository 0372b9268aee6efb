//! `connect`: C concurrent connectors, each in a loop: WebSocket upgrade +
//! CONNECT + SUBSCRIBE with a receipt (NATS: CONNECT + PING/PONG, SUB +
//! PING/PONG; the latency measured), then close.
//! Connects completed inside the measure window (after the warm-up) give
//! connects/s; the run is bounded by time and by a total connect budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::open_subscriber;
use crate::proc::{CpuMeter, CpuUse};
use crate::stats::{new_hist, record_ns, Percentiles};
use crate::target::Server;

#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Stop after this many connects in total (bounds ephemeral ports in use).
    pub max_connects: u64,
    pub users: usize,
}

#[derive(Debug, Clone)]
pub struct ConnectResult {
    pub params: ConnectParams,
    /// Connects completed in the measure window.
    pub connects: u64,
    pub secs: f64,
    pub rate: f64,
    pub latency: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
    pub cpu: CpuUse,
}

pub async fn run(server: &Server, p: &ConnectParams) -> anyhow::Result<ConnectResult> {
    let fx = Arc::new(server.fixture(1, p.users).await?);
    let start = Instant::now();
    let win_start = start + p.warmup;
    let end = win_start + p.measure;
    let started = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for w in 0..p.concurrency {
        let (fx, started, errors, first_error) = (
            fx.clone(),
            started.clone(),
            errors.clone(),
            first_error.clone(),
        );
        let max = p.max_connects;
        let stride = p.concurrency;
        tasks.push(tokio::spawn(async move {
            let mut hist = new_hist();
            let mut done = 0u64;
            let mut last_done = Instant::now();
            let mut i = w;
            while Instant::now() < end && started.fetch_add(1, Ordering::Relaxed) < max {
                let t0 = Instant::now();
                let r = open_subscriber(
                    fx.proto,
                    fx.ws_url(i),
                    fx.subscriber(i),
                    &fx.sub_dests[0],
                    Duration::from_secs(10),
                )
                .await;
                // Concurrent connectors walk the identity pool apart.
                i += stride;
                let t1 = Instant::now();
                match r {
                    Ok(c) => {
                        if t0 >= win_start && t1 <= end {
                            record_ns(&mut hist, (t1 - t0).as_nanos() as u64);
                            done += 1;
                            last_done = t1;
                        }
                        let _ = c.close().await;
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (hist, done, last_done)
        }));
    }
    tokio::time::sleep_until(win_start.into()).await;
    let cpu = CpuMeter::start(server.pid);
    let mut hist = new_hist();
    let mut connects = 0;
    let mut last = win_start;
    for t in tasks {
        let (h, n, l) = t.await?;
        hist.add(&h).expect("same bounds");
        connects += n;
        last = last.max(l);
    }
    let cpu = cpu.stop();
    // If the connect budget ran out early, the window ends at the last connect.
    let window_end = if started.load(Ordering::Relaxed) >= p.max_connects {
        last.min(end)
    } else {
        end
    };
    let secs = window_end
        .saturating_duration_since(win_start)
        .as_secs_f64()
        .max(1e-3);
    let r = ConnectResult {
        params: p.clone(),
        connects,
        secs,
        rate: connects as f64 / secs,
        latency: Percentiles::of(&hist),
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error.lock().unwrap().clone(),
        cpu,
    };
    eprintln!(
        "#   {} connect: {} in {:.1} s = {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        server.kind.name(),
        r.connects,
        r.secs,
        r.rate,
        r.latency.p50,
        r.latency.p99,
        r.errors
    );
    Ok(r)
}
