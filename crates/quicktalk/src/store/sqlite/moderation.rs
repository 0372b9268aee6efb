//! The moderation records on SQLite: review queue, roles, bans, tombstones.
//! Reads run on a pooled reader, writes on the writer thread (callers in `mod.rs`).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{bad_enum, message_row, user_row, MESSAGE_COLS, USER_COLS, USER_COL_COUNT};
use crate::model::{Message, MessageId, MessageKind, Role, User, UserId};
use crate::store::moderation::{
    Ban, Deleted, QueueItem, QueueKind, QueueQuery, Resolution, Resolved,
};

const QUEUE_COLS: &str = "id, kind, room_id, message_id, subject_id, reporter_id, reason, score, \
                          created_at, resolved_at, resolved_by, resolution";

fn queue_row(r: &Row<'_>) -> rusqlite::Result<QueueItem> {
    let kind: String = r.get(1)?;
    let resolved_at: Option<i64> = r.get(9)?;
    Ok(QueueItem {
        id: r.get(0)?,
        kind: QueueKind::parse(&kind).ok_or_else(|| bad_enum(1, &kind))?,
        room_id: r.get(2)?,
        message_id: r.get(3)?,
        subject_id: r.get(4)?,
        reporter_id: r.get(5)?,
        reason: r.get(6)?,
        score: r.get(7)?,
        created_at: r.get(8)?,
        resolved: match resolved_at {
            Some(at) => Some(Resolution {
                at,
                by: r.get(10)?,
                note: r.get(11)?,
            }),
            None => None,
        },
    })
}

pub(super) fn message(c: &Connection, id: MessageId) -> rusqlite::Result<Option<Message>> {
    let found = c
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE id = ?1"
        ))?
        .query_row([id], message_row)
        .optional()?;
    let mut found: Vec<Message> = found.into_iter().collect();
    super::media::attach(c, &mut found)?;
    Ok(found.pop())
}

pub(super) fn user(c: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    c.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()
}

pub(super) fn set_role(
    c: &Connection,
    username: &str,
    role: Role,
) -> rusqlite::Result<Option<User>> {
    let n = c
        .prepare_cached("UPDATE users SET role = ?2 WHERE username = ?1")?
        .execute(params![username, role.as_str()])?;
    if n == 0 {
        return Ok(None);
    }
    c.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE username = ?1"
    ))?
    .query_row([username], user_row)
    .optional()
}

pub(super) fn queue(c: &Connection, q: QueueQuery) -> rusqlite::Result<(Vec<QueueItem>, bool)> {
    let sql = format!(
        "SELECT {QUEUE_COLS} FROM moderation_queue WHERE id > ?1{} ORDER BY id LIMIT ?2",
        q.state.filter_sql()
    );
    let mut rows: Vec<QueueItem> = c
        .prepare_cached(&sql)?
        .query_map(params![q.after.unwrap_or(0), q.limit as i64 + 1], queue_row)?
        .collect::<rusqlite::Result<_>>()?;
    let more = rows.len() > q.limit;
    rows.truncate(q.limit);
    Ok((rows, more))
}

pub(super) fn queue_item(c: &Connection, id: i64) -> rusqlite::Result<Option<QueueItem>> {
    c.prepare_cached(&format!(
        "SELECT {QUEUE_COLS} FROM moderation_queue WHERE id = ?1"
    ))?
    .query_row([id], queue_row)
    .optional()
}

pub(super) fn resolve(
    c: &Connection,
    id: i64,
    by: Option<UserId>,
    note: Option<String>,
    at: i64,
) -> rusqlite::Result<Resolved> {
    let n = c
        .prepare_cached(
            "UPDATE moderation_queue SET resolved_at = ?2, resolved_by = ?3, resolution = ?4 \
             WHERE id = ?1 AND resolved_at IS NULL",
        )?
        .execute(params![id, at, by, note])?;
    Ok(match (queue_item(c, id)?, n) {
        (None, _) => Resolved::NotFound,
        (Some(item), 0) => Resolved::Already(item),
        (Some(item), _) => Resolved::Now(item),
    })
}

pub(super) fn set_ban(
    c: &Connection,
    id: UserId,
    until: Option<i64>,
    reason: Option<&str>,
) -> rusqlite::Result<Option<User>> {
    c.prepare_cached("UPDATE users SET banned_until = ?2, ban_reason = ?3 WHERE id = ?1")?
        .execute(params![id, until, reason])?;
    user(c, id)
}

fn ban_row(r: &Row<'_>) -> rusqlite::Result<Ban> {
    Ok(Ban {
        user: user_row(r)?,
        until: r.get(5)?,
        reason: r
            .get::<_, Option<String>>(USER_COL_COUNT)?
            .unwrap_or_default(),
    })
}

pub(super) fn ban(c: &Connection, id: UserId) -> rusqlite::Result<Option<Ban>> {
    c.prepare_cached(&format!(
        "SELECT {USER_COLS}, ban_reason FROM users WHERE id = ?1 AND banned_until IS NOT NULL"
    ))?
    .query_row([id], ban_row)
    .optional()
}

pub(super) fn bans(c: &Connection, now: i64, limit: usize) -> rusqlite::Result<Vec<Ban>> {
    c.prepare_cached(&format!(
        "SELECT {USER_COLS}, ban_reason FROM users WHERE banned_until > ?1 ORDER BY id LIMIT ?2"
    ))?
    .query_map(params![now, limit as i64], ban_row)?
    .collect()
}

/// Makes message `id` a tombstone and drops its attachments, one transaction.
pub(super) fn delete_message(c: &mut Connection, id: MessageId) -> rusqlite::Result<Deleted> {
    let tx = c.transaction()?;
    // The index is contentless: removing a message needs the text it indexed.
    let indexed: Option<String> = tx
        .prepare_cached("SELECT text FROM messages WHERE id = ?1 AND kind = 'text'")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let n = tx
        .prepare_cached(
            "UPDATE messages SET kind = 'deleted', text = '', masked = 0 \
             WHERE id = ?1 AND kind IN ('text', 'system')",
        )?
        .execute([id])?;
    if n > 0 {
        super::media::drop_attachments(&tx, id)?;
        if let Some(text) = indexed {
            super::search::unindex(&tx, id, &text)?;
        }
    }
    let found = message(&tx, id)?;
    tx.commit()?;
    Ok(match found {
        None => Deleted::NotFound,
        Some(m) if n > 0 => Deleted::Now(m),
        Some(m) if m.kind == MessageKind::Deleted => Deleted::Already(m),
        Some(m) => Deleted::NotDeletable(m),
    })
}
