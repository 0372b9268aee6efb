//! Server-side WebSocket framing (RFC 6455 §5), sans-I/O: bytes in, payload bytes
//! and control frames out; frames to bytes. Text messages are checked to be UTF-8
//! (§8.1) as they arrive, across fragments; close frames are checked (§7.4).
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
/// A close code: the server is going away (shutting down).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// A close code: protocol error (WebSocket or STOMP).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// A close code: data not consistent with its type (a text message not UTF-8).
pub const CLOSE_BAD_DATA: u16 = 1007;
/// A close code: policy violation (refused CONNECT, slow consumer, timeouts).
pub const CLOSE_POLICY: u16 = 1008;
/// A close code: a message was too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

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
    #[error("text message is not valid utf-8")]
    InvalidUtf8,
    #[error("invalid close code {0}")]
    CloseCode(u16),
}

impl WsError {
    /// The close code to answer with.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooLarge(_) => CLOSE_TOO_BIG,
            WsError::InvalidUtf8 => CLOSE_BAD_DATA,
            _ => CLOSE_PROTOCOL,
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4, IANA registry).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Incremental UTF-8 check of one text message whose bytes come in pieces: keeps
/// at most the 3 bytes of a character cut at a piece's end.
#[derive(Debug, Default)]
struct Utf8Check {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Check {
    /// Checks the next piece; `fin`: it ends the message.
    fn feed(&mut self, mut bytes: &[u8], fin: bool) -> Result<(), WsError> {
        if self.carry_len > 0 {
            let width = match self.carry[0] {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => return Err(WsError::InvalidUtf8),
            };
            let take = (width - self.carry_len).min(bytes.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&bytes[..take]);
            self.carry_len += take;
            bytes = &bytes[take..];
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(_) => self.carry_len = 0,
                // Still a valid start of a character: wait for its other bytes.
                Err(e) if e.error_len().is_none() && bytes.is_empty() => {}
                Err(_) => return Err(WsError::InvalidUtf8),
            }
        }
        if self.carry_len == 0 {
            if let Err(e) = std::str::from_utf8(bytes) {
                if e.error_len().is_some() {
                    return Err(WsError::InvalidUtf8);
                }
                let rest = &bytes[e.valid_up_to()..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len();
            }
        }
        if fin && self.carry_len > 0 {
            return Err(WsError::InvalidUtf8);
        }
        Ok(())
    }
}

/// Incremental decoder of client frames.
#[derive(Debug)]
pub struct Decoder {
    max_payload: usize,
    /// Inside a fragmented data message.
    in_message: bool,
    /// The message being received is text (checked to be UTF-8).
    text: bool,
    utf8: Utf8Check,
}

impl Decoder {
    pub fn new(max_payload: usize) -> Self {
        Decoder {
            max_payload,
            in_message: false,
            text: false,
            utf8: Utf8Check::default(),
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
                    if !continuation {
                        self.text = opcode == OP_TEXT;
                        self.utf8 = Utf8Check::default();
                    }
                    if self.text {
                        self.utf8.feed(&payload, fin)?;
                    }
                    self.in_message = !fin;
                    data.extend_from_slice(&payload);
                }
                OP_PING => return Ok(Some(Control::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Control::Pong)),
                OP_CLOSE => {
                    if payload.len() == 1 {
                        return Err(WsError::BadControl);
                    }
                    if payload.len() < 2 {
                        return Ok(Some(Control::Close(None)));
                    }
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    if !valid_close_code(code) {
                        return Err(WsError::CloseCode(code));
                    }
                    if std::str::from_utf8(&payload[2..]).is_err() {
                        return Err(WsError::InvalidUtf8);
                    }
                    return Ok(Some(Control::Close(Some(code))));
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

/// Appends a close frame with `code`, or with no payload at all.
pub fn encode_close(out: &mut BytesMut, code: Option<u16>) {
    match code {
        Some(code) => {
            put_header(out, OP_CLOSE, 2);
            out.put_u16(code);
        }
        None => put_header(out, OP_CLOSE, 0),
    }
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
            // Binary: the payload is not UTF-8.
            let (data, controls) = decode_all(&client_frame(true, OP_BINARY, &payload), 1 << 20);
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
        encode_close(&mut out, Some(1000));
        assert_eq!(&out[..], &[0x88, 2, 0x03, 0xE8]);
        out.clear();
        encode_close(&mut out, None);
        assert_eq!(&out[..], &[0x88, 0]);
        out.clear();
        encode_pong(&mut out, b"p");
        assert_eq!(&out[..], &[0x8A, 1, b'p']);
    }

    #[test]
    fn text_must_be_utf8_across_fragments() {
        // "한" (ED 95 9C) cut inside the character between two fragments: valid.
        let mut ok = client_frame(false, OP_TEXT, b"a\xED");
        ok.extend(client_frame(true, OP_CONTINUATION, b"\x95\x9Cb"));
        let (data, c) = decode_all(&ok, 100);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(data, "a한b".as_bytes());
        // Invalid bytes, a character cut off at the end of the message, an
        // overlong form split over fragments.
        for bad in [
            client_frame(true, OP_TEXT, b"\xff"),
            client_frame(true, OP_TEXT, b"ab\xED\x95"),
            [
                client_frame(false, OP_TEXT, b"\xE0"),
                client_frame(true, OP_CONTINUATION, b"\x80\x80"),
            ]
            .concat(),
        ] {
            assert_eq!(decode_all(&bad, 100).1, vec![Err(WsError::InvalidUtf8)]);
        }
        assert_eq!(WsError::InvalidUtf8.close_code(), CLOSE_BAD_DATA);
        // Binary messages carry any bytes.
        let (data, c) = decode_all(&client_frame(true, OP_BINARY, b"\xff\x00"), 100);
        assert!(c.is_empty());
        assert_eq!(data, b"\xff\x00");
    }

    #[test]
    fn close_frames_are_checked() {
        assert_eq!(
            decode_all(&client_frame(true, OP_CLOSE, b""), 100).1,
            vec![Ok(Control::Close(None))]
        );
        assert_eq!(
            decode_all(&client_frame(true, OP_CLOSE, &[0x03]), 100).1,
            vec![Err(WsError::BadControl)]
        );
        assert_eq!(
            decode_all(&client_frame(true, OP_CLOSE, &1005u16.to_be_bytes()), 100).1,
            vec![Err(WsError::CloseCode(1005))]
        );
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.push(0xff);
        assert_eq!(
            decode_all(&client_frame(true, OP_CLOSE, &bad_reason), 100).1,
            vec![Err(WsError::InvalidUtf8)]
        );
        assert_eq!(
            decode_all(&client_frame(true, OP_CLOSE, &4000u16.to_be_bytes()), 100).1,
            vec![Ok(Control::Close(Some(4000)))]
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes, fed in any chunks: no panic, bounded buffers.
            #[test]
            fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..64) {
                let mut d = Decoder::new(256);
                let mut raw = BytesMut::new();
                let mut data = BytesMut::new();
                'feed: for chunk in bytes.chunks(cut) {
                    raw.extend_from_slice(chunk);
                    loop {
                        match d.decode(&mut raw, &mut data) {
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(_) => break 'feed,
                        }
                    }
                    prop_assert!(raw.len() <= 256 + 14 + cut);
                }
            }

            /// A text message split into fragments anywhere is accepted exactly when
            /// the whole is UTF-8.
            #[test]
            fn utf8_check_matches_std(
                text in proptest::collection::vec(any::<u8>(), 0..40),
                cuts in proptest::collection::vec(0usize..40, 0..4),
            ) {
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
                cuts.sort_unstable();
                let mut bytes = Vec::new();
                let mut from = 0;
                let mut first = true;
                for &c in cuts.iter().chain(std::iter::once(&text.len())) {
                    let last = c == text.len();
                    if c < from || (!last && c == from) {
                        continue;
                    }
                    let op = if first { OP_TEXT } else { OP_CONTINUATION };
                    bytes.extend(client_frame(last, op, &text[from..c]));
                    first = false;
                    from = c;
                    if last {
                        break;
                    }
                }
                let (data, c) = decode_all(&bytes, 1000);
                let valid = std::str::from_utf8(&text).is_ok();
                prop_assert_eq!(c.is_empty(), valid, "{:?} {:?}", text, c);
                if valid {
                    prop_assert_eq!(data, text);
                }
            }
        }
    }
}
