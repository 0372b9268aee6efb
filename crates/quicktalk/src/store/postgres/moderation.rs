//! The moderation records on PostgreSQL: review queue, roles, bans, tombstones.
//! Each write is one statement (atomic on its own); nothing is cached.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::rows::{message_row, user_row, MESSAGE_COLS, USER_COLS, USER_COL_COUNT};
use super::{bad, db};
use crate::model::{Message, MessageId, MessageKind, Role, User, UserId};
use crate::store::moderation::{
    Ban, Deleted, QueueItem, QueueKind, QueueQuery, Resolution, Resolved,
};
use crate::store::StoreResult;

const QUEUE_COLS: &str = "id, kind, room_id, message_id, subject_id, reporter_id, reason, score, \
                          created_at, resolved_at, resolved_by, resolution";

fn queue_row(r: &PgRow) -> StoreResult<QueueItem> {
    let kind: String = r.try_get(1).map_err(db)?;
    let resolved_at: Option<i64> = r.try_get(9).map_err(db)?;
    Ok(QueueItem {
        id: r.try_get(0).map_err(db)?,
        kind: QueueKind::parse(&kind).ok_or_else(|| bad("queue item kind", &kind))?,
        room_id: r.try_get(2).map_err(db)?,
        message_id: r.try_get(3).map_err(db)?,
        subject_id: r.try_get(4).map_err(db)?,
        reporter_id: r.try_get(5).map_err(db)?,
        reason: r.try_get(6).map_err(db)?,
        score: r.try_get(7).map_err(db)?,
        created_at: r.try_get(8).map_err(db)?,
        resolved: match resolved_at {
            Some(at) => Some(Resolution {
                at,
                by: r.try_get(10).map_err(db)?,
                note: r.try_get(11).map_err(db)?,
            }),
            None => None,
        },
    })
}

pub(super) async fn message(pool: &PgPool, id: MessageId) -> StoreResult<Option<Message>> {
    let mut found = sqlx::query(&format!(
        "SELECT {MESSAGE_COLS} FROM messages WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(message_row)
    .transpose()?
    .into_iter()
    .collect::<Vec<_>>();
    super::media::attach(pool, &mut found).await?;
    Ok(found.pop())
}

pub(super) async fn set_role(
    pool: &PgPool,
    username: &str,
    role: Role,
) -> StoreResult<Option<User>> {
    sqlx::query(&format!(
        "UPDATE users SET role = $2 WHERE lower(username) = lower($1) RETURNING {USER_COLS}"
    ))
    .bind(username)
    .bind(role.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(user_row)
    .transpose()
}

pub(super) async fn queue(pool: &PgPool, q: QueueQuery) -> StoreResult<(Vec<QueueItem>, bool)> {
    let sql = format!(
        "SELECT {QUEUE_COLS} FROM moderation_queue WHERE id > $1{} ORDER BY id LIMIT $2",
        q.state.filter_sql()
    );
    let rows = sqlx::query(&sql)
        .bind(q.after.unwrap_or(0))
        .bind(q.limit as i64 + 1)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    let mut items = rows
        .iter()
        .map(queue_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let more = items.len() > q.limit;
    items.truncate(q.limit);
    Ok((items, more))
}

pub(super) async fn queue_item(pool: &PgPool, id: i64) -> StoreResult<Option<QueueItem>> {
    sqlx::query(&format!(
        "SELECT {QUEUE_COLS} FROM moderation_queue WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(queue_row)
    .transpose()
}

pub(super) async fn resolve(
    pool: &PgPool,
    id: i64,
    by: Option<UserId>,
    note: Option<String>,
    at: i64,
) -> StoreResult<Resolved> {
    let now = sqlx::query(&format!(
        "UPDATE moderation_queue SET resolved_at = $2, resolved_by = $3, resolution = $4 \
         WHERE id = $1 AND resolved_at IS NULL RETURNING {QUEUE_COLS}"
    ))
    .bind(id)
    .bind(at)
    .bind(by)
    .bind(note)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if let Some(r) = now {
        return Ok(Resolved::Now(queue_row(&r)?));
    }
    Ok(match queue_item(pool, id).await? {
        Some(item) => Resolved::Already(item),
        None => Resolved::NotFound,
    })
}

pub(super) async fn set_ban(
    pool: &PgPool,
    id: UserId,
    until: Option<i64>,
    reason: Option<&str>,
) -> StoreResult<Option<User>> {
    sqlx::query(&format!(
        "UPDATE users SET banned_until = $2, ban_reason = $3 WHERE id = $1 RETURNING {USER_COLS}"
    ))
    .bind(id)
    .bind(until)
    .bind(reason)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(user_row)
    .transpose()
}

fn ban_row(r: &PgRow) -> StoreResult<Ban> {
    Ok(Ban {
        user: user_row(r)?,
        until: r.try_get(5).map_err(db)?,
        reason: r
            .try_get::<Option<String>, _>(USER_COL_COUNT)
            .map_err(db)?
            .unwrap_or_default(),
    })
}

pub(super) async fn ban(pool: &PgPool, id: UserId) -> StoreResult<Option<Ban>> {
    sqlx::query(&format!(
        "SELECT {USER_COLS}, ban_reason FROM users WHERE id = $1 AND banned_until IS NOT NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .as_ref()
    .map(ban_row)
    .transpose()
}

pub(super) async fn bans(pool: &PgPool, now: i64, limit: usize) -> StoreResult<Vec<Ban>> {
    sqlx::query(&format!(
        "SELECT {USER_COLS}, ban_reason FROM users WHERE banned_until > $1 ORDER BY id LIMIT $2"
    ))
    .bind(now)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .map_err(db)?
    .iter()
    .map(ban_row)
    .collect()
}

pub(super) async fn delete_message(pool: &PgPool, id: MessageId) -> StoreResult<Deleted> {
    // The tombstone and the end of its attachments: one statement, so one
    // transaction (a tombstone carries no files).
    let now = sqlx::query(&format!(
        "WITH t AS (UPDATE messages SET kind = 'deleted', text = '', masked = FALSE, search_text = NULL \
                    WHERE id = $1 AND kind IN ('text', 'system') RETURNING {MESSAGE_COLS}), \
              gone AS (DELETE FROM message_media mm USING t WHERE mm.message_id = t.id) \
         SELECT * FROM t"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if let Some(r) = now {
        return Ok(Deleted::Now(message_row(&r)?));
    }
    Ok(match message(pool, id).await? {
        None => Deleted::NotFound,
        Some(m) if m.kind == MessageKind::Deleted => Deleted::Already(m),
        Some(m) => Deleted::NotDeletable(m),
    })
}
