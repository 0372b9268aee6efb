//! Backend-independent checks of the `Store` trait.

use std::sync::Arc;

use quicktalk::confusables::skeleton;
use quicktalk::model::{
    AppendRejected, Appended, HistoryQuery, MessageKind, NewMessage, RoomKind, UserRef, Visibility,
};
use quicktalk::store::{NewRoom, NewUser, Store, StoreError};

pub(crate) type S = Arc<dyn Store>;

pub(crate) async fn user(s: &S, name: &str) -> UserRef {
    let u = s
        .create_user(NewUser {
            username: Some(name.into()),
            password_hash: Some("hash".into()),
            display_name: format!("{name}!"),
            guest: false,
        })
        .await
        .unwrap();
    u.as_ref()
}

pub(crate) async fn room(s: &S, by: &UserRef, vis: Visibility) -> i64 {
    s.create_room(NewRoom {
        name: "room".into(),
        visibility: vis,
        kind: RoomKind::Group,
        created_by: by.id,
        moderation: quicktalk::model::RoomPolicy::Standard,
    })
    .await
    .unwrap()
    .id
}

pub(crate) fn msg(
    room: i64,
    who: &UserRef,
    kind: MessageKind,
    text: &str,
    client_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        room_id: room,
        kind,
        sender: who.clone(),
        text: text.into(),
        client_id: client_id.map(Into::into),
        sent_at: 1_700_000_000_000,
        moderation: Default::default(),
        attachments: vec![],
    }
}

pub(crate) fn text(room: i64, who: &UserRef, t: &str) -> NewMessage {
    msg(room, who, MessageKind::Text, t, None)
}

pub(crate) async fn join(s: &S, room: i64, who: &UserRef) -> i64 {
    match s
        .append(vec![msg(room, who, MessageKind::Join, "", None)])
        .await
        .unwrap()
        .remove(0)
    {
        Ok(Appended::New(m)) => m.seq,
        other => panic!("join: {other:?}"),
    }
}

fn seq_of(r: &Result<Appended, AppendRejected>) -> i64 {
    match r {
        Ok(Appended::New(m)) | Ok(Appended::Duplicate(m)) => m.seq,
        other => panic!("not stored: {other:?}"),
    }
}

pub async fn users_are_unique_case_insensitively(s: S) {
    let a = user(&s, "Alice").await;
    let err = s
        .create_user(NewUser {
            username: Some("aLICE".into()),
            password_hash: Some("x".into()),
            display_name: "x".into(),
            guest: false,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UsernameTaken));
    let (found, hash) = s.credentials("ALICE").await.unwrap().unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(found.username.as_deref(), Some("Alice"));
    assert_eq!(hash, "hash");
    assert!(s.credentials("bob").await.unwrap().is_none());
    assert_eq!(s.user(a.id).await.unwrap().unwrap().display_name, "Alice!");
    assert!(s.user(a.id + 1000).await.unwrap().is_none());
}

pub async fn guests_have_no_username(s: S) {
    for _ in 0..3 {
        let g = s
            .create_user(NewUser {
                username: None,
                password_hash: None,
                display_name: "손님".into(),
                guest: true,
            })
            .await
            .unwrap();
        assert!(g.guest);
        assert_eq!(g.username, None);
        assert_eq!(s.user(g.id).await.unwrap().unwrap(), g);
    }
}

pub async fn rooms_start_empty(s: S) {
    let a = user(&s, "alice").await;
    let id = room(&s, &a, Visibility::Public).await;
    let r = s.room(id).await.unwrap().unwrap();
    assert_eq!((r.last_seq, r.member_count), (0, 0));
    assert_eq!(r.kind, RoomKind::Group);
    assert_eq!(r.visibility, Visibility::Public);
    assert!(s.room(id + 100).await.unwrap().is_none());
    assert!(!s.is_member(id, a.id).await.unwrap());
}

pub async fn join_and_leave_change_membership(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let id = room(&s, &a, Visibility::Public).await;
    assert_eq!(join(&s, id, &a).await, 1);
    assert_eq!(join(&s, id, &b).await, 2);
    let again = s
        .append(vec![msg(id, &b, MessageKind::Join, "", None)])
        .await
        .unwrap();
    assert_eq!(again, vec![Ok(Appended::Unchanged)]);
    assert!(s.is_member(id, b.id).await.unwrap());
    assert_eq!(s.room(id).await.unwrap().unwrap().member_count, 2);
    let left = s
        .append(vec![msg(id, &b, MessageKind::Leave, "", None)])
        .await
        .unwrap();
    assert_eq!(seq_of(&left[0]), 3);
    let again = s
        .append(vec![msg(id, &b, MessageKind::Leave, "", None)])
        .await
        .unwrap();
    assert_eq!(again, vec![Ok(Appended::Unchanged)]);
    assert!(!s.is_member(id, b.id).await.unwrap());
    let r = s.room(id).await.unwrap().unwrap();
    assert_eq!((r.member_count, r.last_seq), (1, 3));
    assert!(r.last_message_at.is_some());
}

