//! People on PostgreSQL (contract §7): profile updates, the guest upgrade, friend
//! requests and friendships, blocks, direct rooms. Pairs are kept lower id
//! first ([`pair`]), so one uniqueness rule holds whichever side acts: it
//! decides between concurrent creators of a pending request or a direct room
//! (`ON CONFLICT … DO NOTHING` waits for the other transaction, then the loser
//! reads the winner's row). Friend requests, their answers and blocks of one
//! pair also take a transaction-scoped advisory lock on the pair, so a block
//! never interleaves with a request or an acceptance it must cancel.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::rows::{room_row, user_row, ROOM_COLS, USER_COLS};
use super::store::insert_room;
use super::{bad, db};
use crate::confusables::skeleton;
use crate::model::{Message, Room, RoomId, User, UserId, UserRef};
use crate::store::people::{
    pair, Answered, FriendAnswer, FriendAsk, FriendRequest, FriendRequestStatus, ProfilePatch,
};
use crate::store::{user_skeletons, NewRoom, NewUser, StoreError, StoreResult};

type S<'a> = &'a PgPool;
type Tx<'a> = Transaction<'a, Postgres>;

const REQUEST_COLS: &str = "id, from_id, to_id, status, created_at";

/// Attempts at a friend request before giving up: each retry follows a
/// concurrent change to the same pair, so more than a few means a bug.
const REQUEST_ATTEMPTS: usize = 8;

fn request_row(r: &PgRow) -> StoreResult<FriendRequest> {
    let status: String = r.try_get(3).map_err(db)?;
    Ok(FriendRequest {
        id: r.try_get(0).map_err(db)?,
        from: r.try_get(1).map_err(db)?,
        to: r.try_get(2).map_err(db)?,
        status: FriendRequestStatus::parse(&status)
            .ok_or_else(|| bad("friend request status", &status))?,
        created_at: r.try_get(4).map_err(db)?,
    })
}

fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Serializes the pair's friendship changes and blocks until `tx` ends.
async fn lock_pair(tx: &mut Tx<'_>, a: UserId, b: UserId) -> StoreResult<()> {
    let (lo, hi) = pair(a, b);
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('quicktalk.pair:' || $1 || ':' || $2, 0))",
    )
    .bind(lo.to_string())
    .bind(hi.to_string())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

async fn user_tx(tx: &mut Tx<'_>, id: UserId, lock: bool) -> StoreResult<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLS} FROM users WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .as_ref()
        .map(user_row)
        .transpose()
}

/// Records `skeleton` as `user`'s unless it is already theirs; `false` if
/// another user holds it (a concurrent claimer's commit is waited for).
async fn claim_skeleton(tx: &mut Tx<'_>, skeleton: &str, user: UserId) -> StoreResult<bool> {
    sqlx::query(
        "INSERT INTO name_skeletons (skeleton, user_id) VALUES ($1, $2) \
         ON CONFLICT (skeleton) DO NOTHING",
    )
    .bind(skeleton)
    .bind(user)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let owner: Option<UserId> =
        sqlx::query_scalar("SELECT user_id FROM name_skeletons WHERE skeleton = $1")
            .bind(skeleton)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db)?;
    Ok(owner == Some(user))
}

