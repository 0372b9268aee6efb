//! Which node sequences which partition of the message log: a **lease** per
//! partition in PostgreSQL (`pipeline_offsets.lease_owner`, `lease_epoch`,
//! `lease_expires`), renewed every round on one dedicated session per node.
//!
//! A node registers in `pipeline_members` with its session's pid and start time,
//! counts the live members (fresh row and session still present), and takes
//! free partitions up to its fair share (`ceil(partitions / members)`), handing
//! back extras when nodes join. A lease is free when it has no owner, has
//! expired (its owner stopped renewing: hung, cut off, or its database session
//! gone silent) or its owner's session no longer exists (a killed node: taken
//! on the next round, well under a second). Taking a lease bumps its epoch; the
//! store writes a batch only while the partition's row still names this node at
//! the epoch it took (`PostgresStore::append_logged`), so a node that hung and
//! wakes up after its lease moved writes nothing (fencing). A partition is given
//! back only after the sequencer confirmed it stopped reading it.
//!
//! A node that cannot reach the message log (`reachable` says so) cannot
//! sequence: it stops, hands every lease back and leaves the members (so the
//! others' fair share grows to cover its partitions) until the log answers again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a node renews its leases and looks for free partitions.
const ROUND: Duration = Duration::from_millis(500);
/// How long a lease lasts without renewal: a hung node's partitions move after this.
pub const LEASE: Duration = Duration::from_secs(5);
/// A round that takes longer than this counts as a lost session.
const ROUND_TIMEOUT: Duration = Duration::from_secs(4);

/// Partition → the lease epoch this node holds it at.
pub type Owned = BTreeMap<i32, i64>;

/// A member's session is alive: its row is fresh and its PostgreSQL session exists.
const LIVE_MEMBER: &str =
    "m.expires > clock_timestamp() AND EXISTS (SELECT 1 FROM pg_stat_activity a \
     WHERE a.pid = m.pid AND a.backend_start = m.backend_start)";

/// Runs the ownership loop. `owned` publishes the partitions (with lease epochs)
/// this node should sequence; `active` is the sequencer's answer: the partitions
/// it reads now. While `reachable` is false (the message log does not answer)
/// the node holds nothing and is not a member.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    opts: PgConnectOptions,
    topic: String,
    node: Arc<str>,
    partitions: i32,
    owned: watch::Sender<Owned>,
    mut active: watch::Receiver<BTreeSet<i32>>,
    mut reachable: watch::Receiver<bool>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Its own statements are tiny: one blocked on a lock must not stall renewals.
    let opts = opts.options([("statement_timeout", "3000")]);
    let me = Me {
        topic: &topic,
        node: &node,
        partitions,
        start: (rand::random::<u32>() % partitions.max(1) as u32) as i32,
    };
    let Some(mut conn) = reconnect(&opts, &me, &stop, Duration::ZERO).await else {
        return Ok(());
    };
    let mut held = Owned::new();
    loop {
        if !*reachable.borrow_and_update() {
            tracing::warn!("the message log is unreachable: handing this node's partitions back");
            held.clear();
            owned.send_replace(Owned::new());
            let _ = wait_until_inactive(&mut active, &BTreeSet::new(), &stop).await;
            if let Err(e) = leave(&mut conn, &me).await {
                // The session is likely gone too: its leases free themselves.
                tracing::warn!(error = %e, "leaving the members");
            }
            loop {
                tokio::select! {
                    r = reachable.changed() => {
                        // No one to say otherwise any more: try again.
                        if r.is_err() || *reachable.borrow_and_update() {
                            break;
                        }
                    }
                    _ = stop.cancelled() => return Ok(()),
                }
            }
            tracing::info!("the message log answers again: taking partitions again");
            match reconnect(&opts, &me, &stop, Duration::ZERO).await {
                Some(c) => conn = c,
                None => return Ok(()),
            }
            continue;
        }
        let r = tokio::time::timeout(
            ROUND_TIMEOUT,
            round(&mut conn, &me, &mut held, &owned, &active),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("ownership round timed out")));
        if let Err(e) = r {
            // The session may be gone and the leases with it: stop sequencing
            // everything, then start over on a new session.
            tracing::warn!(error = %e, "partition ownership round failed");
            held.clear();
            owned.send_replace(Owned::new());
            let _ = wait_until_inactive(&mut active, &BTreeSet::new(), &stop).await;
            match reconnect(&opts, &me, &stop, Duration::from_secs(1)).await {
                Some(c) => conn = c,
                None => return Ok(()),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            _ = stop.cancelled() => break,
        }
    }
    // Stopping: the sequencer finishes first, then the leases are handed back.
    owned.send_replace(Owned::new());
    let _ = wait_until_inactive(&mut active, &BTreeSet::new(), &CancellationToken::new()).await;
    let _ = leave(&mut conn, &me).await;
    let _ = conn.close().await;
    Ok(())
}

