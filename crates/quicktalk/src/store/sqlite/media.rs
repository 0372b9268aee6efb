//! The media records on SQLite (contract §6): files' metadata, which messages
//! carry them (`message_media`), resumable uploads. Reads run on a pooled
//! reader, writes on the writer thread (callers in `mod.rs`); `attach` and
//! `store_attachments` are the message paths' share (history, append, tombstones).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::bad_enum;
use crate::model::{Media, MediaKind, Message, MessageId, UserId};
use crate::store::media::Upload;

const MEDIA_COLS: &str =
    "m.id, m.owner, m.name, m.mime, m.kind, m.size, m.width, m.height, m.thumbnail, m.created_at";
const UPLOAD_COLS: &str = "id, owner, name, length, \"offset\", updated_at, created_at";

/// Sizes are u64 in Rust, INTEGER (i64) in SQLite.
fn to_sql_size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql_size(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A `media m` row in [`MEDIA_COLS`] order, starting at column `at`.
fn media_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Media> {
    let kind: String = r.get(at + 4)?;
    Ok(Media {
        id: r.get(at)?,
        owner: r.get(at + 1)?,
        name: r.get(at + 2)?,
        mime: r.get(at + 3)?,
        kind: MediaKind::parse(&kind).ok_or_else(|| bad_enum(at + 4, &kind))?,
        size: from_sql_size(r.get(at + 5)?),
        width: r.get(at + 6)?,
        height: r.get(at + 7)?,
        thumbnail: r.get(at + 8)?,
        created_at: r.get(at + 9)?,
    })
}

/// A JSON array of `ids`, for `IN (SELECT value FROM json_each(?))`: one cached
/// statement whatever the number of ids.
pub(super) fn json_ids<T: serde::Serialize>(ids: &[T]) -> String {
    serde_json::to_string(ids).expect("ids serialize")
}

/// Loads the attachments of `msgs` (one query for all of them), in order.
pub(super) fn attach(c: &Connection, msgs: &mut [Message]) -> rusqlite::Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let ids: Vec<MessageId> = msgs.iter().map(|m| m.id).collect();
    let mut by_message: HashMap<MessageId, Vec<Media>> = HashMap::new();
    let mut stmt = c.prepare_cached(&format!(
        "SELECT mm.message_id, {MEDIA_COLS} FROM message_media mm JOIN media m ON m.id = mm.media_id \
         WHERE mm.message_id IN (SELECT value FROM json_each(?1)) \
         ORDER BY mm.message_id, mm.position"
    ))?;
    let mut rows = stmt.query([json_ids(&ids)])?;
    while let Some(r) = rows.next()? {
        by_message
            .entry(r.get(0)?)
            .or_default()
            .push(media_row(r, 1)?);
    }
    if by_message.is_empty() {
        return Ok(());
    }
    for m in msgs {
        if let Some(a) = by_message.remove(&m.id) {
            m.attachments = a;
        }
    }
    Ok(())
}

/// Records that message `id` carries `attachments` (inside the caller's transaction).
pub(super) fn store_attachments(
    c: &Connection,
    id: MessageId,
    attachments: &[Media],
) -> rusqlite::Result<()> {
    if attachments.is_empty() {
        return Ok(());
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO message_media (message_id, position, media_id) VALUES (?1, ?2, ?3)",
    )?;
    for (i, a) in attachments.iter().enumerate() {
        insert.execute(params![id, i as i64, a.id])?;
    }
    Ok(())
}

/// Drops message `id`'s attachments (its tombstone carries none).
pub(super) fn drop_attachments(c: &Connection, id: MessageId) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM message_media WHERE message_id = ?1")?
        .execute([id])?;
    Ok(())
}

pub(super) fn create_media(c: &Connection, m: &Media) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO media (id, owner, name, mime, kind, size, width, height, thumbnail, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        m.id,
        m.owner,
        m.name,
        m.mime,
        m.kind.as_str(),
        to_sql_size(m.size),
        m.width,
        m.height,
        m.thumbnail,
        m.created_at
    ])?;
    Ok(())
}

pub(super) fn media(c: &Connection, id: &str) -> rusqlite::Result<Option<Media>> {
    c.prepare_cached(&format!("SELECT {MEDIA_COLS} FROM media m WHERE m.id = ?1"))?
        .query_row([id], |r| media_row(r, 0))
        .optional()
}

pub(super) fn usage(c: &Connection, owner: UserId) -> rusqlite::Result<u64> {
    c.prepare_cached("SELECT COALESCE(SUM(size), 0) FROM media WHERE owner = ?1")?
        .query_row([owner], |r| r.get::<_, i64>(0))
        .map(from_sql_size)
}

pub(super) fn can_read(c: &Connection, id: &str, user: UserId) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM media WHERE id = ?1 AND owner = ?2) \
             OR EXISTS (SELECT 1 FROM message_media mm \
                        JOIN messages msg ON msg.id = mm.message_id \
                        JOIN rooms r ON r.id = msg.room_id \
                        WHERE mm.media_id = ?1 \
                          AND (r.visibility = 'public' \
                               OR EXISTS (SELECT 1 FROM members WHERE room_id = r.id AND user_id = ?2)))",
    )?
    .query_row(params![id, user], |r| r.get(0))
}

