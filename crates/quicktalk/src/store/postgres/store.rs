//! The [`Store`] trait on PostgreSQL.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::rows::*;
use super::{db, PostgresStore};
use super::{media, moderation, people, push, search};
use crate::model::{
    now_ms, AppendRejected, Appended, HistoryQuery, Media, Message, MessageId, MessageKind,
    NewMessage, Role, Room, RoomId, RoomKind, RoomPolicy, User, UserId, UserRef,
};
use crate::store::media::Upload;
use crate::store::moderation::{Ban, Deleted, QueueItem, QueueQuery, Resolved};
use crate::store::people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use crate::store::push::{NotifyLevel, PushSubscription, PushTarget};
use crate::store::search::{SearchPage, SearchQuery};
use crate::store::{
    NewMessageReport, NewReport, NewRoom, NewUser, RoomListQuery, RoomWithUnread, Store,
    StoreError, StoreResult,
};

const UNREAD_SQL: &str = "SELECT COUNT(*) FROM messages WHERE room_id = $1 AND seq > $2 \
                          AND sender_id <> $3 AND kind IN ('text', 'system')";

async fn unread_count(
    pool: &PgPool,
    room: RoomId,
    user: UserId,
    read_seq: i64,
) -> StoreResult<i64> {
    sqlx::query_scalar(UNREAD_SQL)
        .bind(room)
        .bind(read_seq)
        .bind(user)
        .fetch_one(pool)
        .await
        .map_err(db)
}