pub async fn text_needs_membership_and_a_room(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let id = room(&s, &a, Visibility::Public).await;
    join(&s, id, &a).await;
    let out = s
        .append(vec![
            text(id, &b, "no"),
            text(id + 99, &a, "no"),
            text(id, &a, "yes"),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], Err(AppendRejected::NotMember));
    assert_eq!(out[1], Err(AppendRejected::RoomNotFound));
    assert_eq!(seq_of(&out[2]), 2, "rejected items use no seq");
}

pub async fn seq_is_gapless_per_room_within_and_across_batches(s: S) {
    let a = user(&s, "alice").await;
    let r1 = room(&s, &a, Visibility::Public).await;
    let r2 = room(&s, &a, Visibility::Private).await;
    join(&s, r1, &a).await;
    join(&s, r2, &a).await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.push(text(if i % 3 == 0 { r2 } else { r1 }, &a, &format!("{i}")));
    }
    let out = s.append(batch).await.unwrap();
    let r1_seqs: Vec<i64> = out
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, r)| seq_of(r))
        .collect();
    let r2_seqs: Vec<i64> = out
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(_, r)| seq_of(r))
        .collect();
    assert_eq!(r1_seqs, (2..2 + r1_seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(r2_seqs, (2..2 + r2_seqs.len() as i64).collect::<Vec<_>>());
    let next = s.append(vec![text(r1, &a, "next")]).await.unwrap();
    assert_eq!(seq_of(&next[0]), 2 + r1_seqs.len() as i64);
    assert_eq!(
        s.room(r1).await.unwrap().unwrap().last_seq,
        seq_of(&next[0])
    );
    // Concurrent appenders still produce one gapless sequence.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let s = s.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.append(vec![text(r2, &a, &format!("{t}-{i}"))])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (all, more) = s
        .messages(
            r2,
            HistoryQuery {
                before_seq: None,
                after_seq: Some(0),
                limit: 200,
            },
        )
        .await
        .unwrap();
    assert!(!more);
    let seqs: Vec<i64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>());
    assert_eq!(all.len(), 1 + r2_seqs.len() + 100);
}

pub async fn client_id_deduplicates_per_sender_and_room(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let id = room(&s, &a, Visibility::Public).await;
    join(&s, id, &a).await;
    join(&s, id, &b).await;
    let out = s
        .append(vec![
            msg(id, &a, MessageKind::Text, "first", Some("k")),
            msg(id, &a, MessageKind::Text, "second", Some("k")),
            msg(id, &b, MessageKind::Text, "bob", Some("k")),
        ])
        .await
        .unwrap();
    let Ok(Appended::New(first)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(out[1], Ok(Appended::Duplicate(first.clone())));
    assert_eq!(seq_of(&out[2]), first.seq + 1);
    let later = s
        .append(vec![msg(id, &a, MessageKind::Text, "third", Some("k"))])
        .await
        .unwrap();
    assert_eq!(later[0], Ok(Appended::Duplicate(first.clone())));
    assert_eq!(s.room(id).await.unwrap().unwrap().last_seq, first.seq + 1);
}

pub async fn history_pages(s: S) {
    let a = user(&s, "alice").await;
    let id = room(&s, &a, Visibility::Public).await;
    join(&s, id, &a).await;
    let batch: Vec<_> = (0..29).map(|i| text(id, &a, &format!("m{i}"))).collect();
    s.append(batch).await.unwrap();
    let q = |before, after, limit| HistoryQuery {
        before_seq: before,
        after_seq: after,
        limit,
    };
    let seqs = |v: &[quicktalk::model::Message]| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    let (p, more) = s.messages(id, q(None, None, 10)).await.unwrap();
    assert_eq!(seqs(&p), (21..=30).collect::<Vec<_>>());
    assert!(more);
    let (p, more) = s.messages(id, q(Some(5), None, 10)).await.unwrap();
    assert_eq!(seqs(&p), [1, 2, 3, 4]);
    assert!(!more);
    let (p, more) = s.messages(id, q(None, Some(25), 10)).await.unwrap();
    assert_eq!(seqs(&p), [26, 27, 28, 29, 30]);
    assert!(!more);
    let (p, more) = s.messages(id, q(Some(20), Some(10), 5)).await.unwrap();
    assert_eq!(seqs(&p), [11, 12, 13, 14, 15]);
    assert!(more);
    assert_eq!(p[0].text, "m9");
    assert_eq!(p[0].kind, MessageKind::Text);
    assert_eq!(p[0].sender, a);
    let (p, more) = s.messages(id + 7, q(None, None, 10)).await.unwrap();
    assert!(p.is_empty() && !more);
}

pub async fn listing_shows_public_and_own_rooms_with_unread(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let public = room(&s, &a, Visibility::Public).await;
    let mine = room(&s, &b, Visibility::Private).await;
    let theirs = room(&s, &a, Visibility::Private).await;
    join(&s, public, &a).await;
    join(&s, mine, &b).await;
    join(&s, theirs, &a).await;
    join(&s, public, &b).await;
    s.append(vec![
        text(public, &a, "1"),
        text(public, &a, "2"),
        text(public, &b, "mine"),
    ])
    .await
    .unwrap();
    let listed = s.rooms_for(b.id, 100).await.unwrap();
    let ids: Vec<i64> = listed.iter().map(|r| r.room.id).collect();
    assert!(ids.contains(&public) && ids.contains(&mine) && !ids.contains(&theirs));
    let unread = listed.iter().find(|r| r.room.id == public).unwrap().unread;
    assert_eq!(unread, Some(2), "others' texts after bob's join");
    let c = user(&s, "carol").await;
    let listed = s.rooms_for(c.id, 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].unread, None);
    // Most recently active first.
    s.append(vec![text(mine, &b, "latest")]).await.unwrap();
    let listed = s.rooms_for(b.id, 100).await.unwrap();
    assert_eq!(listed[0].room.id, mine);
}

