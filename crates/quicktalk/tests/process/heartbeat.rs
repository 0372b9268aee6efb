//! Heart-beats negotiated per STOMP 1.2: a silent client is dropped, a chatty
//! one is kept and hears the server's heart-beats.

use std::time::{Duration, Instant};

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;

use crate::harness::{data_dir, ServerProcess};

const HB_ARGS: [&str; 4] = ["--heartbeat-recv-ms", "300", "--heartbeat-send-ms", "300"];

async fn connect_with_heartbeat(server: &ServerProcess, token: &str) -> StompClient {
    let auth = format!("Bearer {token}");
    let (c, first) = StompClient::connect_with(
        &server.ws_url(),
        &[("Authorization", &auth), ("heart-beat", "300,300")],
    )
    .await
    .expect("WebSocket connect");
    assert_eq!(first.command, Command::Connected, "{first:?}");
    assert_eq!(first.header("heart-beat"), Some("300,300"), "{first:?}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_disconnected() {
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &HB_ARGS);
    let (_, token) = server.signup("hb_silent").await;
    let mut c = connect_with_heartbeat(&server, &token).await;
    let connected_at = Instant::now();

    // Say nothing at all. The server must give up on us.
    let err = c
        .recv_until(Duration::from_secs(3), |f| f.command == Command::Error)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no ERROR within 3 s for a client silent past its 300 ms heart-beat: {e:#} \
                 (heart-beats received: {})",
                c.heartbeats
            )
        });
    let took = connected_at.elapsed();
    let text = format!(
        "{} {}",
        err.header("message").unwrap_or_default(),
        String::from_utf8_lossy(&err.body)
    )
    .to_lowercase();
    assert!(
        text.contains("heart-beat") || text.contains("heartbeat"),
        "ERROR does not mention heart-beat: {err:?}"
    );
    // Then the socket closes.
    match c.recv_timeout(Duration::from_secs(2)).await {
        Ok(None) => {}
        Ok(Some(f)) => panic!("frame after the heart-beat ERROR: {f:?}"),
        Err(e) if format!("{e:#}").contains("no frame within") => {
            panic!("socket still open 2 s after the heart-beat ERROR")
        }
        Err(_) => {} // reset: closed as well
    }
    eprintln!(
        "heart-beat: silent client dropped after {took:?} ({} server heart-beats before)",
        c.heartbeats
    );
    assert!(
        took >= Duration::from_millis(300),
        "dropped before one interval: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatty_client_stays_connected_and_hears_heartbeats() {
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &HB_ARGS);
    let (_, token) = server.signup("hb_chatty").await;
    let mut c = connect_with_heartbeat(&server, &token).await;

    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        c.send_text("\n").await.expect("sending a heart-beat EOL");
        // Read whatever comes for the next 200 ms: heart-beats are counted and
        // skipped; any frame (an ERROR) or a close is a failure.
        let tick = Duration::from_millis(200);
        match c.recv_until(tick, |_| true).await {
            Ok(f) => panic!("unexpected frame while heart-beating: {f:?}"),
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(
                    msg.contains("no matching frame within"),
                    "connection lost: {msg}"
                );
            }
        }
    }
    assert!(c.heartbeats > 0, "no server heart-beats in 2 s at 300 ms");
    eprintln!(
        "heart-beat: chatty client got {} server heart-beats in 2 s",
        c.heartbeats
    );

    // Still fully usable.
    c.subscribe_sync("me", "/user/queue/events", &[])
        .await
        .expect("connection still works after 2 s of heart-beats");
}
