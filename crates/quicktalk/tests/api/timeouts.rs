//! Sockets cannot be held for free: without heart-beats an idle connection times
//! out, and a frame (STOMP or WebSocket) must complete in time.

use std::time::{Duration, Instant};

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;

use crate::helpers::spawn_app_with;
use crate::rawws::{client_frame, RawWs, OP_CLOSE, OP_TEXT};

/// Defect: with `heart-beat:0,0` an idle socket lived for ever.
#[tokio::test]
async fn an_idle_connection_without_heartbeats_is_closed() {
    let app = spawn_app_with(|c| c.idle_timeout_ms = 500).await;
    let user = app.signup("alice").await;
    let auth = format!("Bearer {}", user.token);
    let (mut c, f) = StompClient::connect_with(&app.ws_url(), &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(f.header("heart-beat"), Some("0,0"));
    let start = Instant::now();
    let err = c
        .recv_until(Duration::from_secs(5), |f| f.command == Command::Error)
        .await
        .expect("an ERROR once idle");
    assert!(err.header("message").unwrap().contains("idle"), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert!(matches!(
        c.recv_timeout(Duration::from_secs(2)).await,
        Ok(None) | Err(_)
    ));
}

/// Defect: a frame trickling in one byte at a time kept its socket (and buffer)
/// for ever, each byte counting as a sign of life.
#[tokio::test]
async fn a_stomp_frame_must_complete_in_time() {
    let app = spawn_app_with(|c| {
        c.frame_timeout_ms = 500;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    let user = app.signup("alice").await;
    let mut ws = RawWs::connect(app.addr, &user.token, "0,0").await;
    ws.send_text("SEND\ndestination:/app/rooms.1\n\n").await;
    let start = Instant::now();
    let mut texts = Vec::new();
    let close = loop {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a frame left incomplete for 5 s kept its socket: {texts:?}"
        );
        // One more byte every 100 ms: never a complete frame.
        let _ = ws.stream.try_write(&client_frame(true, OP_TEXT, b"a"));
        match tokio::time::timeout(Duration::from_millis(100), ws.next(Duration::from_secs(10)))
            .await
        {
            Err(_) => continue,
            Ok(None) => break None,
            Ok(Some(f)) if f.opcode == OP_CLOSE => break Some(f),
            Ok(Some(f)) => texts.push(f.text()),
        }
    };
    assert!(
        texts.iter().any(|t| t.contains("frame not completed")),
        "{texts:?}"
    );
    assert!(close.is_some(), "a Close frame ends it");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// Defect: a partial WebSocket frame (header promising more) pinned its socket.
#[tokio::test]
async fn a_websocket_frame_must_complete_in_time() {
    let app = spawn_app_with(|c| {
        c.frame_timeout_ms = 500;
        c.idle_timeout_ms = 60_000;
    })
    .await;
    let user = app.signup("alice").await;
    let mut ws = RawWs::connect(app.addr, &user.token, "0,0").await;
    let frame = client_frame(true, OP_TEXT, &[b'a'; 1000]);
    ws.send_raw(&frame[..20]).await;
    let start = Instant::now();
    let (texts, close) = ws.until_close(Duration::from_secs(5)).await;
    assert!(
        texts.iter().any(|t| t.contains("frame not completed")),
        "{texts:?}"
    );
    assert!(close.is_some(), "a Close frame ends it");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(ws.closed_within(Duration::from_secs(3)).await);
}
