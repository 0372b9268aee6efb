//! People on SQLite (contract §7): profile updates, the guest upgrade, friend
//! requests and friendships, blocks, direct rooms. Reads run on a pooled
//! reader, writes on the writer thread (callers in `mod.rs`); a write that can
//! fail on a name returns its [`StoreError`] inside the `rusqlite` result, so
//! the transaction is dropped (rolled back) before it reaches the caller.
//! Pairs are kept lower id first ([`pair`]).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::writer::{insert_room, Writer};
use super::{is_unique, media::json_ids, room_row, user_row, ROOM_COLS, USER_COLS};
use crate::confusables::skeleton;
use crate::model::{Message, Room, RoomId, User, UserId, UserRef};
use crate::store::people::{
    pair, Answered, FriendAnswer, FriendAsk, FriendRequest, FriendRequestStatus, ProfilePatch,
};
use crate::store::{user_skeletons, NewRoom, NewUser, StoreError, StoreResult};

/// What [`update_profile`] returns: the user now and the avatar it had before.
type Updated = Option<(User, Option<String>)>;

const REQUEST_COLS: &str = "id, from_id, to_id, status, created_at";

fn request_row(r: &Row<'_>) -> rusqlite::Result<FriendRequest> {
    let status: String = r.get(3)?;
    Ok(FriendRequest {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        status: FriendRequestStatus::parse(&status).ok_or_else(|| super::bad_enum(3, &status))?,
        created_at: r.get(4)?,
    })
}

fn user(c: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    c.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()
}

/// Records `skeleton` as `user`'s unless it is already theirs; `false` if
/// another user holds it.
fn claim_skeleton(c: &Connection, skeleton: &str, user: UserId) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "INSERT INTO name_skeletons (skeleton, user_id) VALUES (?1, ?2) \
         ON CONFLICT (skeleton) DO NOTHING",
    )?
    .execute(params![skeleton, user])?;
    let owner: UserId = c
        .prepare_cached("SELECT user_id FROM name_skeletons WHERE skeleton = ?1")?
        .query_row([skeleton], |r| r.get(0))?;
    Ok(owner == user)
}

pub(super) fn update_profile(
    c: &mut Connection,
    id: UserId,
    patch: ProfilePatch,
) -> rusqlite::Result<StoreResult<Updated>> {
    let tx = c.transaction()?;
    let Some(before) = user(&tx, id)? else {
        return Ok(Ok(None));
    };
    if let Some(name) = &patch.display_name {
        if !before.guest {
            let (old, new) = (skeleton(&before.display_name), skeleton(name));
            let username = before.username.as_deref().map(skeleton);
            if old != new {
                if username.as_ref() != Some(&old) {
                    tx.prepare_cached(
                        "DELETE FROM name_skeletons WHERE skeleton = ?1 AND user_id = ?2",
                    )?
                    .execute(params![old, id])?;
                }
                if username.as_ref() != Some(&new) && !claim_skeleton(&tx, &new, id)? {
                    return Ok(Err(StoreError::NameTaken));
                }
            }
        }
    }
    let display_name = patch.display_name.unwrap_or(before.display_name.clone());
    let status = patch
        .status_message
        .unwrap_or(before.status_message.clone());
    let avatar = patch.avatar.unwrap_or(before.avatar.clone());
    let dm_policy = patch.dm_policy.unwrap_or(before.dm_policy);
    tx.prepare_cached(
        "UPDATE users SET display_name = ?2, status_message = ?3, avatar = ?4, dm_policy = ?5 \
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        display_name,
        status,
        avatar,
        dm_policy.as_str()
    ])?;
    let now = user(&tx, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    tx.commit()?;
    Ok(Ok(Some((now, before.avatar))))
}

pub(super) fn user_by_username(c: &Connection, username: &str) -> rusqlite::Result<Option<User>> {
    // `users.username` is `COLLATE NOCASE`, as `credentials` compares it.
    c.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE username = ?1 AND guest = 0"
    ))?
    .query_row([username], user_row)
    .optional()
}

pub(super) fn users(c: &Connection, ids: &[UserId]) -> rusqlite::Result<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    c.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
    ))?
    .query_map([json_ids(ids)], user_row)?
    .collect()
}

