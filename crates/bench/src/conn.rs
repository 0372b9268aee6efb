//! A scenario's connection, whatever the target speaks: STOMP over WebSocket
//! (QuickTalk, RabbitMQ) or NATS over WebSocket. The scenarios connect,
//! subscribe (confirmed), publish, publish durably (acknowledged) and read
//! [`Event`]s through this one type, so every target is driven by the same
//! loop and measured at the same points.

use std::time::Duration;

use bytes::Bytes;
use quicktalk_client::StompClient;
use quicktalk_stomp::{Command, Frame};
use serde::{Deserialize, Serialize};

use crate::nats::proto::ServerOp;
use crate::nats::NatsClient;
use crate::target::{self, Creds};

/// The wire protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    Stomp,
    Nats,
}

pub enum Conn {
    Stomp(StompClient),
    Nats(NatsClient),
}

/// What a connection received.
#[derive(Debug)]
pub enum Event {
    /// A message for a subscription (its body).
    Delivery(Bytes),
    /// The durable-publish acknowledgement with this id (STOMP RECEIPT,
    /// JetStream PubAck).
    Ack(u64),
    /// The server reported an error (STOMP ERROR, NATS `-ERR`, a JetStream
    /// error reply).
    Error(String),
    /// The server closed the socket.
    Closed,
    /// Anything else (heart-beats, `+OK`, `INFO`, other frames).
    Other,
}

impl Conn {
    /// WebSocket + CONNECT, confirmed (STOMP: CONNECTED; NATS: `PONG` after
    /// `CONNECT` + `PING`).
    pub async fn connect(proto: Proto, url: &str, creds: &Creds) -> anyhow::Result<Conn> {
        Ok(match proto {
            Proto::Stomp => Conn::Stomp(target::connect(url, creds).await?),
            Proto::Nats => Conn::Nats(NatsClient::connect(url).await?),
        })
    }

    /// Subscribes to `dest` and waits until the server confirms it (STOMP:
    /// SUBSCRIBE with receipt, `ack:auto`; NATS: `SUB` + `PING`/`PONG`).
    pub async fn subscribe_sync(&mut self, dest: &str) -> anyhow::Result<()> {
        match self {
            Conn::Stomp(c) => c.subscribe_sync("0", dest, &[("ack", "auto")]).await,
            Conn::Nats(c) => c.subscribe_sync(dest).await.map(|_| ()),
        }
    }

    /// Publishes a JSON body to `dest`, no acknowledgement.
    pub async fn publish(&mut self, dest: &str, body: String) -> anyhow::Result<()> {
        match self {
            Conn::Stomp(c) => {
                let f = Frame::new(Command::Send)
                    .with_header("destination", dest)
                    .with_header("content-type", "application/json")
                    .with_body(body);
                c.send(&f).await
            }
            Conn::Nats(c) => c.publish(dest, body.as_bytes()).await,
        }
    }

    /// Publishes a JSON body whose durable storage the server acknowledges
    /// with [`Event::Ack`]`(id)` (STOMP: SEND with `receipt:id` and `headers`;
    /// NATS: `PUB` with a reply subject, answered by JetStream's PubAck).
    pub async fn publish_durable(
        &mut self,
        dest: &str,
        headers: &[(String, String)],
        id: u64,
        body: Bytes,
    ) -> anyhow::Result<()> {
        match self {
            Conn::Stomp(c) => {
                let mut f = Frame::new(Command::Send)
                    .with_header("destination", dest)
                    .with_header("content-type", "application/json")
                    .with_header("receipt", id.to_string());
                for (k, v) in headers {
                    f.push_header(k.as_str(), v.as_str());
                }
                c.send(&f.with_body(body)).await
            }
            Conn::Nats(c) => c.publish_for_reply(dest, id, &body).await,
        }
    }

    /// The next event within `wait` (an error when nothing came).
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<Event> {
        match self {
            Conn::Stomp(c) => Ok(match c.recv_timeout(wait).await? {
                None => Event::Closed,
                Some(f) => match f.command {
                    Command::Message => Event::Delivery(f.body),
                    Command::Receipt => match f.header("receipt-id").and_then(|r| r.parse().ok()) {
                        Some(id) => Event::Ack(id),
                        None => Event::Other,
                    },
                    Command::Error => Event::Error(format!(
                        "ERROR {}",
                        f.header("message")
                            .map(str::to_owned)
                            .unwrap_or_else(|| String::from_utf8_lossy(&f.body).into_owned())
                    )),
                    _ => Event::Other,
                },
            }),
            Conn::Nats(c) => Ok(match c.recv_timeout(wait).await? {
                None => Event::Closed,
                Some(ServerOp::Msg(m)) => match c.reply_id(&m) {
                    None => Event::Delivery(m.payload),
                    Some(id) => jetstream_ack(id, m.status(), &m.payload),
                },
                Some(ServerOp::Err(e)) => Event::Error(format!("-ERR {e}")),
                Some(_) => Event::Other,
            }),
        }
    }

    /// Closes after the server has handled everything sent (NATS: a
    /// `PING`/`PONG` first, bounded by 1 s; nats-server drops `PUB`s that
    /// arrive together with the WebSocket close, seen as ~1 lost message per
    /// publisher at 32,000 msg/s). STOMP: a plain close (the servers handle
    /// the frames before it).
    pub async fn flush_and_close(self) -> anyhow::Result<()> {
        match self {
            Conn::Stomp(c) => c.close().await,
            Conn::Nats(mut c) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), c.flush()).await;
                c.close().await
            }
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Conn::Stomp(c) => c.close().await,
            Conn::Nats(c) => c.close().await,
        }
    }
}

/// A JetStream publish reply: `{"stream":..,"seq":..}` is an ack; an `error`
/// object or a status header (503: no stream listens on the subject) is not.
fn jetstream_ack(id: u64, status: Option<u16>, payload: &[u8]) -> Event {
    if let Some(code) = status {
        return Event::Error(format!("JetStream publish answered with status {code}"));
    }
    if payload.windows(8).any(|w| w == b"\"error\":") {
        return Event::Error(format!(
            "JetStream publish failed: {}",
            String::from_utf8_lossy(payload)
        ));
    }
    Event::Ack(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_replies() {
        assert!(matches!(
            jetstream_ack(7, None, br#"{"stream":"BENCH_PERSIST","seq":12}"#),
            Event::Ack(7)
        ));
        assert!(matches!(
            jetstream_ack(7, None, br#"{"error":{"code":503,"description":"x"}}"#),
            Event::Error(_)
        ));
        assert!(matches!(jetstream_ack(7, Some(503), b""), Event::Error(_)));
    }
}
