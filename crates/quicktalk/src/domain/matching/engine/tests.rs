//! The local engine never holds its lock across room creation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::*;
use crate::model::{AppendRejected, Appended, HistoryQuery, Media, Message, NewMessage, User};
use crate::store::media::Upload;
use crate::store::people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use crate::store::sqlite::{SqliteStore, Synchronous};
use crate::store::{NewReport, NewUser, RoomListQuery, RoomWithUnread, StoreResult};

/// A store whose room creation waits until released, as behind a busy writer.
struct SlowRooms {
    inner: SqliteStore,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Store for SlowRooms {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        self.inner.create_user(u).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.inner.user(id).await
    }
    async fn name_owner(&self, skeleton: &str) -> StoreResult<Option<UserId>> {
        self.inner.name_owner(skeleton).await
    }
    async fn credentials(&self, u: &str) -> StoreResult<Option<(User, String)>> {
        self.inner.credentials(u).await
    }
    async fn create_room(&self, r: NewRoom) -> StoreResult<Room> {
        self.inner.create_room(r).await
    }
    async fn create_room_with(
        &self,
        r: NewRoom,
        m: Vec<UserRef>,
    ) -> StoreResult<(Room, Vec<Message>)> {
        self.entered.notify_one();
        self.release.notified().await;
        self.inner.create_room_with(r, m).await
    }
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.inner.room(id).await
    }
    async fn list_rooms(
        &self,
        u: UserId,
        q: &RoomListQuery,
    ) -> StoreResult<(Vec<RoomWithUnread>, bool)> {
        self.inner.list_rooms(u, q).await
    }
    async fn is_member(&self, r: RoomId, u: UserId) -> StoreResult<bool> {
        self.inner.is_member(r, u).await
    }
    async fn members(&self, r: RoomId) -> StoreResult<Vec<User>> {
        self.inner.members(r).await
    }
    async fn unread(&self, r: RoomId, u: UserId) -> StoreResult<Option<i64>> {
        self.inner.unread(r, u).await
    }
    async fn mark_read(&self, r: RoomId, u: UserId, s: i64) -> StoreResult<Option<i64>> {
        self.inner.mark_read(r, u, s).await
    }
    async fn append(
        &self,
        b: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        self.inner.append(b).await
    }
    async fn close_room(&self, r: RoomId) -> StoreResult<bool> {
        self.inner.close_room(r).await
    }
    async fn close_open_rooms(&self, k: RoomKind) -> StoreResult<u64> {
        self.inner.close_open_rooms(k).await
    }
    async fn add_report(&self, r: NewReport) -> StoreResult<i64> {
        self.inner.add_report(r).await
    }
    async fn match_avoid(&self, u: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        self.inner.match_avoid(u, limit).await
    }
    async fn messages(&self, r: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)> {
        self.inner.messages(r, q).await
    }
    // ---- Moderation: roles, the review queue, bans, deleting messages ----
    async fn message(&self, id: crate::model::MessageId) -> StoreResult<Option<Message>> {
        self.inner.message(id).await
    }
    async fn set_role(
        &self,
        username: &str,
        role: crate::model::Role,
    ) -> StoreResult<Option<User>> {
        self.inner.set_role(username, role).await
    }
    async fn moderation_queue(
        &self,
        q: crate::store::moderation::QueueQuery,
    ) -> StoreResult<(Vec<crate::store::moderation::QueueItem>, bool)> {
        self.inner.moderation_queue(q).await
    }
    async fn queue_item(
        &self,
        id: i64,
    ) -> StoreResult<Option<crate::store::moderation::QueueItem>> {
        self.inner.queue_item(id).await
    }
    async fn resolve_queue_item(
        &self,
        id: i64,
        by: Option<UserId>,
        note: Option<String>,
        at: i64,
    ) -> StoreResult<crate::store::moderation::Resolved> {
        self.inner.resolve_queue_item(id, by, note, at).await
    }
    async fn set_ban(&self, user: UserId, until: i64, reason: &str) -> StoreResult<Option<User>> {
        self.inner.set_ban(user, until, reason).await
    }
    async fn clear_ban(&self, user: UserId) -> StoreResult<Option<User>> {
        self.inner.clear_ban(user).await
    }
    async fn ban(&self, user: UserId) -> StoreResult<Option<crate::store::moderation::Ban>> {
        self.inner.ban(user).await
    }
    async fn bans(
        &self,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<crate::store::moderation::Ban>> {
        self.inner.bans(now, limit).await
    }
    async fn delete_message(
        &self,
        id: crate::model::MessageId,
    ) -> StoreResult<crate::store::moderation::Deleted> {
        self.inner.delete_message(id).await
    }
    // ---- Moderation in the message path (issue 11 part 3) ----
    async fn set_room_moderation(
        &self,
        room: RoomId,
        policy: crate::model::RoomPolicy,
    ) -> StoreResult<bool> {
        self.inner.set_room_moderation(room, policy).await
    }
    async fn report_message(&self, report: crate::store::NewMessageReport) -> StoreResult<i64> {
        self.inner.report_message(report).await
    }
    async fn add_strike(&self, user: UserId, at: i64) -> StoreResult<()> {
        self.inner.add_strike(user, at).await
    }
    async fn strikes_since(&self, user: UserId, since: i64) -> StoreResult<u32> {
        self.inner.strikes_since(user, since).await
    }
    async fn last_strikes(&self, user: UserId, limit: u32) -> StoreResult<Vec<i64>> {
        self.inner.last_strikes(user, limit).await
    }

    async fn create_media(&self, m: Media) -> StoreResult<()> {
        self.inner.create_media(m).await
    }
    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        self.inner.media(id).await
    }
    async fn media_usage(&self, owner: UserId) -> StoreResult<u64> {
        self.inner.media_usage(owner).await
    }
    async fn can_read_media(&self, id: &str, user: UserId) -> StoreResult<bool> {
        self.inner.can_read_media(id, user).await
    }
    async fn unattached_media(&self, before: i64, limit: usize) -> StoreResult<Vec<Media>> {
        self.inner.unattached_media(before, limit).await
    }
    async fn delete_unattached_media(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_unattached_media(id).await
    }
    async fn create_upload(&self, u: Upload) -> StoreResult<()> {
        self.inner.create_upload(u).await
    }
    async fn upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        self.inner.upload(id).await
    }
    async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        part: &str,
        at: i64,
    ) -> StoreResult<bool> {
        self.inner.advance_upload(id, from, to, part, at).await
    }
    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_upload(id).await
    }
    async fn stale_uploads(&self, before: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        self.inner.stale_uploads(before, limit).await
    }
    async fn update_profile(
        &self,
        user: UserId,
        patch: ProfilePatch,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        self.inner.update_profile(user, patch).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.inner.user_by_username(username).await
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        self.inner.users(ids).await
    }
    async fn upgrade_guest(
        &self,
        user: UserId,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<Option<User>> {
        self.inner
            .upgrade_guest(user, username, password_hash)
            .await
    }
    async fn friend_request(&self, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk> {
        self.inner.friend_request(from, to, at).await
    }
    async fn friend_requests(&self, user: UserId) -> StoreResult<Vec<FriendRequest>> {
        self.inner.friend_requests(user).await
    }
    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        answer: FriendAnswer,
        at: i64,
    ) -> StoreResult<Answered> {
        self.inner.answer_friend_request(id, by, answer, at).await
    }
    async fn friends(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.inner.friends(user).await
    }
    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.inner.are_friends(a, b).await
    }
    async fn remove_friend(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.inner.remove_friend(a, b).await
    }
    async fn block_user(&self, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool> {
        self.inner.block_user(blocker, blocked, at).await
    }
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.inner.unblock_user(blocker, blocked).await
    }
    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        self.inner.blocked_by(blocker).await
    }
    async fn blocked_between(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.inner.blocked_between(a, b).await
    }
    async fn direct_room(
        &self,
        room: NewRoom,
        a: UserRef,
        b: UserRef,
    ) -> StoreResult<(Room, bool, Vec<Message>)> {
        self.inner.direct_room(room, a, b).await
    }
    async fn direct_pair(&self, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
        self.inner.direct_pair(room).await
    }

    async fn add_push_subscription(
        &self,
        sub: crate::store::push::PushSubscription,
        keep: usize,
    ) -> StoreResult<()> {
        self.inner.add_push_subscription(sub, keep).await
    }

    async fn remove_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> StoreResult<bool> {
        self.inner.remove_push_subscription(endpoint, user).await
    }

    async fn push_subscriptions(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<crate::store::push::PushSubscription>> {
        self.inner.push_subscriptions(user).await
    }

    async fn set_notification_level(
        &self,
        user: UserId,
        room: RoomId,
        level: Option<crate::store::push::NotifyLevel>,
    ) -> StoreResult<()> {
        self.inner.set_notification_level(user, room, level).await
    }

    async fn notification_level(
        &self,
        user: UserId,
        room: RoomId,
    ) -> StoreResult<Option<crate::store::push::NotifyLevel>> {
        self.inner.notification_level(user, room).await
    }

    async fn push_targets(&self, room: RoomId) -> StoreResult<Vec<crate::store::push::PushTarget>> {
        self.inner.push_targets(room).await
    }

    async fn search(
        &self,
        q: crate::store::search::SearchQuery,
    ) -> StoreResult<crate::store::search::SearchPage> {
        self.inner.search(q).await
    }
}

