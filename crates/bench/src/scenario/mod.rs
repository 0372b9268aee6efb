//! The scenarios. Each takes a running [`crate::target::Server`] and its
//! parameters, is bounded in time and connection count, closes what it opened,
//! and returns a plain result struct that [`crate::report`] (`media`:
//! [`crate::media_report`]) renders.

pub mod connect;
pub mod fanout;
pub mod hops;
pub mod idle;
pub mod media;
pub mod persist;
pub mod push;
pub mod search;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conn::{Conn, Proto};
use crate::target::Creds;

/// Most connections one generator process holds (the per-process open-files
/// limit is 20,000 and other descriptors need room too).
pub const MAX_CONNS_PER_PROCESS: usize = 9_000;

/// Runs `make(i)` for `i in 0..n` with at most `concurrency` at a time; results
/// come back in index order.
pub async fn run_bounded<T, F, Fut>(n: usize, concurrency: usize, make: F) -> Vec<anyhow::Result<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let fut = make(i);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<anyhow::Result<T>>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = Some(r),
            Err(e) => {
                // A panicked task: report it in the first empty slot.
                if let Some(slot) = out.iter_mut().find(|s| s.is_none()) {
                    *slot = Some(Err(anyhow::anyhow!("task failed: {e}")));
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("task lost"))))
        .collect()
}

/// CONNECT, then subscribe to `dest` with the server's confirmation (STOMP:
/// SUBSCRIBE with a receipt, `ack:auto`; NATS: SUB + PING/PONG), within `limit`.
pub async fn open_subscriber(
    proto: Proto,
    url: &str,
    creds: &Creds,
    dest: &str,
    limit: Duration,
) -> anyhow::Result<Conn> {
    tokio::time::timeout(limit, async {
        let mut c = Conn::connect(proto, url, creds).await?;
        c.subscribe_sync(dest).await?;
        Ok(c)
    })
    .await
    .map_err(|_| anyhow::anyhow!("connect+subscribe took over {limit:?}"))?
}

/// Splits results into successes, the failure count and the first error.
pub fn partition<T>(results: Vec<anyhow::Result<T>>) -> (Vec<T>, usize, Option<String>) {
    let mut ok = Vec::new();
    let mut failed = 0;
    let mut first = None;
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                failed += 1;
                first.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    (ok, failed, first)
}
