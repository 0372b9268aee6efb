//! Contract §3: posting, ordering, gapless `seq`, receipts after commit,
//! idempotent `client_id`, private rooms, typing.

use std::collections::HashSet;
use std::time::Duration;

use quicktalk_client::stomp::Command;
use serde_json::json;

use crate::helpers::{assert_no_receipt, say, spawn_app};

#[tokio::test]
async fn members_receive_messages_with_contract_fields() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&bob, room).await;
    let mut a = app.stomp(&alice).await;
    let mut b = app.stomp(&bob).await;
    let dest = format!("/topic/rooms.{room}");
    a.subscribe_sync("a1", &dest, &[]).await.unwrap();
    b.subscribe_sync("b1", &dest, &[]).await.unwrap();
    a.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "  안녕하세요  ", "client_id": "c-1"}),
        Some("r1"),
    )
    .await
    .unwrap();
    a.expect_receipt("r1").await.unwrap();
    let f = b
        .recv_until(Duration::from_secs(5), |f| {
            f.command == Command::Message && f.body.windows(7).any(|w| w == b"message")
        })
        .await
        .unwrap();
    assert_eq!(f.header("content-type"), Some("application/json"));
    assert_eq!(f.header("destination"), Some(dest.as_str()));
    assert_eq!(f.header("subscription"), Some("b1"));
    assert!(f.header("message-id").is_some());
    let m: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(m["type"], "message");
    assert_eq!(m["kind"], "text");
    assert_eq!(m["room_id"], room);
    assert_eq!(m["seq"], 3);
    assert_eq!(m["text"], "안녕하세요");
    assert_eq!(m["client_id"], "c-1");
    assert_eq!(m["sender"]["id"], alice.id);
    assert_eq!(m["sender"]["name"], alice.name);
    assert!(m["id"].is_i64());
    let sent_at = m["sent_at"].as_str().unwrap();
    assert!(
        sent_at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(sent_at).is_ok(),
        "{sent_at}"
    );
    // The sender gets it too.
    let mine = a.next_of_type("a1", "message").await.unwrap();
    assert_eq!(mine, m);
}

#[tokio::test]
async fn a_receipt_means_the_message_is_stored() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut a = app.stomp(&alice).await;
    for i in 0..20 {
        let r = format!("r{i}");
        a.send_json(
            &format!("/app/rooms.{room}"),
            &json!({"text": format!("m{i}")}),
            Some(&r),
        )
        .await
        .unwrap();
        a.expect_receipt(&r).await.unwrap();
        // Read through a different path (REST, another connection) right after the receipt.
        let history = app.history(&alice, room).await;
        assert_eq!(history.last().unwrap()["text"], format!("m{i}"));
    }
}

#[tokio::test]
async fn seq_is_gapless_and_ordered_across_concurrent_senders() {
    const SENDERS: usize = 4;
    const EACH: usize = 150;
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let room = app.create_room(&owner, "busy", "public").await;
    let mut users = Vec::new();
    for i in 0..SENDERS {
        let u = app.signup(&format!("sender{i}")).await;
        app.join(&u, room).await;
        users.push(u);
    }
    let mut watcher = app.stomp(&owner).await;
    watcher
        .subscribe_sync("w", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let start_seq = 1 + SENDERS as i64; // owner's join + each sender's join
    let mut tasks = Vec::new();
    for u in users.clone() {
        let url = app.ws_url();
        tasks.push(tokio::spawn(async move {
            let mut c = quicktalk_client::StompClient::connect(&url, &u.token)
                .await
                .unwrap();
            // Pipelined: all SENDs go out before any receipt is awaited.
            for i in 0..EACH {
                c.send_json(
                    &format!("/app/rooms.{room}"),
                    &json!({"text": format!("{}:{i}", u.id)}),
                    Some(&format!("{i}")),
                )
                .await
                .unwrap();
            }
            for i in 0..EACH {
                c.expect_receipt(&format!("{i}")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = SENDERS * EACH;
    let mut seen = Vec::new();
    while seen.len() < total {
        let m = watcher.next_of_type("w", "message").await.unwrap();
        seen.push(m);
    }
    for (i, m) in seen.iter().enumerate() {
        assert_eq!(
            m["seq"].as_i64().unwrap(),
            start_seq + 1 + i as i64,
            "live delivery is gapless and in order"
        );
    }
    // Each sender's messages keep their send order.
    for u in &users {
        let mine: Vec<usize> = seen
            .iter()
            .filter(|m| m["sender"]["id"] == u.id)
            .map(|m| {
                m["text"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>());
    }
    let history = app.history(&owner, room).await;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=start_seq + total as i64).collect::<Vec<_>>());
    assert!(app.metric("quicktalk_messages_stored_total").await >= total as f64);
}

#[tokio::test]
async fn client_id_makes_send_idempotent() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&bob, room).await;
    let mut a = app.stomp(&alice).await;
    let mut b = app.stomp(&bob).await;
    a.subscribe_sync("a", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    // Same client_id three times, twice in one go (same commit batch), once later.
    for r in ["1", "2"] {
        a.send_json(
            &format!("/app/rooms.{room}"),
            &json!({"text": "once", "client_id": "dup"}),
            Some(r),
        )
        .await
        .unwrap();
    }
    a.expect_receipt("1").await.unwrap();
    a.expect_receipt("2").await.unwrap();
    a.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "once again", "client_id": "dup"}),
        Some("3"),
    )
    .await
    .unwrap();
    a.expect_receipt("3").await.unwrap();
    // Another user may use the same client_id.
    b.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "bob's", "client_id": "dup"}),
        Some("4"),
    )
    .await
    .unwrap();
    b.expect_receipt("4").await.unwrap();
    let texts: Vec<_> = app
        .history(&alice, room)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["once", "bob's"]);
    let first = a.next_of_type("a", "message").await.unwrap();
    assert_eq!(first["text"], "once");
    let second = a.next_of_type("a", "message").await.unwrap();
    assert_eq!(
        second["text"], "bob's",
        "the duplicate is not fanned out again"
    );
}