pub(super) fn upgrade_guest(
    c: &mut Connection,
    id: UserId,
    username: &str,
    password_hash: &str,
) -> rusqlite::Result<StoreResult<Option<User>>> {
    let tx = c.transaction()?;
    let Some(guest) = user(&tx, id)?.filter(|u| u.guest) else {
        return Ok(Ok(None));
    };
    let updated = tx
        .prepare_cached(
            "UPDATE users SET username = ?2, password_hash = ?3, guest = 0, \
             token_epoch = token_epoch + 1 WHERE id = ?1 AND guest = 1",
        )?
        .execute(params![id, username, password_hash]);
    match updated {
        Err(e) if is_unique(&e) => return Ok(Err(StoreError::UsernameTaken)),
        other => other?,
    };
    let names = NewUser {
        username: Some(username.to_owned()),
        password_hash: None,
        display_name: guest.display_name,
        guest: false,
    };
    for sk in user_skeletons(&names) {
        let inserted = tx
            .prepare_cached("INSERT INTO name_skeletons (skeleton, user_id) VALUES (?1, ?2)")?
            .execute(params![sk, id]);
        match inserted {
            Err(e) if is_unique(&e) => return Ok(Err(StoreError::NameTaken)),
            other => other?,
        };
    }
    let now = user(&tx, id)?;
    tx.commit()?;
    Ok(Ok(now))
}

fn blocked(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT 1 FROM blocks WHERE (blocker = ?1 AND blocked = ?2) OR (blocker = ?2 AND blocked = ?1)",
    )?
    .exists(params![a, b])
}

fn befriended(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    let (lo, hi) = pair(a, b);
    c.prepare_cached("SELECT 1 FROM friendships WHERE user_lo = ?1 AND user_hi = ?2")?
        .exists(params![lo, hi])
}

fn befriend(c: &Connection, a: UserId, b: UserId, at: i64) -> rusqlite::Result<()> {
    let (lo, hi) = pair(a, b);
    c.prepare_cached(
        "INSERT INTO friendships (user_lo, user_hi, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_lo, user_hi) DO NOTHING",
    )?
    .execute(params![lo, hi, at])?;
    Ok(())
}

/// The pending request between `a` and `b`, whichever sent it.
fn pending_between(
    c: &Connection,
    a: UserId,
    b: UserId,
) -> rusqlite::Result<Option<FriendRequest>> {
    c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM friend_requests WHERE status = 'pending' \
         AND ((from_id = ?1 AND to_id = ?2) OR (from_id = ?2 AND to_id = ?1))"
    ))?
    .query_row(params![a, b], request_row)
    .optional()
}

/// Moves pending request `id` to `status` at `at`; whether it was pending.
fn answer(c: &Connection, id: i64, status: FriendRequestStatus, at: i64) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE friend_requests SET status = ?2, answered_at = ?3 \
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, status.as_str(), at])?;
    Ok(n > 0)
}

pub(super) fn friend_request(
    c: &mut Connection,
    from: UserId,
    to: UserId,
    at: i64,
) -> rusqlite::Result<StoreResult<FriendAsk>> {
    if from == to {
        return Ok(Err(StoreError::Backend(anyhow::anyhow!(
            "a user cannot ask themselves to be friends"
        ))));
    }
    // The writer thread is the only writer, so the unique index never fires
    // here; it is the rule all the same (and what PostgreSQL relies on).
    let tx = c.transaction()?;
    let asked = if blocked(&tx, from, to)? {
        FriendAsk::Blocked
    } else if befriended(&tx, from, to)? {
        FriendAsk::AlreadyFriends
    } else {
        match pending_between(&tx, from, to)? {
            Some(mut theirs) if theirs.from == to => {
                answer(&tx, theirs.id, FriendRequestStatus::Accepted, at)?;
                befriend(&tx, from, to, at)?;
                theirs.status = FriendRequestStatus::Accepted;
                FriendAsk::Accepted(theirs)
            }
            Some(mine) => FriendAsk::Repeated(mine),
            None => {
                tx.prepare_cached(
                    "INSERT INTO friend_requests (from_id, to_id, status, created_at) \
                     VALUES (?1, ?2, 'pending', ?3)",
                )?
                .execute(params![from, to, at])?;
                FriendAsk::Created(FriendRequest {
                    id: tx.last_insert_rowid(),
                    from,
                    to,
                    status: FriendRequestStatus::Pending,
                    created_at: at,
                })
            }
        }
    };
    tx.commit()?;
    Ok(Ok(asked))
}

pub(super) fn friend_requests(
    c: &Connection,
    user: UserId,
) -> rusqlite::Result<Vec<FriendRequest>> {
    c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM friend_requests \
         WHERE status = 'pending' AND (from_id = ?1 OR to_id = ?1) ORDER BY created_at, id"
    ))?
    .query_map([user], request_row)?
    .collect()
}

pub(super) fn answer_friend_request(
    c: &mut Connection,
    id: i64,
    by: UserId,
    given: FriendAnswer,
    at: i64,
) -> rusqlite::Result<Answered> {
    let tx = c.transaction()?;
    let found = tx
        .prepare_cached(&format!(
            "SELECT {REQUEST_COLS} FROM friend_requests WHERE id = ?1"
        ))?
        .query_row([id], request_row)
        .optional()?;
    let Some(mut req) = found else {
        return Ok(Answered::NotFound);
    };
    let (allowed, status) = match given {
        FriendAnswer::Accept => (by == req.to, FriendRequestStatus::Accepted),
        FriendAnswer::Decline => (by == req.to, FriendRequestStatus::Declined),
        FriendAnswer::Cancel => (by == req.from, FriendRequestStatus::Cancelled),
    };
    if !allowed {
        return Ok(Answered::NotFound);
    }
    if req.status != FriendRequestStatus::Pending || !answer(&tx, id, status, at)? {
        return Ok(Answered::NotPending(req));
    }
    if status == FriendRequestStatus::Accepted {
        befriend(&tx, req.from, req.to, at)?;
    }
    tx.commit()?;
    req.status = status;
    Ok(Answered::Done(req))
}

