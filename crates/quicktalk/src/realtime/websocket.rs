//! Server-side WebSocket framing (RFC 6455 §5), sans-I/O: bytes in, payload bytes
//! and control frames out; frames to bytes.
//!
//! Hand-written rather than tungstenite because STOMP treats the socket as a byte
//! stream: data payloads are unmasked straight into the STOMP decoder's buffer
//! (no per-message reassembly), and an idle connection holds no framing buffers
//! at all — tungstenite keeps a read and a write buffer plus its context per
//! connection. The HTTP upgrade handshake itself is done by `ws.rs`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A close code: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// A close code: the endpoint is going away / protocol or policy violation.
pub const CLOSE_POLICY: u16 = 1008;
/// A close code: a message was too big.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// A close code: protocol error.
pub const CLOSE_PROTOCOL: u16 = 1002;

/// Something other than data that the peer sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Answer with a pong carrying the same payload.
    Ping(Bytes),
    Pong,
    /// The peer closes (with its code, if any).
    Close(Option<u16>),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("client frames must be masked")]
    Unmasked,
    #[error("reserved bits set without an extension")]
    Reserved,
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    #[error("invalid control frame")]
    BadControl,
    #[error("continuation without a message, or a new message inside one")]
    Fragmentation,
    #[error("frame of {0} bytes is too large")]
    TooLarge(u64),
}

impl WsError {
    /// The close code to answer with.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooLarge(_) => CLOSE_TOO_BIG,
            _ => CLOSE_PROTOCOL,
        }
    }
}

/// Incremental decoder of client frames.
#[derive(Debug)]
pub struct Decoder {
    max_payload: usize,
    /// Inside a fragmented data message.
    in_message: bool,
}

impl Decoder {
    pub fn new(max_payload: usize) -> Self {
        Decoder {
            max_payload,
            in_message: false,
        }
    }

    /// Decodes complete frames from the front of `raw`, appending data payloads
    /// (unmasked) to `data`. Stops at the first control frame (returned) or when
    /// `raw` holds no complete frame (`Ok(None)`; the partial frame stays in `raw`).
    pub fn decode(
        &mut self,
        raw: &mut BytesMut,
        data: &mut BytesMut,
    ) -> Result<Option<Control>, WsError> {
        loop {
            let Some((header_len, payload_len, b0)) = self.header(raw)? else {
                return Ok(None);
            };
            if raw.len() < header_len + payload_len {
                return Ok(None);
            }
            let opcode = b0 & 0x0F;
            let fin = b0 & 0x80 != 0;
            let mask = [
                raw[header_len - 4],
                raw[header_len - 3],
                raw[header_len - 2],
                raw[header_len - 1],
            ];
            raw.advance(header_len);
            let mut payload = raw.split_to(payload_len);
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
            match opcode {
                OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                    let continuation = opcode == OP_CONTINUATION;
                    if continuation != self.in_message {
                        return Err(WsError::Fragmentation);
                    }
                    self.in_message = !fin;
                    data.extend_from_slice(&payload);
                }
                OP_PING => return Ok(Some(Control::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Control::Pong)),
                OP_CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Control::Close(code)));
                }
                other => return Err(WsError::Opcode(other)),
            }
        }
    }

    /// The next frame's (header length, payload length, first byte), if the whole
    /// header is in `raw`; checks everything the header can tell.
    fn header(&self, raw: &BytesMut) -> Result<Option<(usize, usize, u8)>, WsError> {
        if raw.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (raw[0], raw[1]);
        if b0 & 0x70 != 0 {
            return Err(WsError::Reserved);
        }
        let opcode = b0 & 0x0F;
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(WsError::Opcode(opcode));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Unmasked);
        }
        let (len, ext) = match b1 & 0x7F {
            126 => {
                if raw.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([raw[2], raw[3]]) as u64, 2)
            }
            127 => {
                if raw.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[2..10]);
                (u64::from_be_bytes(b), 8)
            }
            n => (n as u64, 0),
        };
        let control = opcode >= OP_CLOSE;
        if control && (b0 & 0x80 == 0 || len > 125) {
            return Err(WsError::BadControl);
        }
        if len > self.max_payload as u64 {
            return Err(WsError::TooLarge(len));
        }
        let header_len = 2 + ext + 4;
        if raw.len() < header_len {
            return Ok(None);
        }
        Ok(Some((header_len, len as usize, b0)))
    }
}

