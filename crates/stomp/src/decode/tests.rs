//! Unit tests of the decoder: one or more per decoding rule and error.
use super::*;

fn small() -> Limits {
    Limits {
        max_frame_bytes: 64,
        max_headers: 3,
        max_header_bytes: 20,
    }
}

/// Decodes everything in `bytes` at once: items until `Ok(None)` or an error.
fn all(dec: &mut Decoder, bytes: &[u8]) -> (Vec<Item>, Option<DecodeError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let mut items = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None, buf),
            Err(e) => return (items, Some(e), buf),
        }
    }
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let (items, err, rest) = all(&mut Decoder::default(), bytes);
    assert_eq!(err, None);
    assert!(rest.is_empty(), "left over: {rest:?}");
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f),
            Item::Heartbeat => None,
        })
        .collect()
}

fn one(bytes: &[u8]) -> Frame {
    let mut f = frames(bytes);
    assert_eq!(f.len(), 1);
    f.remove(0)
}

fn err_of(dec: &mut Decoder, bytes: &[u8]) -> DecodeError {
    all(dec, bytes).1.expect("an error")
}

fn err(bytes: &[u8]) -> DecodeError {
    err_of(&mut Decoder::default(), bytes)
}

/// Feeds `bytes` one at a time, decoding after each.
fn byte_by_byte(dec: &mut Decoder, bytes: &[u8]) -> Result<Vec<Item>, DecodeError> {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for &b in bytes {
        buf.extend_from_slice(&[b]);
        while let Some(item) = dec.decode(&mut buf)? {
            items.push(item);
        }
    }
    Ok(items)
}

/// Merges runs of heart-beats: fed byte by byte, "\n\n" is two of them.
fn collapse(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for item in items {
        if !(item == Item::Heartbeat && out.last() == Some(&Item::Heartbeat)) {
            out.push(item);
        }
    }
    out
}

