//! STOMP decoder (`quicktalk_stomp::Decoder`) on arbitrary bytes.
//!
//! Input: 3 control bytes (version, limits, chunking seed), then the stream.
//! Invariants checked beyond "no panic":
//! - every item consumes bytes; `Ok(None)` consumes nothing and leaves at most
//!   `max_frame_bytes` buffered (memory stays bounded whatever the peer sends);
//! - a frame never spans more than `max_frame_bytes` on the wire, has at most
//!   `max_headers` headers, and a body shorter than the frame limit;
//! - feeding the stream in random chunks gives the same items and the same
//!   error as feeding it at once (heart-beat runs compared as one);
//! - re-encoding a decoded frame and decoding it again gives the same frame
//!   (less a trailing CR of a header value where CR is not escaped).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use quicktalk_stomp::{Command, DecodeError, Decoder, Frame, Item, Limits, Version};

fuzz_target!(|input: &[u8]| {
    let [v, l, seed, data @ ..] = input else {
        return;
    };
    let version = Version::ALL[usize::from(*v) % 3];
    let limits = if l & 0x80 == 0 {
        Limits::default()
    } else {
        // Small limits so that every limit is reached by short inputs.
        Limits {
            max_frame_bytes: 8 + usize::from(l & 0x0f) * 16,
            max_headers: 1 + usize::from((l >> 4) & 0x03),
            max_header_bytes: 2 + usize::from(seed & 0x3f),
        }
    };

    let whole = decode(version, limits, &[data]);
    let chunks = split(data, *seed);
    let chunked = decode(version, limits, &chunks);
    assert_eq!(whole, chunked, "chunking changed the outcome");

    for item in &whole.0 {
        if let Item::Frame(frame) = item {
            roundtrip(version, frame);
        }
    }
});

type Outcome = (Vec<Item>, Option<DecodeError>);

/// Feeds `chunks` one after the other to one decoder, checking the per-call
/// invariants; heart-beat runs are collapsed to one item.
fn decode(version: Version, limits: Limits, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(version);
    let mut buf = BytesMut::new();
    let mut items: Vec<Item> = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(item)) => {
                    let consumed = before - buf.len();
                    assert!(consumed > 0, "an item consumed nothing");
                    if let Item::Frame(frame) = &item {
                        assert!(consumed <= limits.max_frame_bytes, "frame over the limit");
                        assert!(frame.headers.len() <= limits.max_headers);
                        assert!(frame.body.len() < limits.max_frame_bytes);
                        for (name, value) in &frame.headers {
                            assert!(!name.is_empty());
                            // Un-escaping never makes a header longer.
                            assert!(name.len() + value.len() < limits.max_header_bytes);
                        }
                    }
                    if !(item == Item::Heartbeat && items.last() == Some(&Item::Heartbeat)) {
                        items.push(item);
                    }
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    assert!(
                        buf.len() <= limits.max_frame_bytes,
                        "{} bytes buffered over a {}-byte frame limit",
                        buf.len(),
                        limits.max_frame_bytes
                    );
                    break;
                }
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

/// Encodes `frame` for `version` and decodes it again (generous limits): the
/// same frame, plus the `content-length` the encoder adds to a body.
fn roundtrip(version: Version, frame: &Frame) {
    let bytes = frame.to_bytes(version);
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: 1 << 24,
        max_headers: 1 << 16,
        max_header_bytes: 1 << 24,
    });
    decoder.set_version(version);
    let mut buf = BytesMut::from(&bytes[..]);
    match decoder.decode(&mut buf) {
        Ok(Some(Item::Frame(again))) => {
            // The encoder adds `content-length` to a non-empty body without one.
            let mut expected = frame.clone();
            // Where CR is not escaped (1.0, 1.1, CONNECT/CONNECTED), a value
            // ending in CR is written as `…\r\n`, and the decoder takes that
            // CR as part of the EOL (it accepts CRLF in every version): one
            // trailing CR is lost. Known and accepted; see README "Fuzzing".
            let cr_escaped = version == Version::V1_2
                && !matches!(frame.command, Command::Connect | Command::Connected);
            if !cr_escaped {
                for (_, value) in &mut expected.headers {
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
            }
            if !frame.body.is_empty() && frame.header("content-length").is_none() {
                expected.push_header("content-length", frame.body.len().to_string());
            }
            assert_eq!(
                again, expected,
                "re-encoded frame decodes differently: {bytes:?}"
            );
            assert!(buf.is_empty(), "re-encoded frame left {buf:?}");
        }
        other => panic!("re-encoded frame {bytes:?} decodes as {other:?}"),
    }
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