async fn guest(s: &SlowRooms, name: &str) -> UserRef {
    let u = s
        .create_user(NewUser {
            username: None,
            password_hash: None,
            display_name: name.into(),
            guest: true,
        })
        .await
        .unwrap();
    u.as_ref()
}

#[tokio::test]
async fn sockets_and_reads_do_not_wait_for_a_pairs_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SlowRooms {
        inner: SqliteStore::open(&dir.path().join("t.db"), Synchronous::Normal).unwrap(),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let (a, b, c) = (
        guest(&store, "a").await,
        guest(&store, "b").await,
        guest(&store, "c").await,
    );
    let engine = Arc::new(
        LocalMatchEngine::new(MatcherConfig::default(), store.clone())
            .await
            .unwrap(),
    );
    engine.connect(&a, Prefs::default()).await.unwrap();
    let e = engine.clone();
    let b2 = b.clone();
    let pairing = tokio::spawn(async move { e.connect(&b2, Prefs::default()).await });
    store.entered.notified().await;
    // The pair's room is being created: everyone else carries on.
    tokio::time::timeout(Duration::from_secs(1), async {
        engine.online(c.id).await;
        engine.offline(c.id).await;
        engine.connect(&c, Prefs::default()).await.unwrap();
        engine.queue_len().await
    })
    .await
    .expect("the matcher's lock was held across room creation");
    // Reserved, not announced: the pair has no room yet.
    assert!(matches!(
        engine.state(a.id).await,
        State::Matched { room: None, .. }
    ));
    store.release.notify_one();
    let out = pairing.await.unwrap().unwrap();
    let room = out
        .iter()
        .find_map(|o| match o {
            Outcome::Found { room, .. } => Some(*room),
            _ => None,
        })
        .expect("found after the room exists");
    assert!(store.is_member(room, a.id).await.unwrap());
    assert_eq!(
        engine.state(b.id).await,
        State::Matched {
            partner: a.clone(),
            room: Some(room)
        }
    );
}