pub async fn read_cursor_is_clamped_and_monotonic(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let id = room(&s, &a, Visibility::Public).await;
    join(&s, id, &a).await;
    join(&s, id, &b).await;
    let batch: Vec<_> = (0..5).map(|i| text(id, &a, &format!("{i}"))).collect();
    s.append(batch).await.unwrap();
    assert_eq!(s.unread(id, b.id).await.unwrap(), Some(5));
    assert_eq!(s.mark_read(id, b.id, 4).await.unwrap(), Some(3));
    assert_eq!(
        s.mark_read(id, b.id, 2).await.unwrap(),
        Some(3),
        "never backwards"
    );
    assert_eq!(s.mark_read(id, b.id, 999).await.unwrap(), Some(0));
    s.append(vec![text(id, &a, "new")]).await.unwrap();
    assert_eq!(
        s.unread(id, b.id).await.unwrap(),
        Some(1),
        "clamped to last_seq at the time"
    );
    let c = user(&s, "carol").await;
    assert_eq!(s.mark_read(id, c.id, 3).await.unwrap(), None);
    assert_eq!(s.unread(id, c.id).await.unwrap(), None);
}

pub async fn members_in_join_order(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let id = room(&s, &a, Visibility::Public).await;
    for u in [&b, &a, &c] {
        join(&s, id, u).await;
    }
    let m = s.members(id).await.unwrap();
    let names: Vec<_> = m.iter().map(|u| u.display_name.as_str()).collect();
    assert_eq!(names, ["bob!", "alice!", "carol!"]);
    assert_eq!(m[1].username.as_deref(), Some("alice"));
    assert!(m.iter().all(|u| !u.guest));
}

fn guest_user(name: &str) -> NewUser {
    NewUser {
        username: None,
        password_hash: None,
        display_name: name.into(),
        guest: true,
    }
}

/// A registered user's username and display name are held as confusable
/// skeletons: a look-alike finds its owner in one lookup, and a second
/// registered user cannot take one (the whole sign-up is undone). Guests hold none.
pub async fn registered_names_are_held_as_skeletons(s: S) {
    let a = user(&s, "alice").await;
    for look_alike in ["alice", "ALICE", "\u{410}lice", "a1ice", "Alice!"] {
        let sk = skeleton(look_alike);
        assert_eq!(
            s.name_owner(&sk).await.unwrap(),
            Some(a.id),
            "{look_alike:?}"
        );
    }
    assert_eq!(s.name_owner(&skeleton("bob")).await.unwrap(), None);
    let err = s
        .create_user(NewUser {
            username: Some("mallory".into()),
            password_hash: Some("x".into()),
            display_name: "\u{410}lice".into(),
            guest: false,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken), "{err:?}");
    assert!(s.credentials("mallory").await.unwrap().is_none());
    assert_eq!(s.name_owner(&skeleton("mallory")).await.unwrap(), None);
    // The same name for both of one's own names is fine.
    let b = s
        .create_user(NewUser {
            username: Some("Bob".into()),
            password_hash: Some("x".into()),
            display_name: "bob".into(),
            guest: false,
        })
        .await
        .unwrap();
    assert_eq!(s.name_owner(&skeleton("BOB")).await.unwrap(), Some(b.id));
    let g = s.create_user(guest_user("carol")).await.unwrap();
    assert!(g.guest);
    assert_eq!(s.name_owner(&skeleton("carol")).await.unwrap(), None);
}