fn put_header(out: &mut BytesMut, opcode: u8, len: usize) {
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends one unmasked text frame (server to client) carrying `payload`.
pub fn encode_text(out: &mut BytesMut, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    put_header(out, OP_TEXT, payload.len());
    out.put_slice(payload);
}

/// Appends a pong answering a ping with `payload`.
pub fn encode_pong(out: &mut BytesMut, payload: &[u8]) {
    put_header(out, OP_PONG, payload.len());
    out.put_slice(payload);
}

/// Appends a close frame with `code`.
pub fn encode_close(out: &mut BytesMut, code: u16) {
    put_header(out, OP_CLOSE, 2);
    out.put_u16(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser would send it (masked).
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
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

    fn decode_all(bytes: &[u8], max: usize) -> (Vec<u8>, Vec<Result<Control, WsError>>) {
        let mut d = Decoder::new(max);
        let mut raw = BytesMut::from(bytes);
        let mut data = BytesMut::new();
        let mut controls = Vec::new();
        loop {
            match d.decode(&mut raw, &mut data) {
                Ok(Some(c)) => controls.push(Ok(c)),
                Ok(None) => break,
                Err(e) => {
                    controls.push(Err(e));
                    break;
                }
            }
        }
        (data.to_vec(), controls)
    }

    #[test]
    fn unmasks_every_length_form() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (data, controls) = decode_all(&client_frame(true, OP_TEXT, &payload), 1 << 20);
            assert_eq!(data, payload, "len {len}");
            assert!(controls.is_empty());
        }
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let frame = client_frame(true, OP_TEXT, b"SEND\n\nhi\0");
        let mut d = Decoder::new(1024);
        let mut raw = BytesMut::new();
        let mut data = BytesMut::new();
        for b in &frame {
            raw.put_u8(*b);
            assert_eq!(d.decode(&mut raw, &mut data), Ok(None));
        }
        assert_eq!(&data[..], b"SEND\n\nhi\0");
        assert!(raw.is_empty());
    }

    #[test]
    fn fragments_and_interleaved_control_frames() {
        let mut bytes = client_frame(false, OP_TEXT, b"SEN");
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"D\n\n\0"));
        bytes.extend(client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let mut d = Decoder::new(1024);
        let mut raw = BytesMut::from(&bytes[..]);
        let mut data = BytesMut::new();
        assert_eq!(
            d.decode(&mut raw, &mut data),
            Ok(Some(Control::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(&data[..], b"SEN");
        assert_eq!(
            d.decode(&mut raw, &mut data),
            Ok(Some(Control::Close(Some(1000))))
        );
        assert_eq!(&data[..], b"SEND\n\n\0");
    }

    #[test]
    fn violations_are_errors() {
        let mut unmasked = client_frame(true, OP_TEXT, b"x");
        unmasked[1] &= 0x7F;
        assert_eq!(decode_all(&unmasked, 100).1, vec![Err(WsError::Unmasked)]);
        let mut rsv = client_frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        assert_eq!(decode_all(&rsv, 100).1, vec![Err(WsError::Reserved)]);
        assert_eq!(
            decode_all(&client_frame(true, 0x3, b""), 100).1,
            vec![Err(WsError::Opcode(3))]
        );
        assert_eq!(
            decode_all(&client_frame(false, OP_PING, b""), 100).1,
            vec![Err(WsError::BadControl)]
        );
        assert_eq!(
            decode_all(&client_frame(true, OP_PING, &[0; 126]), 1000).1,
            vec![Err(WsError::BadControl)]
        );
        assert_eq!(
            decode_all(&client_frame(true, OP_CONTINUATION, b"x"), 100).1,
            vec![Err(WsError::Fragmentation)]
        );
        let mut twice = client_frame(false, OP_TEXT, b"a");
        twice.extend(client_frame(true, OP_TEXT, b"b"));
        assert_eq!(decode_all(&twice, 100).1, vec![Err(WsError::Fragmentation)]);
        let (_, c) = decode_all(&client_frame(true, OP_TEXT, &[0; 200]), 100);
        assert_eq!(c, vec![Err(WsError::TooLarge(200))]);
        assert_eq!(WsError::TooLarge(1).close_code(), CLOSE_TOO_BIG);
    }

    #[test]
    fn server_frames() {
        let mut out = BytesMut::new();
        encode_text(&mut out, b"hi");
        assert_eq!(&out[..], &[0x81, 2, b'h', b'i']);
        out.clear();
        encode_text(&mut out, &[0; 300]);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        out.clear();
        encode_close(&mut out, 1000);
        assert_eq!(&out[..], &[0x88, 2, 0x03, 0xE8]);
        out.clear();
        encode_pong(&mut out, b"p");
        assert_eq!(&out[..], &[0x8A, 1, b'p']);
    }
}
