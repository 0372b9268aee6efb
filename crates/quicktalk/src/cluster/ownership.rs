//! Which node sequences which partition of the message log: PostgreSQL
//! session-level advisory locks, held on one dedicated connection per node.
//!
//! A node holds one "member" lock (so nodes can count each other in `pg_locks`)
//! and one lock per partition it owns, taking free partitions up to its fair
//! share (`ceil(partitions / nodes)`) and handing back extras when nodes join.
//! When a node dies its connection closes and PostgreSQL drops its locks at once,
//! so a survivor takes the partitions on its next round (every 300 ms), without
//! waiting for a broker's group session to time out. A partition is given up only
//! after the sequencer confirmed it stopped reading it; and since the store
//! applies each log offset at most once under a row lock, even a node that lost a
//! lock unknowingly cannot apply a record twice.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a node looks at the locks.
const ROUND: Duration = Duration::from_millis(300);

/// Lock namespaces (`pg_advisory_lock(int4, int4)`'s first key) for one cluster.
#[derive(Clone, Copy)]
struct Keys {
    members: i32,
    partitions: i32,
}

impl Keys {
    fn for_prefix(prefix: &str) -> Keys {
        // FNV-1a, kept non-negative so it compares equal to `pg_locks.classid` (an oid).
        let h = |s: &str| {
            let mut x: u32 = 0x811c_9dc5;
            for b in s.bytes() {
                x ^= u32::from(b);
                x = x.wrapping_mul(0x0100_0193);
            }
            (x & 0x7fff_ffff) as i32
        };
        Keys {
            members: h(&format!("{prefix}.members")),
            partitions: h(&format!("{prefix}.partitions")),
        }
    }
}

/// Runs the ownership loop. `owned` publishes the partitions this node should
/// sequence; `active` is the sequencer's answer: the partitions it reads now.
pub async fn run(
    opts: PgConnectOptions,
    prefix: String,
    partitions: i32,
    owned: watch::Sender<BTreeSet<i32>>,
    mut active: watch::Receiver<BTreeSet<i32>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let keys = Keys::for_prefix(&prefix);
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .context("connecting the ownership session")?;
    let me: i32 = rand::random::<i32>() & 0x7fff_ffff;
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(keys.members)
        .bind(me)
        .execute(&mut conn)
        .await?;
    let mut held: BTreeSet<i32> = BTreeSet::new();
    // Start looking at a different partition on each node.
    let start = (me as i64).rem_euclid(partitions as i64) as i32;
    loop {
        if let Err(e) = round(
            &mut conn, keys, partitions, start, &mut held, &owned, &active,
        )
        .await
        {
            // The session (and with it every lock) may be gone: stop sequencing
            // everything, then start over on a new connection.
            tracing::warn!(error = %e, "partition ownership round failed");
            held.clear();
            owned.send_replace(BTreeSet::new());
            let _ = wait_until_inactive(&mut active, &BTreeSet::new(), &stop).await;
            conn = loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                if let Ok(mut c) = PgConnection::connect_with(&opts).await {
                    if sqlx::query("SELECT pg_advisory_lock($1, $2)")
                        .bind(keys.members)
                        .bind(me)
                        .execute(&mut c)
                        .await
                        .is_ok()
                    {
                        break c;
                    }
                }
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            _ = stop.cancelled() => break,
        }
    }
    // Stopping: the sequencer finishes first; closing the session frees the locks.
    owned.send_replace(BTreeSet::new());
    let _ = wait_until_inactive(&mut active, &BTreeSet::new(), &CancellationToken::new()).await;
    let _ = conn.close().await;
    Ok(())
}

async fn round(
    conn: &mut PgConnection,
    keys: Keys,
    partitions: i32,
    start: i32,
    held: &mut BTreeSet<i32>,
    owned: &watch::Sender<BTreeSet<i32>>,
    active: &watch::Receiver<BTreeSet<i32>>,
) -> anyhow::Result<()> {
    let nodes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = $1::bigint::oid AND objsubid = 2",
    )
    .bind(keys.members as i64)
    .fetch_one(&mut *conn)
    .await?;
    let share = ((partitions as i64 + nodes.max(1) - 1) / nodes.max(1)) as usize;
    // Too few: take free ones.
    for i in 0..partitions {
        if held.len() >= share {
            break;
        }
        let p = (start + i) % partitions;
        if held.contains(&p) {
            continue;
        }
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(keys.partitions)
            .bind(p)
            .fetch_one(&mut *conn)
            .await?;
        if got {
            held.insert(p);
        }
    }
    // Too many (a node joined): the sequencer drops the extras first; a lock is
    // released only once it no longer reads that partition.
    let keep: BTreeSet<i32> = held.iter().take(share).copied().collect();
    let extras: Vec<i32> = held.difference(&keep).copied().collect();
    for p in extras {
        if !active.borrow().contains(&p) {
            sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(keys.partitions)
                .bind(p)
                .execute(&mut *conn)
                .await?;
            held.remove(&p);
        }
    }
    owned.send_if_modified(|o| {
        let changed = *o != keep;
        *o = keep;
        changed
    });
    Ok(())
}

/// Waits until the sequencer reads none of the partitions outside `keep`.
async fn wait_until_inactive(
    active: &mut watch::Receiver<BTreeSet<i32>>,
    keep: &BTreeSet<i32>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        if active.borrow().is_subset(keep) {
            return Ok(());
        }
        tokio::select! {
            r = active.changed() => r?,
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(5)) => return Ok(()),
        }
    }
}