#[test]
fn decodes_send() {
    let f = one(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello\0");
    assert_eq!(f.command, Command::Send);
    assert_eq!(
        f.headers,
        vec![
            ("destination".to_owned(), "/queue/a".to_owned()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ]
    );
    assert_eq!(&f.body[..], b"hello");
}

#[test]
fn crlf_line_endings() {
    let f = one(b"SEND\r\ndestination:/a\r\n\r\nhi\0");
    assert_eq!(f.command, Command::Send);
    assert_eq!(f.header("destination"), Some("/a"));
    assert_eq!(&f.body[..], b"hi");
}

#[test]
fn no_headers_no_body() {
    let f = one(b"DISCONNECT\n\n\0");
    assert_eq!(f, Frame::new(Command::Disconnect));
}

#[test]
fn header_split_at_first_colon_without_trimming() {
    let f = one(b"CONNECT\n host : a:b \nempty:\n\n\0");
    assert_eq!(f.headers[0], (" host ".to_owned(), " a:b ".to_owned()));
    assert_eq!(f.header("empty"), Some(""));
}

#[test]
fn repeated_header_first_wins() {
    let f = one(b"MESSAGE\nfoo:1\nfoo:2\n\n\0");
    assert_eq!(f.header("foo"), Some("1"));
    assert_eq!(f.headers.len(), 2);
    assert_eq!(f.headers[1].1, "2");
}

#[test]
fn unescapes_1_2_including_cr() {
    let f = one(b"SEND\na\\cb:x\\\\y\\nz\\rw\n\n\0");
    assert_eq!(f.header("a:b"), Some("x\\y\nz\rw"));
}

#[test]
fn cr_escape_is_invalid_in_1_1() {
    let mut dec = Decoder::default();
    dec.set_version(Version::V1_1);
    assert_eq!(
        err_of(&mut dec, b"SEND\na:\\r\n\n\0"),
        DecodeError::InvalidEscape
    );
    let mut dec = Decoder::default();
    dec.set_version(Version::V1_1);
    let (items, e, _) = all(&mut dec, b"SEND\na\\c:\\\\\\n\n\n\0");
    assert_eq!(e, None);
    let Item::Frame(f) = &items[0] else {
        panic!("not a frame")
    };
    assert_eq!(f.header("a:"), Some("\\\n"));
}

#[test]
fn version_1_0_does_not_unescape() {
    let mut dec = Decoder::default();
    dec.set_version(Version::V1_0);
    assert_eq!(dec.version(), Version::V1_0);
    let (items, e, _) = all(&mut dec, b"SEND\na:\\c\\t\\\n\n\0");
    assert_eq!(e, None);
    let Item::Frame(f) = &items[0] else {
        panic!("not a frame")
    };
    assert_eq!(f.header("a"), Some("\\c\\t\\"));
}

#[test]
fn connect_and_connected_not_unescaped() {
    let f = one(b"CONNECT\nlogin:a\\cb\npasscode:p\\t\\\n\n\0");
    assert_eq!(f.header("login"), Some("a\\cb"));
    assert_eq!(f.header("passcode"), Some("p\\t\\"));
    let f = one(b"CONNECTED\nserver:x\\n\n\n\0");
    assert_eq!(f.header("server"), Some("x\\n"));
    // ...but STOMP and everything else are
    let f = one(b"STOMP\nlogin:a\\cb\n\n\0");
    assert_eq!(f.header("login"), Some("a:b"));
}

#[test]
fn content_length_body_may_contain_nul() {
    let f = one(b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&f.body[..], b"a\0b\0c");
    let f = one(b"SEND\ncontent-length:0\n\n\0");
    assert!(f.body.is_empty());
}

#[test]
fn first_content_length_wins() {
    let f = one(b"SEND\ncontent-length:2\ncontent-length:nonsense\n\nab\0");
    assert_eq!(&f.body[..], b"ab");
}

#[test]
fn missing_nul_after_content_length() {
    assert_eq!(
        err(b"SEND\ncontent-length:2\n\nabc\0"),
        DecodeError::MissingNul
    );
    // not yet known: wait for the byte after the body
    let (items, e, rest) = all(&mut Decoder::default(), b"SEND\ncontent-length:2\n\nab");
    assert_eq!((items.len(), e), (0, None));
    assert_eq!(rest.len(), 25);
}

#[test]
fn body_without_content_length_ends_at_first_nul() {
    let (items, e, rest) = all(&mut Decoder::default(), b"SEND\n\nab\0ACK\n\n\0");
    assert_eq!(e, None);
    assert!(rest.is_empty());
    assert_eq!(
        items,
        vec![
            Item::Frame(Frame::new(Command::Send).with_body(&b"ab"[..])),
            Item::Frame(Frame::new(Command::Ack)),
        ]
    );
}

#[test]
fn multiple_frames_and_heartbeats_in_one_buffer() {
    let bytes = b"\nSEND\na:1\n\nx\0\r\n\nACK\nid:2\n\n\0\nNACK\nid:3\n\n\0SEND\n";
    let (items, e, rest) = all(&mut Decoder::default(), bytes);
    assert_eq!(e, None);
    assert_eq!(&rest[..], b"SEND\n");
    let kinds: Vec<_> = items
        .iter()
        .map(|i| match i {
            Item::Heartbeat => "hb".to_owned(),
            Item::Frame(f) => f.command.as_str().to_owned(),
        })
        .collect();
    assert_eq!(kinds, ["hb", "SEND", "hb", "ACK", "hb", "NACK"]);
}

#[test]
fn leading_eols_are_one_heartbeat() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"\r\n\n\r\n\nSEND\n\n\0"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(Some(Item::Heartbeat)));
    assert_eq!(&buf[..], b"SEND\n\n\0");
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Item::Frame(Frame::new(Command::Send))))
    );
    assert_eq!(dec.decode(&mut buf), Ok(None));
}

