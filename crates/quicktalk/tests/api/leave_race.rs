//! A SUBSCRIBE racing a leave must not leave a live subscription behind: after
//! the leave, a private room's traffic no longer reaches the leaver.

use std::time::Duration;

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp, TestUser};

async fn paired(app: &TestApp, i: usize) -> (TestUser, TestUser, i64, StompClient) {
    let a = app.guest(&format!("a{i}")).await;
    let b = app.guest(&format!("b{i}")).await;
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    for c in [&mut ca, &mut cb] {
        c.subscribe_sync("ev", "/user/queue/events", &[])
            .await
            .unwrap();
        c.send_json("/app/match.connect", &json!({}), None)
            .await
            .unwrap();
    }
    let found = ca.next_of_type("ev", "match.found").await.unwrap();
    let room = found["room_id"].as_i64().unwrap();
    cb.next_of_type("ev", "match.found").await.unwrap();
    (a, b, room, cb)
}

/// Defect: SUBSCRIBE checked membership, then registered. A leave applied in
/// between dropped the leaver's subscriptions before this one existed, so it
/// stayed live and kept delivering the private room's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribe_racing_a_leave_leaves_no_live_subscription() {
    let app = spawn_app_with(|c| c.match_window_ms = 0).await;
    for round in 0..12 {
        let (a, b, room, mut cb) = paired(&app, round).await;
        // A's other sockets subscribe to the room over and over while A leaves.
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(app.stomp(&a).await);
        }
        let mut text = String::new();
        for i in 0..250 {
            text.push_str(&format!(
                "SUBSCRIBE\nid:s{i}\ndestination:/topic/rooms.{room}\n\n\0"
            ));
        }
        for c in &mut conns {
            c.send_text(text.clone()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(round as u64 % 4)).await;
        let (s, v) = app
            .post(&format!("/api/v1/rooms/{room}/leave"), &a.token, json!({}))
            .await;
        assert!(s.is_success(), "{v}");
        // Let every SUBSCRIBE be handled, then B posts.
        for c in &mut conns {
            c.subscribe_sync("sync", "/user/queue/events", &[])
                .await
                .unwrap();
        }
        // Leaving a running chat's room ends the chat, so B can neither post nor
        // type there; B subscribing is the probe: the presence broadcast naming B
        // goes to whoever is subscribed. B gets it after its own snapshot.
        cb.subscribe_sync("room", &format!("/topic/rooms.{room}"), &[])
            .await
            .unwrap();
        let names_b = |v: &serde_json::Value| {
            v["type"] == "presence"
                && v["online"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|u| u["id"] == b.id))
        };
        let mut seen = 0;
        while seen < 2 {
            let v = cb.next_of_type("room", "presence").await.unwrap();
            if names_b(&v) {
                seen += 1;
            }
        }
        for c in &mut conns {
            while let Ok(Some(f)) = c.recv_timeout(Duration::from_millis(300)).await {
                if f.command == Command::Message {
                    let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
                    assert!(
                        !names_b(&v),
                        "round {round}: subscription {:?} outlived the leave",
                        f.header("subscription")
                    );
                }
            }
        }
    }
}
