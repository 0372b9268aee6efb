//! WebSocket frame decoder (`quicktalk::realtime::websocket::Decoder`).
//!
//! Input: 2 control bytes (mode and payload limit, chunking seed), then either
//! raw bytes or (structured mode) a list of frame descriptions that are encoded
//! as a browser would (masked) and checked against a model of RFC 6455 §5.
//! Invariants checked beyond "no panic":
//! - a call never appends more data than it consumed, and `Ok(None)` leaves at
//!   most one partial frame (< 14-byte header + the payload limit) buffered;
//! - a ping payload never exceeds 125 bytes;
//! - feeding the bytes in random chunks gives the same data, control frames
//!   and error as feeding them at once;
//! - structured mode: the data, control frames and error are exactly the
//!   model's (each frame's payload within the limit, fragmentation rules).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use quicktalk::realtime::websocket::{Control, Decoder, WsError};

/// Largest frame header: 2 bytes, 8-byte length, 4-byte mask.
const MAX_HEADER: usize = 14;

fuzz_target!(|input: &[u8]| {
    let [mode, seed, data @ ..] = input else {
        return;
    };
    let max = if mode & 0x40 != 0 {
        64 * 1024 // the server's default --max-frame-bytes
    } else {
        usize::from(mode & 0x3f) * 5
    };
    if mode & 0x80 == 0 {
        let whole = decode(max, &[data]);
        let chunked = decode(max, &split(data, *seed));
        assert_eq!(whole, chunked, "chunking changed the outcome");
    } else {
        let (bytes, expected) = structured(data, max, *seed);
        let whole = decode(max, &[&bytes]);
        assert_eq!(whole, expected, "decoder differs from the model");
        let chunked = decode(max, &split(&bytes, *seed));
        assert_eq!(chunked, expected, "chunked decoding differs from the model");
    }
});

/// Data appended, control frames returned, and the error that ended it.
type Outcome = (Vec<u8>, Vec<Control>, Option<WsError>);

fn decode(max: usize, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(max);
    let mut raw = BytesMut::new();
    let mut data = BytesMut::new();
    let mut controls = Vec::new();
    for chunk in chunks {
        raw.extend_from_slice(chunk);
        loop {
            let (raw_before, data_before) = (raw.len(), data.len());
            let result = decoder.decode(&mut raw, &mut data);
            assert!(raw.len() <= raw_before, "raw grew");
            let consumed = raw_before - raw.len();
            assert!(
                data.len() - data_before <= consumed,
                "appended {} data bytes from {consumed} bytes",
                data.len() - data_before
            );
            match result {
                Ok(Some(control)) => {
                    assert!(consumed > 0, "a control frame consumed nothing");
                    if let Control::Ping(p) = &control {
                        assert!(
                            p.len() <= 125 && p.len() <= max,
                            "ping of {} bytes",
                            p.len()
                        );
                    }
                    controls.push(control);
                }
                Ok(None) => {
                    assert!(
                        raw.len() < MAX_HEADER + max,
                        "{} bytes left buffered with a {max}-byte limit",
                        raw.len()
                    );
                    break;
                }
                Err(e) => return (data.to_vec(), controls, Some(e)),
            }
        }
    }
    (data.to_vec(), controls, None)
}

/// Encodes frames described by `desc` (per frame: flags byte, length byte,
/// length-form byte, then that many payload bytes) and computes what the
/// decoder must report for them.
fn structured(mut desc: &[u8], max: usize, seed: u8) -> (Vec<u8>, Outcome) {
    let mask = [seed, seed.wrapping_mul(31), 0x5a, seed ^ 0xa5];
    let mut bytes = Vec::new();
    let (mut data, mut controls, mut error) = (Vec::new(), Vec::new(), None);
    let mut in_message = false;
    while let [flags, len, form, rest @ ..] = desc {
        let len = usize::from(*len).min(rest.len());
        let (payload, tail) = rest.split_at(len);
        desc = tail;
        let fin = flags & 0x80 != 0;
        let rsv = flags & 0x70;
        let opcode = flags & 0x0f;
        let control = opcode >= 0x8;
        let mut payload = payload.to_vec();
        match opcode {
            // Text stays ASCII (valid UTF-8 in any fragmentation).
            0x0..=0x2 => payload.iter_mut().for_each(|b| *b &= 0x7f),
            // Close: empty or a valid code and an ASCII reason.
            0x8 if payload.len() == 1 => payload.clear(),
            0x8 if !payload.is_empty() => {
                payload[..2].copy_from_slice(&1000u16.to_be_bytes());
                payload[2..].iter_mut().for_each(|b| *b &= 0x7f);
            }
            _ => {}
        }
        // The frame on the wire.
        bytes.push(*flags);
        match (form % 3, payload.len()) {
            (0, n) if n < 126 => bytes.push(0x80 | n as u8),
            (0 | 1, n) if n <= 0xffff => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (_, n) => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        // What the decoder must make of it (once an error is reached, nothing).
        if error.is_some() {
            continue;
        }
        error = if rsv != 0 {
            Some(WsError::Reserved)
        } else if !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
            Some(WsError::Opcode(opcode))
        } else if control && (!fin || payload.len() > 125) {
            Some(WsError::BadControl)
        } else if payload.len() > max {
            Some(WsError::TooLarge(payload.len() as u64))
        } else if !control && (opcode == 0) != in_message {
            Some(WsError::Fragmentation)
        } else {
            None
        };
        if error.is_some() {
            continue;
        }
        match opcode {
            0x0..=0x2 => {
                in_message = !fin;
                data.extend_from_slice(&payload);
            }
            0x8 => controls.push(Control::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            )),
            0x9 => controls.push(Control::Ping(payload.into())),
            _ => controls.push(Control::Pong),
        }
    }
    (bytes, (data, controls, error))
}

/// Splits `data` into chunks of 1..=64 bytes chosen by a small PRNG.
fn split(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + (state % 64) as usize).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}
