//! Contract §7 blocks, on one node, over REST and STOMP: a blocked user cannot
//! open or post to a direct room with the blocker, ask them to be friends, or
//! be matched with them (`403 not_allowed`, which says nothing of the block);
//! in shared rooms the blocker gets their messages as `kind:"hidden"` with the
//! same `seq` — live, in history and in `since-seq` replay — and none of their
//! typing or presence. The blocked user sees nothing different. (The 3-node
//! version is in `cluster.rs`.)

use std::time::Duration;

use quicktalk_client::StompClient;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{code, say, spawn_app, spawn_app_with, TestApp, TestUser};

async fn block(app: &TestApp, who: &TestUser, whom: &TestUser) {
    let (s, v) = app
        .post("/api/v1/blocks", &who.token, json!({"user_id": whom.id}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
}

/// The next stored-message event on subscription `sub`.
async fn next_message(c: &mut StompClient, sub: &str) -> Value {
    c.next_of_type(sub, "message").await.unwrap()
}

fn assert_hidden(m: &Value, seq: i64) {
    assert_eq!(m["kind"], "hidden", "{m}");
    assert_eq!(m["seq"], seq, "{m}");
    for gone in ["text", "sender", "attachments", "client_id"] {
        assert!(m.get(gone).is_none(), "{gone} shown: {m}");
    }
    assert!(
        m["id"].is_i64() && m["room_id"].is_i64() && m["sent_at"].is_string(),
        "{m}"
    );
}

#[tokio::test]
async fn a_block_hides_the_blocked_user_in_shared_rooms_live_history_replay_presence_typing() {
    let app = spawn_app().await;
    let a = app.signup("blocker").await;
    let b = app.signup("blocked").await;
    let c = app.signup("bystander").await;
    let room = app.create_room(&c, "shared", "public").await;
    for u in [&a, &b] {
        app.join(u, room).await;
    }
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    let mut cc = app.stomp(&c).await;
    for (cl, id) in [(&mut ca, "a"), (&mut cb, "b"), (&mut cc, "c")] {
        cl.subscribe_sync(id, &format!("/topic/rooms.{room}"), &[])
            .await
            .unwrap();
    }
    say(&mut cb, room, "before").await;
    for (cl, id) in [(&mut ca, "a"), (&mut cb, "b"), (&mut cc, "c")] {
        assert_eq!(next_message(cl, id).await["text"], "before");
    }
    block(&app, &a, &b).await;
    // GET /blocks lists b for a; b's own list is empty (b is never told).
    let (_, v) = app.get("/api/v1/blocks", &a.token).await;
    assert_eq!(v["blocks"][0]["id"].as_i64(), Some(b.id), "{v}");
    let (_, v) = app.get("/api/v1/blocks", &b.token).await;
    assert_eq!(v["blocks"], json!([]));
    // Live: a gets a placeholder with the same seq; c and b get the message.
    say(&mut cb, room, "after").await;
    let hidden = next_message(&mut ca, "a").await;
    let full = next_message(&mut cc, "c").await;
    assert_eq!(full["text"], "after");
    assert_hidden(&hidden, full["seq"].as_i64().unwrap());
    assert_eq!(hidden["id"], full["id"]);
    assert_eq!(
        next_message(&mut cb, "b").await["text"],
        "after",
        "the blocked user sees no change"
    );
    // a's own messages still reach b.
    say(&mut ca, room, "from a").await;
    let m = c_next_text(&mut cb, "b").await;
    assert_eq!(m, "from a");
    assert_eq!(c_next_text(&mut ca, "a").await, "from a");
    // History: hidden for a (both of b's messages), gapless seq; full for c.
    let ha = app.history(&a, room).await;
    let hc = app.history(&c, room).await;
    assert_eq!(ha.len(), hc.len());
    for (x, y) in ha.iter().zip(&hc) {
        assert_eq!(x["seq"], y["seq"]);
        if y["sender"]["id"].as_i64() == Some(b.id) {
            assert_hidden(x, y["seq"].as_i64().unwrap());
        } else {
            assert_eq!(x, y);
        }
    }
    // since-seq replay: hidden too.
    let mut ra = app.stomp(&a).await;
    ra.subscribe(
        "r",
        &format!("/topic/rooms.{room}"),
        &[("since-seq", "0"), ("receipt", "replayed")],
    )
    .await
    .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < hc.len() {
        replayed.push(next_message(&mut ra, "r").await);
    }
    for (x, y) in replayed.iter().zip(&hc) {
        assert_eq!(x["seq"], y["seq"]);
        if y["sender"]["id"].as_i64() == Some(b.id) {
            assert_hidden(x, y["seq"].as_i64().unwrap());
        }
    }
    // Typing: c sees b typing, a does not (a later typing of c's arrives first).
    cb.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let t = cc.next_of_type("c", "typing").await.unwrap();
    assert_eq!(t["user"]["id"].as_i64(), Some(b.id));
    tokio::time::sleep(Duration::from_millis(100)).await;
    cc.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let t = ca.next_of_type("a", "typing").await.unwrap();
    assert_eq!(
        t["user"]["id"].as_i64(),
        Some(c.id),
        "b's typing reached a: {t}"
    );
    // Presence: a's snapshots leave b out; c's include b.
    let mut pa = app.stomp(&a).await;
    pa.subscribe_sync("p", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let p = pa.next_of_type("p", "presence").await.unwrap();
    let ids: Vec<i64> = p["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&b.id) && ids.contains(&c.id), "{p}");
    assert_eq!(p["count"].as_u64(), Some(ids.len() as u64), "{p}");
    let mut pc = app.stomp(&c).await;
    pc.subscribe_sync("p", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let p = pc.next_of_type("p", "presence").await.unwrap();
    assert!(
        p["online"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"].as_i64() == Some(b.id)),
        "{p}"
    );
    // Members: b is never online to a.
    let (_, m) = app
        .get(&format!("/api/v1/rooms/{room}/members"), &a.token)
        .await;
    let bm = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_i64() == Some(b.id))
        .unwrap()
        .clone();
    assert_eq!(bm["online"], false, "{m}");
    // Unblocking shows b again, live.
    let (s, _) = app
        .request(
            Method::DELETE,
            &format!("/api/v1/blocks/{}", b.id),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    say(&mut cb, room, "visible again").await;
    assert_eq!(c_next_text(&mut ca, "a").await, "visible again");
}

/// The next message's text on `sub`, skipping other events.
async fn c_next_text(c: &mut StompClient, sub: &str) -> String {
    next_message(c, sub).await["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_blocked_user_cannot_open_a_dm_post_to_one_or_send_friend_requests() {
    let app = spawn_app().await;
    let a = app.signup("blocker").await;
    let b = app.signup("blocked").await;
    // A friendship and a direct room from before the block.
    let (_, r) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    let (_, dm) = app
        .post("/api/v1/direct", &b.token, json!({"user_id": a.id}))
        .await;
    let room = dm["id"].as_i64().unwrap();
    let mut cb = app.stomp_with_errors(&b).await;
    say(&mut cb, room, "hello").await;
    block(&app, &a, &b).await;
    // The pending request is gone; the friendship (none yet) cannot start.
    let (_, lists) = app.get("/api/v1/friends/requests", &b.token).await;
    assert_eq!(lists["incoming"], json!([]), "{lists}");
    let (s, v) = app
        .post(
            &format!("/api/v1/friends/requests/{}/accept", r["id"]),
            &b.token,
            json!({}),
        )
        .await;
    assert!(
        s == StatusCode::CONFLICT || s == StatusCode::NOT_FOUND,
        "{s} {v}"
    );
    for (who, whom) in [(&b, &a), (&a, &b)] {
        let (s, v) = app
            .post(
                "/api/v1/friends/requests",
                &who.token,
                json!({"user_id": whom.id}),
            )
            .await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
        let (s, v) = app
            .post("/api/v1/direct", &who.token, json!({"user_id": whom.id}))
            .await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
    }
    // Posting into the existing direct room: refused over REST and STOMP.
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &b.token,
            json!({"text": "let me in"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
    cb.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "still there?"}),
        Some("r1"),
    )
    .await
    .unwrap();
    let e = crate::helpers::next_error(&mut cb, "errs").await;
    assert_eq!(e["code"], "not_allowed", "{e}");
    // The message text says nothing of a block.
    assert!(!e.to_string().to_lowercase().contains("block"), "{e}");
    // Friends already: a block ends the friendship.
    let c = app.signup("carol").await;
    let (_, r) = app
        .post(
            "/api/v1/friends/requests",
            &c.token,
            json!({"user_id": a.id}),
        )
        .await;
    app.post(
        &format!("/api/v1/friends/requests/{}/accept", r["id"]),
        &a.token,
        json!({}),
    )
    .await;
    block(&app, &a, &c).await;
    let (_, f) = app.get("/api/v1/friends", &c.token).await;
    assert_eq!(f["friends"], json!([]));
    // Blocking oneself or nobody.
    let (s, _) = app
        .post("/api/v1/blocks", &a.token, json!({"user_id": a.id}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .post("/api/v1/blocks", &a.token, json!({"user_id": 987_654}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn blocked_users_are_never_matched() {
    let app = spawn_app_with(|c| {
        c.match_window_ms = 300;
        c.match_grace_ms = 300;
    })
    .await;
    let a = app.guest("ga").await;
    let b = app.guest("gb").await;
    block(&app, &a, &b).await;
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    for cl in [&mut ca, &mut cb] {
        cl.subscribe_sync("ev", "/user/queue/events", &[])
            .await
            .unwrap();
        cl.send_json("/app/match.connect", &json!({}), None)
            .await
            .unwrap();
        cl.next_of_type("ev", "match.waiting").await.unwrap();
    }
    let found = tokio::time::timeout(
        Duration::from_millis(1500),
        ca.next_of_type("ev", "match.found"),
    )
    .await;
    assert!(
        found.is_err() || found.unwrap().is_err(),
        "a blocked pair was matched"
    );
    // A third user is matched with one of them, so matching itself works.
    let c = app.guest("gc").await;
    let mut cc = app.stomp(&c).await;
    cc.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    cc.send_json("/app/match.connect", &json!({}), None)
        .await
        .unwrap();
    let m = cc.next_of_type("ev", "match.found").await.unwrap();
    assert!(m["room_id"].is_i64(), "{m}");
}
