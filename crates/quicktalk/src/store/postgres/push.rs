//! Push subscriptions and notification levels on PostgreSQL (contract §8).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{bad, db};
use crate::model::{RoomId, UserId};
use crate::store::push::{NotifyLevel, PushSubscription, PushTarget};
use crate::store::StoreResult;

type S<'a> = &'a PgPool;

fn level(s: Option<String>) -> StoreResult<Option<NotifyLevel>> {
    s.map(|s| NotifyLevel::parse(&s).ok_or_else(|| bad("notification level", &s)))
        .transpose()
}

fn subscription_row(r: &PgRow) -> StoreResult<PushSubscription> {
    Ok(PushSubscription {
        endpoint: r.try_get(0).map_err(db)?,
        user_id: r.try_get(1).map_err(db)?,
        p256dh: r.try_get(2).map_err(db)?,
        auth: r.try_get(3).map_err(db)?,
        created_at: r.try_get(4).map_err(db)?,
    })
}

pub(super) async fn add_subscription(
    s: S<'_>,
    sub: PushSubscription,
    keep: usize,
) -> StoreResult<()> {
    let mut tx = s.begin().await.map_err(db)?;
    sqlx::query(
        "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id, \
           p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = EXCLUDED.created_at",
    )
    .bind(&sub.endpoint)
    .bind(sub.user_id)
    .bind(&sub.p256dh)
    .bind(&sub.auth)
    .bind(sub.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query(
        "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint NOT IN \
         (SELECT endpoint FROM push_subscriptions WHERE user_id = $1 \
          ORDER BY created_at DESC, endpoint DESC LIMIT $2)",
    )
    .bind(sub.user_id)
    .bind(keep as i64)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

pub(super) async fn remove_subscription(
    s: S<'_>,
    endpoint: &str,
    user: Option<UserId>,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "DELETE FROM push_subscriptions WHERE endpoint = $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
    )
    .bind(endpoint)
    .bind(user)
    .execute(s)
    .await
    .map_err(db)?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn subscriptions(s: S<'_>, user: UserId) -> StoreResult<Vec<PushSubscription>> {
    let rows = sqlx::query(
        "SELECT endpoint, user_id, p256dh, auth, created_at FROM push_subscriptions \
         WHERE user_id = $1 ORDER BY created_at, endpoint",
    )
    .bind(user)
    .fetch_all(s)
    .await
    .map_err(db)?;
    rows.iter().map(subscription_row).collect()
}

pub(super) async fn set_level(
    s: S<'_>,
    user: UserId,
    room: RoomId,
    level: Option<NotifyLevel>,
) -> StoreResult<()> {
    match level {
        Some(l) => sqlx::query(
            "INSERT INTO notification_levels (user_id, room_id, level) VALUES ($1, $2, $3) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET level = EXCLUDED.level",
        )
        .bind(user)
        .bind(room)
        .bind(l.as_str()),
        None => sqlx::query("DELETE FROM notification_levels WHERE user_id = $1 AND room_id = $2")
            .bind(user)
            .bind(room),
    }
    .execute(s)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn get_level(
    s: S<'_>,
    user: UserId,
    room: RoomId,
) -> StoreResult<Option<NotifyLevel>> {
    let l: Option<String> = sqlx::query_scalar(
        "SELECT level FROM notification_levels WHERE user_id = $1 AND room_id = $2",
    )
    .bind(user)
    .bind(room)
    .fetch_optional(s)
    .await
    .map_err(db)?;
    level(l)
}

pub(super) async fn targets(s: S<'_>, room: RoomId) -> StoreResult<Vec<PushTarget>> {
    let rows = sqlx::query(
        "SELECT m.user_id, u.username, l.level FROM members m \
         JOIN users u ON u.id = m.user_id \
         LEFT JOIN notification_levels l ON l.room_id = m.room_id AND l.user_id = m.user_id \
         WHERE m.room_id = $1 \
           AND EXISTS (SELECT 1 FROM push_subscriptions p WHERE p.user_id = m.user_id) \
         ORDER BY m.user_id",
    )
    .bind(room)
    .fetch_all(s)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(PushTarget {
                user_id: r.try_get(0).map_err(db)?,
                username: r.try_get(1).map_err(db)?,
                level: level(r.try_get(2).map_err(db)?)?,
            })
        })
        .collect()
}
