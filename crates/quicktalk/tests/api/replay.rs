//! `since-seq` replays end with their subscription: UNSUBSCRIBE (and the
//! connection's end) cancel them, and a connection runs only a few at once.

use std::collections::HashSet;
use std::time::Duration;

use quicktalk_client::stomp::Command;
use serde_json::json;

use crate::helpers::spawn_app;

const REPLAYS_RUNNING: &str = "quicktalk_history_replays_running";

/// Defect: each `since-seq` replay ran detached to its end, pushing its pages
/// after the UNSUBSCRIBE (and its RECEIPT); a non-reading client repeating
/// SUBSCRIBE + UNSUBSCRIBE piled up replays and their pages (+685 MB measured).
#[tokio::test]
async fn replays_end_at_unsubscribe_and_a_connection_runs_few_at_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "big", "public").await;
    let mut a = app.stomp(&alice).await;
    for i in 1..1000 {
        let receipt = (i == 999).then(|| "last".to_owned());
        a.send_json(
            &format!("/app/rooms.{room}"),
            &json!({ "text": format!("message {i} {}", "x".repeat(200)) }),
            receipt.as_deref(),
        )
        .await
        .unwrap();
    }
    a.expect_receipt("last").await.unwrap();

    // Bob sends 100 × (SUBSCRIBE since-seq:0 + UNSUBSCRIBE) and does not read.
    let mut c = app.stomp(&bob).await;
    let mut frames = String::new();
    for i in 0..100 {
        frames.push_str(&format!(
            "SUBSCRIBE\nid:s{i}\ndestination:/topic/rooms.{room}\nsince-seq:0\n\n\0\
             UNSUBSCRIBE\nid:s{i}\nreceipt:u{i}\n\n\0"
        ));
    }
    c.send_text(frames).await.unwrap();
    let mut peak = 0.0f64;
    for _ in 0..20 {
        peak = peak.max(app.metric(REPLAYS_RUNNING).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(peak <= 2.0, "{peak} replays ran at once on one connection");

    // Now read: after u{i}'s RECEIPT, nothing more for s{i}.
    let mut unsubscribed = HashSet::new();
    let mut late = Vec::new();
    let mut replayed = 0;
    while let Ok(Some(f)) = c.recv_timeout(Duration::from_secs(2)).await {
        match f.command {
            Command::Receipt => {
                let id = f.header("receipt-id").unwrap().trim_start_matches('u');
                unsubscribed.insert(format!("s{id}"));
            }
            Command::Message => {
                let sub = f.header("subscription").unwrap().to_owned();
                if f.header("message-id").is_some_and(|m| m.starts_with('m')) {
                    replayed += 1;
                }
                if unsubscribed.contains(&sub) {
                    late.push(sub);
                }
            }
            _ => panic!("unexpected {f:?}"),
        }
    }
    assert_eq!(unsubscribed.len(), 100, "every UNSUBSCRIBE got its RECEIPT");
    assert!(
        late.is_empty(),
        "{} MESSAGE frames for subscriptions already ended (of {replayed} replayed): {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );
    assert_eq!(
        app.metric(REPLAYS_RUNNING).await,
        0.0,
        "replays left running"
    );
    // The connection still works, and a replay that is let run completes.
    c.subscribe(
        "full",
        &format!("/topic/rooms.{room}"),
        &[("since-seq", "990"), ("receipt", "done")],
    )
    .await
    .unwrap();
    let mut seqs = Vec::new();
    loop {
        let f = c
            .recv_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        if f.command == Command::Receipt {
            break;
        }
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        if v["type"] == "message" {
            seqs.push(v["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(seqs, (991..=1000).collect::<Vec<_>>());
}

/// Defect: every `since-seq` SUBSCRIBE took a replay place, so a user in more
/// than 64 rooms who reconnected (the web UI re-subscribes each room with
/// `since-seq`) got `too_many_replays` for the rest. A room with nothing newer
/// than `since-seq` goes live at once; only real replays count.
#[tokio::test]
async fn resubscribing_many_rooms_with_nothing_new_needs_no_replay() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let mut rooms = Vec::new();
    for i in 0..100 {
        rooms.push(
            app.create_room(&alice, &format!("room {i}"), "public")
                .await,
        );
    }
    let mut c = app.stomp_with_errors(&alice).await;
    let mut frames = String::new();
    for (i, r) in rooms.iter().enumerate() {
        // Each room holds its creator's join (seq 1), which the client has seen.
        frames.push_str(&format!(
            "SUBSCRIBE\nid:r{i}\ndestination:/topic/rooms.{r}\nsince-seq:1\nreceipt:s{i}\n\n\0"
        ));
    }
    c.send_text(frames).await.unwrap();
    let mut receipts = HashSet::new();
    while receipts.len() < rooms.len() {
        let f = c
            .recv_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("a frame");
        match f.command {
            Command::Receipt => {
                receipts.insert(f.header("receipt-id").unwrap().to_owned());
            }
            Command::Message => {
                let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
                assert_ne!(v["type"], "error", "{v}");
                assert_ne!(v["type"], "message", "nothing to replay: {v}");
            }
            _ => panic!("unexpected {f:?}"),
        }
    }
    let current = "quicktalk_history_replays_total{outcome=\"current\"}";
    let replayed = "quicktalk_history_replays_total{outcome=\"replayed\"}";
    assert_eq!(app.metric(current).await, rooms.len() as f64);
    assert_eq!(app.metric(replayed).await, 0.0, "no replay ran");
    // Live delivery works on such a subscription, once.
    let last = *rooms.last().unwrap();
    crate::helpers::say(&mut c, last, "hello").await;
    let mut seen = 0;
    while let Ok(Some(f)) = c.recv_timeout(Duration::from_millis(500)).await {
        if f.command == Command::Message {
            let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
            if v["type"] == "message" {
                assert_eq!(
                    (v["seq"].as_i64(), v["text"].as_str()),
                    (Some(2), Some("hello"))
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 1);
}
