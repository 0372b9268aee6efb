//! Push subscriptions and notification levels on SQLite (contract §8). Reads
//! run on a pooled reader, writes on the writer thread (callers in `mod.rs`).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::model::{RoomId, UserId};
use crate::store::push::{NotifyLevel, PushSubscription, PushTarget};

fn level(i: usize, s: Option<String>) -> rusqlite::Result<Option<NotifyLevel>> {
    s.map(|s| NotifyLevel::parse(&s).ok_or_else(|| super::bad_enum(i, &s)))
        .transpose()
}

fn subscription_row(r: &Row<'_>) -> rusqlite::Result<PushSubscription> {
    Ok(PushSubscription {
        endpoint: r.get(0)?,
        user_id: r.get(1)?,
        p256dh: r.get(2)?,
        auth: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn add_subscription(
    c: &mut Connection,
    s: PushSubscription,
    keep: usize,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    tx.prepare_cached(
        "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, \
           p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
    )?
    .execute(params![
        s.endpoint,
        s.user_id,
        s.p256dh,
        s.auth,
        s.created_at
    ])?;
    tx.prepare_cached(
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint NOT IN \
         (SELECT endpoint FROM push_subscriptions WHERE user_id = ?1 \
          ORDER BY created_at DESC, endpoint DESC LIMIT ?2)",
    )?
    .execute(params![s.user_id, keep as i64])?;
    tx.commit()
}

pub(super) fn remove_subscription(
    c: &Connection,
    endpoint: &str,
    user: Option<UserId>,
) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "DELETE FROM push_subscriptions WHERE endpoint = ?1 AND (?2 IS NULL OR user_id = ?2)",
        )?
        .execute(params![endpoint, user])?;
    Ok(n > 0)
}

pub(super) fn subscriptions(
    c: &Connection,
    user: UserId,
) -> rusqlite::Result<Vec<PushSubscription>> {
    c.prepare_cached(
        "SELECT endpoint, user_id, p256dh, auth, created_at FROM push_subscriptions \
         WHERE user_id = ?1 ORDER BY created_at, endpoint",
    )?
    .query_map([user], subscription_row)?
    .collect()
}

pub(super) fn set_level(
    c: &Connection,
    user: UserId,
    room: RoomId,
    level: Option<NotifyLevel>,
) -> rusqlite::Result<()> {
    match level {
        Some(l) => c
            .prepare_cached(
                "INSERT INTO notification_levels (user_id, room_id, level) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (room_id, user_id) DO UPDATE SET level = excluded.level",
            )?
            .execute(params![user, room, l.as_str()])?,
        None => c
            .prepare_cached("DELETE FROM notification_levels WHERE user_id = ?1 AND room_id = ?2")?
            .execute(params![user, room])?,
    };
    Ok(())
}

pub(super) fn get_level(
    c: &Connection,
    user: UserId,
    room: RoomId,
) -> rusqlite::Result<Option<NotifyLevel>> {
    let s: Option<String> = c
        .prepare_cached(
            "SELECT level FROM notification_levels WHERE user_id = ?1 AND room_id = ?2",
        )?
        .query_row(params![user, room], |r| r.get(0))
        .optional()?;
    level(0, s)
}

pub(super) fn targets(c: &Connection, room: RoomId) -> rusqlite::Result<Vec<PushTarget>> {
    c.prepare_cached(
        "SELECT m.user_id, u.username, l.level FROM members m \
         JOIN users u ON u.id = m.user_id \
         LEFT JOIN notification_levels l ON l.room_id = m.room_id AND l.user_id = m.user_id \
         WHERE m.room_id = ?1 \
           AND EXISTS (SELECT 1 FROM push_subscriptions p WHERE p.user_id = m.user_id) \
         ORDER BY m.user_id",
    )?
    .query_map([room], |r| {
        Ok(PushTarget {
            user_id: r.get(0)?,
            username: r.get(1)?,
            level: level(2, r.get(2)?)?,
        })
    })?
    .collect()
}