#[test]
fn lone_cr_waits_for_more() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], b"\r");
    buf.extend_from_slice(b"\n");
    assert_eq!(dec.decode(&mut buf), Ok(Some(Item::Heartbeat)));
    assert!(buf.is_empty());
    assert_eq!(dec.decode(&mut buf), Ok(None));
}

#[test]
fn incomplete_input_leaves_buffer_untouched() {
    let full = b"SEND\ndestination:/a\ncontent-length:3\n\nabc\0";
    for n in 0..full.len() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&full[..n]);
        assert_eq!(dec.decode(&mut buf), Ok(None), "prefix {n}");
        assert_eq!(&buf[..], &full[..n]);
        // and a second call on the same bytes is still fine
        assert_eq!(dec.decode(&mut buf), Ok(None), "prefix {n}");
        buf.extend_from_slice(&full[n..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Item::Frame(_)))));
        assert!(buf.is_empty());
    }
}

#[test]
fn byte_by_byte_equals_whole() {
    let bytes: &[u8] = b"\r\n\nCONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0\
        SEND\ndestination:/a\ncontent-length:4\n\n\0\0\0\0\0\n\
        SUBSCRIBE\nid:0\ndestination:/b\\c\n\n\0\
        SEND\ndestination:/a\n\n\xed\x95\x9c\xea\xb5\xad\0";
    let whole = all(&mut Decoder::default(), bytes);
    assert_eq!(whole.1, None);
    assert!(whole.2.is_empty());
    let split = collapse(byte_by_byte(&mut Decoder::default(), bytes).unwrap());
    assert_eq!(split, whole.0);
    let sent: Vec<_> = split
        .iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f.command),
            Item::Heartbeat => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            Command::Connect,
            Command::Send,
            Command::Subscribe,
            Command::Send
        ]
    );
    let Item::Frame(last) = &split[split.len() - 1] else {
        panic!("not a frame")
    };
    assert_eq!(&last.body[..], "한국".as_bytes());
}

#[test]
fn scan_offset_is_kept_while_frame_trickles_in() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"SEND\ndestination:/a\n\n"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.partial.stage, Stage::Body(Command::Send, 21));
    buf.extend_from_slice(&[b'x'; 1000]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.partial.scan, buf.len());
    buf.extend_from_slice(b"y\0");
    let Ok(Some(Item::Frame(f))) = dec.decode(&mut buf) else {
        panic!("no frame")
    };
    assert_eq!(f.body.len(), 1001);
    assert!(dec.partial.is_fresh());
}

#[test]
fn trickling_frame_is_scanned_once() {
    // Head and body arrive one byte at a time: total search work must
    // stay linear in the frame size (at most each byte once per
    // line/body search that reaches it).
    let mut bytes = b"SEND\n".to_vec();
    for i in 0..40 {
        bytes.extend_from_slice(format!("header-{i}:{}\n", "v".repeat(100)).as_bytes());
    }
    bytes.push(b'\n');
    bytes.extend_from_slice(&[b'x'; 50_000]);
    bytes.push(0);
    let mut dec = Decoder::default();
    let items = byte_by_byte(&mut dec, &bytes).unwrap();
    assert_eq!(items.len(), 1);
    assert!(
        dec.scanned <= 2 * bytes.len(),
        "scanned {} bytes for a {}-byte frame",
        dec.scanned,
        bytes.len()
    );
}

#[test]
fn reset_and_replaced_buffer() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"SEND\nabc:def\n"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    dec.reset();
    let mut other = BytesMut::from(&b"ACK\n\n\0"[..]);
    assert!(matches!(dec.decode(&mut other), Ok(Some(Item::Frame(_)))));
    // A shorter buffer without reset must not panic either.
    let mut dec = Decoder::default();
    assert_eq!(dec.decode(&mut buf), Ok(None));
    let mut short = BytesMut::from(&b"NACK\n\n\0"[..]);
    assert!(matches!(dec.decode(&mut short), Ok(Some(Item::Frame(_)))));
}