pub(super) async fn update_profile(
    s: S<'_>,
    id: UserId,
    patch: ProfilePatch,
) -> StoreResult<Option<(User, Option<String>)>> {
    let mut tx = s.begin().await.map_err(db)?;
    // Locked: a concurrent change of another field is not lost.
    let Some(before) = user_tx(&mut tx, id, true).await? else {
        return Ok(None);
    };
    if let Some(name) = &patch.display_name {
        if !before.guest {
            let (old, new) = (skeleton(&before.display_name), skeleton(name));
            let username = before.username.as_deref().map(skeleton);
            if old != new {
                if username.as_ref() != Some(&old) {
                    sqlx::query("DELETE FROM name_skeletons WHERE skeleton = $1 AND user_id = $2")
                        .bind(&old)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                if username.as_ref() != Some(&new) && !claim_skeleton(&mut tx, &new, id).await? {
                    return Err(StoreError::NameTaken);
                }
            }
        }
    }
    let display_name = patch
        .display_name
        .unwrap_or_else(|| before.display_name.clone());
    let status = patch
        .status_message
        .unwrap_or_else(|| before.status_message.clone());
    let avatar = patch.avatar.unwrap_or_else(|| before.avatar.clone());
    let dm_policy = patch.dm_policy.unwrap_or(before.dm_policy);
    let row = sqlx::query(&format!(
        "UPDATE users SET display_name = $2, status_message = $3, avatar = $4, dm_policy = $5 \
         WHERE id = $1 RETURNING {USER_COLS}"
    ))
    .bind(id)
    .bind(&display_name)
    .bind(&status)
    .bind(&avatar)
    .bind(dm_policy.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let now = user_row(&row)?;
    tx.commit().await.map_err(db)?;
    Ok(Some((now, before.avatar)))
}

pub(super) async fn user_by_username(s: S<'_>, username: &str) -> StoreResult<Option<User>> {
    // As `credentials` matches: `users_username` is a unique index on `lower(username)`.
    sqlx::query(&format!(
        "SELECT {USER_COLS} FROM users WHERE lower(username) = lower($1) AND NOT guest"
    ))
    .bind(username)
    .fetch_optional(s)
    .await
    .map_err(db)?
    .as_ref()
    .map(user_row)
    .transpose()
}

pub(super) async fn users(s: S<'_>, ids: &[UserId]) -> StoreResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(&format!(
        "SELECT {USER_COLS} FROM users WHERE id = ANY($1) ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(s)
    .await
    .map_err(db)?
    .iter()
    .map(user_row)
    .collect()
}

pub(super) async fn upgrade_guest(
    s: S<'_>,
    id: UserId,
    username: &str,
    password_hash: &str,
) -> StoreResult<Option<User>> {
    let mut tx = s.begin().await.map_err(db)?;
    let row = sqlx::query(&format!(
        "UPDATE users SET username = $2, password_hash = $3, guest = FALSE, \
         token_epoch = token_epoch + 1 WHERE id = $1 AND guest RETURNING {USER_COLS}"
    ))
    .bind(id)
    .bind(username)
    .bind(password_hash)
    .fetch_optional(&mut *tx)
    .await;
    let user = match row {
        Ok(Some(r)) => user_row(&r)?,
        Ok(None) => return Ok(None),
        Err(e) if is_unique(&e) => return Err(StoreError::UsernameTaken),
        Err(e) => return Err(db(e)),
    };
    let names = NewUser {
        username: Some(username.to_owned()),
        password_hash: None,
        display_name: user.display_name.clone(),
        guest: false,
    };
    let skeletons = user_skeletons(&names);
    let res =
        sqlx::query("INSERT INTO name_skeletons (skeleton, user_id) SELECT unnest($1::text[]), $2")
            .bind(&skeletons)
            .bind(id)
            .execute(&mut *tx)
            .await;
    match res {
        Ok(_) => {}
        Err(e) if is_unique(&e) => return Err(StoreError::NameTaken),
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(Some(user))
}

async fn blocked_tx(tx: &mut Tx<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blocks \
           WHERE (blocker = $1 AND blocked = $2) OR (blocker = $2 AND blocked = $1))",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)
}

async fn befriended_tx(tx: &mut Tx<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    let (lo, hi) = pair(a, b);
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_lo = $1 AND user_hi = $2)",
    )
    .bind(lo)
    .bind(hi)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)
}

async fn befriend(tx: &mut Tx<'_>, a: UserId, b: UserId, at: i64) -> StoreResult<()> {
    let (lo, hi) = pair(a, b);
    sqlx::query(
        "INSERT INTO friendships (user_lo, user_hi, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_lo, user_hi) DO NOTHING",
    )
    .bind(lo)
    .bind(hi)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// The pending request between `a` and `b`, whichever sent it.
async fn pending_between(
    tx: &mut Tx<'_>,
    a: UserId,
    b: UserId,
) -> StoreResult<Option<FriendRequest>> {
    sqlx::query(&format!(
        "SELECT {REQUEST_COLS} FROM friend_requests WHERE status = 'pending' \
         AND ((from_id = $1 AND to_id = $2) OR (from_id = $2 AND to_id = $1))"
    ))
    .bind(a)
    .bind(b)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?
    .as_ref()
    .map(request_row)
    .transpose()
}

/// Moves pending request `id` to `status` at `at`; whether it was pending.
async fn answer(
    tx: &mut Tx<'_>,
    id: i64,
    status: FriendRequestStatus,
    at: i64,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE friend_requests SET status = $2, answered_at = $3 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(n > 0)
}

/// One attempt at a friend request; `None` when a concurrent change to the
/// pair got in the way (read again in a new statement snapshot).
async fn try_friend_request(
    tx: &mut Tx<'_>,
    from: UserId,
    to: UserId,
    at: i64,
) -> StoreResult<Option<FriendAsk>> {
    if blocked_tx(tx, from, to).await? {
        return Ok(Some(FriendAsk::Blocked));
    }
    if befriended_tx(tx, from, to).await? {
        return Ok(Some(FriendAsk::AlreadyFriends));
    }
    match pending_between(tx, from, to).await? {
        Some(mut theirs) if theirs.from == to => {
            if !answer(tx, theirs.id, FriendRequestStatus::Accepted, at).await? {
                return Ok(None);
            }
            befriend(tx, from, to, at).await?;
            theirs.status = FriendRequestStatus::Accepted;
            Ok(Some(FriendAsk::Accepted(theirs)))
        }
        Some(mine) => Ok(Some(FriendAsk::Repeated(mine))),
        None => {
            // The unique partial index decides between concurrent askers: a
            // conflict waits for the other's commit, then this one reads it.
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO friend_requests (from_id, to_id, status, created_at) \
                 VALUES ($1, $2, 'pending', $3) \
                 ON CONFLICT (LEAST(from_id, to_id), GREATEST(from_id, to_id)) \
                   WHERE status = 'pending' DO NOTHING RETURNING id",
            )
            .bind(from)
            .bind(to)
            .bind(at)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db)?;
            Ok(id.map(|id| {
                FriendAsk::Created(FriendRequest {
                    id,
                    from,
                    to,
                    status: FriendRequestStatus::Pending,
                    created_at: at,
                })
            }))
        }
    }
}

