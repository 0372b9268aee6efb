//! A bare WebSocket client on a plain TCP socket, for what a real client hides:
//! not reading at all (small receive buffer), partial frames, invalid UTF-8,
//! close frames and their codes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// One frame from the server.
#[derive(Debug)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 65535 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

impl RawWs {
    /// Opens `/ws` on `addr`; `recv_buf` sets SO_RCVBUF before connecting.
    pub async fn open(addr: SocketAddr, recv_buf: Option<u32>) -> RawWs {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(n) = recv_buf {
            socket.set_recv_buffer_size(n).unwrap();
        }
        let mut stream = socket.connect(addr).await.unwrap();
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.drain(..end);
        RawWs { stream, buf }
    }

    /// Opens `/ws` and sends CONNECT with `token` and `heart_beat`; waits for CONNECTED.
    pub async fn connect(addr: SocketAddr, token: &str, heart_beat: &str) -> RawWs {
        let mut ws = RawWs::open(addr, None).await;
        ws.connect_stomp(token, heart_beat).await;
        ws
    }

    pub async fn connect_stomp(&mut self, token: &str, heart_beat: &str) {
        self.send_text(&format!(
            "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:{heart_beat}\nAuthorization:Bearer {token}\n\n\0"
        ))
        .await;
        let f = self
            .next_data(Duration::from_secs(5))
            .await
            .expect("CONNECTED");
        assert!(f.text().starts_with("CONNECTED"), "{}", f.text());
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(&client_frame(true, OP_TEXT, text.as_bytes()))
            .await;
    }

    /// The next frame, or `None` at EOF (or a reset). Panics after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<ServerFrame> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(f) = self.parse() {
                    return Some(f);
                }
                let mut chunk = [0u8; 65536];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no WebSocket frame within {wait:?}"))
    }

    /// The next text frame that is not a heart-beat (control frames skipped,
    /// except close, which ends it: `None`).
    pub async fn next_data(&mut self, wait: Duration) -> Option<ServerFrame> {
        loop {
            let f = self.next(wait).await?;
            match f.opcode {
                OP_TEXT if f.payload != b"\n" => return Some(f),
                OP_CLOSE => return None,
                _ => continue,
            }
        }
    }

    /// Reads frames until the close frame; returns (data frames' texts, close frame).
    pub async fn until_close(&mut self, wait: Duration) -> (Vec<String>, Option<ServerFrame>) {
        let mut texts = Vec::new();
        loop {
            match self.next(wait).await {
                None => return (texts, None),
                Some(f) if f.opcode == OP_CLOSE => return (texts, Some(f)),
                Some(f) if f.opcode == OP_TEXT => texts.push(f.text()),
                Some(_) => {}
            }
        }
    }

    /// Whether the server closed the socket (EOF or reset) within `wait`, reading
    /// and dropping whatever comes before.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            let mut chunk = [0u8; 65536];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    fn parse(&mut self) -> Option<ServerFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (len, hdr) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < hdr + len {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let payload = b[hdr..hdr + len].to_vec();
        self.buf.drain(..hdr + len);
        Some(ServerFrame { opcode, payload })
    }
}
