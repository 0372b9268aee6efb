//! The multi-node pipeline's log, applied exactly once and only by the
//! partition's lease holder: each partition's next offset moves in the same
//! transaction as the messages its records stored, and that transaction first
//! checks, under the partition row's lock, that the caller still holds the lease
//! at the epoch it took it with (fencing: a node that hung and lost its lease
//! writes nothing). A message's log position is `(log_id, log_offset)`, where
//! `log_id` names one incarnation of one topic partition, so a recreated topic
//! never matches records applied before.

use std::collections::HashMap;

use super::{db, PostgresStore};
use crate::model::{AppendRejected, Appended, NewMessage};
use crate::store::StoreResult;

/// One record of the pipeline's log. `message: None` consumes the offset without
/// storing anything (a record rejected on its own: undecodable or poisoned).
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub message: Option<NewMessage>,
}

/// What [`PostgresStore::append_logged`] did with a record.
#[derive(Debug, Clone)]
pub enum Logged {
    /// Applied now, like [`Store::append`](crate::store::Store::append).
    Applied(Result<Appended, AppendRejected>),
    /// Offset consumed, nothing stored (the record had no message).
    Skipped,
    /// Below the partition's next offset: applied before, or the log was reset.
    /// Never an acknowledgement: what it stored (if anything) is unknown.
    Replayed,
    /// This node no longer holds the partition's lease at its epoch: nothing
    /// written; the lease's new holder applies the record.
    Fenced,
}

/// The lease a node applies records under: its id and, per partition, the
/// epoch it took the lease at.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub epochs: &'a HashMap<i32, i64>,
}

/// Where a partition stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub next_offset: i64,
    pub log_id: i64,
}

impl PostgresStore {
    /// The next offset to apply and the log incarnation, per partition of `topic`.
    pub async fn log_positions(&self, topic: &str) -> StoreResult<HashMap<i32, LogPosition>> {
        let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
            "SELECT partition, next_offset, log_id FROM pipeline_offsets WHERE topic = $1",
        )
        .bind(topic)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(p, next_offset, log_id)| {
                (
                    p,
                    LogPosition {
                        next_offset,
                        log_id,
                    },
                )
            })
            .collect())
    }

    /// Starts a new incarnation of `partition` (the broker's log was recreated
    /// or rewound): a new `log_id`, applying from `start`. Only under the lease;
    /// returns whether it held.
    pub async fn reset_log(
        &self,
        topic: &str,
        owner: &str,
        epoch: i64,
        partition: i32,
        start: i64,
    ) -> StoreResult<Option<LogPosition>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE pipeline_offsets SET log_id = nextval('pipeline_log_ids'), next_offset = $5 \
             WHERE topic = $1 AND partition = $2 AND lease_owner = $3 AND lease_epoch = $4 \
             RETURNING next_offset, log_id",
        )
        .bind(topic)
        .bind(partition)
        .bind(owner)
        .bind(epoch)
        .bind(start)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|(next_offset, log_id)| LogPosition {
            next_offset,
            log_id,
        }))
    }

    /// Applies records of a log (the multi-node pipeline's topic) exactly once,
    /// in one transaction: the partitions' rows are locked; records of a
    /// partition whose lease is no longer `lease`'s are [`Logged::Fenced`];
    /// records below their partition's next offset are [`Logged::Replayed`]; the
    /// rest are appended like [`Store::append`](crate::store::Store::append) (or
    /// skipped, without a message), and the partitions' offsets move past them.
    pub async fn append_logged(
        &self,
        topic: &str,
        lease: Lease<'_>,
        records: Vec<LogRecord>,
    ) -> StoreResult<Vec<Logged>> {
        let mut parts: Vec<i32> = records.iter().map(|r| r.partition).collect();
        parts.sort_unstable();
        parts.dedup();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows: Vec<(i32, i64, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT partition, next_offset, log_id, lease_owner, lease_epoch FROM pipeline_offsets \
             WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
        )
        .bind(topic)
        .bind(&parts)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        // Partition → (next offset, log id), only where the lease still holds.
        let mut held: HashMap<i32, (i64, i64)> = HashMap::new();
        for (p, next, log_id, owner, epoch) in rows {
            if owner.as_deref() == Some(lease.owner) && lease.epochs.get(&p) == Some(&epoch) {
                held.insert(p, (next, log_id));
            } else {
                tracing::warn!(
                    partition = p,
                    owner = ?owner,
                    epoch,
                    "fenced: this node no longer holds the partition's lease; writing nothing"
                );
            }
        }
        let n = records.len();
        let mut out: Vec<Option<Logged>> = (0..n).map(|_| None).collect();
        let mut fresh = Vec::new();
        let mut fresh_pos = Vec::new();
        let mut fresh_at = Vec::new();
        let mut next: HashMap<i32, i64> = HashMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let Some(&(done, log_id)) = held.get(&r.partition) else {
                out[i] = Some(Logged::Fenced);
                continue;
            };
            if r.offset < done {
                tracing::error!(
                    partition = r.partition,
                    offset = r.offset,
                    next_offset = done,
                    "a log record below the applied offset: not acknowledged"
                );
                out[i] = Some(Logged::Replayed);
                continue;
            }
            let e = next.entry(r.partition).or_insert(done);
            *e = (*e).max(r.offset + 1);
            match r.message {
                Some(m) => {
                    fresh_at.push(i);
                    fresh_pos.push(Some((log_id, r.offset)));
                    fresh.push(m);
                }
                None => out[i] = Some(Logged::Skipped),
            }
        }
        if !fresh.is_empty() {
            let results = Self::append_tx(&mut tx, fresh, fresh_pos).await?;
            for (i, r) in fresh_at.into_iter().zip(results) {
                out[i] = Some(Logged::Applied(r));
            }
        }
        if !next.is_empty() {
            let (np, no): (Vec<i32>, Vec<i64>) = next.into_iter().unzip();
            sqlx::query(
                "UPDATE pipeline_offsets SET next_offset = k.o \
                 FROM unnest($2::integer[], $3::bigint[]) AS k(p, o) \
                 WHERE topic = $1 AND partition = k.p AND next_offset < k.o",
            )
            .bind(topic)
            .bind(&np)
            .bind(&no)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(out
            .into_iter()
            .map(|o| o.expect("every record decided"))
            .collect())
    }
}