pub(super) async fn friend_request(
    s: S<'_>,
    from: UserId,
    to: UserId,
    at: i64,
) -> StoreResult<FriendAsk> {
    if from == to {
        return Err(StoreError::Backend(anyhow::anyhow!(
            "a user cannot ask themselves to be friends"
        )));
    }
    let mut tx = s.begin().await.map_err(db)?;
    lock_pair(&mut tx, from, to).await?;
    for _ in 0..REQUEST_ATTEMPTS {
        if let Some(asked) = try_friend_request(&mut tx, from, to, at).await? {
            tx.commit().await.map_err(db)?;
            return Ok(asked);
        }
    }
    Err(StoreError::Backend(anyhow::anyhow!(
        "friend request {from} -> {to}: the pair kept changing"
    )))
}

pub(super) async fn friend_requests(s: S<'_>, user: UserId) -> StoreResult<Vec<FriendRequest>> {
    sqlx::query(&format!(
        "SELECT {REQUEST_COLS} FROM friend_requests \
         WHERE status = 'pending' AND (from_id = $1 OR to_id = $1) ORDER BY created_at, id"
    ))
    .bind(user)
    .fetch_all(s)
    .await
    .map_err(db)?
    .iter()
    .map(request_row)
    .collect()
}

async fn request_tx(tx: &mut Tx<'_>, id: i64, lock: bool) -> StoreResult<Option<FriendRequest>> {
    let sql = format!(
        "SELECT {REQUEST_COLS} FROM friend_requests WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .as_ref()
        .map(request_row)
        .transpose()
}

pub(super) async fn answer_friend_request(
    s: S<'_>,
    id: i64,
    by: UserId,
    given: FriendAnswer,
    at: i64,
) -> StoreResult<Answered> {
    let mut tx = s.begin().await.map_err(db)?;
    let Some(seen) = request_tx(&mut tx, id, false).await? else {
        return Ok(Answered::NotFound);
    };
    lock_pair(&mut tx, seen.from, seen.to).await?;
    let mut req = request_tx(&mut tx, id, true)
        .await?
        .ok_or_else(|| StoreError::Backend(anyhow::anyhow!("friend request {id} vanished")))?;
    let (allowed, status) = match given {
        FriendAnswer::Accept => (by == req.to, FriendRequestStatus::Accepted),
        FriendAnswer::Decline => (by == req.to, FriendRequestStatus::Declined),
        FriendAnswer::Cancel => (by == req.from, FriendRequestStatus::Cancelled),
    };
    if !allowed {
        return Ok(Answered::NotFound);
    }
    if req.status != FriendRequestStatus::Pending || !answer(&mut tx, id, status, at).await? {
        return Ok(Answered::NotPending(req));
    }
    if status == FriendRequestStatus::Accepted {
        befriend(&mut tx, req.from, req.to, at).await?;
    }
    tx.commit().await.map_err(db)?;
    req.status = status;
    Ok(Answered::Done(req))
}

pub(super) async fn friends(s: S<'_>, user: UserId) -> StoreResult<Vec<UserId>> {
    sqlx::query_scalar(
        "SELECT user_hi FROM friendships WHERE user_lo = $1 \
         UNION ALL SELECT user_lo FROM friendships WHERE user_hi = $1 ORDER BY 1",
    )
    .bind(user)
    .fetch_all(s)
    .await
    .map_err(db)
}

pub(super) async fn are_friends(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    let (lo, hi) = pair(a, b);
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_lo = $1 AND user_hi = $2)",
    )
    .bind(lo)
    .bind(hi)
    .fetch_one(s)
    .await
    .map_err(db)
}