/// Inserts a room and joins `members` to it (join messages 1, 2, …) inside `tx`,
/// which the caller commits.
pub(super) async fn insert_room(
    tx: &mut Transaction<'_, Postgres>,
    n: NewRoom,
    members: Vec<UserRef>,
) -> StoreResult<(Room, Vec<Message>)> {
    let now = now_ms();
    let count = members.len() as i64;
    let last_at = (count > 0).then_some(now);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO rooms (name, visibility, kind, created_by, created_at, member_count, last_seq, last_message_at, \
                            moderation) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) RETURNING id",
    )
    .bind(&n.name)
    .bind(n.visibility.as_str())
    .bind(n.kind.as_str())
    .bind(n.created_by)
    .bind(now)
    .bind(count)
    .bind(last_at)
    .bind(n.moderation.as_str())
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    let mut joins = Vec::with_capacity(members.len());
    for (i, user) in members.into_iter().enumerate() {
        let seq = i as i64 + 1;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, joined_at, join_seq, read_seq) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(user.id)
        .bind(now)
        .bind(seq)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        let mid: i64 = sqlx::query_scalar(
            "INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, \
                                   sender_guest) \
             VALUES ($1, $2, 'join', $3, $4, '', NULL, $5, $6) RETURNING id",
        )
        .bind(id)
        .bind(seq)
        .bind(user.id)
        .bind(&user.name)
        .bind(now)
        .bind(user.guest)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
        joins.push(Message {
            id: mid,
            room_id: id,
            seq,
            kind: MessageKind::Join,
            sender: user,
            text: String::new(),
            client_id: None,
            sent_at: now,
            masked: false,
            attachments: Vec::new(),
        });
    }
    let room = Room {
        id,
        name: n.name,
        visibility: n.visibility,
        kind: n.kind,
        member_count: count,
        last_seq: count,
        created_at: now,
        last_message_at: last_at,
        closed_at: None,
        moderation: n.moderation,
        created_by: n.created_by,
    };
    Ok((room, joins))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        let skeletons = crate::store::user_skeletons(&u);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let res = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, display_name, guest, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.display_name)
        .bind(u.guest)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match res {
            Ok(id) => id,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::UsernameTaken)
            }
            Err(e) => return Err(db(e)),
        };
        if !skeletons.is_empty() {
            let res = sqlx::query(
                "INSERT INTO name_skeletons (skeleton, user_id) SELECT unnest($1::text[]), $2",
            )
            .bind(&skeletons)
            .bind(id)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(StoreError::NameTaken)
                }
                Err(e) => return Err(db(e)),
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(User {
            id,
            username: u.username,
            display_name: u.display_name,
            guest: u.guest,
            role: Role::User,
            banned_until: None,
            status_message: None,
            avatar: None,
            dm_policy: Default::default(),
            token_epoch: 0,
        })
    }

    async fn name_owner(&self, skeleton: &str) -> StoreResult<Option<UserId>> {
        sqlx::query_scalar("SELECT user_id FROM name_skeletons WHERE skeleton = $1")
            .bind(skeleton)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, password_hash FROM users \
             WHERE lower(username) = lower($1) AND password_hash IS NOT NULL"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(r) => Ok(Some((
                user_row(&r)?,
                r.try_get(USER_COL_COUNT).map_err(db)?,
            ))),
            None => Ok(None),
        }
    }

    async fn create_room(&self, n: NewRoom) -> StoreResult<Room> {
        self.create_room_with(n, Vec::new())
            .await
            .map(|(room, _)| room)
    }

    async fn create_room_with(
        &self,
        n: NewRoom,
        members: Vec<UserRef>,
    ) -> StoreResult<(Room, Vec<Message>)> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let created = insert_room(&mut tx, n, members).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(room_row)
            .transpose()
    }

    async fn list_rooms(
        &self,
        user: UserId,
        q: &RoomListQuery,
    ) -> StoreResult<(Vec<RoomWithUnread>, bool)> {
        // The unread count in the same query: one round trip for the listing.
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS}, m.read_seq, \
               CASE WHEN m.user_id IS NULL THEN NULL ELSE ( \
                 SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
                   AND x.sender_id <> $1 AND x.kind IN ('text', 'system')) END \
             FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $1 \
             WHERE ((r.visibility = 'public' AND r.kind = 'group') OR m.user_id IS NOT NULL){} \
               AND ($3::bigint IS NULL OR (COALESCE(r.last_message_at, r.created_at), r.id) < ($3, $4)) \
             ORDER BY COALESCE(r.last_message_at, r.created_at) DESC, r.id DESC LIMIT $2",
            q.filter_sql()
        ))
        .bind(user)
        .bind(q.limit as i64 + 1)
        .bind(q.before.map(|b| b.0))
        .bind(q.before.map(|b| b.1))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let more = rows.len() > q.limit;
        let rooms = rows
            .iter()
            .take(q.limit)
            .map(|r| {
                Ok(RoomWithUnread {
                    room: room_row(r)?,
                    unread: r.try_get::<Option<i64>, _>(12).map_err(db)?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok((rooms, more))
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?
                .is_some(),
        )
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<User>> {
        sqlx::query(&format!(
            "SELECT {U_USER_COLS} FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY m.join_seq"
        ))
        .bind(room)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(user_row)
        .collect()
    }

    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Option<i64>> {
        let read_seq: Option<i64> =
            sqlx::query_scalar("SELECT read_seq FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        match read_seq {
            Some(s) => Ok(Some(unread_count(&self.pool, room, user, s).await?)),
            None => Ok(None),
        }
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<Option<i64>> {
        let read_seq: Option<i64> = sqlx::query_scalar(
            "UPDATE members SET read_seq = GREATEST(read_seq, LEAST($3, (SELECT last_seq FROM rooms WHERE id = $1))) \
             WHERE room_id = $1 AND user_id = $2 RETURNING read_seq",
        )
        .bind(room)
        .bind(user)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match read_seq {
            Some(s) => Ok(Some(unread_count(&self.pool, room, user, s).await?)),
            None => Ok(None),
        }
    }

    async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pos = vec![None; batch.len()];
        let out = Self::append_tx(&mut tx, batch, pos).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn close_room(&self, room: RoomId) -> StoreResult<bool> {
        // Appends lock the room row first, so a batch sees the room open or closed.
        let n = sqlx::query("UPDATE rooms SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL")
            .bind(room)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn close_open_rooms(&self, kind: RoomKind) -> StoreResult<u64> {
        let n =
            sqlx::query("UPDATE rooms SET closed_at = $2 WHERE kind = $1 AND closed_at IS NULL")
                .bind(kind.as_str())
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
        Ok(n)
    }

    async fn add_report(&self, r: NewReport) -> StoreResult<i64> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO reports (room_id, reporter_id, reported_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.room_id)
        .bind(r.reporter)
        .bind(r.reported)
        .bind(&r.reason)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO moderation_queue (kind, room_id, subject_id, reporter_id, reason, created_at) \
             VALUES ('report', $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(r.room_id)
        .bind(r.reported)
        .bind(r.reporter)
        .bind(&r.reason)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn match_avoid(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        sqlx::query_scalar(
            "SELECT other FROM ( \
               SELECT reported_id AS other, created_at AS at, id FROM reports WHERE reporter_id = $1 \
               UNION ALL \
               SELECT reporter_id, created_at, id FROM reports WHERE reported_id = $1 \
               UNION ALL \
               SELECT blocked, created_at, 0 FROM blocks WHERE blocker = $1 \
               UNION ALL \
               SELECT blocker, created_at, 0 FROM blocks WHERE blocked = $1) AS r \
             GROUP BY other ORDER BY MAX(at) DESC, MAX(id) DESC LIMIT $2",
        )
        .bind(user)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn messages(&self, room: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)> {
        let ascending = q.after_seq.is_some();
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE room_id = $1 AND seq > $2 AND seq < $3 \
             ORDER BY seq {} LIMIT $4",
            if ascending { "ASC" } else { "DESC" }
        );
        let rows = sqlx::query(&sql)
            .bind(room)
            .bind(q.after_seq.unwrap_or(0))
            .bind(q.before_seq.unwrap_or(i64::MAX))
            .bind(q.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut msgs = rows
            .iter()
            .map(message_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let has_more = msgs.len() > q.limit;
        msgs.truncate(q.limit);
        if !ascending {
            msgs.reverse();
        }
        media::attach(&self.pool, &mut msgs).await?;
        Ok((msgs, has_more))
    }

    // ---- Moderation: roles, the review queue, bans, deleting messages ----

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        moderation::message(&self.pool, id).await
    }

    async fn set_role(&self, username: &str, role: Role) -> StoreResult<Option<User>> {
        moderation::set_role(&self.pool, username, role).await
    }

    async fn moderation_queue(&self, q: QueueQuery) -> StoreResult<(Vec<QueueItem>, bool)> {
        moderation::queue(&self.pool, q).await
    }

    async fn queue_item(&self, id: i64) -> StoreResult<Option<QueueItem>> {
        moderation::queue_item(&self.pool, id).await
    }

    async fn resolve_queue_item(
        &self,
        id: i64,
        by: Option<UserId>,
        note: Option<String>,
        at: i64,
    ) -> StoreResult<Resolved> {
        moderation::resolve(&self.pool, id, by, note, at).await
    }

    async fn set_ban(&self, user: UserId, until: i64, reason: &str) -> StoreResult<Option<User>> {
        moderation::set_ban(&self.pool, user, Some(until), Some(reason)).await
    }

    async fn clear_ban(&self, user: UserId) -> StoreResult<Option<User>> {
        moderation::set_ban(&self.pool, user, None, None).await
    }

    async fn ban(&self, user: UserId) -> StoreResult<Option<Ban>> {
        moderation::ban(&self.pool, user).await
    }

    async fn bans(&self, now: i64, limit: usize) -> StoreResult<Vec<Ban>> {
        moderation::bans(&self.pool, now, limit).await
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<Deleted> {
        moderation::delete_message(&self.pool, id).await
    }
    async fn set_room_moderation(&self, room: RoomId, policy: RoomPolicy) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE rooms SET moderation = $2 WHERE id = $1")
            .bind(room)
            .bind(policy.as_str())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn report_message(&self, r: NewMessageReport) -> StoreResult<i64> {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO moderation_queue \
               (kind, room_id, message_id, subject_id, reporter_id, reason, created_at) \
             VALUES ('report', $1, $2, $3, $4, $5, $6) \
             ON CONFLICT (message_id, reporter_id) WHERE kind = 'report' AND message_id IS NOT NULL \
             DO NOTHING RETURNING id",
        )
        .bind(r.room_id)
        .bind(r.message_id)
        .bind(r.subject)
        .bind(r.reporter)
        .bind(&r.reason)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(id) = inserted {
            return Ok(id);
        }
        // A repeat: the first report (committed, or the conflict would have waited).
        sqlx::query_scalar(
            "SELECT id FROM moderation_queue \
             WHERE kind = 'report' AND message_id = $1 AND reporter_id = $2",
        )
        .bind(r.message_id)
        .bind(r.reporter)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn add_strike(&self, user: UserId, at: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO moderation_strikes (user_id, at) VALUES ($1, $2)")
            .bind(user)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn strikes_since(&self, user: UserId, since: i64) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM moderation_strikes WHERE user_id = $1 AND at >= $2",
        )
        .bind(user)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn last_strikes(&self, user: UserId, limit: u32) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT at FROM moderation_strikes WHERE user_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    // ---- Media: files' records, attachments (in `append`/history), uploads ----

    async fn create_media(&self, m: Media) -> StoreResult<()> {
        media::create_media(&self.pool, &m).await
    }

    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        media::media(&self.pool, id).await
    }

    async fn media_usage(&self, owner: UserId) -> StoreResult<u64> {
        media::usage(&self.pool, owner).await
    }

    async fn can_read_media(&self, id: &str, user: UserId) -> StoreResult<bool> {
        media::can_read(&self.pool, id, user).await
    }

    async fn unattached_media(&self, before: i64, limit: usize) -> StoreResult<Vec<Media>> {
        media::unattached(&self.pool, before, limit).await
    }

    async fn delete_unattached_media(&self, id: &str) -> StoreResult<bool> {
        media::delete_unattached(&self.pool, id).await
    }

    async fn create_upload(&self, u: Upload) -> StoreResult<()> {
        media::create_upload(&self.pool, &u).await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        media::upload(&self.pool, id).await
    }

    async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        part: &str,
        at: i64,
    ) -> StoreResult<bool> {
        media::advance_upload(&self.pool, id, from, to, part, at).await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        media::delete_upload(&self.pool, id).await
    }

    async fn stale_uploads(&self, before: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        media::stale_uploads(&self.pool, before, limit).await
    }

    // ---- People: profiles, upgrade, friends, blocks, direct rooms (`people`) ----

    async fn update_profile(
        &self,
        user: UserId,
        patch: ProfilePatch,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        people::update_profile(&self.pool, user, patch).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        people::user_by_username(&self.pool, username).await
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        people::users(&self.pool, ids).await
    }

    async fn upgrade_guest(
        &self,
        user: UserId,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<Option<User>> {
        people::upgrade_guest(&self.pool, user, username, password_hash).await
    }

    async fn friend_request(&self, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk> {
        people::friend_request(&self.pool, from, to, at).await
    }

    async fn friend_requests(&self, user: UserId) -> StoreResult<Vec<FriendRequest>> {
        people::friend_requests(&self.pool, user).await
    }

    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        answer: FriendAnswer,
        at: i64,
    ) -> StoreResult<Answered> {
        people::answer_friend_request(&self.pool, id, by, answer, at).await
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        people::friends(&self.pool, user).await
    }

    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        people::are_friends(&self.pool, a, b).await
    }

    async fn remove_friend(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        people::remove_friend(&self.pool, a, b).await
    }

    async fn block_user(&self, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool> {
        people::block_user(&self.pool, blocker, blocked, at).await
    }

    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        people::unblock_user(&self.pool, blocker, blocked).await
    }

    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        people::blocked_by(&self.pool, blocker).await
    }

    async fn blocked_between(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        people::blocked_between(&self.pool, a, b).await
    }

    async fn direct_room(
        &self,
        room: NewRoom,
        a: UserRef,
        b: UserRef,
    ) -> StoreResult<(Room, bool, Vec<Message>)> {
        people::direct_room(&self.pool, room, a, b).await
    }

    async fn direct_pair(&self, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
        people::direct_pair(&self.pool, room).await
    }

    async fn add_push_subscription(&self, sub: PushSubscription, keep: usize) -> StoreResult<()> {
        push::add_subscription(&self.pool, sub, keep).await
    }

    async fn remove_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> StoreResult<bool> {
        push::remove_subscription(&self.pool, endpoint, user).await
    }

    async fn push_subscriptions(&self, user: UserId) -> StoreResult<Vec<PushSubscription>> {
        push::subscriptions(&self.pool, user).await
    }

    async fn set_notification_level(
        &self,
        user: UserId,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()> {
        push::set_level(&self.pool, user, room, level).await
    }

    async fn notification_level(
        &self,
        user: UserId,
        room: RoomId,
    ) -> StoreResult<Option<NotifyLevel>> {
        push::get_level(&self.pool, user, room).await
    }

    async fn push_targets(&self, room: RoomId) -> StoreResult<Vec<PushTarget>> {
        push::targets(&self.pool, room).await
    }

    async fn search(&self, q: SearchQuery) -> StoreResult<SearchPage> {
        search::search(&self.pool, self.trigrams, &q).await
    }
}