pub(super) fn friends(c: &Connection, user: UserId) -> rusqlite::Result<Vec<UserId>> {
    c.prepare_cached(
        "SELECT user_hi FROM friendships WHERE user_lo = ?1 \
         UNION ALL SELECT user_lo FROM friendships WHERE user_hi = ?1 ORDER BY 1",
    )?
    .query_map([user], |r| r.get(0))?
    .collect()
}

pub(super) fn are_friends(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    befriended(c, a, b)
}

pub(super) fn remove_friend(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    let (lo, hi) = pair(a, b);
    let n = c
        .prepare_cached("DELETE FROM friendships WHERE user_lo = ?1 AND user_hi = ?2")?
        .execute(params![lo, hi])?;
    Ok(n > 0)
}

pub(super) fn block_user(
    c: &mut Connection,
    blocker: UserId,
    blocked: UserId,
    at: i64,
) -> rusqlite::Result<bool> {
    let tx = c.transaction()?;
    let new = tx
        .prepare_cached(
            "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (blocker, blocked) DO NOTHING",
        )?
        .execute(params![blocker, blocked, at])?
        > 0;
    remove_friend(&tx, blocker, blocked)?;
    tx.prepare_cached(
        "UPDATE friend_requests SET status = 'cancelled', answered_at = ?3 WHERE status = 'pending' \
         AND ((from_id = ?1 AND to_id = ?2) OR (from_id = ?2 AND to_id = ?1))",
    )?
    .execute(params![blocker, blocked, at])?;
    tx.commit()?;
    Ok(new)
}

pub(super) fn unblock_user(
    c: &Connection,
    blocker: UserId,
    blocked: UserId,
) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached("DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2")?
        .execute(params![blocker, blocked])?;
    Ok(n > 0)
}

pub(super) fn blocked_by(c: &Connection, blocker: UserId) -> rusqlite::Result<Vec<UserId>> {
    c.prepare_cached(
        "SELECT blocked FROM blocks WHERE blocker = ?1 ORDER BY created_at DESC, blocked DESC",
    )?
    .query_map([blocker], |r| r.get(0))?
    .collect()
}

pub(super) fn blocked_between(c: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    blocked(c, a, b)
}

/// The direct room of the pair `(lo, hi)`, if it has one.
fn direct_room_of(c: &Connection, lo: UserId, hi: UserId) -> rusqlite::Result<Option<Room>> {
    c.prepare_cached(&format!(
        "SELECT {ROOM_COLS} FROM direct_rooms d JOIN rooms r ON r.id = d.room_id \
         WHERE d.user_lo = ?1 AND d.user_hi = ?2"
    ))?
    .query_row(params![lo, hi], room_row)
    .optional()
}

pub(super) fn direct_room(
    w: &mut Writer,
    n: NewRoom,
    a: UserRef,
    b: UserRef,
) -> rusqlite::Result<StoreResult<(Room, bool, Vec<Message>)>> {
    if a.id == b.id {
        return Ok(Err(StoreError::Backend(anyhow::anyhow!(
            "a direct room needs two different users"
        ))));
    }
    let (lo, hi) = pair(a.id, b.id);
    if let Some(room) = direct_room_of(&w.conn, lo, hi)? {
        return Ok(Ok((room, false, Vec::new())));
    }
    let tx = w.conn.transaction()?;
    let (room, joins) = insert_room(&tx, n, vec![a, b])?;
    let claimed = tx
        .prepare_cached("INSERT INTO direct_rooms (user_lo, user_hi, room_id) VALUES (?1, ?2, ?3)")?
        .execute(params![lo, hi, room.id]);
    match claimed {
        Err(e) if is_unique(&e) => {
            // Another creator's room won: drop this one.
            tx.rollback()?;
            let won =
                direct_room_of(&w.conn, lo, hi)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            return Ok(Ok((won, false, Vec::new())));
        }
        other => other?,
    };
    tx.commit()?;
    w.remember_room(&room, &joins);
    Ok(Ok((room, true, joins)))
}

pub(super) fn direct_pair(
    c: &Connection,
    room: RoomId,
) -> rusqlite::Result<Option<(UserId, UserId)>> {
    c.prepare_cached("SELECT user_lo, user_hi FROM direct_rooms WHERE room_id = ?1")?
        .query_row([room], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}
