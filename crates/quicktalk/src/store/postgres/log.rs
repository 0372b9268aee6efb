//! The multi-node pipeline's log, applied exactly once: each partition's next
//! offset moves in the same transaction as the messages its records stored.

use std::collections::HashMap;

use sqlx::Row;

use super::rows::{message_row, M_MESSAGE_COLS};
use super::{db, PostgresStore};
use crate::model::{AppendRejected, Appended, Message, NewMessage};
use crate::store::StoreResult;

/// One record of the pipeline's log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub message: NewMessage,
}

/// What [`PostgresStore::append_logged`] did with a record.
#[derive(Debug, Clone)]
pub enum Logged {
    /// Applied now, like [`Store::append`].
    Applied(Result<Appended, AppendRejected>),
    /// Applied before; the message it stored, if it stored one.
    Replayed(Option<Message>),
}

impl PostgresStore {
    /// The next offset to apply, per partition of `topic`'s log.
    pub async fn next_offsets(&self, topic: &str) -> StoreResult<HashMap<i32, i64>> {
        Ok(
            sqlx::query_as("SELECT partition, next_offset FROM pipeline_offsets WHERE topic = $1")
                .bind(topic)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .into_iter()
                .collect(),
        )
    }

    /// Applies records of a log (the multi-node pipeline's topic) exactly once:
    /// in one transaction, records below their partition's applied offset are
    /// skipped (reported as [`Logged::Replayed`] with the message they stored, if
    /// any), the rest are appended like [`Store::append`], and the partitions'
    /// offsets move past the batch. The partition rows are locked, so a former and
    /// a new owner of a partition (around a rebalance) cannot both apply a record.
    pub async fn append_logged(
        &self,
        topic: &str,
        records: Vec<LogRecord>,
    ) -> StoreResult<Vec<Logged>> {
        let mut parts: Vec<i32> = records.iter().map(|r| r.partition).collect();
        parts.sort_unstable();
        parts.dedup();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO pipeline_offsets (topic, partition, next_offset) \
             SELECT $1, p, 0 FROM unnest($2::integer[]) AS p ON CONFLICT DO NOTHING",
        )
        .bind(topic)
        .bind(&parts)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let applied: HashMap<i32, i64> = sqlx::query_as(
            "SELECT partition, next_offset FROM pipeline_offsets \
             WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
        )
        .bind(topic)
        .bind(&parts)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        let mut fresh = Vec::new();
        let mut fresh_pos = Vec::new();
        let mut fresh_at = Vec::new();
        let mut replayed: Vec<(usize, i32, i64)> = Vec::new();
        let mut next: HashMap<i32, i64> = applied.clone();
        let n = records.len();
        for (i, r) in records.into_iter().enumerate() {
            let done = applied.get(&r.partition).copied().unwrap_or(0);
            if r.offset < done {
                replayed.push((i, r.partition, r.offset));
                continue;
            }
            let e = next.entry(r.partition).or_insert(0);
            *e = (*e).max(r.offset + 1);
            fresh_at.push(i);
            fresh_pos.push(Some((r.partition, r.offset)));
            fresh.push(r.message);
        }
        let mut out: Vec<Option<Logged>> = (0..n).map(|_| None).collect();
        if !fresh.is_empty() {
            let results = Self::append_tx(&mut tx, fresh, fresh_pos).await?;
            for (i, r) in fresh_at.into_iter().zip(results) {
                out[i] = Some(Logged::Applied(r));
            }
        }
        if !replayed.is_empty() {
            let (rp, ro): (Vec<i32>, Vec<i64>) = replayed.iter().map(|(_, p, o)| (*p, *o)).unzip();
            let sql = format!(
                "SELECT {M_MESSAGE_COLS}, m.log_partition, m.log_offset FROM messages m \
                 JOIN unnest($1::integer[], $2::bigint[]) AS k(p, o) \
                 ON m.log_partition = k.p AND m.log_offset = k.o"
            );
            let mut stored: HashMap<(i32, i64), Message> = HashMap::new();
            for row in sqlx::query(&sql)
                .bind(&rp)
                .bind(&ro)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
            {
                let p: i32 = row.try_get(9).map_err(db)?;
                let o: i64 = row.try_get(10).map_err(db)?;
                stored.insert((p, o), message_row(&row)?);
            }
            for (i, p, o) in replayed {
                out[i] = Some(Logged::Replayed(stored.remove(&(p, o))));
            }
        }
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
        tx.commit().await.map_err(db)?;
        Ok(out
            .into_iter()
            .map(|o| o.expect("every record decided"))
            .collect())
    }
}
