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
    /// The peer sent a WebSocket Close (with its code, if any): answer with one.
    Close(Option<u16>),
    /// A WebSocket framing violation: ERROR, then a Close with `code`.
    Invalid { message: String, code: u16 },
}

pub trait WireRead: Send + 'static {
    /// Appends received STOMP bytes to `buf`. Returns `Data` for any bytes
    /// received, even if they only extend an incomplete frame.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<Input>> + Send;
    /// Whether bytes of an incomplete wire frame are held (below STOMP).
    fn partial(&self) -> bool {
        false
    }
}

pub trait WireWrite: Send + 'static {
    /// Queues one encoded frame (sent by `flush`).
    fn frame(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Queues a heart-beat EOL.
    fn heartbeat(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Answers a WebSocket ping (and flushes).
    fn pong(&mut self, payload: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Closes the wire, with this WebSocket close code (none: an empty Close).
    fn close(&mut self, code: Option<u16>) -> impl Future<Output = ()> + Send;
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
        let mut got_bytes = false;
        loop {
            let control = match self.pending.take() {
                Some(c) => Some(c),
                None => {
                    let decoded = match self.decoder.decode(&mut self.raw, buf) {
                        Ok(d) => d,
                        Err(e) => {
                            return Ok(Input::Invalid {
                                message: e.to_string(),
                                code: e.close_code(),
                            })
                        }
                    };
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
                Some(Control::Close(code)) => return Ok(Input::Close(code)),
                Some(Control::Pong) => continue,
                None if buf.len() > before || got_bytes => return Ok(Input::Data),
                None => {}
            }
            if self.io.read_ready(&mut self.raw).await? == 0 {
                return Ok(Input::Eof);
            }
            got_bytes = true;
        }
    }

    fn partial(&self) -> bool {
        !self.raw.is_empty()
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
    async fn close(&mut self, code: Option<u16>) {
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
    async fn close(&mut self, _code: Option<u16>) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}
