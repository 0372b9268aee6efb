//! The message pipeline under a faulty store (a `Store` wrapper injected with
//! `Application::build_with_store`): a poisoned message is rejected alone and
//! never stalls later ones; a failed or panicking commit answers
//! `outcome_unknown` (no RECEIPT); a panicking sequencer is restarted, and
//! `/healthz` answers 503 once it stays down.

use std::sync::Arc;

use async_trait::async_trait;
use quicktalk::model::{
    AppendRejected, Appended, HistoryQuery, Media, Message, NewMessage, Room, RoomId, RoomKind,
    User, UserId, UserRef,
};
use quicktalk::store::media::Upload;
use quicktalk::store::people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use quicktalk::store::{
    NewReport, NewRoom, NewUser, RoomListQuery, RoomWithUnread, Store, StoreResult,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_no_receipt, next_error, say, spawn_app_wrapping_store, TestApp};

/// Delegates to the real store, except for `append` items whose text holds a
/// marker: `[nul]` is replaced by a NUL byte (what validation keeps out),
/// `[fail]` fails the whole batch, `[panic]` panics.
struct FaultStore(Arc<dyn Store>);

#[async_trait]
impl Store for FaultStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.0.create_user(user).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.0.user(id).await
    }
    async fn name_owner(&self, skeleton: &str) -> StoreResult<Option<UserId>> {
        self.0.name_owner(skeleton).await
    }
    async fn credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        self.0.credentials(username).await
    }
    async fn create_room(&self, room: NewRoom) -> StoreResult<Room> {
        self.0.create_room(room).await
    }
    async fn create_room_with(
        &self,
        room: NewRoom,
        members: Vec<UserRef>,
    ) -> StoreResult<(Room, Vec<Message>)> {
        self.0.create_room_with(room, members).await
    }
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.0.room(id).await
    }
    async fn list_rooms(
        &self,
        user: UserId,
        q: &RoomListQuery,
    ) -> StoreResult<(Vec<RoomWithUnread>, bool)> {
        self.0.list_rooms(user, q).await
    }
    async fn close_room(&self, room: RoomId) -> StoreResult<bool> {
        self.0.close_room(room).await
    }
    async fn close_open_rooms(&self, kind: RoomKind) -> StoreResult<u64> {
        self.0.close_open_rooms(kind).await
    }
    async fn rooms_for(&self, user: UserId, limit: usize) -> StoreResult<Vec<RoomWithUnread>> {
        self.0.rooms_for(user, limit).await
    }
    async fn is_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        self.0.is_member(room, user).await
    }
    async fn members(&self, room: RoomId) -> StoreResult<Vec<User>> {
        self.0.members(room).await
    }
    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Option<i64>> {
        self.0.unread(room, user).await
    }
    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<Option<i64>> {
        self.0.mark_read(room, user, seq).await
    }
    async fn append(
        &self,
        mut batch: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        for m in &mut batch {
            if m.text.contains("[panic]") {
                panic!("injected: the store panics");
            }
            if m.text.contains("[fail]") {
                return Err(anyhow::anyhow!("injected: the commit fails").into());
            }
            m.text = m.text.replace("[nul]", "\0");
        }
        self.0.append(batch).await
    }
    async fn add_report(&self, report: NewReport) -> StoreResult<i64> {
        self.0.add_report(report).await
    }
    async fn match_avoid(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        self.0.match_avoid(user, limit).await
    }
    async fn messages(&self, room: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)> {
        self.0.messages(room, q).await
    }
    // ---- Moderation: roles, the review queue, bans, deleting messages ----
    async fn message(&self, id: quicktalk::model::MessageId) -> StoreResult<Option<Message>> {
        self.0.message(id).await
    }
    async fn set_role(
        &self,
        username: &str,
        role: quicktalk::model::Role,
    ) -> StoreResult<Option<User>> {
        self.0.set_role(username, role).await
    }
    async fn moderation_queue(
        &self,
        q: quicktalk::store::moderation::QueueQuery,
    ) -> StoreResult<(Vec<quicktalk::store::moderation::QueueItem>, bool)> {
        self.0.moderation_queue(q).await
    }
    async fn queue_item(
        &self,
        id: i64,
    ) -> StoreResult<Option<quicktalk::store::moderation::QueueItem>> {
        self.0.queue_item(id).await
    }
    async fn resolve_queue_item(
        &self,
        id: i64,
        by: Option<UserId>,
        note: Option<String>,
        at: i64,
    ) -> StoreResult<quicktalk::store::moderation::Resolved> {
        self.0.resolve_queue_item(id, by, note, at).await
    }
    async fn set_ban(&self, user: UserId, until: i64, reason: &str) -> StoreResult<Option<User>> {
        self.0.set_ban(user, until, reason).await
    }
    async fn clear_ban(&self, user: UserId) -> StoreResult<Option<User>> {
        self.0.clear_ban(user).await
    }
    async fn ban(&self, user: UserId) -> StoreResult<Option<quicktalk::store::moderation::Ban>> {
        self.0.ban(user).await
    }
    async fn bans(
        &self,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<quicktalk::store::moderation::Ban>> {
        self.0.bans(now, limit).await
    }
    async fn delete_message(
        &self,
        id: quicktalk::model::MessageId,
    ) -> StoreResult<quicktalk::store::moderation::Deleted> {
        self.0.delete_message(id).await
    }
    // ---- Moderation in the message path (issue 11 part 3) ----
    async fn set_room_moderation(
        &self,
        room: RoomId,
        policy: quicktalk::model::RoomPolicy,
    ) -> StoreResult<bool> {
        self.0.set_room_moderation(room, policy).await
    }
    async fn report_message(&self, report: quicktalk::store::NewMessageReport) -> StoreResult<i64> {
        self.0.report_message(report).await
    }
    async fn add_strike(&self, user: UserId, at: i64) -> StoreResult<()> {
        self.0.add_strike(user, at).await
    }
    async fn strikes_since(&self, user: UserId, since: i64) -> StoreResult<u32> {
        self.0.strikes_since(user, since).await
    }
    async fn last_strikes(&self, user: UserId, limit: u32) -> StoreResult<Vec<i64>> {
        self.0.last_strikes(user, limit).await
    }

    async fn create_media(&self, m: Media) -> StoreResult<()> {
        self.0.create_media(m).await
    }
    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        self.0.media(id).await
    }
    async fn media_usage(&self, owner: UserId) -> StoreResult<u64> {
        self.0.media_usage(owner).await
    }
    async fn can_read_media(&self, id: &str, user: UserId) -> StoreResult<bool> {
        self.0.can_read_media(id, user).await
    }
    async fn unattached_media(&self, before: i64, limit: usize) -> StoreResult<Vec<Media>> {
        self.0.unattached_media(before, limit).await
    }
    async fn delete_unattached_media(&self, id: &str) -> StoreResult<bool> {
        self.0.delete_unattached_media(id).await
    }
    async fn create_upload(&self, u: Upload) -> StoreResult<()> {
        self.0.create_upload(u).await
    }
    async fn upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        self.0.upload(id).await
    }
    async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        part: &str,
        at: i64,
    ) -> StoreResult<bool> {
        self.0.advance_upload(id, from, to, part, at).await
    }
    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        self.0.delete_upload(id).await
    }
    async fn stale_uploads(&self, before: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        self.0.stale_uploads(before, limit).await
    }
    async fn update_profile(
        &self,
        user: UserId,
        patch: ProfilePatch,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        self.0.update_profile(user, patch).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.0.user_by_username(username).await
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        self.0.users(ids).await
    }
    async fn upgrade_guest(
        &self,
        user: UserId,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<Option<User>> {
        self.0.upgrade_guest(user, username, password_hash).await
    }
    async fn friend_request(&self, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk> {
        self.0.friend_request(from, to, at).await
    }
    async fn friend_requests(&self, user: UserId) -> StoreResult<Vec<FriendRequest>> {
        self.0.friend_requests(user).await
    }
    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        answer: FriendAnswer,
        at: i64,
    ) -> StoreResult<Answered> {
        self.0.answer_friend_request(id, by, answer, at).await
    }
    async fn friends(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.0.friends(user).await
    }
    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.0.are_friends(a, b).await
    }
    async fn remove_friend(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.0.remove_friend(a, b).await
    }
    async fn block_user(&self, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool> {
        self.0.block_user(blocker, blocked, at).await
    }
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.0.unblock_user(blocker, blocked).await
    }
    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        self.0.blocked_by(blocker).await
    }
    async fn blocked_between(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.0.blocked_between(a, b).await
    }
    async fn direct_room(
        &self,
        room: NewRoom,
        a: UserRef,
        b: UserRef,
    ) -> StoreResult<(Room, bool, Vec<Message>)> {
        self.0.direct_room(room, a, b).await
    }
    async fn direct_pair(&self, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
        self.0.direct_pair(room).await
    }

    async fn add_push_subscription(
        &self,
        sub: quicktalk::store::push::PushSubscription,
        keep: usize,
    ) -> StoreResult<()> {
        self.0.add_push_subscription(sub, keep).await
    }

    async fn remove_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> StoreResult<bool> {
        self.0.remove_push_subscription(endpoint, user).await
    }

    async fn push_subscriptions(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<quicktalk::store::push::PushSubscription>> {
        self.0.push_subscriptions(user).await
    }

    async fn set_notification_level(
        &self,
        user: UserId,
        room: RoomId,
        level: Option<quicktalk::store::push::NotifyLevel>,
    ) -> StoreResult<()> {
        self.0.set_notification_level(user, room, level).await
    }

    async fn notification_level(
        &self,
        user: UserId,
        room: RoomId,
    ) -> StoreResult<Option<quicktalk::store::push::NotifyLevel>> {
        self.0.notification_level(user, room).await
    }

    async fn push_targets(
        &self,
        room: RoomId,
    ) -> StoreResult<Vec<quicktalk::store::push::PushTarget>> {
        self.0.push_targets(room).await
    }

    async fn search(
        &self,
        q: quicktalk::store::search::SearchQuery,
    ) -> StoreResult<quicktalk::store::search::SearchPage> {
        self.0.search(q).await
    }
}