#[tokio::test]
async fn a_pair_that_ends_while_its_room_is_made_is_never_announced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SlowRooms {
        inner: SqliteStore::open(&dir.path().join("t.db"), Synchronous::Normal).unwrap(),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let (a, b) = (guest(&store, "a").await, guest(&store, "b").await);
    let engine = Arc::new(
        LocalMatchEngine::new(MatcherConfig::default(), store.clone())
            .await
            .unwrap(),
    );
    engine.connect(&a, Prefs::default()).await.unwrap();
    let e = engine.clone();
    let b2 = b.clone();
    let pairing = tokio::spawn(async move { e.connect(&b2, Prefs::default()).await });
    store.entered.notified().await;
    engine.disconnect(&a).await.unwrap();
    store.release.notify_one();
    let out = pairing.await.unwrap().unwrap();
    assert!(
        !out.iter().any(|o| matches!(o, Outcome::Found { .. })),
        "{out:?}"
    );
    assert_eq!(engine.state(a.id).await, State::Idle);
    // The room made for nobody is closed.
    let (rooms, _) = store
        .list_rooms(
            a.id,
            &RoomListQuery {
                kinds: vec![RoomKind::Random],
                include_ended: true,
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(rooms.len(), 1);
    assert!(rooms[0].room.closed_at.is_some());
}
