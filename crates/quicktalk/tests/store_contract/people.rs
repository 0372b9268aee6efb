//! Contract §7 on every backend: profiles, the guest upgrade, friend requests
//! and friendships, blocks, direct rooms.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use quicktalk::confusables::skeleton;
use quicktalk::model::{DmPolicy, MessageKind, RoomKind, RoomPolicy, UserRef, Visibility};
use quicktalk::store::people::{
    Answered, FriendAnswer, FriendAsk, FriendRequest, FriendRequestStatus, ProfilePatch,
};
use quicktalk::store::{NewReport, NewRoom, NewUser, StoreError};

use crate::contract::{user, S};

async fn guest(s: &S, name: &str) -> UserRef {
    s.create_user(NewUser {
        username: None,
        password_hash: None,
        display_name: name.into(),
        guest: true,
    })
    .await
    .unwrap()
    .as_ref()
}

fn direct(by: &UserRef) -> NewRoom {
    NewRoom {
        name: String::new(),
        visibility: Visibility::Private,
        kind: RoomKind::Direct,
        created_by: by.id,
        moderation: RoomPolicy::Standard,
    }
}

fn created(ask: FriendAsk) -> FriendRequest {
    match ask {
        FriendAsk::Created(r) => r,
        other => panic!("expected a new request, got {other:?}"),
    }
}