#[tokio::test]
async fn private_rooms_deny_non_members_on_stomp() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let mallory = app.signup("mallory").await;
    let room = app.create_room(&alice, "secret", "private").await;
    let mut m = app.stomp_with_errors(&mallory).await;
    m.subscribe("s", &format!("/topic/rooms.{room}"), &[("receipt", "s")])
        .await
        .unwrap();
    let err = m.next_json("errs").await.unwrap();
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["destination"], format!("/topic/rooms.{room}"));
    assert_eq!(err["receipt_id"], "s");
    // Contract v2: a rejected SUBSCRIBE gets no RECEIPT.
    assert_no_receipt(&mut m, "s").await;
    m.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "let me in"}),
        Some("x"),
    )
    .await
    .unwrap();
    let err = m.next_json("errs").await.unwrap();
    assert_eq!(err["code"], "not_member");
    assert_no_receipt(&mut m, "x").await;
    m.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(m.next_json("errs").await.unwrap()["code"], "not_member");
    // Nothing leaked into the room.
    let mut a = app.stomp(&alice).await;
    a.subscribe_sync("a", &format!("/topic/rooms.{room}"), &[("since-seq", "0")])
        .await
        .unwrap();
    let history = app.history(&alice, room).await;
    assert_eq!(history.len(), 1);
    assert!(!history.iter().any(|m| m["sender"]["id"] == mallory.id));
    // Public rooms: anyone may subscribe, only members may send.
    let open = app.create_room(&alice, "open", "public").await;
    m.subscribe_sync("o", &format!("/topic/rooms.{open}"), &[])
        .await
        .unwrap();
    m.send_json(&format!("/app/rooms.{open}"), &json!({"text": "hi"}), None)
        .await
        .unwrap();
    assert_eq!(m.next_json("errs").await.unwrap()["code"], "not_member");
    say(&mut a, open, "members only").await;
    assert_eq!(
        m.next_of_type("o", "message").await.unwrap()["text"],
        "members only"
    );
}

#[tokio::test]
async fn typing_is_broadcast_but_not_stored() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&bob, room).await;
    let mut a = app.stomp(&alice).await;
    let mut b = app.stomp(&bob).await;
    b.subscribe_sync("b", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    a.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), Some("t"))
        .await
        .unwrap();
    a.expect_receipt("t").await.unwrap();
    let t = b.next_of_type("b", "typing").await.unwrap();
    assert_eq!(
        t,
        json!({"type": "typing", "room_id": room, "user": {"id": alice.id, "name": alice.name, "guest": false}})
    );
    let history = app.history(&alice, room).await;
    assert!(history.iter().all(|m| m["kind"] != "typing"));
    assert_eq!(history.len(), 2);
}

#[tokio::test]
async fn max_length_text_in_korean_is_accepted() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut a = app.stomp(&alice).await;
    let text = "가".repeat(4000);
    say(&mut a, room, &text).await;
    let history = app.history(&alice, room).await;
    assert_eq!(history.last().unwrap()["text"], text);
    let ids: HashSet<_> = history.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), history.len());
}

#[tokio::test]
async fn leaving_a_room_ends_its_subscriptions() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "open", "public").await;
    app.join(&bob, room).await;
    let mut b = app.stomp(&bob).await;
    b.subscribe_sync("b", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    let leave = b.next_of_type("b", "message").await.unwrap();
    assert_eq!(
        leave["kind"], "leave",
        "the leaver sees their own leave notice"
    );
    let mut a = app.stomp(&alice).await;
    say(&mut a, room, "after bob left").await;
    let got =
        tokio::time::timeout(Duration::from_millis(500), b.next_of_type("b", "message")).await;
    assert!(
        got.is_err() || got.unwrap().is_err(),
        "no more messages after leaving"
    );
}

#[tokio::test]
async fn a_send_right_before_the_close_is_not_lost() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    for i in 0..20 {
        let mut c = app.stomp(&alice).await;
        // No receipt, then the WebSocket close at once: often one TCP read.
        c.send_json(
            &format!("/app/rooms.{room}"),
            &json!({"text": format!("last words {i}")}),
            None,
        )
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let texts: usize = app
            .history(&alice, room)
            .await
            .iter()
            .filter(|m| m["kind"] == "text")
            .count();
        if texts == 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {texts} of 20 stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