/// A message remembers whether its sender was a guest: live (the appended
/// message), in history, and for the joins of a room created with members.
pub async fn messages_keep_the_senders_guest_status(s: S) {
    let a = user(&s, "alice").await;
    let g = s.create_user(guest_user("Alice")).await.unwrap().as_ref();
    assert!(g.guest && !a.guest);
    let (room, joins) = s
        .create_room_with(
            NewRoom {
                name: "pair".into(),
                visibility: Visibility::Private,
                kind: RoomKind::Random,
                created_by: a.id,
                moderation: quicktalk::model::RoomPolicy::Standard,
            },
            vec![a.clone(), g.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        joins.iter().map(|m| m.sender.guest).collect::<Vec<_>>(),
        [false, true]
    );
    let out = s
        .append(vec![text(room.id, &g, "hi"), text(room.id, &a, "hello")])
        .await
        .unwrap();
    let live: Vec<bool> = out
        .iter()
        .map(|o| match o {
            Ok(Appended::New(m)) => m.sender.guest,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(live, [true, false]);
    let q = HistoryQuery {
        before_seq: None,
        after_seq: None,
        limit: 10,
    };
    let (history, _) = s.messages(room.id, q).await.unwrap();
    let guests: Vec<(i64, bool)> = history.iter().map(|m| (m.seq, m.sender.guest)).collect();
    assert_eq!(guests, [(1, false), (2, true), (3, true), (4, false)]);
    let members = s.members(room.id).await.unwrap();
    assert_eq!(members[1].username, None);
    assert!(members[1].guest);
}

pub async fn membership_changes_apply_within_a_batch(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let id = room(&s, &a, Visibility::Public).await;
    join(&s, id, &a).await;
    join(&s, id, &b).await;
    // Bob is known to be a member (a text of his was stored), then leaves and
    // tries again in the same batch; Carol joins and talks in one batch.
    s.append(vec![text(id, &b, "hi")]).await.unwrap();
    let c = user(&s, "carol").await;
    let out = s
        .append(vec![
            text(id, &b, "still here"),
            msg(id, &b, MessageKind::Leave, "", None),
            text(id, &b, "gone"),
            msg(id, &c, MessageKind::Join, "", None),
            text(id, &c, "hello"),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0], Ok(Appended::New(_))));
    assert!(matches!(out[1], Ok(Appended::New(_))));
    assert_eq!(out[2], Err(AppendRejected::NotMember));
    assert!(matches!(out[3], Ok(Appended::New(_))));
    assert!(matches!(out[4], Ok(Appended::New(_))));
    // And across batches.
    let out = s
        .append(vec![text(id, &b, "later"), text(id, &c, "later")])
        .await
        .unwrap();
    assert_eq!(out[0], Err(AppendRejected::NotMember));
    assert!(matches!(out[1], Ok(Appended::New(_))));
}

/// Two writers (two nodes on one database, or two callers of one store) appending
/// to the same rooms at once: every seq 1..=N once per room, nothing lost.
/// An item the database refuses (NUL in `text`, which PostgreSQL cannot hold; a
/// join by a user that does not exist) is rejected on its own: the rest of the
/// batch is stored, in order, with gapless `seq`, and the room takes more after.
pub async fn a_poisoned_item_is_rejected_alone(s: S) {
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    let ghost = UserRef {
        id: 987_654_321,
        name: "ghost".into(),
        guest: false,
    };
    let out = s
        .append(vec![
            text(r, &a, "one"),
            text(r, &a, "poison\0ed"),
            text(r, &a, "two"),
            msg(r, &ghost, MessageKind::Join, "", None),
            text(r, &a, "three"),
        ])
        .await
        .expect("a poisoned item must not fail the batch");
    assert_eq!(out[1], Err(AppendRejected::Unstorable));
    assert_eq!(out[3], Err(AppendRejected::Unstorable));
    let seqs: Vec<i64> = [&out[0], &out[2], &out[4]]
        .into_iter()
        .map(seq_of)
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    let later = s.append(vec![text(r, &a, "four")]).await.unwrap();
    assert_eq!(seq_of(&later[0]), 5);
    let q = HistoryQuery {
        before_seq: None,
        after_seq: None,
        limit: 50,
    };
    let (history, _) = s.messages(r, q).await.unwrap();
    let texts: Vec<(i64, &str)> = history.iter().map(|m| (m.seq, m.text.as_str())).collect();
    assert_eq!(
        texts,
        [(1, ""), (2, "one"), (3, "two"), (4, "three"), (5, "four")]
    );
    assert_eq!(s.room(r).await.unwrap().unwrap().last_seq, 5);
    assert!(!s.is_member(r, ghost.id).await.unwrap());
}

pub async fn concurrent_writers_keep_seq_gapless(a: S, b: S) {
    let alice = user(&a, "conc_alice").await;
    let bob = user(&a, "conc_bob").await;
    let r1 = room(&a, &alice, Visibility::Public).await;
    let r2 = room(&a, &alice, Visibility::Public).await;
    for r in [r1, r2] {
        join(&a, r, &alice).await;
        join(&a, r, &bob).await;
    }
    let writer = |s: S, who: UserRef, tag: &'static str| async move {
        for i in 0..40 {
            // Batches touch both rooms, in both orders: no deadlock either way.
            let (x, y) = if i % 2 == 0 { (r1, r2) } else { (r2, r1) };
            let batch = (0..5)
                .flat_map(|j| {
                    [
                        text(x, &who, &format!("{tag} {i}.{j}")),
                        text(y, &who, &format!("{tag} {i}.{j}")),
                    ]
                })
                .collect();
            for out in s.append(batch).await.unwrap() {
                assert!(matches!(out, Ok(Appended::New(_))), "{out:?}");
            }
        }
    };
    tokio::join!(
        writer(a.clone(), alice.clone(), "a"),
        writer(b.clone(), bob.clone(), "b")
    );
    for r in [r1, r2] {
        let (page, more) = a
            .messages(
                r,
                HistoryQuery {
                    before_seq: None,
                    after_seq: Some(0),
                    limit: 1000,
                },
            )
            .await
            .unwrap();
        assert!(!more);
        let seqs: Vec<i64> = page.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "room {r}"
        );
        let texts = page.iter().filter(|m| m.kind == MessageKind::Text).count();
        assert_eq!(texts, 2 * 40 * 5, "room {r}");
        assert_eq!(
            a.room(r).await.unwrap().unwrap().last_seq,
            seqs.len() as i64
        );
    }
}

