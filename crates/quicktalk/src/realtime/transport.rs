//! The two wires, WebSocket and raw TCP, behind one pair of traits. Both feed raw
//! STOMP bytes to the same decoder and take encoded frames.

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::websocket::{self, Control};

/// What one read produced.
#[derive(Debug)]
pub enum Input {
    /// STOMP bytes were appended to the buffer.
    Data,
    /// The peer closed (or the wire failed).
    Eof,
    /// A WebSocket ping to answer with [`WireWrite::pong`].
    Ping(Bytes),
}

pub trait WireRead: Send + 'static {
    /// Appends received STOMP bytes to `buf`.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<Input>> + Send;
}

pub trait WireWrite: Send + 'static {
    /// Queues one encoded frame (sent by `flush`).
    fn frame(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Queues a heart-beat EOL.
    fn heartbeat(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Answers a WebSocket ping (and flushes).
    fn pong(&mut self, payload: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the wire; `error` says whether it ends after a STOMP ERROR.
    fn close(&mut self, error: bool) -> impl Future<Output = ()> + Send;
}

/// How much a WebSocket read asks the kernel for at once.
const WS_READ_CHUNK: usize = 4096;

/// A reading half that can wait for data before any buffer is allocated, so an
/// idle connection holds none.
pub trait ReadReady: Send + 'static {
    /// Waits for data and appends what is there to `buf` (0 at end of stream).
    fn read_ready(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
}

impl ReadReady for OwnedReadHalf {
    async fn read_ready(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            buf.reserve(WS_READ_CHUNK);
            match self.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<T: AsyncRead + Send + 'static> ReadReady for tokio::io::ReadHalf<T> {
    async fn read_ready(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        buf.reserve(WS_READ_CHUNK);
        self.read_buf(buf).await
    }
}

/// The reading half of a WebSocket: frames are unmasked straight into the STOMP
/// buffer. Holds no buffer while idle.
pub struct WsRead<R> {
    io: R,
    /// Bytes of an incomplete frame.
    raw: BytesMut,
    decoder: websocket::Decoder,
    /// A control frame that followed data in the same read: reported after the
    /// data, so nothing sent before a close (or ping) is lost.
    pending: Option<Control>,
}

impl<R> WsRead<R> {
    /// `leftover`: bytes that arrived with the HTTP upgrade request.
    pub fn new(io: R, leftover: BytesMut, max_frame: usize) -> Self {
        WsRead {
            io,
            raw: leftover,
            decoder: websocket::Decoder::new(max_frame),
            pending: None,
        }
    }
}

impl<R: ReadReady> WireRead for WsRead<R> {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<Input> {
        let before = buf.len();
        loop {
            let control = match self.pending.take() {
                Some(c) => Some(c),
                None => {
                    let decoded = self
                        .decoder
                        .decode(&mut self.raw, buf)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    if self.raw.is_empty() {
                        self.raw = BytesMut::new();
                    }
                    decoded
                }
            };
            match control {
                // Data first: the control frame waits for the next call.
                Some(c) if buf.len() > before => {
                    self.pending = Some(c);
                    return Ok(Input::Data);
                }
                Some(Control::Ping(p)) => return Ok(Input::Ping(p)),
                Some(Control::Close(_)) => return Ok(Input::Eof),
                Some(Control::Pong) => continue,
                None if buf.len() > before => return Ok(Input::Data),
                None => {}
            }
            if self.io.read_ready(&mut self.raw).await? == 0 {
                return Ok(Input::Eof);
            }
        }
    }
}

/// The writing half of a WebSocket: each STOMP frame is one text message.
pub struct WsWrite<W> {
    io: W,
    out: BytesMut,
}

impl<W> WsWrite<W> {
    pub fn new(io: W) -> Self {
        WsWrite {
            io,
            out: BytesMut::new(),
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> WireWrite for WsWrite<W> {
    async fn frame(&mut self, bytes: Bytes) -> io::Result<()> {
        websocket::encode_text(&mut self.out, &bytes);
        Ok(())
    }
    async fn heartbeat(&mut self) -> io::Result<()> {
        websocket::encode_text(&mut self.out, b"\n");
        Ok(())
    }
    async fn flush(&mut self) -> io::Result<()> {
        flush_out(&mut self.io, &mut self.out).await
    }
    async fn pong(&mut self, payload: Bytes) -> io::Result<()> {
        websocket::encode_pong(&mut self.out, &payload);
        self.flush().await
    }
    async fn close(&mut self, error: bool) {
        let code = if error {
            websocket::CLOSE_POLICY
        } else {
            websocket::CLOSE_NORMAL
        };
        websocket::encode_close(&mut self.out, code);
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

/// Writes all of `out`, then releases it (nothing kept while idle). `write_buf`
/// advances past what was written, so a flush cancelled half-way (a kill while
/// the peer is not reading) resumes where it stopped: no byte is written twice.
async fn flush_out<W: AsyncWrite + Unpin>(io: &mut W, out: &mut BytesMut) -> io::Result<()> {
    while !out.is_empty() {
        if io.write_buf(out).await? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    *out = BytesMut::new();
    io.flush().await
}

/// Raw STOMP over TCP: the same readiness-based reads and released buffers.
pub struct TcpRead(pub OwnedReadHalf);

pub struct TcpWrite {
    io: OwnedWriteHalf,
    out: BytesMut,
}

impl TcpWrite {
    pub fn new(io: OwnedWriteHalf) -> Self {
        TcpWrite {
            io,
            out: BytesMut::new(),
        }
    }
}

impl WireRead for TcpRead {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<Input> {
        Ok(if self.0.read_ready(buf).await? > 0 {
            Input::Data
        } else {
            Input::Eof
        })
    }
}

impl WireWrite for TcpWrite {
    async fn frame(&mut self, bytes: Bytes) -> io::Result<()> {
        self.out.extend_from_slice(&bytes);
        Ok(())
    }
    async fn heartbeat(&mut self) -> io::Result<()> {
        self.out.extend_from_slice(b"\n");
        Ok(())
    }
    async fn flush(&mut self) -> io::Result<()> {
        flush_out(&mut self.io, &mut self.out).await
    }
    async fn pong(&mut self, _payload: Bytes) -> io::Result<()> {
        Ok(())
    }
    async fn close(&mut self, _error: bool) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}
