//! The media records on PostgreSQL (contract §6): files' metadata, which
//! messages carry them (`message_media`), resumable uploads. `attach` is the
//! message reads' share (history, `message`, a duplicate's original); the
//! attachments of a batch are written by `append`, a tombstone's dropped by
//! `moderation::delete_message`.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Row};

use super::{bad, db};
use crate::model::{Media, MediaKind, Message, MessageId, UserId};
use crate::store::media::Upload;
use crate::store::StoreResult;

const MEDIA_COLS: &str =
    "m.id, m.owner, m.name, m.mime, m.kind, m.size, m.width, m.height, m.thumbnail, m.created_at";
const UPLOAD_COLS: &str = "id, owner, name, length, \"offset\", updated_at, created_at";
/// [`UPLOAD_COLS`] of an `uploads u` with its parts in order, read in the same
/// statement (one snapshot: the parts are always the ones `offset` counts).
const UPLOAD_WITH_PARTS: &str =
    "u.id, u.owner, u.name, u.length, u.\"offset\", u.updated_at, u.created_at, \
     ARRAY(SELECT p.key FROM upload_parts p WHERE p.upload_id = u.id ORDER BY p.idx)";

/// Sizes are u64 in Rust, BIGINT in PostgreSQL.
fn to_sql_size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql_size(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Width and height are u32 in Rust, INTEGER in PostgreSQL.
fn to_sql_dim(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

fn from_sql_dim(n: Option<i32>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

/// A `media m` row in [`MEDIA_COLS`] order, starting at column `at`.
fn media_row(r: &PgRow, at: usize) -> StoreResult<Media> {
    let kind: String = r.try_get(at + 4).map_err(db)?;
    Ok(Media {
        id: r.try_get(at).map_err(db)?,
        owner: r.try_get(at + 1).map_err(db)?,
        name: r.try_get(at + 2).map_err(db)?,
        mime: r.try_get(at + 3).map_err(db)?,
        kind: MediaKind::parse(&kind).ok_or_else(|| bad("media kind", &kind))?,
        size: from_sql_size(r.try_get(at + 5).map_err(db)?),
        width: from_sql_dim(r.try_get(at + 6).map_err(db)?),
        height: from_sql_dim(r.try_get(at + 7).map_err(db)?),
        thumbnail: r.try_get(at + 8).map_err(db)?,
        created_at: r.try_get(at + 9).map_err(db)?,
    })
}

/// Loads the attachments of `msgs` (one query for all of them), in order.
pub(super) async fn attach<'e>(e: impl PgExecutor<'e>, msgs: &mut [Message]) -> StoreResult<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let ids: Vec<MessageId> = msgs.iter().map(|m| m.id).collect();
    let rows = sqlx::query(&format!(
        "SELECT mm.message_id, {MEDIA_COLS} FROM message_media mm JOIN media m ON m.id = mm.media_id \
         WHERE mm.message_id = ANY($1) ORDER BY mm.message_id, mm.position"
    ))
    .bind(&ids)
    .fetch_all(e)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut by_message: HashMap<MessageId, Vec<Media>> = HashMap::new();
    for r in &rows {
        by_message
            .entry(r.try_get(0).map_err(db)?)
            .or_default()
            .push(media_row(r, 1)?);
    }
    for m in msgs {
        if let Some(a) = by_message.remove(&m.id) {
            m.attachments = a;
        }
    }
    Ok(())
}

/// The `message_media` rows of new messages, column by column (for `unnest`).
#[derive(Default)]
pub(super) struct AttachmentCols {
    message: Vec<i64>,
    position: Vec<i32>,
    media: Vec<String>,
}

impl AttachmentCols {
    pub(super) fn push(&mut self, m: &Message) {
        for (i, a) in m.attachments.iter().enumerate() {
            self.message.push(m.id);
            self.position.push(i32::try_from(i).unwrap_or(i32::MAX));
            self.media.push(a.id.clone());
        }
    }

    /// One statement for the whole batch; none when it carries no files.
    pub(super) async fn insert<'e>(&self, e: impl PgExecutor<'e>) -> StoreResult<()> {
        if self.message.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO message_media (message_id, position, media_id) \
             SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[])",
        )
        .bind(&self.message)
        .bind(&self.position)
        .bind(&self.media)
        .execute(e)
        .await
        .map_err(db)?;
        Ok(())
    }
}

pub(super) async fn create_media(pool: &PgPool, m: &Media) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO media (id, owner, name, mime, kind, size, width, height, thumbnail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&m.id)
    .bind(m.owner)
    .bind(&m.name)
    .bind(&m.mime)
    .bind(m.kind.as_str())
    .bind(to_sql_size(m.size))
    .bind(to_sql_dim(m.width))
    .bind(to_sql_dim(m.height))
    .bind(m.thumbnail)
    .bind(m.created_at)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn media(pool: &PgPool, id: &str) -> StoreResult<Option<Media>> {
    sqlx::query(&format!("SELECT {MEDIA_COLS} FROM media m WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .map(|r| media_row(&r, 0))
        .transpose()
}

pub(super) async fn usage(pool: &PgPool, owner: UserId) -> StoreResult<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(size), 0)::bigint FROM media WHERE owner = $1")
            .bind(owner)
            .fetch_one(pool)
            .await
            .map_err(db)?;
    Ok(from_sql_size(n))
}

