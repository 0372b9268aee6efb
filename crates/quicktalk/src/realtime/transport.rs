//! The two wires, WebSocket and raw TCP, behind one pair of traits. Both feed raw
//! bytes to the same STOMP decoder and take encoded frames.

use std::future::Future;
use std::io;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub trait WireRead: Send + 'static {
    /// Appends received bytes to `buf`. `Ok(false)` when the peer closed.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<bool>> + Send;
}

pub trait WireWrite: Send + 'static {
    /// Queues one encoded frame (flushed by `flush`).
    fn frame(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Queues a heart-beat EOL.
    fn heartbeat(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the wire; `error` says whether it ends after a STOMP ERROR.
    fn close(&mut self, error: bool) -> impl Future<Output = ()> + Send;
}

fn ws_err(e: axum::Error) -> io::Error {
    io::Error::other(e)
}

pub struct WsRead(pub SplitStream<WebSocket>);
pub struct WsWrite(pub SplitSink<WebSocket, Message>);

impl WireRead for WsRead {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        match self.0.next().await {
            None | Some(Ok(Message::Close(_))) => Ok(false),
            Some(Err(e)) => Err(ws_err(e)),
            Some(Ok(Message::Text(t))) => {
                buf.extend_from_slice(t.as_bytes());
                Ok(true)
            }
            Some(Ok(Message::Binary(b))) => {
                buf.extend_from_slice(&b);
                Ok(true)
            }
            // Pings are answered by the WebSocket layer; they still prove liveness.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(true),
        }
    }
}

impl WireWrite for WsWrite {
    async fn frame(&mut self, bytes: Bytes) -> io::Result<()> {
        let msg = if std::str::from_utf8(&bytes).is_ok() {
            Message::Text(Utf8Bytes::try_from(bytes).map_err(io::Error::other)?)
        } else {
            Message::Binary(bytes)
        };
        self.0.feed(msg).await.map_err(ws_err)
    }
    async fn heartbeat(&mut self) -> io::Result<()> {
        self.0
            .feed(Message::Text(Utf8Bytes::from_static("\n")))
            .await
            .map_err(ws_err)
    }
    async fn flush(&mut self) -> io::Result<()> {
        self.0.flush().await.map_err(ws_err)
    }
    async fn close(&mut self, error: bool) {
        let frame = CloseFrame {
            code: if error { 1008 } else { 1000 },
            reason: Utf8Bytes::from_static(""),
        };
        let _ = self.0.send(Message::Close(Some(frame))).await;
        let _ = self.0.close().await;
    }
}

pub struct TcpRead(pub OwnedReadHalf);
pub struct TcpWrite(pub BufWriter<OwnedWriteHalf>);

impl WireRead for TcpRead {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        buf.reserve(4096);
        Ok(self.0.read_buf(buf).await? > 0)
    }
}

impl WireWrite for TcpWrite {
    async fn frame(&mut self, bytes: Bytes) -> io::Result<()> {
        self.0.write_all(&bytes).await
    }
    async fn heartbeat(&mut self) -> io::Result<()> {
        self.0.write_all(b"\n").await
    }
    async fn flush(&mut self) -> io::Result<()> {
        self.0.flush().await
    }
    async fn close(&mut self, _error: bool) {
        let _ = self.0.flush().await;
        let _ = self.0.shutdown().await;
    }
}