async fn faulty_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_wrapping_store(dir, |_| {}, |s| Arc::new(FaultStore(s))).await
}

async fn healthz(app: &TestApp) -> StatusCode {
    app.http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_poisoned_message_is_rejected_alone_and_never_stalls_later_ones() {
    let app = faulty_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut c = app.stomp_with_errors(&alice).await;
    let dest = format!("/app/rooms.{room}");
    // Pipelined: the poisoned one shares a batch with its neighbours.
    for (r, text) in [("1", "before"), ("2", "poi[nul]son"), ("3", "after")] {
        c.send_json(&dest, &json!({ "text": text }), Some(r))
            .await
            .unwrap();
    }
    c.expect_receipt("1").await.unwrap();
    c.expect_receipt("3").await.unwrap();
    let e = next_error(&mut c, "errs").await;
    assert_eq!(e["code"], "unstorable");
    assert_eq!(e["receipt_id"], "2");
    assert_no_receipt(&mut c, "2").await;
    for i in 0..5 {
        say(&mut c, room, &format!("later {i}")).await;
    }
    let history = app.history(&alice, room).await;
    let texts: Vec<_> = history
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["", "before", "after", "later 0", "later 1", "later 2", "later 3", "later 4"]
    );
    let seqs: Vec<_> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_failed_commit_is_outcome_unknown_without_a_receipt() {
    let app = faulty_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut c = app.stomp_with_errors(&alice).await;
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "x [fail]", "client_id": "c1"}),
        Some("f"),
    )
    .await
    .unwrap();
    let e = next_error(&mut c, "errs").await;
    assert_eq!(e["code"], "outcome_unknown");
    assert_eq!(e["receipt_id"], "f");
    assert_no_receipt(&mut c, "f").await;
    say(&mut c, room, "still works").await;
}