/// An ended random chat: no more text from either member, even after the writer
/// cached their membership; a retry of a message stored before still gets it; the
/// history stays readable; the listing leaves it out unless asked.
pub async fn a_closed_room_takes_no_more_messages(s: S) {
    use quicktalk::store::RoomListQuery;
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let (r, _) = s
        .create_room_with(
            NewRoom {
                name: "a · b".into(),
                visibility: Visibility::Private,
                kind: RoomKind::Random,
                created_by: a.id,
                moderation: quicktalk::model::RoomPolicy::Standard,
            },
            vec![a.clone(), b.clone()],
        )
        .await
        .unwrap();
    let before = msg(r.id, &a, MessageKind::Text, "hi", Some("c1"));
    let stored = s
        .append(vec![before.clone(), text(r.id, &b, "yo")])
        .await
        .unwrap();
    assert!(stored.iter().all(|o| matches!(o, Ok(Appended::New(_)))));
    assert!(s.close_room(r.id).await.unwrap());
    assert!(!s.close_room(r.id).await.unwrap(), "closed once");
    let out = s
        .append(vec![
            text(r.id, &a, "late"),
            text(r.id, &b, "late"),
            before,
            msg(r.id, &a, MessageKind::Text, "new", Some("c2")),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], Err(AppendRejected::RoomClosed));
    assert_eq!(out[1], Err(AppendRejected::RoomClosed));
    assert!(matches!(&out[2], Ok(Appended::Duplicate(m)) if m.text == "hi"));
    assert_eq!(out[3], Err(AppendRejected::RoomClosed));
    let q = HistoryQuery {
        before_seq: None,
        after_seq: None,
        limit: 50,
    };
    let (history, _) = s.messages(r.id, q).await.unwrap();
    assert_eq!(history.len(), 4, "two joins and two texts, nothing after");
    assert!(s.room(r.id).await.unwrap().unwrap().closed_at.is_some());
    let mut q = RoomListQuery {
        kinds: Vec::new(),
        include_ended: false,
        before: None,
        limit: 10,
    };
    assert!(s.list_rooms(a.id, &q).await.unwrap().0.is_empty());
    q.include_ended = true;
    assert_eq!(s.list_rooms(a.id, &q).await.unwrap().0.len(), 1);
}

/// Whom the matcher keeps a user from: everyone they reported or were reported
/// by, each once, newest first, at most `limit`.
pub async fn reports_make_users_avoid_each_other(s: S) {
    use quicktalk::store::NewReport;
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let d = user(&s, "dave").await;
    let r = room(&s, &a, Visibility::Private).await;
    for (by, of) in [(&a, &b), (&c, &a), (&a, &b), (&a, &d)] {
        s.add_report(NewReport {
            room_id: r,
            reporter: by.id,
            reported: of.id,
            reason: "spam".into(),
        })
        .await
        .unwrap();
    }
    assert_eq!(
        s.match_avoid(a.id, 10).await.unwrap(),
        vec![d.id, b.id, c.id]
    );
    assert_eq!(s.match_avoid(a.id, 2).await.unwrap(), vec![d.id, b.id]);
    assert_eq!(s.match_avoid(b.id, 10).await.unwrap(), vec![a.id]);
    assert!(s.match_avoid(d.id + 100, 10).await.unwrap().is_empty());
}

