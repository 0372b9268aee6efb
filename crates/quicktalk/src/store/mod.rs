//! Durable storage behind one narrow trait, [`Store`], with one module per backend.
//!
//! The store owns users, rooms, memberships with read cursors, and messages. It is
//! also the authority for message sequencing: [`Store::append`] assigns each room's
//! next `seq` inside the same transaction that stores the message, so `seq` is
//! gapless whatever writes it, and a batch is one transaction (one fsync).
//! Registered users' names are also kept as confusable skeletons
//! ([`crate::confusables::skeleton`]), one indexed row per distinct skeleton, so
//! whether a name impersonates someone is one lookup ([`Store::name_owner`]).
//! The same contract test suite (`tests/store_contract/`) runs against every backend:
//! `sqlite` (embedded, one node) and `postgres` (shared by any number of nodes).

pub mod media;
pub mod moderation;
pub mod people;
pub mod postgres;
pub mod push;
pub mod room_scan;
pub mod search;
pub mod sqlite;

use async_trait::async_trait;

use crate::model::{
    AppendRejected, Appended, HistoryQuery, Media, Message, MessageId, NewMessage, Role, Room,
    RoomId, RoomKind, RoomPolicy, User, UserId, UserRef, Visibility,
};
use media::Upload;
use moderation::{Ban, Deleted, QueueItem, QueueQuery, Resolved};
use people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use push::{NotifyLevel, PushSubscription, PushTarget};
use search::{SearchPage, SearchQuery};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("username is already taken")]
    UsernameTaken,
    /// A new registered user's username or display name has the confusable
    /// skeleton of another registered user's name.
    #[error("name looks like another user's name")]
    NameTaken,
    #[error("storage failure: {0}")]
    Backend(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user to create. `username`/`password_hash` are `None` for guests.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Option<String>,
    pub password_hash: Option<String>,
    pub display_name: String,
    pub guest: bool,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: String,
    pub visibility: Visibility,
    pub kind: RoomKind,
    pub created_by: UserId,
    /// Random chats are always [`RoomPolicy::Strict`].
    pub moderation: RoomPolicy,
}

/// The distinct skeletons a new registered user's names take (none for a guest).
pub fn user_skeletons(user: &NewUser) -> Vec<String> {
    if user.guest {
        return Vec::new();
    }
    let mut out: Vec<String> = user
        .username
        .iter()
        .chain([&user.display_name])
        .map(|n| crate::confusables::skeleton(n))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A report of one user by another, from a room they shared.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub room_id: RoomId,
    pub reporter: UserId,
    pub reported: UserId,
    pub reason: String,
}

/// A report of one stored message, for the moderators' queue (kind `report`).
#[derive(Debug, Clone)]
pub struct NewMessageReport {
    pub message_id: MessageId,
    pub room_id: RoomId,
    /// The message's sender.
    pub subject: UserId,
    pub reporter: UserId,
    pub reason: String,
}

/// Which rooms a listing shows, and where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomListQuery {
    /// Only these kinds; empty = every kind.
    pub kinds: Vec<RoomKind>,
    /// Whether closed rooms (ended random chats) are listed.
    pub include_ended: bool,
    /// Only rooms after this one in listing order: its (last activity, id).
    pub before: Option<(i64, RoomId)>,
    pub limit: usize,
}

impl RoomListQuery {
    /// The SQL condition for the kind and ended filters (no user input inside:
    /// kinds are rendered from the enum).
    pub fn filter_sql(&self) -> String {
        let mut sql = String::new();
        if !self.kinds.is_empty() {
            let kinds: Vec<String> = self
                .kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            sql.push_str(&format!(" AND r.kind IN ({})", kinds.join(", ")));
        }
        if !self.include_ended {
            sql.push_str(" AND r.closed_at IS NULL");
        }
        sql
    }
}

/// A listed room's place in listing order: (last activity, id).
pub fn list_position(room: &Room) -> (i64, RoomId) {
    (room.last_message_at.unwrap_or(room.created_at), room.id)
}

/// A room together with the caller's membership, for listings.
#[derive(Debug, Clone)]
pub struct RoomWithUnread {
    pub room: Room,
    /// `Some(unread)` when the caller is a member.
    pub unread: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a user; `UsernameTaken` if the username exists (case-insensitive).
    /// A registered user's names are recorded as skeletons in the same transaction:
    /// `NameTaken` if another registered user holds one of them (guests hold none).
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// The registered user whose username or display name has this confusable
    /// `skeleton`, if any.
    async fn name_owner(&self, skeleton: &str) -> StoreResult<Option<UserId>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user and their password hash, looked up case-insensitively.
    async fn credentials(&self, username: &str) -> StoreResult<Option<(User, String)>>;