/// Hands back every lease naming this node and removes its member row (the
/// sequencer must have stopped reading first).
async fn leave(conn: &mut PgConnection, me: &Me<'_>) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline_offsets SET lease_owner = NULL, lease_expires = NULL \
         WHERE topic = $1 AND lease_owner = $2",
    )
    .bind(me.topic)
    .bind(me.node)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM pipeline_members WHERE topic = $1 AND node = $2")
        .bind(me.topic)
        .bind(me.node)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

struct Me<'a> {
    topic: &'a str,
    node: &'a str,
    partitions: i32,
    /// Where this node starts looking for free partitions (spreads the nodes).
    start: i32,
}

fn lease_secs() -> f64 {
    LEASE.as_secs_f64()
}

/// Connects (after `first_wait`), retrying every second until it works or `stop`.
async fn reconnect(
    opts: &PgConnectOptions,
    me: &Me<'_>,
    stop: &CancellationToken,
    first_wait: Duration,
) -> Option<PgConnection> {
    let mut wait = first_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return None,
        }
        match connect(opts, me).await {
            Ok(c) => return Some(c),
            Err(e) => tracing::warn!(error = %e, "connecting the ownership session"),
        }
        wait = Duration::from_secs(1);
    }
}

/// A new ownership session: this node's member row points at it, and every
/// partition has a row to hold a lease.
async fn connect(opts: &PgConnectOptions, me: &Me<'_>) -> anyhow::Result<PgConnection> {
    let mut conn = PgConnection::connect_with(opts)
        .await
        .context("connecting the ownership session")?;
    sqlx::query(
        "INSERT INTO pipeline_offsets (topic, partition, next_offset) \
         SELECT $1, p, 0 FROM generate_series(0, $2 - 1) AS p ON CONFLICT DO NOTHING",
    )
    .bind(me.topic)
    .bind(me.partitions)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO pipeline_members (topic, node, pid, backend_start, expires) \
         SELECT $1, $2, pid, backend_start, clock_timestamp() + make_interval(secs => $3) \
         FROM pg_stat_activity WHERE pid = pg_backend_pid() \
         ON CONFLICT (topic, node) DO UPDATE SET pid = EXCLUDED.pid, \
             backend_start = EXCLUDED.backend_start, expires = EXCLUDED.expires",
    )
    .bind(me.topic)
    .bind(me.node)
    .bind(lease_secs())
    .execute(&mut conn)
    .await?;
    Ok(conn)
}