pub(super) fn unattached(
    c: &Connection,
    before: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Media>> {
    c.prepare_cached(&format!(
        "SELECT {MEDIA_COLS} FROM media m WHERE m.created_at < ?1 \
           AND NOT EXISTS (SELECT 1 FROM message_media WHERE media_id = m.id) \
         ORDER BY m.created_at, m.id LIMIT ?2"
    ))?
    .query_map(params![before, limit as i64], |r| media_row(r, 0))?
    .collect()
}

pub(super) fn delete_unattached(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "DELETE FROM media WHERE id = ?1 \
               AND NOT EXISTS (SELECT 1 FROM message_media WHERE media_id = ?1)",
        )?
        .execute([id])?;
    Ok(n > 0)
}

pub(super) fn create_upload(c: &mut Connection, u: &Upload) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    tx.prepare_cached(&format!(
        "INSERT INTO uploads ({UPLOAD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        u.id,
        u.owner,
        u.name,
        to_sql_size(u.length),
        to_sql_size(u.offset),
        u.updated_at,
        u.created_at
    ])?;
    // Normally none (a new upload), but keep what the record says.
    let mut part =
        tx.prepare_cached("INSERT INTO upload_parts (upload_id, idx, key) VALUES (?1, ?2, ?3)")?;
    for (i, key) in u.parts.iter().enumerate() {
        part.execute(params![u.id, i as i64, key])?;
    }
    drop(part);
    tx.commit()
}

fn upload_row(r: &Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: r.get(0)?,
        owner: r.get(1)?,
        name: r.get(2)?,
        length: from_sql_size(r.get(3)?),
        offset: from_sql_size(r.get(4)?),
        parts: Vec::new(),
        updated_at: r.get(5)?,
        created_at: r.get(6)?,
    })
}

/// Fills in the parts of `uploads` (one query for all of them), in order.
fn with_parts(c: &Connection, mut uploads: Vec<Upload>) -> rusqlite::Result<Vec<Upload>> {
    if uploads.is_empty() {
        return Ok(uploads);
    }
    let ids: Vec<&str> = uploads.iter().map(|u| u.id.as_str()).collect();
    let mut parts: HashMap<String, Vec<String>> = HashMap::new();
    let mut stmt = c.prepare_cached(
        "SELECT upload_id, key FROM upload_parts \
         WHERE upload_id IN (SELECT value FROM json_each(?1)) ORDER BY upload_id, idx",
    )?;
    let mut rows = stmt.query([json_ids(&ids)])?;
    while let Some(r) = rows.next()? {
        parts.entry(r.get(0)?).or_default().push(r.get(1)?);
    }
    for u in &mut uploads {
        if let Some(p) = parts.remove(&u.id) {
            u.parts = p;
        }
    }
    Ok(uploads)
}

pub(super) fn upload(c: &Connection, id: &str) -> rusqlite::Result<Option<Upload>> {
    // One snapshot: the parts are always the ones `offset` counts.
    let tx = c.unchecked_transaction()?;
    let found = tx
        .prepare_cached(&format!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = ?1"))?
        .query_row([id], upload_row)
        .optional()?;
    let found = with_parts(&tx, found.into_iter().collect())?.pop();
    tx.commit()?;
    Ok(found)
}

/// The compare-and-set: moves the offset only if it is still `from`, and adds
/// the part in the same transaction.
pub(super) fn advance_upload(
    c: &mut Connection,
    id: &str,
    from: u64,
    to: u64,
    part: &str,
    at: i64,
) -> rusqlite::Result<bool> {
    let tx = c.transaction()?;
    let n = tx
        .prepare_cached(
            "UPDATE uploads SET \"offset\" = ?3, updated_at = ?4 WHERE id = ?1 AND \"offset\" = ?2",
        )?
        .execute(params![id, to_sql_size(from), to_sql_size(to), at])?;
    if n == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO upload_parts (upload_id, idx, key) \
         VALUES (?1, (SELECT COALESCE(MAX(idx) + 1, 0) FROM upload_parts WHERE upload_id = ?1), ?2)",
    )?
    .execute(params![id, part])?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn delete_upload(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    // Its parts go with it (ON DELETE CASCADE).
    let n = c
        .prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

pub(super) fn stale_uploads(
    c: &Connection,
    before: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Upload>> {
    let tx = c.unchecked_transaction()?;
    let found = tx
        .prepare_cached(&format!(
            "SELECT {UPLOAD_COLS} FROM uploads WHERE updated_at < ?1 ORDER BY updated_at, id LIMIT ?2"
        ))?
        .query_map(params![before, limit as i64], upload_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let found = with_parts(&tx, found)?;
    tx.commit()?;
    Ok(found)
}