pub(super) async fn can_read(pool: &PgPool, id: &str, user: UserId) -> StoreResult<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM media WHERE id = $1 AND owner = $2) \
             OR EXISTS (SELECT 1 FROM message_media mm \
                        JOIN messages msg ON msg.id = mm.message_id \
                        JOIN rooms r ON r.id = msg.room_id \
                        WHERE mm.media_id = $1 \
                          AND (r.visibility = 'public' \
                               OR EXISTS (SELECT 1 FROM members WHERE room_id = r.id AND user_id = $2)))",
    )
    .bind(id)
    .bind(user)
    .fetch_one(pool)
    .await
    .map_err(db)
}

pub(super) async fn unattached(
    pool: &PgPool,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<Media>> {
    sqlx::query(&format!(
        "SELECT {MEDIA_COLS} FROM media m WHERE m.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM message_media WHERE media_id = m.id) \
         ORDER BY m.created_at, m.id LIMIT $2"
    ))
    .bind(before)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(|r| media_row(r, 0))
    .collect()
}

pub(super) async fn delete_unattached(pool: &PgPool, id: &str) -> StoreResult<bool> {
    let res = sqlx::query(
        "DELETE FROM media WHERE id = $1 \
           AND NOT EXISTS (SELECT 1 FROM message_media WHERE media_id = $1)",
    )
    .bind(id)
    .execute(pool)
    .await;
    match res {
        Ok(r) => Ok(r.rows_affected() > 0),
        // An attachment committed while the delete waited for its row: the
        // foreign key keeps the file (the attachment wins).
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
        Err(e) => Err(db(e)),
    }
}

pub(super) async fn create_upload(pool: &PgPool, u: &Upload) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query(&format!(
        "INSERT INTO uploads ({UPLOAD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&u.id)
    .bind(u.owner)
    .bind(&u.name)
    .bind(to_sql_size(u.length))
    .bind(to_sql_size(u.offset))
    .bind(u.updated_at)
    .bind(u.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    // Normally none (a new upload), but keep what the record says.
    if !u.parts.is_empty() {
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, idx, key) \
             SELECT $1, (n - 1)::integer, k FROM unnest($2::text[]) WITH ORDINALITY AS p(k, n)",
        )
        .bind(&u.id)
        .bind(&u.parts)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

fn upload_row(r: &PgRow) -> StoreResult<Upload> {
    Ok(Upload {
        id: r.try_get(0).map_err(db)?,
        owner: r.try_get(1).map_err(db)?,
        name: r.try_get(2).map_err(db)?,
        length: from_sql_size(r.try_get(3).map_err(db)?),
        offset: from_sql_size(r.try_get(4).map_err(db)?),
        parts: r.try_get(7).map_err(db)?,
        updated_at: r.try_get(5).map_err(db)?,
        created_at: r.try_get(6).map_err(db)?,
    })
}

pub(super) async fn upload(pool: &PgPool, id: &str) -> StoreResult<Option<Upload>> {
    sqlx::query(&format!(
        "SELECT {UPLOAD_WITH_PARTS} FROM uploads u WHERE u.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .map(|r| upload_row(&r))
    .transpose()
}

/// The compare-and-set: the `UPDATE … WHERE offset = from` holds the upload's
/// row lock until commit (a concurrent piece waits, then finds the offset moved
/// and changes nothing), and the part is added in the same transaction.
pub(super) async fn advance_upload(
    pool: &PgPool,
    id: &str,
    from: u64,
    to: u64,
    part: &str,
    at: i64,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let n = sqlx::query(
        "UPDATE uploads SET \"offset\" = $3, updated_at = $4 WHERE id = $1 AND \"offset\" = $2",
    )
    .bind(id)
    .bind(to_sql_size(from))
    .bind(to_sql_size(to))
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    // A statement of its own, after the lock: it sees every earlier part.
    sqlx::query(
        "INSERT INTO upload_parts (upload_id, idx, key) \
         SELECT $1, COALESCE(MAX(idx) + 1, 0), $2 FROM upload_parts WHERE upload_id = $1",
    )
    .bind(id)
    .bind(part)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn delete_upload(pool: &PgPool, id: &str) -> StoreResult<bool> {
    // Its parts go with it (ON DELETE CASCADE).
    let n = sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn stale_uploads(
    pool: &PgPool,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<Upload>> {
    sqlx::query(&format!(
        "SELECT {UPLOAD_WITH_PARTS} FROM uploads u WHERE u.updated_at < $1 \
         ORDER BY u.updated_at, u.id LIMIT $2"
    ))
    .bind(before)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(upload_row)
    .collect()
}