// ---- Moderation: roles, the review queue, bans, deleting messages ----

/// Flags (from `append`) and reports (`add_report`) share the review queue:
/// oldest first, paged by id, filtered by state; resolving happens once.
pub async fn the_review_queue_lists_pages_and_resolves(s: S) {
    use quicktalk::model::Flag;
    use quicktalk::store::moderation::{QueueKind, QueueQuery, QueueState, Resolved};
    use quicktalk::store::NewReport;
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    join(&s, r, &b).await;
    let mut flagged = text(r, &b, "nasty");
    flagged.moderation.flag = Some(Flag {
        categories: vec!["profanity".into(), "threat".into()],
        score_milli: 875,
    });
    let stored = s.append(vec![flagged]).await.unwrap().remove(0);
    let Ok(Appended::New(m)) = stored else {
        panic!("{stored:?}")
    };
    s.add_report(NewReport {
        room_id: r,
        reporter: a.id,
        reported: b.id,
        reason: "rude".into(),
    })
    .await
    .unwrap();
    let all = |state| QueueQuery {
        state,
        after: None,
        limit: 10,
    };
    let (items, more) = s.moderation_queue(all(QueueState::Open)).await.unwrap();
    assert!(!more);
    assert_eq!(items.len(), 2, "{items:?}");
    let (flag, report) = (&items[0], &items[1]);
    assert!(flag.id < report.id, "oldest first");
    assert_eq!(flag.kind, QueueKind::Flag);
    assert_eq!(flag.room_id, r);
    assert_eq!(flag.message_id, Some(m.id));
    assert_eq!(flag.subject_id, b.id);
    assert_eq!(flag.reporter_id, None);
    assert_eq!(flag.categories(), vec!["profanity", "threat"]);
    assert!((flag.score.unwrap() - 0.875).abs() < 1e-9);
    assert!(flag.resolved.is_none());
    assert_eq!(report.kind, QueueKind::Report);
    assert_eq!(report.message_id, None);
    assert_eq!(report.subject_id, b.id);
    assert_eq!(report.reporter_id, Some(a.id));
    assert_eq!(report.reason, "rude");
    assert!(report.categories().is_empty());
    assert_eq!(report.score, None);
    // Keyset paging.
    let page = QueueQuery {
        state: QueueState::Open,
        after: None,
        limit: 1,
    };
    let (first, more) = s.moderation_queue(page).await.unwrap();
    assert_eq!((first.len(), more), (1, true));
    let (second, more) = s
        .moderation_queue(QueueQuery {
            after: Some(first[0].id),
            ..page
        })
        .await
        .unwrap();
    assert_eq!((second[0].id, more), (report.id, false));
    assert_eq!(
        s.queue_item(report.id).await.unwrap().as_ref(),
        Some(report)
    );
    assert_eq!(s.queue_item(report.id + 1000).await.unwrap(), None);
    // Resolve once.
    let done = s
        .resolve_queue_item(flag.id, Some(a.id), Some("warned".into()), 1234)
        .await
        .unwrap();
    let Resolved::Now(item) = done else {
        panic!("{done:?}")
    };
    let res = item.resolved.unwrap();
    assert_eq!(
        (res.at, res.by, res.note.as_deref()),
        (1234, Some(a.id), Some("warned"))
    );
    let again = s
        .resolve_queue_item(flag.id, Some(b.id), None, 9999)
        .await
        .unwrap();
    let Resolved::Already(item) = again else {
        panic!("{again:?}")
    };
    assert_eq!(item.resolved.unwrap().by, Some(a.id), "unchanged");
    assert_eq!(
        s.resolve_queue_item(report.id + 1000, None, None, 1)
            .await
            .unwrap(),
        Resolved::NotFound
    );
    let ids = |items: Vec<quicktalk::store::moderation::QueueItem>| {
        items.into_iter().map(|i| i.id).collect::<Vec<_>>()
    };
    let open = s.moderation_queue(all(QueueState::Open)).await.unwrap().0;
    assert_eq!(ids(open), vec![report.id]);
    let resolved = s
        .moderation_queue(all(QueueState::Resolved))
        .await
        .unwrap()
        .0;
    assert_eq!(ids(resolved), vec![flag.id]);
    let every = s.moderation_queue(all(QueueState::All)).await.unwrap().0;
    assert_eq!(ids(every), vec![flag.id, report.id]);
    // An automatic resolution has no resolver.
    let auto = s
        .resolve_queue_item(report.id, None, None, 5)
        .await
        .unwrap();
    assert!(matches!(auto, Resolved::Now(i) if i.resolved.as_ref().unwrap().by.is_none()));
}

