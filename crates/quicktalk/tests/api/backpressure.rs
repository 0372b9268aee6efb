//! A subscriber that cannot keep up is disconnected; the server does not buffer
//! without bound, and everyone else is unaffected.

use std::time::Duration;

use quicktalk_client::stomp::Command;
use serde_json::json;

use crate::helpers::{say, spawn_app_with};

#[tokio::test]
async fn a_slow_consumer_is_cut_off_with_an_error() {
    let app = spawn_app_with(|c| c.outbound_queue = 64).await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&bob, room).await;
    let dest = format!("/topic/rooms.{room}");
    // Bob subscribes, then stops reading entirely.
    let mut slow = app.stomp(&bob).await;
    slow.subscribe_sync("s", &dest, &[]).await.unwrap();
    let mut fast = app.stomp(&bob).await;
    fast.subscribe_sync("f", &dest, &[]).await.unwrap();
    let mut a = app.stomp(&alice).await;
    let big = "가".repeat(4000);
    let fast_reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 3000 {
            let m = fast.next_of_type("f", "message").await.unwrap();
            if m["kind"] == "text" {
                n += 1;
            }
        }
    });
    let sender = tokio::spawn(async move {
        for i in 0..3000 {
            let r = (i % 10 == 9).then(|| i.to_string());
            a.send_json(
                &format!("/app/rooms.{room}"),
                &json!({"text": big}),
                r.as_deref(),
            )
            .await
            .unwrap();
            if let Some(r) = r {
                a.expect_receipt(&r).await.unwrap();
            }
        }
        a
    });
    // Wait for the server to give up on the slow client...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.metric("quicktalk_outbound_queue_drops_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow consumer was never cut off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...then read: some messages, then an ERROR saying why, then EOF.
    let mut saw_error = None;
    loop {
        match slow.recv_timeout(Duration::from_secs(10)).await {
            Ok(Some(f)) if f.command == Command::Error => {
                saw_error = f.header("message").map(str::to_owned)
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break,
        }
    }
    let why = saw_error.expect("an ERROR before the close");
    assert!(why.contains("slow consumer"), "{why}");
    // Everyone else was unaffected.
    let mut a = sender.await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), fast_reader)
        .await
        .unwrap()
        .unwrap();
    say(&mut a, room, "still alive").await;
}