/// A profile change applies the set fields only and returns the avatar it
/// replaced; a registered user's new display name moves their skeleton, and
/// one held by someone else is refused with nothing changed.
pub async fn profiles_update_and_move_the_name_skeleton(s: S) {
    let alice = user(&s, "alice").await; // display name "alice!"
    let bob = user(&s, "bob").await;
    assert!(s
        .update_profile(bob.id + 1000, ProfilePatch::default())
        .await
        .unwrap()
        .is_none());

    let (now, old_avatar) = s
        .update_profile(
            alice.id,
            ProfilePatch {
                status_message: Some(Some("hello".into())),
                avatar: Some(Some("av1".into())),
                dm_policy: Some(DmPolicy::Friends),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old_avatar, None);
    assert_eq!(now.display_name, "alice!");
    assert_eq!(now.status_message.as_deref(), Some("hello"));
    assert_eq!(now.avatar.as_deref(), Some("av1"));
    assert_eq!(now.dm_policy, DmPolicy::Friends);
    assert_eq!(s.user(alice.id).await.unwrap().unwrap(), now);

    // A new display name: the old one's skeleton is freed, the username's kept.
    let (now, old_avatar) = s
        .update_profile(
            alice.id,
            ProfilePatch {
                display_name: Some("Wonderland".into()),
                avatar: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old_avatar.as_deref(), Some("av1"));
    assert_eq!(now.display_name, "Wonderland");
    assert_eq!(now.avatar, None);
    assert_eq!(
        now.status_message.as_deref(),
        Some("hello"),
        "left as it was"
    );
    assert_eq!(now.dm_policy, DmPolicy::Friends, "left as it was");
    let owner = |n: &str| {
        let s = s.clone();
        let sk = skeleton(n);
        async move { s.name_owner(&sk).await.unwrap() }
    };
    assert_eq!(owner("Wonderland").await, Some(alice.id));
    assert_eq!(owner("alice").await, Some(alice.id), "the username's stays");
    assert_eq!(
        owner("alice!").await,
        None,
        "the old display name's is freed"
    );

    // Bob may now take alice's old display name, but not her new one (or a
    // look-alike of it), nor her username.
    for taken in ["Wonderland", "WONDER1AND", "ALICE"] {
        let r = s
            .update_profile(
                bob.id,
                ProfilePatch {
                    display_name: Some(taken.into()),
                    status_message: Some(Some("changed".into())),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(r, Err(StoreError::NameTaken)), "{taken}: {r:?}");
        let unchanged = s.user(bob.id).await.unwrap().unwrap();
        assert_eq!(unchanged.display_name, "bob!", "{taken}");
        assert_eq!(unchanged.status_message, None, "{taken}: nothing changed");
        assert_eq!(owner("bob!").await, Some(bob.id), "{taken}");
    }
    let (now, _) = s
        .update_profile(
            bob.id,
            ProfilePatch {
                display_name: Some("alice!".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.display_name, "alice!");
    assert_eq!(owner("alice!").await, Some(bob.id));
    assert_eq!(owner("bob!").await, None);

    // Back to a name whose skeleton is the username's: nothing new to hold.
    let (now, _) = s
        .update_profile(
            bob.id,
            ProfilePatch {
                display_name: Some("BOB".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.display_name, "BOB");
    assert_eq!(owner("bob").await, Some(bob.id));
    assert_eq!(owner("alice!").await, None);

    // Guests hold no skeletons: any free-form name, none recorded.
    let g = guest(&s, "guest").await;
    let (now, _) = s
        .update_profile(
            g.id,
            ProfilePatch {
                display_name: Some("Wonderland".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.display_name, "Wonderland");
    assert_eq!(owner("Wonderland").await, Some(alice.id));
}

/// Looking users up: by username (registered only, any case) and by ids (the
/// existing ones, in id order).
pub async fn users_are_found_by_username_and_by_ids(s: S) {
    let alice = user(&s, "Alice").await;
    let bob = user(&s, "bob").await;
    let g = guest(&s, "carol").await;
    for name in ["Alice", "alice", "ALICE"] {
        let found = s.user_by_username(name).await.unwrap().unwrap();
        assert_eq!(found.id, alice.id, "{name}");
        assert_eq!(found.username.as_deref(), Some("Alice"));
    }
    assert!(s.user_by_username("carol").await.unwrap().is_none());
    assert!(s.user_by_username("nobody").await.unwrap().is_none());

    assert!(s.users(&[]).await.unwrap().is_empty());
    let ids = |v: Vec<quicktalk::model::User>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .users(&[g.id, alice.id + 1000, bob.id, alice.id, bob.id])
            .await
            .unwrap()),
        vec![alice.id, bob.id, g.id]
    );
    let one = s.users(&[g.id]).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].guest);
    assert_eq!(one[0].display_name, "carol");
}

/// A guest becomes a registered user in place: same id, a username that logs
/// in, a new token epoch, their names held as skeletons. Conflicts change nothing.
pub async fn guests_upgrade_in_place(s: S) {
    let alice = user(&s, "alice").await;
    let g = guest(&s, "Gary").await;
    let before = s.user(g.id).await.unwrap().unwrap();
    assert_eq!(before.token_epoch, 0);

    // Taken usernames (any case) and names.
    let r = s.upgrade_guest(g.id, "ALICE", "h").await;
    assert!(matches!(r, Err(StoreError::UsernameTaken)), "{r:?}");
    let r = s.upgrade_guest(g.id, "a1ice", "h").await;
    assert!(matches!(r, Err(StoreError::NameTaken)), "{r:?}");
    let lookalike = guest(&s, "alice!").await;
    let r = s.upgrade_guest(lookalike.id, "someone", "h").await;
    assert!(
        matches!(r, Err(StoreError::NameTaken)),
        "the display name is alice's: {r:?}"
    );
    assert_eq!(
        s.user(g.id).await.unwrap().unwrap(),
        before,
        "nothing changed"
    );
    assert!(s.credentials("a1ice").await.unwrap().is_none());
    assert!(s.credentials("someone").await.unwrap().is_none());
    assert_eq!(s.name_owner(&skeleton("someone")).await.unwrap(), None);

    let up = s
        .upgrade_guest(g.id, "gary", "hash-g")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.id, g.id);
    assert!(!up.guest);
    assert_eq!(up.username.as_deref(), Some("gary"));
    assert_eq!(up.display_name, "Gary");
    assert_eq!(up.token_epoch, 1);
    assert_eq!(s.user(g.id).await.unwrap().unwrap(), up);
    let (u, hash) = s.credentials("GARY").await.unwrap().unwrap();
    assert_eq!((u.id, hash.as_str()), (g.id, "hash-g"));
    assert_eq!(s.user_by_username("gary").await.unwrap().unwrap().id, g.id);
    assert_eq!(s.name_owner(&skeleton("gary")).await.unwrap(), Some(g.id));

    // Only guests: not again, not a registered user, not an unknown id.
    assert!(s.upgrade_guest(g.id, "gary2", "h").await.unwrap().is_none());
    assert!(s
        .upgrade_guest(alice.id, "alice2", "h")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .upgrade_guest(g.id + 1000, "x", "h")
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.user(g.id).await.unwrap().unwrap().token_epoch, 1);
    assert_eq!(
        s.user(alice.id).await.unwrap().unwrap().username.as_deref(),
        Some("alice")
    );
}

/// The friend request matrix: create, repeat, the reverse accepts, already
/// friends, blocked either way, a declined request can be asked again.
pub async fn friend_requests_follow_the_matrix(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let d = user(&s, "dave").await;

    let ab = created(s.friend_request(a.id, b.id, 100).await.unwrap());
    assert_eq!((ab.from, ab.to), (a.id, b.id));
    assert_eq!(ab.status, FriendRequestStatus::Pending);
    assert_eq!(ab.created_at, 100);
    assert_eq!(
        s.friend_request(a.id, b.id, 200).await.unwrap(),
        FriendAsk::Repeated(ab.clone())
    );
    let ca = created(s.friend_request(c.id, a.id, 150).await.unwrap());
    assert_eq!(
        s.friend_requests(a.id).await.unwrap(),
        vec![ab.clone(), ca.clone()],
        "sent and received, oldest first"
    );
    assert_eq!(s.friend_requests(b.id).await.unwrap(), vec![ab.clone()]);
    assert!(s.friend_requests(d.id).await.unwrap().is_empty());
    assert!(!s.are_friends(a.id, b.id).await.unwrap());

    // The reverse request accepts the pending one.
    let accepted = FriendRequest {
        status: FriendRequestStatus::Accepted,
        ..ab.clone()
    };
    assert_eq!(
        s.friend_request(b.id, a.id, 300).await.unwrap(),
        FriendAsk::Accepted(accepted)
    );
    assert!(s.are_friends(a.id, b.id).await.unwrap());
    assert!(s.are_friends(b.id, a.id).await.unwrap());
    assert_eq!(s.friend_requests(b.id).await.unwrap(), vec![]);
    assert_eq!(s.friend_requests(a.id).await.unwrap(), vec![ca.clone()]);
    for (x, y) in [(a.id, b.id), (b.id, a.id)] {
        assert_eq!(
            s.friend_request(x, y, 400).await.unwrap(),
            FriendAsk::AlreadyFriends
        );
    }
    assert!(s.friend_requests(a.id).await.unwrap().len() == 1);

    // Blocked either way: no request, and none is stored.
    s.block_user(d.id, c.id, 500).await.unwrap();
    assert_eq!(
        s.friend_request(c.id, d.id, 600).await.unwrap(),
        FriendAsk::Blocked
    );
    assert_eq!(
        s.friend_request(d.id, c.id, 600).await.unwrap(),
        FriendAsk::Blocked
    );
    assert_eq!(s.friend_requests(d.id).await.unwrap(), vec![]);
    assert!(s.unblock_user(d.id, c.id).await.unwrap());
    let dc = created(s.friend_request(d.id, c.id, 700).await.unwrap());

    // Declined, then asked again: a new pending request.
    match s
        .answer_friend_request(dc.id, c.id, FriendAnswer::Decline, 800)
        .await
        .unwrap()
    {
        Answered::Done(r) => assert_eq!(r.status, FriendRequestStatus::Declined),
        other => panic!("{other:?}"),
    }
    assert!(!s.are_friends(c.id, d.id).await.unwrap());
    let again = created(s.friend_request(d.id, c.id, 900).await.unwrap());
    assert_ne!(again.id, dc.id);
    // And the other way round after a decline: a fresh request too.
    s.answer_friend_request(again.id, c.id, FriendAnswer::Decline, 950)
        .await
        .unwrap();
    let back = created(s.friend_request(c.id, d.id, 960).await.unwrap());
    assert_eq!((back.from, back.to), (c.id, d.id));
}

/// Who may answer: accept and decline by the target only, cancel by the sender
/// only, anyone else is told there is no such request; an answered request
/// stays as it was answered.
pub async fn friend_requests_are_answered_by_the_right_side(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;

    let r = created(s.friend_request(a.id, b.id, 1).await.unwrap());
    for (by, answer) in [
        (a.id, FriendAnswer::Accept),
        (a.id, FriendAnswer::Decline),
        (b.id, FriendAnswer::Cancel),
        (c.id, FriendAnswer::Accept),
        (c.id, FriendAnswer::Cancel),
    ] {
        assert_eq!(
            s.answer_friend_request(r.id, by, answer, 2).await.unwrap(),
            Answered::NotFound,
            "{by} {answer:?}"
        );
    }
    assert_eq!(
        s.answer_friend_request(r.id + 1000, b.id, FriendAnswer::Accept, 2)
            .await
            .unwrap(),
        Answered::NotFound
    );
    assert_eq!(s.friend_requests(b.id).await.unwrap(), vec![r.clone()]);

    // Cancel by the sender.
    let cancelled = FriendRequest {
        status: FriendRequestStatus::Cancelled,
        ..r.clone()
    };
    assert_eq!(
        s.answer_friend_request(r.id, a.id, FriendAnswer::Cancel, 3)
            .await
            .unwrap(),
        Answered::Done(cancelled.clone())
    );
    assert_eq!(
        s.answer_friend_request(r.id, b.id, FriendAnswer::Accept, 4)
            .await
            .unwrap(),
        Answered::NotPending(cancelled)
    );
    assert!(!s.are_friends(a.id, b.id).await.unwrap());
    assert!(s.friend_requests(a.id).await.unwrap().is_empty());

    // Accept by the target: friends in the same transaction.
    let r = created(s.friend_request(c.id, b.id, 5).await.unwrap());
    let accepted = FriendRequest {
        status: FriendRequestStatus::Accepted,
        ..r.clone()
    };
    assert_eq!(
        s.answer_friend_request(r.id, b.id, FriendAnswer::Accept, 6)
            .await
            .unwrap(),
        Answered::Done(accepted.clone())
    );
    assert!(s.are_friends(b.id, c.id).await.unwrap());
    for answer in [FriendAnswer::Accept, FriendAnswer::Decline] {
        assert_eq!(
            s.answer_friend_request(r.id, b.id, answer, 7)
                .await
                .unwrap(),
            Answered::NotPending(accepted.clone())
        );
    }
    assert_eq!(
        s.answer_friend_request(r.id, c.id, FriendAnswer::Cancel, 7)
            .await
            .unwrap(),
        Answered::NotPending(accepted)
    );
}

/// Friendships are symmetric, listed in id order, and end once.
pub async fn friendships_are_listed_and_removed(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let d = user(&s, "dave").await;
    for (x, y) in [(&d, &a), (&a, &b), (&c, &a)] {
        let r = created(s.friend_request(x.id, y.id, 1).await.unwrap());
        s.answer_friend_request(r.id, y.id, FriendAnswer::Accept, 2)
            .await
            .unwrap();
    }
    assert_eq!(
        s.friends(a.id).await.unwrap(),
        vec![b.id, c.id, d.id],
        "in id order"
    );
    assert_eq!(s.friends(b.id).await.unwrap(), vec![a.id]);
    assert!(!s.are_friends(b.id, c.id).await.unwrap());
    assert!(s.remove_friend(b.id, a.id).await.unwrap());
    assert!(!s.remove_friend(a.id, b.id).await.unwrap());
    assert!(!s.are_friends(a.id, b.id).await.unwrap());
    assert_eq!(s.friends(a.id).await.unwrap(), vec![c.id, d.id]);
    assert!(s.friends(b.id).await.unwrap().is_empty());
    // Friends again after a removal: a new request works.
    assert!(matches!(
        s.friend_request(b.id, a.id, 3).await.unwrap(),
        FriendAsk::Created(_)
    ));
}

/// A block ends the friendship and cancels the pair's pending requests, is
/// idempotent, one-directional, listed newest first, and lifted once.
pub async fn blocks_end_friendships_and_pending_requests(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let d = user(&s, "dave").await;

    let r = created(s.friend_request(a.id, b.id, 1).await.unwrap());
    s.answer_friend_request(r.id, b.id, FriendAnswer::Accept, 2)
        .await
        .unwrap();
    let from_c = created(s.friend_request(c.id, a.id, 3).await.unwrap());
    let to_d = created(s.friend_request(a.id, d.id, 4).await.unwrap());
    let bc = created(s.friend_request(b.id, c.id, 5).await.unwrap());

    assert!(s.block_user(a.id, b.id, 10).await.unwrap());
    assert!(
        !s.are_friends(a.id, b.id).await.unwrap(),
        "friendship ended"
    );
    assert!(s.blocked_between(a.id, b.id).await.unwrap());
    assert!(s.blocked_between(b.id, a.id).await.unwrap());
    assert!(!s.blocked_between(a.id, c.id).await.unwrap());

    // Blocking cancels pending requests between the two, whichever sent them.
    assert!(s.block_user(a.id, c.id, 11).await.unwrap());
    assert!(s.block_user(d.id, a.id, 12).await.unwrap());
    assert!(s.friend_requests(a.id).await.unwrap().is_empty());
    assert_eq!(s.friend_requests(c.id).await.unwrap(), vec![bc.clone()]);
    for (req, by, answer) in [
        (&from_c, a.id, FriendAnswer::Accept),
        (&to_d, d.id, FriendAnswer::Accept),
    ] {
        match s
            .answer_friend_request(req.id, by, answer, 20)
            .await
            .unwrap()
        {
            Answered::NotPending(r) => assert_eq!(r.status, FriendRequestStatus::Cancelled),
            other => panic!("{other:?}"),
        }
    }
    assert!(!s.are_friends(a.id, c.id).await.unwrap());
    assert!(!s.are_friends(a.id, d.id).await.unwrap());

    // Idempotent; listed newest first (ties: higher id first).
    assert!(!s.block_user(a.id, b.id, 30).await.unwrap());
    let e = user(&s, "erin").await;
    assert!(s.block_user(a.id, e.id, 11).await.unwrap());
    assert_eq!(
        s.blocked_by(a.id).await.unwrap(),
        vec![e.id, c.id, b.id],
        "the repeat kept the first block's time"
    );
    assert_eq!(s.blocked_by(d.id).await.unwrap(), vec![a.id]);
    assert!(s.blocked_by(b.id).await.unwrap().is_empty());

    // One-directional: lifting a's block of b leaves none; d's of a stays.
    assert!(!s.unblock_user(b.id, a.id).await.unwrap());
    assert!(s.unblock_user(a.id, b.id).await.unwrap());
    assert!(!s.unblock_user(a.id, b.id).await.unwrap());
    assert!(!s.blocked_between(a.id, b.id).await.unwrap());
    assert!(s.blocked_between(a.id, d.id).await.unwrap());
    assert_eq!(s.blocked_by(a.id).await.unwrap(), vec![e.id, c.id]);
    // Unblocked is not re-befriended.
    assert!(!s.are_friends(a.id, b.id).await.unwrap());
}

/// Matching avoids blocked users both ways, alongside reports.
pub async fn match_avoid_includes_blocks_both_ways(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let d = user(&s, "dave").await;
    let r = crate::contract::room(&s, &a, Visibility::Private).await;
    s.add_report(NewReport {
        room_id: r,
        reporter: a.id,
        reported: d.id,
        reason: "spam".into(),
    })
    .await
    .unwrap();
    s.block_user(a.id, b.id, 1).await.unwrap();
    s.block_user(c.id, a.id, 2).await.unwrap();
    let mut avoid = s.match_avoid(a.id, 10).await.unwrap();
    avoid.sort();
    assert_eq!(avoid, vec![b.id, c.id, d.id]);
    assert_eq!(s.match_avoid(b.id, 10).await.unwrap(), vec![a.id]);
    assert_eq!(s.match_avoid(c.id, 10).await.unwrap(), vec![a.id]);
    assert_eq!(s.match_avoid(a.id, 2).await.unwrap().len(), 2);
    // Blocked again after a report: one entry.
    s.block_user(d.id, a.id, 3).await.unwrap();
    assert_eq!(s.match_avoid(d.id, 10).await.unwrap(), vec![a.id]);
    s.unblock_user(a.id, b.id).await.unwrap();
    assert!(s.match_avoid(b.id, 10).await.unwrap().is_empty());
}

/// The direct room is created once, with both joined as `create_room_with`
/// joins members, kind and visibility as asked; later calls return it.
pub async fn direct_rooms_are_created_once_per_pair(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;

    let (room, new, joins) = s
        .direct_room(direct(&a), a.clone(), b.clone())
        .await
        .unwrap();
    assert!(new);
    assert_eq!(room.kind, RoomKind::Direct);
    assert_eq!(room.visibility, Visibility::Private);
    assert_eq!(room.created_by, a.id);
    assert_eq!((room.member_count, room.last_seq), (2, 2));
    assert_eq!(
        joins
            .iter()
            .map(|m| (m.kind, m.seq, m.sender.id, m.room_id))
            .collect::<Vec<_>>(),
        vec![
            (MessageKind::Join, 1, a.id, room.id),
            (MessageKind::Join, 2, b.id, room.id)
        ]
    );
    assert_eq!(s.room(room.id).await.unwrap().unwrap(), room);
    let members: Vec<_> = s
        .members(room.id)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(members, vec![a.id, b.id]);
    assert!(s.is_member(room.id, b.id).await.unwrap());
    assert!(!s.is_member(room.id, c.id).await.unwrap());
    assert_eq!(s.unread(room.id, a.id).await.unwrap(), Some(0));
    // Stored like any room: text from a member is sequenced after the joins.
    let sent = s
        .append(vec![crate::contract::text(room.id, &b, "hi")])
        .await
        .unwrap();
    assert!(matches!(&sent[0], Ok(quicktalk::model::Appended::New(m)) if m.seq == 3));
    assert_eq!(s.unread(room.id, a.id).await.unwrap(), Some(1));

    for (x, y) in [(&a, &b), (&b, &a)] {
        let (again, new, joins) = s
            .direct_room(direct(x), x.clone(), y.clone())
            .await
            .unwrap();
        assert!(!new);
        assert!(joins.is_empty());
        assert_eq!(again.id, room.id);
        assert_eq!(again.last_seq, 3);
    }
    assert_eq!(s.direct_pair(room.id).await.unwrap(), Some((a.id, b.id)));

    let (other, new, _) = s
        .direct_room(direct(&c), c.clone(), a.clone())
        .await
        .unwrap();
    assert!(new);
    assert_ne!(other.id, room.id);
    assert_eq!(s.direct_pair(other.id).await.unwrap(), Some((a.id, c.id)));
    let members: Vec<_> = s
        .members(other.id)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(members, vec![c.id, a.id], "in the order given");

    // Not a direct room: a group room, an unknown id.
    let group = crate::contract::room(&s, &a, Visibility::Private).await;
    assert_eq!(s.direct_pair(group).await.unwrap(), None);
    assert_eq!(s.direct_pair(other.id + 1000).await.unwrap(), None);

    // A user with themselves: refused, not a panic, and nothing stored.
    assert!(s
        .direct_room(direct(&a), a.clone(), a.clone())
        .await
        .is_err());
    let rooms = s.rooms_for(a.id, 100).await.unwrap();
    let mut ids: Vec<_> = rooms.iter().map(|r| r.room.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![room.id, other.id],
        "the two direct rooms, no third"
    );
}

/// Property: whatever the order and repetition of calls, `direct(a, b)` and
/// `direct(b, a)` are the same room, created by the first call for the pair,
/// and `direct_pair` names the pair lower id first.
pub async fn direct_room_is_symmetric(s: S) {
    const USERS: usize = 6;
    let mut people = Vec::new();
    for i in 0..USERS {
        people.push(user(&s, &format!("user{i}")).await);
    }
    let calls = proptest::collection::vec((0..USERS, 1..USERS), 1..60);
    let mut runner = TestRunner::deterministic();
    let mut rooms: HashMap<(i64, i64), i64> = HashMap::new();
    for _ in 0..6 {
        let case = calls.new_tree(&mut runner).unwrap().current();
        for (i, step) in case {
            // `step` in 1..USERS: never the same user twice.
            let (x, y) = (&people[i], &people[(i + step) % USERS]);
            let key = (x.id.min(y.id), x.id.max(y.id));
            let (room, new, joins) = s
                .direct_room(direct(x), x.clone(), y.clone())
                .await
                .unwrap();
            match rooms.get(&key) {
                Some(&known) => {
                    assert!(!new, "{key:?} created twice");
                    assert!(joins.is_empty());
                    assert_eq!(room.id, known, "{key:?}");
                }
                None => {
                    assert!(new, "{key:?} first call");
                    assert_eq!(joins.len(), 2);
                    rooms.insert(key, room.id);
                }
            }
            let (back, new, _) = s
                .direct_room(direct(y), y.clone(), x.clone())
                .await
                .unwrap();
            assert!(!new);
            assert_eq!(back.id, room.id, "direct(a, b) == direct(b, a)");
            assert_eq!(s.direct_pair(room.id).await.unwrap(), Some(key));
        }
    }
    let mut distinct: Vec<i64> = rooms.values().copied().collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), rooms.len(), "one room per pair");
}

/// Eight concurrent callers, from both sides, for one pair that has no room:
/// exactly one creates it, every caller gets that room, and it has exactly
/// the two members (the losers' rooms are gone).
pub async fn concurrent_direct_room_calls_make_one_room(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    for round in 0..3 {
        let c = user(&s, &format!("carol{round}")).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (s, barrier) = (s.clone(), barrier.clone());
            let (x, y) = if i % 2 == 0 {
                (a.clone(), c.clone())
            } else {
                (c.clone(), a.clone())
            };
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.direct_room(direct(&x), x, y).await.unwrap()
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let created: Vec<_> = results.iter().filter(|r| r.1).collect();
        assert_eq!(created.len(), 1, "round {round}: exactly one creator");
        assert_eq!(created[0].2.len(), 2);
        let id = created[0].0.id;
        assert!(
            results.iter().all(|r| r.0.id == id),
            "round {round}: one room"
        );
        assert!(results.iter().filter(|r| !r.1).all(|r| r.2.is_empty()));
        let members: Vec<_> = s.members(id).await.unwrap().iter().map(|u| u.id).collect();
        assert_eq!(members.len(), 2);
        let direct_rooms: Vec<_> = s
            .rooms_for(c.id, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.room.kind == RoomKind::Direct)
            .collect();
        assert_eq!(direct_rooms.len(), 1, "round {round}: no loser's room left");
        assert_eq!(direct_rooms[0].room.id, id);
        assert_eq!(
            s.direct_pair(id).await.unwrap(),
            Some((a.id.min(c.id), a.id.max(c.id)))
        );
    }
    // An existing pair under the same load: nobody creates.
    s.direct_room(direct(&a), a.clone(), b.clone())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, a, b) = (s.clone(), a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            s.direct_room(direct(&b), b, a).await.unwrap()
        }));
    }
    for t in tasks {
        assert!(!t.await.unwrap().1);
    }
}

