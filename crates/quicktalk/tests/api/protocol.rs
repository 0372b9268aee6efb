//! Contract §3: STOMP connection, authentication and protocol violations.

use std::time::Duration;

use quicktalk_client::stomp::{Command, Frame};
use quicktalk_client::StompClient;
use serde_json::json;

use crate::helpers::{assert_no_receipt, spawn_app, spawn_app_with};

/// Expects an ERROR (whose `message` contains `needle`) and then the socket closing.
async fn expect_error_and_close(c: &mut StompClient, needle: &str) {
    let f = c
        .recv_until(Duration::from_secs(5), |f| f.command == Command::Error)
        .await
        .expect("an ERROR frame");
    let msg = f.header("message").unwrap_or_default().to_owned();
    assert!(
        msg.contains(needle),
        "ERROR message {msg:?} lacks {needle:?}"
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.recv_timeout(Duration::from_secs(5)).await {
                Ok(None) | Err(_) => return true,
                Ok(Some(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.unwrap_or(false), "socket still open after ERROR");
}

#[tokio::test]
async fn connect_needs_a_valid_token() {
    let app = spawn_app().await;
    let (mut c, first) = StompClient::connect_with(&app.ws_url(), &[]).await.unwrap();
    assert_eq!(first.command, Command::Error);
    assert_eq!(first.header("message"), Some("unauthorized"));
    assert!(
        c.recv().await.unwrap().is_none(),
        "socket closes after ERROR"
    );

    let (_, first) =
        StompClient::connect_with(&app.ws_url(), &[("Authorization", "Bearer forged.token.x")])
            .await
            .unwrap();
    assert_eq!(first.command, Command::Error);
    assert_eq!(first.header("message"), Some("unauthorized"));
}

#[tokio::test]
async fn connect_accepts_header_passcode_or_query_token() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let auth = format!("Bearer {}", user.token);
    let (_, f) = StompClient::connect_with(&app.ws_url(), &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(f.command, Command::Connected);
    assert_eq!(f.header("version"), Some("1.2"));
    let (_, f) =
        StompClient::connect_with(&app.ws_url(), &[("login", "x"), ("passcode", &user.token)])
            .await
            .unwrap();
    assert_eq!(f.command, Command::Connected);
    let url = format!("{}?access_token={}", app.ws_url(), user.token);
    let (_, f) = StompClient::connect_with(&url, &[]).await.unwrap();
    assert_eq!(f.command, Command::Connected);
    // The STOMP command works as CONNECT does.
    let mut c = StompClient::open(&app.ws_url()).await.unwrap();
    c.send(
        &Frame::new(Command::Stomp)
            .with_header("accept-version", "1.1,1.2")
            .with_header("host", "x")
            .with_header("Authorization", auth.clone()),
    )
    .await
    .unwrap();
    let f = c.recv().await.unwrap().unwrap();
    assert_eq!(f.command, Command::Connected);
}

#[tokio::test]
async fn versions_are_negotiated() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let auth = format!("Bearer {}", user.token);
    for (offer, want) in [("1.0", "1.0"), ("1.1", "1.1"), ("1.0,1.1,1.2", "1.2")] {
        let (_, f) = StompClient::connect_with(
            &app.ws_url(),
            &[("accept-version", offer), ("Authorization", &auth)],
        )
        .await
        .unwrap();
        assert_eq!(f.command, Command::Connected, "{offer}");
        assert_eq!(f.header("version"), Some(want), "{offer}");
    }
    let (_, f) = StompClient::connect_with(
        &app.ws_url(),
        &[("accept-version", "2.0"), ("Authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(f.command, Command::Error);
}

#[tokio::test]
async fn websocket_subprotocol_is_negotiated() {
    use tokio_tungstenite_for_tests::*;
    let app = spawn_app().await;
    let proto = negotiated_protocol(&app.ws_url(), "v11.stomp").await;
    assert_eq!(proto.as_deref(), Some("v11.stomp"));
    let proto = negotiated_protocol(&app.ws_url(), "v12.stomp, v10.stomp").await;
    assert_eq!(proto.as_deref(), Some("v12.stomp"));
}

mod tokio_tungstenite_for_tests {
    /// Opens a raw WebSocket offering `offer` and returns the chosen subprotocol.
    pub async fn negotiated_protocol(url: &str, offer: &str) -> Option<String> {
        let (addr, path) = url.strip_prefix("ws://").unwrap().split_once('/').unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {offer}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("sec-websocket-protocol")
                .then(|| v.trim().to_owned())
        })
    }
}

#[tokio::test]
async fn frames_before_connect_are_rejected() {
    let app = spawn_app().await;
    let mut c = StompClient::open(&app.ws_url()).await.unwrap();
    c.send_text("SUBSCRIBE\nid:1\ndestination:/topic/rooms.1\n\n\0")
        .await
        .unwrap();
    expect_error_and_close(&mut c, "CONNECT").await;
}

#[tokio::test]
async fn protocol_violations_get_error_and_close() {
    let app = spawn_app_with(|c| c.max_frame_bytes = 8 * 1024).await;
    let user = app.signup("alice").await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown command", b"HELLO\n\n\0".to_vec()),
        ("malformed header", b"SEND\ndestination\n\n\0".to_vec()),
        ("missing header: destination", b"SEND\n\nhi\0".to_vec()),
        (
            "missing header: id",
            b"SUBSCRIBE\ndestination:/topic/rooms.1\n\n\0".to_vec(),
        ),
        (
            "escape",
            b"SEND\ndestination:/app/rooms.1\\t\n\n\0".to_vec(),
        ),
        ("utf-8", b"SEND\ndestination:\xff\xfe\n\n\0".to_vec()),
        (
            "content-length",
            b"SEND\ndestination:/x\ncontent-length:abc\n\n\0".to_vec(),
        ),
        ("exceeds", {
            let mut f = b"SEND\ndestination:/app/rooms.1\n\n".to_vec();
            f.extend(std::iter::repeat_n(b'a', 9000));
            f.push(0);
            f
        }),
        ("server frame", b"MESSAGE\ndestination:/x\n\n\0".to_vec()),
        (
            "already connected",
            b"CONNECT\naccept-version:1.2\n\n\0".to_vec(),
        ),
        // A raw NUL in a header would be echoed into the RECEIPT (ending it early).
        (
            "nul",
            b"SUBSCRIBE\nid:e\ndestination:/user/queue/errors\nreceipt:a\0b\n\n\0".to_vec(),
        ),
    ];
    for (needle, bytes) in cases {
        let mut c = app.stomp(&user).await;
        c.send_binary(bytes).await.unwrap();
        expect_error_and_close(&mut c, needle).await;
    }
    // The server is still fine.
    let mut c = app.stomp(&user).await;
    c.subscribe_sync("e", "/user/queue/errors", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_error_frame_carries_the_receipt_id() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let mut c = app.stomp(&user).await;
    c.send_text("SEND\nreceipt:77\n\n\0").await.unwrap();
    let f = c
        .recv_until(Duration::from_secs(5), |f| f.command == Command::Error)
        .await
        .unwrap();
    assert_eq!(f.header("receipt-id"), Some("77"));
}

#[tokio::test]
async fn several_frames_and_heartbeats_in_one_message() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let room = app.create_room(&user, "r", "public").await;
    let mut c = app.stomp(&user).await;
    let text = format!(
        "\n\r\nSUBSCRIBE\nid:a\ndestination:/topic/rooms.{room}\nreceipt:1\n\n\0\n\
         SEND\ndestination:/app/rooms.{room}\nreceipt:2\n\n{{\"text\":\"one\"}}\0\n\n\
         SEND\ndestination:/app/rooms.{room}\nreceipt:3\ncontent-length:14\n\n{{\"text\":\"two\"}}\0"
    );
    c.send_text(text).await.unwrap();
    for r in ["1", "2", "3"] {
        c.expect_receipt(r).await.unwrap();
    }
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let m = c.next_of_type("a", "message").await.unwrap();
        texts.push(m["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(texts, ["one", "two"]);
}

#[tokio::test]
async fn application_errors_keep_the_socket_open() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let room = app.create_room(&user, "r", "public").await;
    let mut c = app.stomp_with_errors(&user).await;
    let cases = [
        (
            format!("/app/rooms.{room}"),
            json!({"text": "   "}),
            "empty_text",
        ),
        (
            format!("/app/rooms.{room}"),
            json!({"text": "가".repeat(4001)}),
            "too_large",
        ),
        // `text` may be absent since files came (contract §6: `{"text"?,
        // "attachments"}`): without either the message is empty.
        (
            format!("/app/rooms.{room}"),
            json!({"txt": "x"}),
            "empty_text",
        ),
        (
            format!("/app/rooms.{room}"),
            json!({"text": "x", "attachments": "abc"}),
            "invalid_json",
        ),
        (
            format!("/app/rooms.{room}"),
            json!({"text": 5}),
            "invalid_json",
        ),
        (
            "/app/rooms.999999".to_owned(),
            json!({"text": "x"}),
            "not_found",
        ),
        (
            "/app/nowhere".to_owned(),
            json!({"text": "x"}),
            "unknown_destination",
        ),
    ];
    for (i, (dest, body, want)) in cases.iter().enumerate() {
        let receipt = format!("e{i}");
        c.send_json(dest, body, Some(&receipt)).await.unwrap();
        let err = c.next_json("errs").await.unwrap();
        assert_eq!(err["type"], "error");
        assert_eq!(err["code"], *want, "{dest} {body}");
        assert_eq!(err["destination"], dest.as_str());
        assert_eq!(err["receipt_id"], receipt.as_str());
        assert!(!err["message"].as_str().unwrap().is_empty());
        // Contract v2: a rejected frame gets no RECEIPT.
        assert_no_receipt(&mut c, &receipt).await;
    }
    c.subscribe("x", "/topic/elsewhere", &[("receipt", "sx")])
        .await
        .unwrap();
    let err = c.next_json("errs").await.unwrap();
    assert_eq!(err["code"], "unknown_destination");
    assert_eq!(err["receipt_id"], "sx");
    assert_no_receipt(&mut c, "sx").await;
    c.subscribe("errs", "/user/queue/events", &[])
        .await
        .unwrap();
    let err = c.next_json("errs").await.unwrap();
    assert_eq!(err["code"], "duplicate_subscription");
    // Still connected and working.
    let mut s = app.stomp(&user).await;
    s.subscribe_sync("m", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    crate::helpers::say(&mut c, room, "still here").await;
    assert_eq!(
        s.next_of_type("m", "message").await.unwrap()["text"],
        "still here"
    );
}

#[tokio::test]
async fn disconnect_gets_a_receipt_then_close() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let mut c = app.stomp(&user).await;
    c.send(&Frame::new(Command::Disconnect).with_header("receipt", "bye"))
        .await
        .unwrap();
    c.expect_receipt("bye").await.unwrap();
    assert!(c.recv().await.unwrap().is_none());
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_its_heartbeat_window() {
    let app = spawn_app_with(|c| {
        c.heartbeat_recv_ms = 200;
        c.heartbeat_send_ms = 200;
    })
    .await;
    let user = app.signup("alice").await;
    let auth = format!("Bearer {}", user.token);
    let (mut c, f) = StompClient::connect_with(
        &app.ws_url(),
        &[("Authorization", &auth), ("heart-beat", "200,200")],
    )
    .await
    .unwrap();
    assert_eq!(f.header("heart-beat"), Some("200,200"));
    expect_error_and_close(&mut c, "heart-beat").await;
    assert!(c.heartbeats > 0, "the server sent heart-beats meanwhile");
    // A client that does not ask for heart-beats is never dropped for silence.
    let (mut quiet, f) = StompClient::connect_with(&app.ws_url(), &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(f.header("heart-beat"), Some("0,0"));
    assert!(
        quiet
            .recv_timeout(Duration::from_millis(800))
            .await
            .is_err(),
        "no frame, no close"
    );
}

#[tokio::test]
async fn websocket_pings_are_answered_and_fragments_reassembled() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let room = app.create_room(&user, "r", "public").await;
    let mut c = app.stomp(&user).await;
    c.ping(b"are you there").await.unwrap();
    c.subscribe_sync("s", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    assert_eq!(c.pongs, 1, "the ping was answered before the receipt");
    // A frame split over several WebSocket messages still parses.
    let frame =
        format!("SEND\ndestination:/app/rooms.{room}\nreceipt:r\n\n{{\"text\":\"split\"}}\0");
    let (a, b) = frame.split_at(20);
    c.send_text(a).await.unwrap();
    c.send_text(b).await.unwrap();
    c.expect_receipt("r").await.unwrap();
    assert_eq!(
        c.next_of_type("s", "message").await.unwrap()["text"],
        "split"
    );
}

#[tokio::test]
async fn plain_http_on_the_websocket_endpoint_is_refused_clearly() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/ws")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::UPGRADE_REQUIRED);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upgrade_required");
}

/// Defect: a client's WebSocket Close was not answered with a Close (RFC 6455 §5.5.1).
#[tokio::test]
async fn a_websocket_close_is_answered_with_a_close() {
    use crate::rawws::{client_frame, RawWs, OP_CLOSE};
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    for (sent, echoed) in [(Some(4000u16), Some(4000u16)), (None, None)] {
        let mut ws = RawWs::connect(app.addr, &user.token, "0,0").await;
        let payload = sent.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
        ws.send_raw(&client_frame(true, OP_CLOSE, &payload)).await;
        let (_, close) = ws.until_close(Duration::from_secs(5)).await;
        let close = close.expect("a Close frame in answer");
        assert_eq!(close.close_code(), echoed, "{close:?}");
        assert!(ws.closed_within(Duration::from_secs(5)).await);
    }
}

/// Defects: text frames were not checked to be UTF-8, and WebSocket or STOMP
/// protocol errors closed with no (or a generic) close code.
#[tokio::test]
async fn protocol_errors_close_with_their_websocket_code() {
    use crate::rawws::{client_frame, RawWs, OP_CONT, OP_TEXT};
    let app = spawn_app_with(|c| c.max_frame_bytes = 8 * 1024).await;
    let user = app.signup("alice").await;
    let big = "x".repeat(9000);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        // Invalid UTF-8 in a text message, even split across fragments.
        (
            "utf-8",
            client_frame(true, OP_TEXT, b"SEND\ndestination:/x\n\n\xff\0"),
            1007,
        ),
        (
            "utf-8",
            [
                client_frame(false, OP_TEXT, b"SEND\ndestination:/x\n\n\xED"),
                client_frame(true, OP_CONT, b"\0"),
            ]
            .concat(),
            1007,
        ),
        // A WebSocket frame over its limit (4 × the STOMP one); a STOMP frame
        // over the limit in pieces.
        (
            "too large",
            client_frame(true, OP_TEXT, "x".repeat(40_000).as_bytes()),
            1009,
        ),
        (
            "exceeds",
            [
                client_frame(
                    true,
                    OP_TEXT,
                    format!("SEND\ndestination:/x\n\n{}", &big[..5000]).as_bytes(),
                ),
                client_frame(true, OP_TEXT, &big.as_bytes()[..5000]),
            ]
            .concat(),
            1009,
        ),
        // STOMP and WebSocket protocol errors.
        (
            "unknown command",
            client_frame(true, OP_TEXT, b"HELLO\n\n\0"),
            1002,
        ),
        (
            "masked",
            {
                let mut f = client_frame(true, OP_TEXT, b"x");
                f[1] &= 0x7f;
                f.truncate(2);
                f.push(b'x');
                f
            },
            1002,
        ),
    ];
    for (needle, bytes, code) in cases {
        let mut ws = RawWs::connect(app.addr, &user.token, "0,0").await;
        ws.send_raw(&bytes).await;
        let (texts, close) = ws.until_close(Duration::from_secs(5)).await;
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("ERROR") && t.contains(needle)),
            "{needle}: {texts:?}"
        );
        let close = close.unwrap_or_else(|| panic!("{needle}: no Close frame"));
        assert_eq!(close.close_code(), Some(code), "{needle}");
    }
}

/// Defect: with two subscriptions to `/user/queue/errors`, ending one silenced both.
#[tokio::test]
async fn two_error_subscriptions_one_ended_the_other_still_hears() {
    let app = spawn_app().await;
    let user = app.signup("alice").await;
    let mut c = app.stomp(&user).await;
    c.subscribe_sync("e1", "/user/queue/errors", &[])
        .await
        .unwrap();
    c.subscribe_sync("e2", "/user/queue/errors", &[])
        .await
        .unwrap();
    for (gone, left) in [("e2", "e1"), ("e1", "e3")] {
        if left == "e3" {
            c.subscribe_sync("e3", "/user/queue/errors", &[])
                .await
                .unwrap();
        }
        c.send(
            &Frame::new(Command::Unsubscribe)
                .with_header("id", gone)
                .with_header("receipt", gone),
        )
        .await
        .unwrap();
        c.expect_receipt(gone).await.unwrap();
        c.send_json("/app/nowhere", &json!({}), None).await.unwrap();
        let err = c.next_json(left).await.unwrap();
        assert_eq!(err["code"], "unknown_destination", "{err}");
    }
}
