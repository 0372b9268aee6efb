//! People on PostgreSQL (contract §7): profile updates, the guest upgrade, friend
//! requests and friendships, blocks, direct rooms. PLACEHOLDER: the bodies are
//! being written (issue 13).

use crate::model::{Message, Room, RoomId, User, UserId, UserRef};
use crate::store::people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use crate::store::{NewRoom, StoreResult};

type S<'a> = &'a sqlx::PgPool;

pub(super) async fn update_profile(
    s: S<'_>,
    user: UserId,
    patch: ProfilePatch,
) -> StoreResult<Option<(User, Option<String>)>> {
    unimplemented!("{s:p} {user} {patch:?}")
}

pub(super) async fn user_by_username(s: S<'_>, username: &str) -> StoreResult<Option<User>> {
    unimplemented!("{s:p} {username}")
}

pub(super) async fn users(s: S<'_>, ids: &[UserId]) -> StoreResult<Vec<User>> {
    unimplemented!("{s:p} {ids:?}")
}

pub(super) async fn upgrade_guest(
    s: S<'_>,
    user: UserId,
    username: &str,
    password_hash: &str,
) -> StoreResult<Option<User>> {
    unimplemented!("{s:p} {user} {username} {password_hash}")
}

pub(super) async fn friend_request(s: S<'_>, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk> {
    unimplemented!("{s:p} {from} {to} {at}")
}

pub(super) async fn friend_requests(s: S<'_>, user: UserId) -> StoreResult<Vec<FriendRequest>> {
    unimplemented!("{s:p} {user}")
}

pub(super) async fn answer_friend_request(
    s: S<'_>,
    id: i64,
    by: UserId,
    answer: FriendAnswer,
    at: i64,
) -> StoreResult<Answered> {
    unimplemented!("{s:p} {id} {by} {answer:?} {at}")
}

pub(super) async fn friends(s: S<'_>, user: UserId) -> StoreResult<Vec<UserId>> {
    unimplemented!("{s:p} {user}")
}

pub(super) async fn are_friends(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    unimplemented!("{s:p} {a} {b}")
}

pub(super) async fn remove_friend(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    unimplemented!("{s:p} {a} {b}")
}

pub(super) async fn block_user(s: S<'_>, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool> {
    unimplemented!("{s:p} {blocker} {blocked} {at}")
}

pub(super) async fn unblock_user(s: S<'_>, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
    unimplemented!("{s:p} {blocker} {blocked}")
}

pub(super) async fn blocked_by(s: S<'_>, blocker: UserId) -> StoreResult<Vec<UserId>> {
    unimplemented!("{s:p} {blocker}")
}

pub(super) async fn blocked_between(s: S<'_>, a: UserId, b: UserId) -> StoreResult<bool> {
    unimplemented!("{s:p} {a} {b}")
}

pub(super) async fn direct_room(
    s: S<'_>,
    room: NewRoom,
    a: UserRef,
    b: UserRef,
) -> StoreResult<(Room, bool, Vec<Message>)> {
    unimplemented!("{s:p} {room:?} {a:?} {b:?}")
}

pub(super) async fn direct_pair(s: S<'_>, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
    unimplemented!("{s:p} {room}")
}
