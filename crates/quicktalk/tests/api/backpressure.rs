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

/// Defect: a client that sends pings but never reads was never dropped: the
/// server awaited the pong (and every write) without bound, so neither the
/// slow-consumer kill nor any deadline fired, and the user stayed online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pings_but_never_reads_is_dropped_after_the_write_timeout() {
    use crate::rawws::{client_frame, RawWs, OP_PING};
    let app = spawn_app_with(|c| {
        c.write_timeout_ms = 1000;
        // Far more than the flood: only the write timeout can drop the client.
        c.outbound_queue = 1_000_000;
    })
    .await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&bob, room).await;
    let dest = format!("/topic/rooms.{room}");
    let mut ws = RawWs::open(app.addr, Some(4096)).await;
    ws.connect_stomp(&bob.token, "0,0").await;
    ws.send_text(&format!(
        "SUBSCRIBE\nid:s\ndestination:{dest}\nreceipt:r\n\n\0"
    ))
    .await;
    loop {
        let f = ws.next_data(Duration::from_secs(5)).await.expect("RECEIPT");
        if f.text().starts_with("RECEIPT") {
            break;
        }
    }
    let online = |v: &serde_json::Value| {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == bob.id && m["online"] == true)
    };
    let (_, v) = app
        .get(&format!("/api/v1/rooms/{room}/members"), &alice.token)
        .await;
    assert!(online(&v), "{v}");

    // From now on Bob only pings, and never reads.
    let (_rd, wr) = ws.stream.into_split();
    let pinger = tokio::spawn(async move {
        loop {
            let _ = wr.try_write(&client_frame(true, OP_PING, b"hi"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Alice floods the room: far more than the socket buffers hold.
    let mut a = app.stomp(&alice).await;
    let big = "가".repeat(4000);
    let flood_start = tokio::time::Instant::now();
    for i in 0..800 {
        let r = (i % 50 == 49).then(|| i.to_string());
        a.send_json(
            &format!("/app/rooms.{room}"),
            &json!({ "text": big }),
            r.as_deref(),
        )
        .await
        .unwrap();
        if let Some(r) = r {
            a.expect_receipt(&r).await.unwrap();
        }
    }
    let flooded = flood_start.elapsed();
    // Within the bound (write timeout, plus slack for a slow machine) Bob is
    // dropped and listed offline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = app
            .get(&format!("/api/v1/rooms/{room}/members"), &alice.token)
            .await;
        if !online(&v) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a client that stopped reading is still online 15 s after the flood ({flooded:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        app.metric("quicktalk_connection_timeouts_total{kind=\"write\"}")
            .await
            >= 1.0
    );
    pinger.abort();
    say(&mut a, room, "still alive").await;
}