#[tokio::test]
async fn a_panicking_sequencer_is_restarted_and_its_messages_are_outcome_unknown() {
    let app = faulty_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut c = app.stomp_with_errors(&alice).await;
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "boom [panic]", "client_id": "p1"}),
        Some("p"),
    )
    .await
    .unwrap();
    let e = next_error(&mut c, "errs").await;
    assert_eq!(e["code"], "outcome_unknown");
    assert_eq!(e["receipt_id"], "p");
    assert_no_receipt(&mut c, "p").await;
    // The restarted sequencer takes messages again; health says so.
    say(&mut c, room, "after the panic").await;
    assert_eq!(healthz(&app).await, StatusCode::OK);
    let history = app.history(&alice, room).await;
    assert_eq!(history.last().unwrap()["text"], "after the panic");
}

#[tokio::test]
async fn healthz_is_503_while_the_pipeline_is_down() {
    let app = faulty_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    assert_eq!(healthz(&app).await, StatusCode::OK);
    let mut c = app.stomp_with_errors(&alice).await;
    // Every commit panics: after MAX_RESTARTS panics in a row the pipeline stays down.
    let dest = format!("/app/rooms.{room}");
    for i in 0..quicktalk::domain::pipeline::MAX_RESTARTS {
        c.send_json(&dest, &json!({ "text": format!("{i} [panic]") }), None)
            .await
            .unwrap();
        let e = next_error(&mut c, "errs").await;
        assert_eq!(e["code"], "outcome_unknown", "{e}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(healthz(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    // A message after that is refused at once, not left hanging.
    c.send_json(&dest, &json!({"text": "anyone?"}), Some("late"))
        .await
        .unwrap();
    let e = next_error(&mut c, "errs").await;
    assert_eq!(e["code"], "unavailable");
    assert_eq!(e["receipt_id"], "late");
    assert_no_receipt(&mut c, "late").await;
}
