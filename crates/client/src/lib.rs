//! A small async STOMP 1.2 client over WebSocket, built on the same sans-I/O codec
//! as the server. It is a test and benchmark tool: frames in, frames out, with a
//! stash so a test can wait for one frame while keeping the others in order.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use quicktalk_stomp::{Command, Decoder, Frame, Item, Limits, Version};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use quicktalk_stomp as stomp;

/// How long `recv*` waits by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

pub struct StompClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    buf: BytesMut,
    stash: VecDeque<Frame>,
    /// Heart-beat EOLs received so far.
    pub heartbeats: u64,
    /// WebSocket pongs received so far.
    pub pongs: u64,
    closed: bool,
}

impl StompClient {
    /// Opens the WebSocket (subprotocol `v12.stomp`) without sending CONNECT.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("v12.stomp, v11.stomp, v10.stomp"),
        );
        // Nagle off: small frames go out at once (a chat client is latency-bound).
        let (ws, _resp) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(StompClient {
            ws,
            decoder: Decoder::new(Limits {
                max_frame_bytes: 16 * 1024 * 1024,
                ..Limits::default()
            }),
            buf: BytesMut::new(),
            stash: VecDeque::new(),
            heartbeats: 0,
            pongs: 0,
            closed: false,
        })
    }

    /// Opens and sends CONNECT with `headers` (plus `accept-version:1.2` and `host`
    /// unless given); returns the client and the server's first frame.
    pub async fn connect_with(
        url: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(Self, Frame)> {
        let mut c = Self::open(url).await?;
        let mut f = Frame::new(Command::Connect);
        if !headers.iter().any(|(k, _)| *k == "accept-version") {
            f.push_header("accept-version", "1.2");
        }
        if !headers.iter().any(|(k, _)| *k == "host") {
            f.push_header("host", "quicktalk");
        }
        for (k, v) in headers {
            f.push_header(*k, *v);
        }
        c.send(&f).await?;
        let first = c
            .recv()
            .await?
            .ok_or_else(|| anyhow!("closed before CONNECTED"))?;
        Ok((c, first))
    }

    /// Connects with a bearer token; fails unless the server answers CONNECTED.
    pub async fn connect(url: &str, token: &str) -> anyhow::Result<Self> {
        let auth = format!("Bearer {token}");
        let (c, first) = Self::connect_with(url, &[("Authorization", &auth)]).await?;
        if first.command != Command::Connected {
            bail!("expected CONNECTED, got {:?}", first);
        }
        Ok(c)
    }

    pub async fn send(&mut self, f: &Frame) -> anyhow::Result<()> {
        let bytes = f.to_bytes(Version::V1_2);
        let text = String::from_utf8(bytes.to_vec()).context("frame is not UTF-8")?;
        self.send_text(text).await
    }

    /// Sends one WebSocket text message as is.
    pub async fn send_text(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.into().into())).await?;
        Ok(())
    }

    /// Sends a WebSocket ping (the server must answer with a pong).
    pub async fn ping(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        self.ws.send(Message::Ping(payload.to_vec().into())).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    pub async fn subscribe(
        &mut self,
        id: &str,
        destination: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let mut f = Frame::new(Command::Subscribe)
            .with_header("id", id)
            .with_header("destination", destination);
        for (k, v) in extra {
            f.push_header(*k, *v);
        }
        self.send(&f).await
    }

    /// SUBSCRIBE with a receipt, waiting for it.
    pub async fn subscribe_sync(
        &mut self,
        id: &str,
        destination: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let receipt = format!("sub-{id}");
        let mut headers = extra.to_vec();
        headers.push(("receipt", &receipt));
        self.subscribe(id, destination, &headers).await?;
        self.expect_receipt(&receipt).await
    }

    /// SEND with a JSON body and an optional receipt.
    pub async fn send_json(
        &mut self,
        destination: &str,
        body: &serde_json::Value,
        receipt: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut f = Frame::new(Command::Send)
            .with_header("destination", destination)
            .with_header("content-type", "application/json");
        if let Some(r) = receipt {
            f.push_header("receipt", r);
        }
        self.send(&f.with_body(body.to_string())).await
    }

    /// The next frame (stash first), skipping heart-beats; `None` when the socket closed.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Frame>> {
        self.recv_timeout(DEFAULT_WAIT).await
    }

    pub async fn recv_timeout(&mut self, wait: Duration) -> anyhow::Result<Option<Frame>> {
        if let Some(f) = self.stash.pop_front() {
            return Ok(Some(f));
        }
        tokio::time::timeout(wait, self.read_frame())
            .await
            .map_err(|_| anyhow!("no frame within {wait:?}"))?
    }

    async fn read_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            match self.decoder.decode(&mut self.buf)? {
                Some(Item::Frame(f)) => return Ok(Some(f)),
                Some(Item::Heartbeat) => {
                    self.heartbeats += 1;
                    continue;
                }
                None => {}
            }
            if self.closed {
                return Ok(None);
            }
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => self.closed = true,
                Some(Err(e)) => {
                    self.closed = true;
                    if self.buf.is_empty() {
                        return Err(e.into());
                    }
                }
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Pong(_))) => self.pongs += 1,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for the first frame matching `pred`; frames before it are stashed
    /// (in order) for later `recv` calls.
    pub async fn recv_until(
        &mut self,
        wait: Duration,
        mut pred: impl FnMut(&Frame) -> bool,
    ) -> anyhow::Result<Frame> {
        if let Some(pos) = self.stash.iter().position(&mut pred) {
            return Ok(self.stash.remove(pos).expect("position is valid"));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut skipped = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = match tokio::time::timeout(left, self.read_frame()).await {
                Err(_) => break Err(anyhow!("no matching frame within {wait:?}")),
                Ok(Err(e)) => break Err(e),
                Ok(Ok(None)) => break Err(anyhow!("socket closed while waiting")),
                Ok(Ok(Some(f))) => f,
            };
            if pred(&f) {
                break Ok(f);
            }
            skipped.push(f);
        };
        self.stash.extend(skipped);
        found
    }

    pub async fn expect_receipt(&mut self, id: &str) -> anyhow::Result<()> {
        self.recv_until(DEFAULT_WAIT, |f| {
            f.command == Command::Receipt && f.header("receipt-id") == Some(id)
                || f.command == Command::Error
        })
        .await
        .and_then(|f| match f.command {
            Command::Receipt => Ok(()),
            _ => Err(anyhow!("ERROR instead of receipt {id}: {:?}", f)),
        })
    }

    /// The next MESSAGE on `subscription`, as JSON.
    pub async fn next_json(&mut self, subscription: &str) -> anyhow::Result<serde_json::Value> {
        let f = self
            .recv_until(DEFAULT_WAIT, |f| {
                f.command == Command::Message && f.header("subscription") == Some(subscription)
            })
            .await?;
        Ok(serde_json::from_slice(&f.body)?)
    }

    /// The next MESSAGE on `subscription` whose JSON `type` is `ty`.
    pub async fn next_of_type(
        &mut self,
        subscription: &str,
        ty: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let f = self
            .recv_until(DEFAULT_WAIT, |f| {
                f.command == Command::Message
                    && f.header("subscription") == Some(subscription)
                    && serde_json::from_slice::<serde_json::Value>(&f.body)
                        .is_ok_and(|v| v["type"] == ty)
            })
            .await?;
        Ok(serde_json::from_slice(&f.body)?)
    }

    /// Frames already received but not yet consumed.
    pub fn stashed(&self) -> usize {
        self.stash.len()
    }

    /// Drops the TCP connection without a close handshake (a "crashed" client).
    pub fn abort(self) {
        drop(self);
    }

    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }
}