#[test]
fn frame_too_large_from_content_length() {
    let mut dec = Decoder::new(small());
    assert_eq!(
        err_of(&mut dec, b"SEND\ncontent-length:65\n\n"),
        DecodeError::FrameTooLarge { limit: 64 }
    );
    // body fits alone but not with the head: rejected before it arrives
    let mut dec = Decoder::new(small());
    assert_eq!(
        err_of(&mut dec, b"SEND\ncontent-length:60\n\n"),
        DecodeError::FrameTooLarge { limit: 64 }
    );
    assert_eq!(
        err(b"SEND\ncontent-length:99999999999999999999999999\n\n"),
        DecodeError::FrameTooLarge { limit: 64 * 1024 }
    );
}

#[test]
fn frame_too_large_while_streaming() {
    let mut dec = Decoder::new(small());
    let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
    buf.extend_from_slice(&[b'x'; 58]);
    assert_eq!(buf.len(), 64);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"x");
    assert_eq!(
        dec.decode(&mut buf),
        Err(DecodeError::FrameTooLarge { limit: 64 })
    );
}

#[test]
fn frame_size_limit_is_exact() {
    // 6 + 57 + NUL = 64 bytes: fits
    let mut ok = b"SEND\n\n".to_vec();
    ok.extend_from_slice(&[b'x'; 57]);
    ok.push(0);
    assert_eq!(ok.len(), 64);
    let (items, e, _) = all(&mut Decoder::new(small()), &ok);
    assert_eq!((items.len(), e), (1, None));
    // one more byte of body: a complete frame that is too large
    let mut big = b"SEND\n\n".to_vec();
    big.extend_from_slice(&[b'x'; 58]);
    big.push(0);
    assert_eq!(
        err_of(&mut Decoder::new(small()), &big),
        DecodeError::FrameTooLarge { limit: 64 }
    );
    // same with content-length
    let mut cl = b"SEND\ncontent-length:41\n\n".to_vec();
    cl.extend_from_slice(&[0; 41]);
    cl.push(0);
    assert_eq!(cl.len(), 66);
    assert_eq!(
        err_of(&mut Decoder::new(small()), &cl),
        DecodeError::FrameTooLarge { limit: 64 }
    );
}

#[test]
fn too_many_headers() {
    let mut dec = Decoder::new(small());
    let (items, e, _) = all(&mut dec, b"SEND\na:1\nb:2\nc:3\n\n\0");
    assert_eq!((items.len(), e), (1, None));
    assert_eq!(
        err_of(&mut dec, b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0"),
        DecodeError::TooManyHeaders { limit: 3 }
    );
}

#[test]
fn header_too_long() {
    // 20 bytes is the limit (EOL not counted)
    let (items, e, _) = all(
        &mut Decoder::new(small()),
        b"SEND\naaaaaaa:bbbbbbbbbbbb\r\n\n\0",
    );
    assert_eq!((items.len(), e), (1, None));
    assert_eq!(
        err_of(
            &mut Decoder::new(small()),
            b"SEND\naaaaaaa:bbbbbbbbbbbbb\n\n\0"
        ),
        DecodeError::HeaderTooLong { limit: 20 }
    );
    // a CR may still be the EOL: 21 bytes ending in CR wait for more
    let (items, e, _) = all(&mut Decoder::new(small()), b"SEND\naaaaaaa:bbbbbbbbbbbb\r");
    assert_eq!((items.len(), e), (0, None));
    // detected before the line ends
    assert_eq!(
        err_of(&mut Decoder::new(small()), b"SEND\naaaaaaaaaaaaaaaaaaaaaa"),
        DecodeError::HeaderTooLong { limit: 20 }
    );
    // the command line counts too
    assert_eq!(
        err_of(&mut Decoder::new(small()), b"SENDSENDSENDSENDSENDSEND"),
        DecodeError::HeaderTooLong { limit: 20 }
    );
}

#[test]
fn unknown_command() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        DecodeError::UnknownCommand("GET / HTTP/1.1".into())
    );
    assert_eq!(
        err(b"send\n\n\0"),
        DecodeError::UnknownCommand("send".into())
    );
    let long = format!("{}\n\n\0", "한".repeat(40));
    assert_eq!(
        err(long.as_bytes()),
        DecodeError::UnknownCommand("한".repeat(32))
    );
    assert_eq!(
        err(b"\rSEND\n\n\0"),
        DecodeError::UnknownCommand("\rSEND".into())
    );
}