pub(super) async fn remove_friend(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    let (lo, hi) = pair(a, b);
    let n = sqlx::query("DELETE FROM friendships WHERE user_lo = $1 AND user_hi = $2")
        .bind(lo)
        .bind(hi)
        .execute(s)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn block_user(
    s: S<'_>,
    blocker: UserId,
    blocked: UserId,
    at: i64,
) -> StoreResult<bool> {
    let (lo, hi) = pair(blocker, blocked);
    let mut tx = s.begin().await.map_err(db)?;
    lock_pair(&mut tx, blocker, blocked).await?;
    let new = sqlx::query(
        "INSERT INTO blocks (blocker, blocked, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (blocker, blocked) DO NOTHING",
    )
    .bind(blocker)
    .bind(blocked)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        > 0;
    sqlx::query("DELETE FROM friendships WHERE user_lo = $1 AND user_hi = $2")
        .bind(lo)
        .bind(hi)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "UPDATE friend_requests SET status = 'cancelled', answered_at = $3 WHERE status = 'pending' \
         AND ((from_id = $1 AND to_id = $2) OR (from_id = $2 AND to_id = $1))",
    )
    .bind(blocker)
    .bind(blocked)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(new)
}

pub(super) async fn unblock_user(s: S<'_>, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM blocks WHERE blocker = $1 AND blocked = $2")
        .bind(blocker)
        .bind(blocked)
        .execute(s)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn blocked_by(s: S<'_>, blocker: UserId) -> StoreResult<Vec<UserId>> {
    sqlx::query_scalar(
        "SELECT blocked FROM blocks WHERE blocker = $1 ORDER BY created_at DESC, blocked DESC",
    )
    .bind(blocker)
    .fetch_all(s)
    .await
    .map_err(db)
}

pub(super) async fn blocked_between(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blocks \
           WHERE (blocker = $1 AND blocked = $2) OR (blocker = $2 AND blocked = $1))",
    )
    .bind(a)
    .bind(b)
    .fetch_one(s)
    .await
    .map_err(db)
}

/// The direct room of the pair `(lo, hi)`, if it has one.
async fn direct_room_of(s: S<'_>, lo: UserId, hi: UserId) -> StoreResult<Option<Room>> {
    sqlx::query(&format!(
        "SELECT {ROOM_COLS} FROM direct_rooms d JOIN rooms r ON r.id = d.room_id \
         WHERE d.user_lo = $1 AND d.user_hi = $2"
    ))
    .bind(lo)
    .bind(hi)
    .fetch_optional(s)
    .await
    .map_err(db)?
    .as_ref()
    .map(room_row)
    .transpose()
}

pub(super) async fn direct_room(
    s: S<'_>,
    n: NewRoom,
    a: UserRef,
    b: UserRef,
) -> StoreResult<(Room, bool, Vec<Message>)> {
    if a.id == b.id {
        return Err(StoreError::Backend(anyhow::anyhow!(
            "a direct room needs two different users"
        )));
    }
    let (lo, hi) = pair(a.id, b.id);
    if let Some(room) = direct_room_of(s, lo, hi).await? {
        return Ok((room, false, Vec::new()));
    }
    let mut tx = s.begin().await.map_err(db)?;
    let (room, joins) = insert_room(&mut tx, n, vec![a, b]).await?;
    // The pair's primary key decides: a concurrent creator's row makes this
    // insert wait for its commit, then do nothing.
    let claimed = sqlx::query(
        "INSERT INTO direct_rooms (user_lo, user_hi, room_id) VALUES ($1, $2, $3) \
         ON CONFLICT (user_lo, user_hi) DO NOTHING",
    )
    .bind(lo)
    .bind(hi)
    .bind(room.id)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        > 0;
    if !claimed {
        tx.rollback().await.map_err(db)?;
        let won = direct_room_of(s, lo, hi).await?.ok_or_else(|| {
            StoreError::Backend(anyhow::anyhow!("direct room of {lo} and {hi} vanished"))
        })?;
        return Ok((won, false, Vec::new()));
    }
    tx.commit().await.map_err(db)?;
    Ok((room, true, joins))
}

pub(super) async fn direct_pair(s: S<'_>, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
    sqlx::query_as("SELECT user_lo, user_hi FROM direct_rooms WHERE room_id = $1")
        .bind(room)
        .fetch_optional(s)
        .await
        .map_err(db)
}
