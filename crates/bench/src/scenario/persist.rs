//! `persist`: C connections SEND with receipts, each keeping W receipts in
//! flight, for `warmup + measure`. A receipt means "durably stored"
//! (QuickTalk: committed to SQLite; RabbitMQ: a `persistent:true` message in the
//! durable queue `/queue/bench-persist`, confirmed by the broker; NATS: a PUB
//! with a reply subject to `bench.persist`, answered by JetStream's PubAck once
//! the file store wrote (and, with `sync_interval: always`, fsynced) it).
//! Receipts received inside the measure window give receipts/s and receipt
//! latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::conn::{Conn, Event};
use crate::payload;
use crate::proc::{CpuMeter, CpuUse};
use crate::stats::{new_hist, record_ns, Percentiles};
use crate::target::Server;

#[derive(Debug, Clone)]
pub struct PersistParams {
    pub connections: usize,
    pub window: usize,
    pub body_bytes: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

#[derive(Debug, Clone)]
pub struct PersistResult {
    pub params: PersistParams,
    /// Receipts received in the measure window.
    pub receipts: u64,
    pub secs: f64,
    pub rate: f64,
    pub latency: Percentiles,
    pub errors: u64,
    pub first_error: Option<String>,
    pub cpu: CpuUse,
}

struct ConnOutcome {
    hist: hdrhistogram::Histogram<u64>,
    receipts: u64,
    error: Option<String>,
}

pub async fn run(server: &Server, p: &PersistParams) -> anyhow::Result<PersistResult> {
    let fx = Arc::new(server.fixture(1, 1).await?);
    server.persist_reset().await?;
    let mut clients = Vec::new();
    for c in 0..p.connections {
        clients.push(Conn::connect(fx.proto, fx.ws_url(c), &fx.publisher).await?);
    }
    let start = Instant::now();
    let win_start = start + p.warmup;
    let end = win_start + p.measure;
    let body = Bytes::from(payload::plain(p.body_bytes));
    let mut tasks = Vec::new();
    for mut c in clients {
        let (fx, body, window) = (fx.clone(), body.clone(), p.window);
        tasks.push(tokio::spawn(async move {
            let mut hist = new_hist();
            let mut receipts = 0u64;
            let mut inflight: HashMap<u64, Instant> = HashMap::with_capacity(window * 2);
            let mut next_id = 0u64;
            let give_up = end + Duration::from_secs(5);
            let error = 'conn: loop {
                while Instant::now() < end && inflight.len() < window {
                    if let Err(e) = c
                        .publish_durable(
                            &fx.persist_dest,
                            &fx.persist_headers,
                            next_id,
                            body.clone(),
                        )
                        .await
                    {
                        break 'conn Some(format!("{e:#}"));
                    }
                    inflight.insert(next_id, Instant::now());
                    next_id += 1;
                }
                let now = Instant::now();
                if inflight.is_empty() && now >= end {
                    break None;
                }
                if now >= give_up {
                    break Some(format!(
                        "{} receipts missing 5 s after the window",
                        inflight.len()
                    ));
                }
                match c.next(give_up.saturating_duration_since(now)).await {
                    Ok(Event::Ack(id)) => {
                        let t = Instant::now();
                        if let Some(sent) = inflight.remove(&id) {
                            if t >= win_start && t < end {
                                receipts += 1;
                                record_ns(&mut hist, (t - sent).as_nanos() as u64);
                            }
                        }
                    }
                    Ok(Event::Error(e)) => break Some(e),
                    Ok(Event::Closed) => break Some("socket closed by the server".into()),
                    Ok(_) => {}
                    Err(e) => break Some(format!("{e:#}")),
                }
            };
            if error.is_none() {
                let _ = c.close().await;
            }
            ConnOutcome {
                hist,
                receipts,
                error,
            }
        }));
    }
    tokio::time::sleep_until(win_start.into()).await;
    let cpu = CpuMeter::start(server.pid);
    tokio::time::sleep_until(end.into()).await;
    let cpu = cpu.stop();
    let mut hist = new_hist();
    let (mut receipts, mut errors, mut first_error) = (0u64, 0u64, None);
    for t in tasks {
        let o = t.await?;
        hist.add(&o.hist).expect("same bounds");
        receipts += o.receipts;
        if let Some(e) = o.error {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    server.persist_cleanup().await;
    let secs = p.measure.as_secs_f64();
    let r = PersistResult {
        params: p.clone(),
        receipts,
        secs,
        rate: receipts as f64 / secs,
        latency: Percentiles::of(&hist),
        errors,
        first_error,
        cpu,
    };
    eprintln!(
        "#   {} persist: {} receipts in {:.1} s = {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
        server.kind.name(),
        r.receipts,
        r.secs,
        r.rate,
        r.latency.p50,
        r.latency.p99,
        r.errors
    );
    Ok(r)
}