/// Concurrent friend requests of one pair, from both sides: never an error,
/// never two pending; they end as friends or with one pending request.
pub async fn concurrent_friend_requests_keep_one_pending(s: S) {
    let a = user(&s, "alice").await;
    for round in 0..3 {
        let b = user(&s, &format!("bob{round}")).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (s, barrier) = (s.clone(), barrier.clone());
            // Round 0: one side only; later rounds: both sides.
            let (x, y) = if round == 0 || i % 2 == 0 {
                (a.id, b.id)
            } else {
                (b.id, a.id)
            };
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.friend_request(x, y, 1).await.unwrap()
            }));
        }
        let mut asks = Vec::new();
        for t in tasks {
            asks.push(t.await.unwrap());
        }
        let made = asks
            .iter()
            .filter(|r| matches!(r, FriendAsk::Created(_)))
            .count();
        assert_eq!(made, 1, "round {round}: {asks:?}");
        assert!(!asks.iter().any(|r| matches!(r, FriendAsk::Blocked)));
        let pending = s.friend_requests(b.id).await.unwrap();
        if s.are_friends(a.id, b.id).await.unwrap() {
            assert!(pending.is_empty(), "round {round}");
        } else {
            assert_eq!(round, 0, "both sides asked: {asks:?}");
            assert_eq!(pending.len(), 1);
            assert!(asks
                .iter()
                .filter(|r| !matches!(r, FriendAsk::Created(_)))
                .all(|r| r == &FriendAsk::Repeated(pending[0].clone())));
        }
    }
}