async fn round(
    conn: &mut PgConnection,
    me: &Me<'_>,
    held: &mut Owned,
    owned: &watch::Sender<Owned>,
    active: &watch::Receiver<BTreeSet<i32>>,
) -> anyhow::Result<()> {
    let renewed = sqlx::query(
        "UPDATE pipeline_members SET expires = clock_timestamp() + make_interval(secs => $3) \
         WHERE topic = $1 AND node = $2",
    )
    .bind(me.topic)
    .bind(me.node)
    .bind(lease_secs())
    .execute(&mut *conn)
    .await?;
    anyhow::ensure!(
        renewed.rows_affected() == 1,
        "this node's member row is gone"
    );
    // Renew every lease still ours; whatever is missing moved to another node
    // while this one was not renewing (hung or cut off).
    let still: Vec<(i32, i64)> = sqlx::query_as(
        "UPDATE pipeline_offsets SET lease_expires = clock_timestamp() + make_interval(secs => $3) \
         WHERE topic = $1 AND lease_owner = $2 RETURNING partition, lease_epoch",
    )
    .bind(me.topic)
    .bind(me.node)
    .bind(lease_secs())
    .fetch_all(&mut *conn)
    .await?;
    let still: Owned = still.into_iter().collect();
    let lost: Vec<i32> = held
        .iter()
        .filter(|(p, e)| still.get(p) != Some(e))
        .map(|(p, _)| *p)
        .collect();
    for p in &lost {
        tracing::error!(
            partition = p,
            "lost the lease of a partition (this node did not renew it in time); another node sequences it"
        );
        held.remove(p);
    }
    // Leases naming this node from an earlier session: hand them back.
    for (p, e) in still.iter().filter(|(p, _)| !held.contains_key(p)) {
        release(conn, me, *p, *e).await?;
    }
    let nodes: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM pipeline_members m WHERE m.topic = $1 AND {LIVE_MEMBER}"
    ))
    .bind(me.topic)
    .fetch_one(&mut *conn)
    .await?;
    let nodes = nodes.max(1);
    let share = ((me.partitions as i64 + nodes - 1) / nodes) as usize;
    // Too few: take free ones (expired, unowned, or owned by a dead session).
    if held.len() < share {
        let mine: Vec<i32> = held.keys().copied().collect();
        let taken: Vec<(i32, i64)> = sqlx::query_as(&format!(
            "WITH free AS ( \
                 SELECT o.partition FROM pipeline_offsets o \
                 WHERE o.topic = $1 AND o.partition < $3 AND NOT (o.partition = ANY($5)) \
                   AND (o.lease_owner IS NULL OR o.lease_expires IS NULL \
                        OR o.lease_expires < clock_timestamp() \
                        OR NOT EXISTS (SELECT 1 FROM pipeline_members m \
                                       WHERE m.topic = o.topic AND m.node = o.lease_owner AND {LIVE_MEMBER})) \
                 ORDER BY (o.partition - $4 + $3) % $3 LIMIT $6 \
                 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE pipeline_offsets o SET lease_owner = $2, lease_epoch = o.lease_epoch + 1, \
                 lease_expires = clock_timestamp() + make_interval(secs => $7) \
             FROM free WHERE o.topic = $1 AND o.partition = free.partition \
             RETURNING o.partition, o.lease_epoch"
        ))
        .bind(me.topic)
        .bind(me.node)
        .bind(me.partitions)
        .bind(me.start)
        .bind(&mine)
        .bind((share - held.len()) as i64)
        .bind(lease_secs())
        .fetch_all(&mut *conn)
        .await?;
        for (p, e) in taken {
            tracing::info!(partition = p, epoch = e, "took the lease of a partition");
            held.insert(p, e);
        }
    }
    // Too many (a node joined): the sequencer drops the extras first; a lease is
    // handed back only once it no longer reads that partition.
    let keep: Owned = held.iter().take(share).map(|(p, e)| (*p, *e)).collect();
    let extras: Vec<(i32, i64)> = held
        .iter()
        .filter(|(p, _)| !keep.contains_key(p))
        .map(|(p, e)| (*p, *e))
        .collect();
    for (p, e) in extras {
        if !active.borrow().contains(&p) {
            release(conn, me, p, e).await?;
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

async fn release(conn: &mut PgConnection, me: &Me<'_>, p: i32, epoch: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline_offsets SET lease_owner = NULL, lease_expires = NULL \
         WHERE topic = $1 AND partition = $2 AND lease_owner = $3 AND lease_epoch = $4",
    )
    .bind(me.topic)
    .bind(p)
    .bind(me.node)
    .bind(epoch)
    .execute(&mut *conn)
    .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::PostgresStore;

    async fn leases(pool: &sqlx::PgPool, node: &str) -> (i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM pipeline_offsets WHERE lease_owner = $1), \
                    (SELECT count(*) FROM pipeline_members WHERE node = $1)",
        )
        .bind(node)
        .fetch_one(pool)
        .await
        .unwrap()
    }

    async fn until(pool: &sqlx::PgPool, node: &str, want: (i64, i64), what: &str) {
        for _ in 0..100 {
            if leases(pool, node).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{what}: (leases, member rows) = {:?}",
            leases(pool, node).await
        );
    }

    /// A node that cannot reach the message log cannot sequence: it hands its
    /// leases back and leaves the members until the log answers again.
    #[tokio::test]
    async fn an_unreachable_log_hands_every_partition_back_until_it_answers() {
        let Ok(url) = std::env::var("QUICKTALK_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "QUICKTALK_TEST_POSTGRES_URL is not set"
            );
            eprintln!("SKIPPED: ownership test: QUICKTALK_TEST_POSTGRES_URL is not set");
            return;
        };
        let schema = format!(
            "qt_ownership_{}_{:x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        let pool = store.pool().clone();
        let (owned_tx, mut owned_rx) = watch::channel(Owned::new());
        let (active_tx, active_rx) = watch::channel(BTreeSet::new());
        let (reachable_tx, reachable_rx) = watch::channel(true);
        let stop = CancellationToken::new();
        // The sequencer's side: it reads whatever it is told to, at once.
        tokio::spawn(async move {
            while owned_rx.changed().await.is_ok() {
                let now: BTreeSet<i32> = owned_rx.borrow_and_update().keys().copied().collect();
                active_tx.send_replace(now);
            }
        });
        let task = tokio::spawn(run(
            (*pool.connect_options()).clone(),
            "t.messages".into(),
            "n1".into(),
            2,
            owned_tx,
            active_rx,
            reachable_rx,
            stop.clone(),
        ));
        until(&pool, "n1", (2, 1), "a lone node takes every partition").await;
        reachable_tx.send_replace(false);
        until(&pool, "n1", (0, 0), "the leases are handed back").await;
        reachable_tx.send_replace(true);
        until(&pool, "n1", (2, 1), "taken again once the log answers").await;
        stop.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(leases(&pool, "n1").await, (0, 0));
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
    }
}