#[test]
fn malformed_header() {
    assert_eq!(err(b"SEND\nno-colon\n\n\0"), DecodeError::MalformedHeader);
    assert_eq!(err(b"SEND\n:value\n\n\0"), DecodeError::MalformedHeader);
}

#[test]
fn invalid_escape() {
    assert_eq!(err(b"SEND\na:b\\tc\n\n\0"), DecodeError::InvalidEscape);
    assert_eq!(err(b"SEND\na:b\\\n\n\0"), DecodeError::InvalidEscape);
    assert_eq!(err(b"SEND\na\\x:b\n\n\0"), DecodeError::InvalidEscape);
}

#[test]
fn not_utf8() {
    assert_eq!(err(b"SE\xffND\n\n\0"), DecodeError::NotUtf8);
    assert_eq!(err(b"SEND\na\xff:b\n\n\0"), DecodeError::NotUtf8);
    assert_eq!(err(b"SEND\na:\xc3\n\n\0"), DecodeError::NotUtf8);
    // the body is not checked
    assert_eq!(&one(b"SEND\n\n\xff\xfe\0").body[..], b"\xff\xfe");
}

#[test]
fn invalid_content_length() {
    for v in ["abc", "-1", "", " 3", "3 ", "+3", "1e3", "0x10"] {
        let bytes = format!("SEND\ncontent-length:{v}\n\nabc\0");
        assert_eq!(
            err(bytes.as_bytes()),
            DecodeError::InvalidContentLength,
            "{v:?}"
        );
    }
}

#[test]
fn decoder_is_reusable_after_error() {
    // After an error the decoder state is reset: no panic on reuse.
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"SEND\nbad\n\n\0"[..]);
    assert_eq!(dec.decode(&mut buf), Err(DecodeError::MalformedHeader));
    assert_eq!(dec.decode(&mut buf), Err(DecodeError::MalformedHeader));
}

#[test]
fn zero_limits_do_not_panic() {
    let mut dec = Decoder::new(Limits {
        max_frame_bytes: 0,
        max_headers: 0,
        max_header_bytes: 0,
    });
    let mut buf = BytesMut::from(&b"\nSEND\n\n\0"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(Some(Item::Heartbeat)));
    assert_eq!(
        dec.decode(&mut buf),
        Err(DecodeError::FrameTooLarge { limit: 0 })
    );
    let mut dec = Decoder::new(Limits {
        max_frame_bytes: usize::MAX,
        max_headers: usize::MAX,
        max_header_bytes: usize::MAX,
    });
    assert_eq!(
        err_of(&mut dec, b"SEND\ncontent-length:18446744073709551615\n\n"),
        DecodeError::FrameTooLarge { limit: usize::MAX }
    );
}

#[test]
fn nul_in_a_header_is_rejected() {
    // Echoed into a RECEIPT, a raw NUL would end the peer's frame early.
    assert_eq!(err(b"SEND\nreceipt:a\0b\n\n\0"), DecodeError::NulInHeader);
    assert_eq!(err(b"SEND\na\0:b\n\nbody\0"), DecodeError::NulInHeader);
    assert_eq!(
        err(b"CONNECT\nlogin:x\0\n\n\0"),
        DecodeError::NulInHeader,
        "un-escaped frames too"
    );
}