/// Roles are set by username (case-insensitively); bans are stored with their
/// reason, listed while in force, and lifted.
pub async fn roles_and_bans_are_stored(s: S) {
    use quicktalk::model::{Role, BAN_FOREVER};
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    assert_eq!(s.user(a.id).await.unwrap().unwrap().role, Role::User);
    let set = s.set_role("ALICE", Role::Moderator).await.unwrap().unwrap();
    assert_eq!((set.id, set.role), (a.id, Role::Moderator));
    assert_eq!(s.user(a.id).await.unwrap().unwrap().role, Role::Moderator);
    assert_eq!(
        s.set_role("alice", Role::Admin)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );
    assert!(s.set_role("nobody", Role::Admin).await.unwrap().is_none());
    assert_eq!(
        s.user(b.id).await.unwrap().unwrap().role,
        Role::User,
        "others untouched"
    );

    let now = 1_800_000_000_000;
    assert!(s.ban(b.id).await.unwrap().is_none());
    let banned = s
        .set_ban(b.id, now + 10_000, "spam")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(banned.banned_until, Some(now + 10_000));
    assert!(banned.banned_at(now) && !banned.banned_at(now + 10_000));
    let ban = s.ban(b.id).await.unwrap().unwrap();
    assert_eq!(
        (ban.user.id, ban.until, ban.reason.as_str()),
        (b.id, now + 10_000, "spam")
    );
    s.set_ban(c.id, BAN_FOREVER, "abuse")
        .await
        .unwrap()
        .unwrap();
    let listed: Vec<_> = s
        .bans(now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.user.id, b.reason))
        .collect();
    assert_eq!(
        listed,
        vec![(b.id, String::from("spam")), (c.id, String::from("abuse"))]
    );
    let later: Vec<_> = s
        .bans(now + 10_000, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.user.id)
        .collect();
    assert_eq!(later, vec![c.id], "an expired ban is not in force");
    assert_eq!(s.bans(now, 1).await.unwrap().len(), 1, "limit");
    // A new ban replaces the old one.
    s.set_ban(b.id, now + 50_000, "again").await.unwrap();
    assert_eq!(s.ban(b.id).await.unwrap().unwrap().reason, "again");
    let lifted = s.clear_ban(b.id).await.unwrap().unwrap();
    assert_eq!(lifted.banned_until, None);
    assert!(s.ban(b.id).await.unwrap().is_none());
    assert_eq!(s.user(b.id).await.unwrap().unwrap().banned_until, None);
    assert!(s.set_ban(c.id + 1000, now, "x").await.unwrap().is_none());
    assert!(s.clear_ban(c.id + 1000).await.unwrap().is_none());
}

/// A deleted message keeps its id, `seq`, sender and time; its text and mask go.
/// Join/leave notices cannot be deleted.
pub async fn deleted_messages_become_tombstones(s: S) {
    use quicktalk::store::moderation::Deleted;
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    let join_seq = join(&s, r, &a).await;
    let mut masked = msg(r, &a, MessageKind::Text, "you **", Some("c1"));
    masked.moderation.masked = true;
    let out = s.append(vec![masked, text(r, &a, "after")]).await.unwrap();
    let Ok(Appended::New(m)) = &out[0] else {
        panic!("{out:?}")
    };
    assert!(m.masked);
    assert_eq!(s.message(m.id).await.unwrap().as_ref(), Some(m));
    assert!(s.message(m.id + 1000).await.unwrap().is_none());
    let done = s.delete_message(m.id).await.unwrap();
    let Deleted::Now(t) = done else {
        panic!("{done:?}")
    };
    assert_eq!(t.kind, MessageKind::Deleted);
    assert_eq!(t.text, "");
    assert!(!t.masked);
    assert_eq!(
        (t.id, t.room_id, t.seq, &t.sender, t.sent_at),
        (m.id, m.room_id, m.seq, &m.sender, m.sent_at)
    );
    assert_eq!(s.message(m.id).await.unwrap().as_ref(), Some(&t));
    let (history, _) = s
        .messages(
            r,
            HistoryQuery {
                before_seq: None,
                after_seq: Some(0),
                limit: 10,
            },
        )
        .await
        .unwrap();
    let kinds: Vec<_> = history.iter().map(|m| (m.seq, m.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (join_seq, MessageKind::Join),
            (m.seq, MessageKind::Deleted),
            (m.seq + 1, MessageKind::Text)
        ]
    );
    assert!(matches!(s.delete_message(m.id).await.unwrap(), Deleted::Already(x) if x == t));
    let join_id = history[0].id;
    assert!(matches!(
        s.delete_message(join_id).await.unwrap(),
        Deleted::NotDeletable(x) if x.kind == MessageKind::Join
    ));
    assert_eq!(
        s.delete_message(m.id + 1000).await.unwrap(),
        Deleted::NotFound
    );
    // Seq goes on gaplessly after a tombstone.
    let next = s.append(vec![text(r, &a, "more")]).await.unwrap();
    assert_eq!(seq_of(&next[0]), m.seq + 2);
}

