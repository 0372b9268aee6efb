//! A small NATS client over WebSocket: one connection, owned by the task that
//! reads it, in the shape of [`quicktalk_client::StompClient`] (the same
//! `tokio-tungstenite` WebSocket, Nagle off, one WebSocket message per op sent).
//!
//! Hand-written rather than the ecosystem's `async-nats` on purpose, so NATS is
//! measured the way the STOMP targets are:
//! - `async-nats` reads every connection on a task of its own and hands each
//!   message to the subscriber through a channel: two task wake-ups per
//!   delivery in the load generator against one for the STOMP client. The
//!   fan-out peak on this 2-core machine is set by the generator, so that
//!   would charge NATS for its client's overhead.
//! - It reconnects on its own by default; the fan-out scenario counts a lost
//!   subscriber as saturation and must see the disconnect.
//! - Its current release needs a newer Rust than the workspace's 1.85.
//!
//! What it does: read `INFO`, `CONNECT` + `PING` (the `PONG` confirms the
//! connect), `SUB`, `PUB` (with a reply subject for JetStream acks), a
//! `PING`/`PONG` round trip as a flush (the server handles a connection's ops
//! in order, so a `PONG` confirms everything sent before it), answering the
//! server's `PING`s, and a request/reply on an inbox.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::proto::{self, Msg, ServerOp};

pub struct NatsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    buf: BytesMut,
    /// Ops read while waiting for something else (a `PONG`), in order.
    stash: VecDeque<ServerOp>,
    next_sid: u64,
    /// This connection's reply prefix (`_INBOX.<random>`), subscribed as
    /// `<prefix>.*` once a reply is first asked for.
    inbox: Option<String>,
    inbox_sid: u64,
    closed: bool,
    /// The server's `INFO` JSON.
    pub info: serde_json::Value,
}

impl NatsClient {
    /// WebSocket upgrade, `INFO`, then `CONNECT` + `PING`; fails unless the
    /// server answers `PONG` (a `-ERR` means the connect was refused).
    pub async fn connect(url: &str) -> anyhow::Result<NatsClient> {
        let (ws, _resp) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut c = NatsClient {
            ws,
            buf: BytesMut::new(),
            stash: VecDeque::new(),
            next_sid: 1,
            inbox: None,
            inbox_sid: 0,
            closed: false,
            info: serde_json::Value::Null,
        };
        match c.read_op().await? {
            Some(ServerOp::Info(json)) => {
                c.info = serde_json::from_str(&json).context("parsing INFO")?;
            }
            other => bail!("expected INFO, got {other:?}"),
        }
        let mut hello = proto::connect_op("quicktalk-bench");
        hello.push_str(proto::PING);
        c.send_raw(hello.into_bytes()).await?;
        c.wait_pong().await?;
        Ok(c)
    }

    async fn send_raw(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// `SUB subject`; returns its sid. Not confirmed: [`Self::flush`] does that.
    pub async fn subscribe(&mut self, subject: &str) -> anyhow::Result<u64> {
        let sid = self.next_sid;
        self.next_sid += 1;
        self.send_raw(proto::sub_op(subject, sid).into_bytes())
            .await?;
        Ok(sid)
    }

    /// `SUB`, then a `PING`/`PONG` round trip: the subscription is in place
    /// when this returns (the equivalent of a STOMP SUBSCRIBE with receipt).
    pub async fn subscribe_sync(&mut self, subject: &str) -> anyhow::Result<u64> {
        let sid = self.subscribe(subject).await?;
        self.flush().await?;
        Ok(sid)
    }

    /// `PING`, waiting for its `PONG`; what arrives meanwhile is stashed.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.send_raw(proto::PING.as_bytes().to_vec()).await?;
        self.wait_pong().await
    }

    async fn wait_pong(&mut self) -> anyhow::Result<()> {
        let mut skipped = Vec::new();
        let r = loop {
            match self.read_op().await {
                Ok(Some(ServerOp::Pong)) => break Ok(()),
                Ok(Some(ServerOp::Err(e))) => break Err(anyhow!("-ERR {e}")),
                Ok(Some(op)) => skipped.push(op),
                Ok(None) => break Err(anyhow!("socket closed while waiting for PONG")),
                Err(e) => break Err(e),
            }
        };
        self.stash.extend(skipped);
        r
    }

    pub async fn publish(&mut self, subject: &str, payload: &[u8]) -> anyhow::Result<()> {
        self.send_raw(proto::pub_op(subject, None, payload)).await
    }

    /// The reply subject for token `id` (subscribing the inbox on first use;
    /// the server handles the `SUB` before any later `PUB` of this connection).
    pub async fn reply_subject(&mut self, id: u64) -> anyhow::Result<String> {
        if self.inbox.is_none() {
            let prefix = format!("_INBOX.{:016x}", rand::random::<u64>());
            self.inbox_sid = self.subscribe(&format!("{prefix}.*")).await?;
            self.inbox = Some(prefix);
        }
        Ok(format!(
            "{}.{id}",
            self.inbox.as_deref().expect("set above")
        ))
    }

    /// `PUB subject reply payload` whose reply (a JetStream ack) comes back as
    /// a message that [`Self::reply_id`] recognizes by `id`.
    pub async fn publish_for_reply(
        &mut self,
        subject: &str,
        id: u64,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let reply = self.reply_subject(id).await?;
        self.send_raw(proto::pub_op(subject, Some(&reply), payload))
            .await
    }

    /// The token of a reply to [`Self::publish_for_reply`], or `None` for any
    /// other message.
    pub fn reply_id(&self, m: &Msg) -> Option<u64> {
        if self.inbox.is_none() || m.sid != self.inbox_sid {
            return None;
        }
        m.subject.rsplit('.').next()?.parse().ok()
    }

    /// A request: publishes with a reply subject and waits (within `wait`) for
    /// the answer; other messages are stashed.
    pub async fn request(
        &mut self,
        subject: &str,
        payload: &[u8],
        wait: Duration,
    ) -> anyhow::Result<Msg> {
        let id = u64::MAX;
        self.publish_for_reply(subject, id, payload).await?;
        let mut skipped = Vec::new();
        let r = tokio::time::timeout(wait, async {
            loop {
                match self.read_op().await? {
                    Some(ServerOp::Msg(m)) if self.reply_id(&m) == Some(id) => return Ok(m),
                    Some(ServerOp::Err(e)) => bail!("-ERR {e}"),
                    Some(op) => skipped.push(op),
                    None => bail!("socket closed while waiting for a reply"),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no reply to {subject} within {wait:?}"))
        .and_then(|r| r);
        self.stash.extend(skipped);
        r
    }

    /// The next op (stash first) within `wait`, answering the server's `PING`s
    /// on the way; `None` when the socket closed.
    pub async fn recv_timeout(&mut self, wait: Duration) -> anyhow::Result<Option<ServerOp>> {
        if let Some(op) = self.stash.pop_front() {
            return Ok(Some(op));
        }
        tokio::time::timeout(wait, self.read_op())
            .await
            .map_err(|_| anyhow!("no op within {wait:?}"))?
    }

    async fn read_op(&mut self) -> anyhow::Result<Option<ServerOp>> {
        loop {
            match proto::decode(&mut self.buf)? {
                Some(ServerOp::Ping) => {
                    self.send_raw(proto::PONG.as_bytes().to_vec()).await?;
                    continue;
                }
                Some(op) => return Ok(Some(op)),
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
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Text(t))) => self.buf.extend_from_slice(t.as_bytes()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// WebSocket close (as the STOMP client does).
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }
}