    /// Creates a room with no members (membership comes with the `join` message).
    async fn create_room(&self, room: NewRoom) -> StoreResult<Room>;
    /// Creates a room with `members` already joined, in one transaction: each gets
    /// a `join` message (seq 1, 2, …), returned in order.
    async fn create_room_with(
        &self,
        room: NewRoom,
        members: Vec<UserRef>,
    ) -> StoreResult<(Room, Vec<Message>)>;
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>>;
    /// Public group rooms and the rooms `user` is a member of, most recently active
    /// first (ties: higher id first), filtered and paged by `q`; and whether more follow.
    async fn list_rooms(
        &self,
        user: UserId,
        q: &RoomListQuery,
    ) -> StoreResult<(Vec<RoomWithUnread>, bool)>;
    /// The first `limit` rooms of [`list_rooms`](Self::list_rooms), every kind,
    /// ended random chats included.
    async fn rooms_for(&self, user: UserId, limit: usize) -> StoreResult<Vec<RoomWithUnread>> {
        let q = RoomListQuery {
            kinds: Vec::new(),
            include_ended: true,
            before: None,
            limit,
        };
        Ok(self.list_rooms(user, &q).await?.0)
    }
    async fn is_member(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
    /// Every member, in join order.
    async fn members(&self, room: RoomId) -> StoreResult<Vec<User>>;
    /// Messages of kind `text`/`system` from others with `seq` above the read cursor;
    /// `None` if `user` is not a member.
    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Option<i64>>;
    /// Moves the read cursor forward to `seq` (clamped to the room's `last_seq`; never
    /// backwards). Returns the new unread count, `None` if not a member.
    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<Option<i64>>;

    /// Sequences and stores a batch in one transaction, in order. For each item:
    /// `text`/`system` need membership in a room that is not closed; `join` adds the membership (and sets the read
    /// cursor to the join message) unless already a member; `leave` removes it unless
    /// not a member. A repeated `client_id` (same room and sender) returns the stored
    /// original. Nothing is acknowledged before the transaction is durable.
    async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>>;
    /// Closes a room to new `text`/`system` messages (an ended random chat): an
    /// append after this returns [`AppendRejected::RoomClosed`], checked inside the
    /// storing transaction. Members stay and can still read. Returns whether the
    /// room was open.
    async fn close_room(&self, room: RoomId) -> StoreResult<bool>;
    /// Closes every open room of `kind` (at start-up, random chats whose match
    /// lived only in the memory of the process that ended). Returns how many.
    async fn close_open_rooms(&self, kind: RoomKind) -> StoreResult<u64>;
    /// Stores a report, and queues it for the moderators (a `moderation_queue`
    /// row of kind `report` with no message) in the same transaction; the two
    /// users are never matched again. Returns the queue row's id.
    async fn add_report(&self, report: NewReport) -> StoreResult<i64>;
    /// The users `user` must never be matched with: those they reported or were
    /// reported by, and those they block or are blocked by; newest first, at most `limit`.
    async fn match_avoid(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>>;

    /// A page of history ascending by `seq`, and whether more exist beyond it
    /// (older ones for a "newest"/`before_seq` page, newer ones for an `after_seq` page).
    async fn messages(&self, room: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)>;

    // ---- Moderation: roles, the review queue, bans, deleting messages ----
    // (issue 11 part 4, contract §5; the records are in `moderation`)

    /// One message by id.
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Sets the role of the registered user named `username` (case-insensitive,
    /// as at login). The user as it is now; `None` if there is no such user.
    async fn set_role(&self, username: &str, role: Role) -> StoreResult<Option<User>>;
    /// A page of the review queue (oldest first, by id) and whether more follow.
    async fn moderation_queue(&self, q: QueueQuery) -> StoreResult<(Vec<QueueItem>, bool)>;
    async fn queue_item(&self, id: i64) -> StoreResult<Option<QueueItem>>;
    /// Resolves an open item at `at` (ms) by `by` (`None`: automatically), with
    /// an optional note; an item resolved before is left as it was.
    async fn resolve_queue_item(
        &self,
        id: i64,
        by: Option<UserId>,
        note: Option<String>,
        at: i64,
    ) -> StoreResult<Resolved>;
    /// Bans `user` until `until` (ms; [`crate::model::BAN_FOREVER`] = until
    /// lifted) for `reason`, replacing any earlier ban. The user as it is now;
    /// `None` if there is no such user.
    async fn set_ban(&self, user: UserId, until: i64, reason: &str) -> StoreResult<Option<User>>;
    /// Lifts `user`'s ban (if any). The user as it is now; `None` if unknown.
    async fn clear_ban(&self, user: UserId) -> StoreResult<Option<User>>;
    /// `user`'s ban as stored, expired or not; `None` if none (or no such user).
    async fn ban(&self, user: UserId) -> StoreResult<Option<Ban>>;
    /// The bans in force at `now` (ms), by user id, at most `limit`.
    async fn bans(&self, now: i64, limit: usize) -> StoreResult<Vec<Ban>>;
    /// Turns a `text` or `system` message into a tombstone: kind `deleted`, text
    /// empty, not masked; id, room, `seq`, sender and time kept.
    async fn delete_message(&self, id: MessageId) -> StoreResult<Deleted>;
    // ---- Moderation in the message path (issue 11 part 3: room policy,
    // message reports, strikes). Kept together at the end of the trait. ----

    /// Sets a room's moderation policy; `false` if there is no such room.
    async fn set_room_moderation(&self, room: RoomId, policy: RoomPolicy) -> StoreResult<bool>;
    /// Queues a report of one message (kind `report`) and returns its queue id.
    /// One per reporter and message, by a uniqueness rule: a repeat adds nothing
    /// and returns the first report's id.
    async fn report_message(&self, report: NewMessageReport) -> StoreResult<i64>;
    /// Records a strike against `user` at `at` (ms): a message of theirs was blocked.
    async fn add_strike(&self, user: UserId, at: i64) -> StoreResult<()>;
    /// How many strikes `user` has at or after `since` (ms).
    async fn strikes_since(&self, user: UserId, since: i64) -> StoreResult<u32>;
    /// The times (ms) of `user`'s newest `limit` strikes, newest first.
    async fn last_strikes(&self, user: UserId, limit: u32) -> StoreResult<Vec<i64>>;

    // ---- Media (issue 12, contract §6; the records are in `media`). A message's
    // attachments are stored by `append` (rows of which message carries which
    // file, in order) and read back with the message everywhere messages are
    // read (`messages`, `message`, a duplicate's original). A tombstone
    // (`delete_message`) drops its message's attachments. ----

    /// Records an uploaded file whose bytes are already stored.
    async fn create_media(&self, media: Media) -> StoreResult<()>;
    /// One file's record.
    async fn media(&self, id: &str) -> StoreResult<Option<Media>>;
    /// Total `size` of every file `owner` uploaded (attached or not): the quota.
    async fn media_usage(&self, owner: UserId) -> StoreResult<u64>;
    /// May `user` read file `id`: its uploader, or someone who may read a room
    /// (public, or private and a member) with a message carrying it.
    async fn can_read_media(&self, id: &str, user: UserId) -> StoreResult<bool>;
    /// Files carried by no message and created before `before` (ms), oldest
    /// first, at most `limit`: the grace-period cleanup's candidates.
    async fn unattached_media(&self, before: i64, limit: usize) -> StoreResult<Vec<Media>>;
    /// Deletes file `id`'s record if no message carries it (checked in the same
    /// statement, so an attachment stored meanwhile wins); whether it was deleted.
    async fn delete_unattached_media(&self, id: &str) -> StoreResult<bool>;
    /// Starts a resumable upload (`offset` 0, no parts).
    async fn create_upload(&self, upload: Upload) -> StoreResult<()>;
    async fn upload(&self, id: &str) -> StoreResult<Option<Upload>>;
    /// Records one more stored piece: the upload moves from offset `from` to `to`
    /// with `part` appended to its parts, at `at` (ms) — only if its offset is
    /// still `from` (a compare-and-set: of two concurrent pieces one wins).
    /// Whether it moved.
    async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        part: &str,
        at: i64,
    ) -> StoreResult<bool>;
    /// Forgets an upload (finished or abandoned); whether there was one.
    async fn delete_upload(&self, id: &str) -> StoreResult<bool>;
    /// Uploads whose `updated_at` is before `before` (ms), oldest first, at most `limit`.
    async fn stale_uploads(&self, before: i64, limit: usize) -> StoreResult<Vec<Upload>>;

    // ---- People (issue 13, contract §7; the records are in `people`): profiles,
    // guest upgrade, friends, blocks, direct rooms. ----

    /// Applies `patch` to `user`: the user as it is now and the avatar id it had
    /// before (so its objects can be deleted); `None` if there is no such user.
    async fn update_profile(
        &self,
        user: UserId,
        patch: ProfilePatch,
    ) -> StoreResult<Option<(User, Option<String>)>>;
    /// The registered user with this username (case-insensitive, as at login).
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The users with these ids that exist, in id order.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// Turns guest `user` into a registered user in place (same id, rooms and
    /// history): sets username and password hash, records the skeletons of the
    /// username and display name, and bumps `token_epoch` so the guest's tokens
    /// stop working — one transaction. `UsernameTaken`/`NameTaken` as for
    /// `create_user`; `None` if there is no such guest.
    async fn upgrade_guest(
        &self,
        user: UserId,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<Option<User>>;

    /// `from` asks `to` to be friends at `at` (ms). At most one request per
    /// pair is pending, by a uniqueness rule.
    async fn friend_request(&self, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk>;
    /// The pending requests `user` sent or received, oldest first.
    async fn friend_requests(&self, user: UserId) -> StoreResult<Vec<FriendRequest>>;
    /// `by` answers request `id` at `at` (ms); accepting makes the two friends
    /// in the same transaction.
    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        answer: FriendAnswer,
        at: i64,
    ) -> StoreResult<Answered>;
    /// `user`'s friends' ids, in id order.
    async fn friends(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    /// Ends a friendship; whether there was one.
    async fn remove_friend(&self, a: UserId, b: UserId) -> StoreResult<bool>;

    /// `blocker` blocks `blocked` at `at` (ms); in the same transaction any
    /// friendship between them ends and their pending requests are cancelled.
    /// Whether the block is new.
    async fn block_user(&self, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool>;
    /// Whether there was a block to lift.
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool>;
    /// The users `blocker` blocks, newest first.
    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>>;
    /// Whether either of the two blocks the other.
    async fn blocked_between(&self, a: UserId, b: UserId) -> StoreResult<bool>;

    /// The one direct room of `a` and `b`: created (with both joined, as
    /// `create_room_with` does) when there is none — a uniqueness rule on the
    /// pair decides between concurrent creators, the losers get the winner's
    /// room. Whether it was created here, and the join messages if so.
    async fn direct_room(
        &self,
        room: NewRoom,
        a: UserRef,
        b: UserRef,
    ) -> StoreResult<(Room, bool, Vec<Message>)>;
    /// The two users of direct room `room` (lower id first); `None` if it is not one.
    async fn direct_pair(&self, room: RoomId) -> StoreResult<Option<(UserId, UserId)>>;

    // ---- Push notifications (issue 14, contract §8; the records are in `push`). ----

    /// Records a subscription (an endpoint already known moves to this user,
    /// with the new keys); then the user's oldest beyond the newest `keep` are
    /// removed — one transaction.
    async fn add_push_subscription(&self, sub: PushSubscription, keep: usize) -> StoreResult<()>;
    /// Removes the subscription with this endpoint (only if it is `user`'s,
    /// when given); whether there was one.
    async fn remove_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> StoreResult<bool>;
    /// `user`'s subscriptions, oldest first.
    async fn push_subscriptions(&self, user: UserId) -> StoreResult<Vec<PushSubscription>>;
    /// `user`'s level for `room`; `None` puts back the room kind's default.
    async fn set_notification_level(
        &self,
        user: UserId,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()>;
    /// The level `user` chose for `room`, if any.
    async fn notification_level(
        &self,
        user: UserId,
        room: RoomId,
    ) -> StoreResult<Option<NotifyLevel>>;
    /// The members of `room` with at least one push subscription, with their
    /// chosen level (one indexed query).
    async fn push_targets(&self, room: RoomId) -> StoreResult<Vec<PushTarget>>;

    // ---- Search (issue 15, contract §9; the records and the matching rule
    // are in `search`). The index is kept by `append` and `delete_message` in
    // their own transactions, so what is acknowledged is searchable. ----

    /// A page of `text` messages whose [`search::fold`] contains `q.text`, in
    /// the query's scope, from senders `q.user` does not block, with an id
    /// below `q.before`; newest (highest id) first, at most `q.limit`, and
    /// whether more may follow. Tombstones are never found.
    async fn search(&self, q: SearchQuery) -> StoreResult<SearchPage>;
}
