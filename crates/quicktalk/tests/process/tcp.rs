//! Raw STOMP over TCP (`--stomp-listen`) has the same semantics as over WebSocket.

use std::time::Duration;

use bytes::BytesMut;
use quicktalk_client::stomp::{Command, Decoder, Frame, Item, Version};
use quicktalk_client::StompClient;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::harness::{data_dir, ServerProcess};

const WAIT: Duration = Duration::from_secs(10);

/// A bare STOMP connection over TCP, decoded with the project's codec.
struct TcpStomp {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    eof: bool,
}

impl TcpStomp {
    async fn connect(addr: std::net::SocketAddr) -> TcpStomp {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        TcpStomp {
            stream,
            decoder: Decoder::default(),
            buf: BytesMut::new(),
            eof: false,
        }
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("TCP write");
        self.stream.flush().await.expect("TCP flush");
    }

    async fn send(&mut self, f: &Frame) {
        let bytes = f.to_bytes(Version::V1_2);
        self.write_raw(&bytes).await;
    }

    /// The next frame (heart-beats skipped); `None` at EOF. Panics after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Frame> {
        tokio::time::timeout(wait, async {
            loop {
                match self
                    .decoder
                    .decode(&mut self.buf)
                    .expect("server sent invalid STOMP")
                {
                    Some(Item::Frame(f)) => return Some(f),
                    Some(Item::Heartbeat) => continue,
                    None => {}
                }
                if self.eof {
                    return None;
                }
                let mut chunk = [0u8; 8192];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => self.eof = true,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no frame over TCP within {wait:?}"))
    }

    async fn expect_frame(&mut self) -> Frame {
        self.next(WAIT)
            .await
            .expect("TCP connection closed unexpectedly")
    }

    /// The next frame that is not a room `presence` event (those may come at any time).
    async fn expect_non_presence(&mut self) -> Frame {
        loop {
            let f = self.expect_frame().await;
            let presence = f.command == Command::Message
                && serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "presence");
            if !presence {
                return f;
            }
        }
    }
}

fn body_json(f: &Frame) -> Value {
    serde_json::from_slice(&f.body).unwrap_or_else(|e| panic!("non-JSON body in {f:?}: {e}"))
}

fn connect_frame(token: &str) -> String {
    format!("CONNECT\naccept-version:1.2\nhost:x\nAuthorization:Bearer {token}\n\n\0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp_stomp_subscribe_send_receipt_message() {
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &["--stomp-listen", "127.0.0.1:0"]);
    let (user_id, token) = server.signup("tcp_user").await;
    let room = server.create_room(&token, "tcp room").await;

    // A WebSocket subscriber on the same room sees what the TCP client sends.
    let mut ws = StompClient::connect(&server.ws_url(), &token)
        .await
        .expect("WebSocket connect");
    ws.subscribe_sync("ws-room", &format!("/topic/rooms.{room}"), &[])
        .await
        .expect("WebSocket subscribe");

    let mut tcp = TcpStomp::connect(server.stomp_tcp_addr()).await;
    tcp.write_raw(connect_frame(&token).as_bytes()).await;
    let connected = tcp.expect_frame().await;
    assert_eq!(connected.command, Command::Connected, "{connected:?}");
    assert_eq!(connected.header("version"), Some("1.2"), "{connected:?}");

    tcp.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "errs")
            .with_header("destination", "/user/queue/errors")
            .with_header("receipt", "sub-errs"),
    )
    .await;
    tcp.send(
        &Frame::new(Command::Subscribe)
            .with_header("id", "room")
            .with_header("destination", format!("/topic/rooms.{room}"))
            .with_header("receipt", "sub-room"),
    )
    .await;
    tcp.send(
        &Frame::new(Command::Send)
            .with_header("destination", format!("/app/rooms.{room}"))
            .with_header("content-type", "application/json")
            .with_header("receipt", "send-1")
            .with_body(json!({"text": "hello over tcp", "client_id": "tcp-1"}).to_string()),
    )
    .await;

    // RECEIPTs for both SUBSCRIBEs and the SEND, and the message itself on the topic.
    let mut receipts = Vec::new();
    let mut message = None;
    let mut presence = 0;
    while receipts.len() < 3 || message.is_none() {
        let f = tcp.expect_frame().await;
        match f.command {
            Command::Receipt => {
                receipts.push(f.header("receipt-id").unwrap_or_default().to_owned())
            }
            Command::Message => {
                assert_eq!(f.header("subscription"), Some("room"), "{f:?}");
                assert_eq!(f.header("content-type"), Some("application/json"), "{f:?}");
                assert!(
                    f.header("message-id").is_some(),
                    "MESSAGE without message-id: {f:?}"
                );
                let v = body_json(&f);
                match v["type"].as_str() {
                    Some("presence") => presence += 1,
                    Some("message") => {
                        assert!(message.is_none(), "message delivered twice: {v}");
                        message = Some(v);
                    }
                    _ => panic!("unexpected MESSAGE on the room: {v}"),
                }
            }
            _ => panic!("unexpected frame over TCP: {f:?}"),
        }
    }
    assert_eq!(
        receipts,
        ["sub-errs", "sub-room", "send-1"],
        "receipt order"
    );
    assert!(
        presence >= 1,
        "no presence MESSAGE after subscribing over TCP"
    );
    let message = message.expect("loop ends with a message");
    assert_eq!(message["text"], "hello over tcp", "{message}");
    assert_eq!(message["client_id"], "tcp-1", "{message}");
    assert_eq!(message["kind"], "text", "{message}");
    assert_eq!(message["room_id"].as_i64(), Some(room), "{message}");
    assert_eq!(message["sender"]["id"].as_i64(), Some(user_id), "{message}");
    assert_eq!(
        message["seq"].as_i64(),
        Some(2),
        "the creator's join is seq 1: {message}"
    );

    let from_ws = ws
        .next_of_type("ws-room", "message")
        .await
        .expect("WebSocket sees it");
    assert_eq!(from_ws, message, "same message over both transports");

    // An application rejection goes to /user/queue/errors and keeps the socket open.
    tcp.send(
        &Frame::new(Command::Send)
            .with_header("destination", format!("/app/rooms.{room}"))
            .with_header("content-type", "application/json")
            .with_header("receipt", "send-blank")
            .with_body(json!({"text": "   "}).to_string()),
    )
    .await;
    let err = tcp.expect_non_presence().await;
    assert_eq!(err.command, Command::Message, "{err:?}");
    assert_eq!(err.header("subscription"), Some("errs"), "{err:?}");
    let err = body_json(&err);
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["receipt_id"], "send-blank", "{err}");
    assert!(err["code"].is_string(), "{err}");

    // Still usable; DISCONNECT with a receipt, then the server closes. Frames are
    // answered in order, so the next frame being DISCONNECT's RECEIPT also shows
    // the rejected SEND got none (contract v2: RECEIPT means success).
    tcp.send(&Frame::new(Command::Disconnect).with_header("receipt", "bye"))
        .await;
    let r = tcp.expect_non_presence().await;
    assert_eq!(r.command, Command::Receipt, "{r:?}");
    assert_eq!(r.header("receipt-id"), Some("bye"), "{r:?}");
    assert!(
        tcp.next(WAIT).await.is_none(),
        "server kept the TCP connection after DISCONNECT"
    );

    // Stored like any other message.
    let history = server.history(&token, room).await;
    let texts: Vec<&str> = history.iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"hello over tcp"), "history: {history:?}");
    assert_eq!(history.len(), 2, "join + one message: {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp_stomp_rejects_a_bad_token() {
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &["--stomp-listen", "127.0.0.1:0"]);
    let mut tcp = TcpStomp::connect(server.stomp_tcp_addr()).await;
    tcp.write_raw(connect_frame("not-a-token").as_bytes()).await;
    let f = tcp.expect_frame().await;
    assert_eq!(f.command, Command::Error, "{f:?}");
    assert_eq!(f.header("message"), Some("unauthorized"), "{f:?}");
    assert!(
        tcp.next(WAIT).await.is_none(),
        "socket stays open after unauthorized CONNECT"
    );
}