// ---- Moderation in the message path (issue 11 part 3) ----

/// A room keeps its creator; its moderation policy can be changed (and only
/// an existing room's).
pub async fn room_moderation_can_be_changed(s: S) {
    use quicktalk::model::RoomPolicy;
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    let got = s.room(r).await.unwrap().unwrap();
    assert_eq!(got.moderation, RoomPolicy::Standard);
    assert_eq!(got.created_by, a.id);
    for p in [RoomPolicy::Strict, RoomPolicy::Off, RoomPolicy::Standard] {
        assert!(s.set_room_moderation(r, p).await.unwrap());
        assert_eq!(s.room(r).await.unwrap().unwrap().moderation, p);
    }
    assert!(!s
        .set_room_moderation(r + 1000, RoomPolicy::Off)
        .await
        .unwrap());
    // A room made strict from the start, and listed with its policy and creator.
    let strict = s
        .create_room(NewRoom {
            name: "strict".into(),
            visibility: Visibility::Public,
            kind: RoomKind::Group,
            created_by: a.id,
            moderation: RoomPolicy::Strict,
        })
        .await
        .unwrap();
    assert_eq!(strict.moderation, RoomPolicy::Strict);
    let listed = s.rooms_for(a.id, 10).await.unwrap();
    let l = listed.iter().find(|x| x.room.id == strict.id).unwrap();
    assert_eq!(
        (l.room.moderation, l.room.created_by),
        (RoomPolicy::Strict, a.id)
    );
}

/// One message by id (masked as stored); a message report is queued once per
/// reporter and message (a repeat returns the first id); partner reports are
/// queued too, each its own row.
pub async fn message_reports_are_queued_once_per_reporter(s: S) {
    use quicktalk::model::{Flag, Moderated};
    use quicktalk::store::{NewMessageReport, NewReport};
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    let mut m = text(r, &a, "**** you");
    m.moderation = Moderated {
        masked: true,
        flag: Some(Flag {
            categories: vec!["profanity".into()],
            score_milli: 150,
        }),
    };
    let stored = match s
        .append(vec![m, text(r, &a, "plain")])
        .await
        .unwrap()
        .remove(0)
    {
        Ok(Appended::New(m)) => m,
        other => panic!("not stored: {other:?}"),
    };
    assert!(stored.masked);
    let got = s.message(stored.id).await.unwrap().unwrap();
    assert_eq!(got, stored);
    assert!(s.message(stored.id + 1000).await.unwrap().is_none());
    let report = |by: &UserRef| NewMessageReport {
        message_id: stored.id,
        room_id: r,
        subject: a.id,
        reporter: by.id,
        reason: "rude".into(),
    };
    let first = s.report_message(report(&b)).await.unwrap();
    assert_eq!(s.report_message(report(&b)).await.unwrap(), first);
    let other = s.report_message(report(&c)).await.unwrap();
    assert_ne!(other, first);
    let partner = |by: &UserRef| NewReport {
        room_id: r,
        reporter: by.id,
        reported: a.id,
        reason: "spam".into(),
    };
    let p1 = s.add_report(partner(&b)).await.unwrap();
    let p2 = s.add_report(partner(&b)).await.unwrap();
    assert!(p1 != p2 && ![first, other].contains(&p1) && ![first, other].contains(&p2));
    // The message report still dedupes after partner reports of the same pair.
    assert_eq!(s.report_message(report(&b)).await.unwrap(), first);
}

/// Strikes count per user from a time on; the newest are listed, newest first.
pub async fn strikes_are_counted_per_user_by_time(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    assert_eq!(s.strikes_since(a.id, 0).await.unwrap(), 0);
    assert!(s.last_strikes(a.id, 10).await.unwrap().is_empty());
    for at in [1_000, 3_000, 2_000] {
        s.add_strike(a.id, at).await.unwrap();
    }
    s.add_strike(b.id, 5_000).await.unwrap();
    assert_eq!(s.strikes_since(a.id, 0).await.unwrap(), 3);
    assert_eq!(s.strikes_since(a.id, 2_000).await.unwrap(), 2);
    assert_eq!(s.strikes_since(a.id, 3_001).await.unwrap(), 0);
    assert_eq!(
        s.last_strikes(a.id, 10).await.unwrap(),
        vec![3_000, 2_000, 1_000]
    );
    assert_eq!(s.last_strikes(a.id, 2).await.unwrap(), vec![3_000, 2_000]);
    assert_eq!(s.last_strikes(b.id, 10).await.unwrap(), vec![5_000]);
    assert_eq!(s.strikes_since(b.id, 0).await.unwrap(), 1);
}
