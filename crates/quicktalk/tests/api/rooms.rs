//! Contract §2: rooms, membership, visibility, history paging, read cursors.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{code, say, spawn_app};

#[tokio::test]
async fn create_list_get_join_leave() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let (s, room) = app
        .post(
            "/api/v1/rooms",
            &alice.token,
            json!({"name": " 한국어 방 ", "visibility": "public"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(room["name"], "한국어 방");
    assert_eq!(room["visibility"], "public");
    assert_eq!(room["kind"], "group");
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["last_seq"], 1, "the creator's join is message 1");
    assert_eq!(room["unread"], 0);
    let id = room["id"].as_i64().unwrap();

    let secret = app.create_room(&alice, "secret", "private").await;

    // Bob sees the public room (no unread: not a member) but not the private one.
    let (s, v) = app.get("/api/v1/rooms", &bob.token).await;
    assert_eq!(s, StatusCode::OK);
    let rooms = v["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["id"], id);
    assert!(rooms[0].get("unread").is_none());
    // Alice sees both.
    let (_, v) = app.get("/api/v1/rooms", &alice.token).await;
    assert_eq!(v["rooms"].as_array().unwrap().len(), 2);

    let (s, v) = app
        .post(&format!("/api/v1/rooms/{id}/join"), &bob.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["member_count"], 2);
    assert_eq!(v["last_seq"], 2);
    // Joining twice changes nothing.
    let (s, v) = app
        .post(&format!("/api/v1/rooms/{id}/join"), &bob.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["last_seq"], 2);

    let (s, _) = app
        .post(&format!("/api/v1/rooms/{id}/leave"), &bob.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let history = app.history(&alice, id).await;
    let kinds: Vec<_> = history
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["join", "join", "leave"]);
    let seqs: Vec<_> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(history[1]["sender"]["id"], bob.id);
    assert_eq!(history[1]["sender"]["name"], bob.name);
    let (_, v) = app.get(&format!("/api/v1/rooms/{id}"), &alice.token).await;
    assert_eq!(v["member_count"], 1);

    // Private: members only, on every endpoint.
    for path in [
        format!("/api/v1/rooms/{secret}"),
        format!("/api/v1/rooms/{secret}/members"),
        format!("/api/v1/rooms/{secret}/messages"),
    ] {
        let (s, v) = app.get(&path, &bob.token).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(code(&v), "forbidden");
    }
    let (s, _) = app
        .post(
            &format!("/api/v1/rooms/{secret}/join"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post(
            &format!("/api/v1/rooms/{secret}/messages"),
            &bob.token,
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Unknown rooms.
    for path in [
        "/api/v1/rooms/9999",
        "/api/v1/rooms/abc",
        "/api/v1/rooms/9999/messages",
    ] {
        let (s, v) = app.get(path, &bob.token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&v), "not_found");
    }
}

#[tokio::test]
async fn room_input_is_validated() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    for (body, want) in [
        (
            json!({"name": "", "visibility": "public"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "x".repeat(65), "visibility": "public"}),
            "invalid_room_name",
        ),
        (
            json!({"name": "ok", "visibility": "secret"}),
            "invalid_visibility",
        ),
        (
            json!({"name": ["ok"], "visibility": "public"}),
            "invalid_json",
        ),
    ] {
        let (s, v) = app.post("/api/v1/rooms", &alice.token, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&v), want);
    }
}

#[tokio::test]
async fn public_history_is_readable_but_sending_needs_membership() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "open", "public").await;
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{room}/messages"), &bob.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &bob.token,
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(code(&v), "not_member");
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn history_pages_both_ways() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "long", "public").await;
    for i in 0..120 {
        let (s, _) = app
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &alice.token,
                json!({"text": format!("m{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // 121 messages: the join + 120 texts.
    let seqs = |v: &serde_json::Value| -> Vec<i64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    let (_, v) = app
        .get(&format!("/api/v1/rooms/{room}/messages"), &alice.token)
        .await;
    assert_eq!(
        seqs(&v),
        (72..=121).collect::<Vec<_>>(),
        "newest 50 by default, ascending"
    );
    assert_eq!(v["has_more"], true);
    let (_, v) = app
        .get(
            &format!("/api/v1/rooms/{room}/messages?before_seq=72&limit=100"),
            &alice.token,
        )
        .await;
    assert_eq!(seqs(&v), (1..=71).collect::<Vec<_>>());
    assert_eq!(v["has_more"], false);
    let (_, v) = app
        .get(
            &format!("/api/v1/rooms/{room}/messages?after_seq=100&limit=10"),
            &alice.token,
        )
        .await;
    assert_eq!(seqs(&v), (101..=110).collect::<Vec<_>>());
    assert_eq!(v["has_more"], true);
    let (_, v) = app
        .get(
            &format!("/api/v1/rooms/{room}/messages?after_seq=10&before_seq=15"),
            &alice.token,
        )
        .await;
    assert_eq!(seqs(&v), [11, 12, 13, 14]);
    assert_eq!(v["has_more"], false);
    let (_, v) = app
        .get(
            &format!("/api/v1/rooms/{room}/messages?limit=200"),
            &alice.token,
        )
        .await;
    assert_eq!(seqs(&v).len(), 121);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "before_seq=0",
        "after_seq=-1",
        "after_seq=1e9",
    ] {
        let (s, v) = app
            .get(
                &format!("/api/v1/rooms/{room}/messages?{bad}"),
                &alice.token,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(code(&v), "invalid_query");
    }
}

#[tokio::test]
async fn unread_counts_and_read_cursor() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "chat", "public").await;
    app.join(&bob, room).await;
    let mut a = app.stomp(&alice).await;
    for i in 0..5 {
        say(&mut a, room, &format!("hello {i}")).await;
    }
    let unread = |v: &serde_json::Value| {
        v["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == room)
            .unwrap()["unread"]
            .as_i64()
            .unwrap()
    };
    let (_, v) = app.get("/api/v1/rooms", &bob.token).await;
    assert_eq!(unread(&v), 5, "bob missed five messages");
    let (_, v) = app.get("/api/v1/rooms", &alice.token).await;
    assert_eq!(unread(&v), 0, "own messages are not unread");
    let (_, r) = app.get(&format!("/api/v1/rooms/{room}"), &bob.token).await;
    assert_eq!(r["unread"], 5);
    let last_seq = r["last_seq"].as_i64().unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": last_seq - 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["unread"], 2);
    // The cursor never moves backwards, and is clamped to last_seq.
    let (_, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(v["unread"], 2);
    let (_, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": 1_000_000}),
        )
        .await;
    assert_eq!(v["unread"], 0);
    say(&mut a, room, "one more").await;
    let (_, v) = app.get("/api/v1/rooms", &bob.token).await;
    assert_eq!(unread(&v), 1, "the clamp keeps later messages unread");
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({"seq": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(code(&v), "invalid_json");
}

#[tokio::test]
async fn members_show_who_is_online() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "chat", "public").await;
    app.join(&bob, room).await;
    let mut a = app.stomp(&alice).await;
    a.subscribe_sync("s1", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{room}/members"), &bob.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let online = |id: i64| {
        members.iter().find(|m| m["id"] == id).unwrap()["online"]
            .as_bool()
            .unwrap()
    };
    assert!(online(alice.id));
    assert!(!online(bob.id));
    assert_eq!(
        members.iter().find(|m| m["id"] == bob.id).unwrap()["name"],
        bob.name
    );
}

#[tokio::test]
async fn leaving_a_private_room_needs_membership() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let mallory = app.signup("mallory").await;
    let room = app.create_room(&alice, "secret", "private").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            &mallory.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let history = app.history(&alice, room).await;
    assert!(
        history.iter().all(|m| m["kind"] == "join"),
        "nothing posted for the outsider: {history:?}"
    );
    let (s, _) = app
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            &alice.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// More random chats than one listing page must not push group rooms out of the
/// listing: the server filters by kind, leaves ended chats out by default, and
/// pages with a cursor.
#[tokio::test]
async fn many_random_chats_do_not_crowd_out_group_rooms() {
    use quicktalk::model::{RoomKind, UserRef, Visibility};
    use quicktalk::store::{sqlite::SqliteStore, sqlite::Synchronous, NewRoom, Store};
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let group = app.create_room(&alice, "old group", "public").await;
    // 520 random chats, all newer than the group room: 510 ended, 10 running.
    let store =
        SqliteStore::open(&app.dir.path().join("quicktalk.db"), Synchronous::Normal).unwrap();
    let mut running = Vec::new();
    for i in 0..520 {
        let (room, _) = store
            .create_room_with(
                NewRoom {
                    name: format!("chat {i}"),
                    visibility: Visibility::Private,
                    kind: RoomKind::Random,
                    created_by: alice.id,
                    moderation: quicktalk::model::RoomPolicy::Strict,
                },
                vec![
                    UserRef {
                        id: alice.id,
                        name: alice.name.clone(),
                        guest: false,
                    },
                    UserRef {
                        id: bob.id,
                        name: bob.name.clone(),
                        guest: false,
                    },
                ],
            )
            .await
            .unwrap();
        if i < 510 {
            store.close_room(room.id).await.unwrap();
        } else {
            running.push(room.id);
        }
    }
    drop(store);
    // Default: every kind but ended chats.
    let (s, v) = app.get("/api/v1/rooms", &alice.token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<i64> = v["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&group), "group room listed");
    assert_eq!(ids.len(), 11, "{ids:?}");
    assert!(running.iter().all(|r| ids.contains(r)));
    // Only group rooms.
    let (_, v) = app.get("/api/v1/rooms?kind=group", &alice.token).await;
    let rooms = v["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["id"], group);
    assert!(v.get("next_cursor").is_none());
    // Every random chat, ended ones too, page by page with no repeat and no gap.
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/rooms?kind=random&limit=200".to_owned(),
            Some(c) => format!("/api/v1/rooms?kind=random&limit=200&cursor={c}"),
        };
        let (s, v) = app.get(&path, &alice.token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        pages += 1;
        for r in v["rooms"].as_array().unwrap() {
            assert_eq!(r["kind"], "random");
            assert!(seen.insert(r["id"].as_i64().unwrap()), "repeated {r}");
        }
        match v.get("next_cursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (520, 3));
    let (s, v) = app.get("/api/v1/rooms?kind=nope", &alice.token).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
    let (s, v) = app.get("/api/v1/rooms?cursor=zz", &alice.token).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_cursor"));
}
