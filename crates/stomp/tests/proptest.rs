//! Property tests: encode/decode round trips (whole and chunked), and that
//! decoding arbitrary bytes never panics, always terminates, and does not
//! depend on how the bytes were chunked.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::string::string_regex;
use quicktalk_stomp::{Command, DecodeError, Decoder, Frame, Item, Limits, Version};

/// Header text over a char set rich in special octets, or anything at all.
fn text(min: usize) -> impl Strategy<Value = String> {
    let special = string_regex(&format!(r"[a-z0-9 :\\\r\n가-힣-]{{{min},12}}")).unwrap();
    // No NUL: a header cannot carry one (the decoder rejects it).
    let anything =
        proptest::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), min..12)
            .prop_map(|cs| cs.into_iter().collect::<String>());
    prop_oneof![3 => special, 1 => anything]
}

fn name() -> impl Strategy<Value = String> {
    text(1).prop_filter("content-length is the codec's", |n| n != "content-length")
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn frame_with(
    commands: Vec<Command>,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = Frame> {
    (
        proptest::sample::select(commands),
        proptest::collection::vec((name(), value), 0..8),
        body(),
    )
        .prop_map(|(command, headers, body)| Frame {
            command,
            headers,
            body: body.into(),
        })
}

/// Frames of every command whose headers are escaped.
fn escaped_frame() -> impl Strategy<Value = Frame> {
    let commands = Command::ALL
        .into_iter()
        .filter(|c| !matches!(c, Command::Connect | Command::Connected))
        .collect();
    frame_with(commands, text(0))
}

/// What decoding the encoding of `f` must give: the encoder adds
/// `content-length` for a non-empty body.
fn expected(f: &Frame) -> Frame {
    let mut f = f.clone();
    if !f.body.is_empty() {
        f.push_header("content-length", f.body.len().to_string());
    }
    f
}

fn big_limits() -> Limits {
    Limits {
        max_frame_bytes: 1 << 20,
        max_headers: 64,
        max_header_bytes: 8 * 1024,
    }
}

/// Feeds `bytes` in chunks ending at `cuts` (sorted offsets), decoding after
/// each; returns the frames, the first error, and what is left over.
fn feed(
    dec: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> (Vec<Item>, Option<DecodeError>, usize) {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(from, bytes.len());
        buf.extend_from_slice(&bytes[from..cut]);
        from = cut;
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(item)) => {
                    assert!(buf.len() < before, "an item must consume bytes");
                    items.push(item);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) must not consume");
                    break;
                }
                Err(e) => return (items, Some(e), buf.len()),
            }
        }
    }
    (items, None, buf.len())
}

fn cuts(max_len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..max_len, 0..12).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn only_frames(items: Vec<Item>) -> Vec<Frame> {
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some(f),
            Item::Heartbeat => None,
        })
        .collect()
}

/// Merges runs of heart-beats (how many EOL runs are seen depends on chunking).
fn collapse(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for item in items {
        if !(item == Item::Heartbeat && out.last() == Some(&Item::Heartbeat)) {
            out.push(item);
        }
    }
    out
}

/// One frame-like run of bytes: mostly well-formed, sometimes not.
fn stompish_frame() -> impl Strategy<Value = Vec<u8>> {
    fn pick(items: &[&'static [u8]]) -> impl Strategy<Value = &'static [u8]> {
        proptest::sample::select(items.to_vec())
    }
    let eol = || pick(&[b"\n", b"\n", b"\n", b"\n", b"\r\n", b"\r\n", b"\r", b""]);
    let header = (
        pick(&[
            b"destination",
            b"id",
            b"id",
            b"content-length",
            b"a\\c",
            b"\\t",
            b"",
            b"\xff",
        ]),
        pick(&[b":", b":", b":", b":", b":", b":", b":", b""]),
        pick(&[
            b"/q",
            b"0",
            b"2",
            b"5",
            b"-1",
            b"",
            b"x\\n",
            b"\\r",
            b"\\",
            b"\xed\x95",
            b"\xed\x95\x9c",
            b"a:b",
            b"1",
            b"3",
            b"/q",
            b"q",
        ]),
        eol(),
    )
        .prop_map(|(n, c, v, e)| [n, c, v, e].concat());
    (
        proptest::collection::vec(eol(), 0..2),
        pick(&[
            b"SEND", b"SEND", b"MESSAGE", b"CONNECT", b"ACK", b"ACK", b"NACK", b"send", b"\xffX",
            b"",
        ]),
        eol(),
        proptest::collection::vec(header, 0..4),
        eol(),
        proptest::collection::vec(pick(&[b"hi", b"\0", b"\n", b"xyz", b"\xff"]), 0..4),
        pick(&[b"\0", b"\0", b"\0", b""]),
    )
        .prop_map(|(pre, c, e1, hs, e2, body, nul)| {
            [
                pre.concat(),
                c.to_vec(),
                e1.to_vec(),
                hs.concat(),
                e2.to_vec(),
                body.concat(),
                nul.to_vec(),
            ]
            .concat()
        })
}

/// Byte soup that often looks like STOMP.
fn stompish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => stompish_frame(),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|ps| ps.concat())
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (0usize..200, 0usize..6, 0usize..40).prop_map(|(f, h, l)| Limits {
        max_frame_bytes: f,
        max_headers: h,
        max_header_bytes: l,
    })
}

proptest! {
    #[test]
    fn v1_2_round_trip(f in escaped_frame()) {
        let bytes = f.to_bytes(Version::V1_2);
        let mut dec = Decoder::new(big_limits());
        dec.set_version(Version::V1_2);
        let (items, err, left) = feed(&mut dec, &bytes, &[]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(items, vec![Item::Frame(expected(&f))]);
    }

    #[test]
    fn v1_2_round_trip_chunked(
        fs in proptest::collection::vec(escaped_frame(), 1..4),
        eols in proptest::collection::vec(prop_oneof![Just(""), Just("\n"), Just("\r\n\n")], 4),
        cuts in cuts(2000),
    ) {
        let mut bytes = BytesMut::new();
        for (f, eol) in fs.iter().zip(&eols) {
            bytes.extend_from_slice(eol.as_bytes());
            f.encode(Version::V1_2, &mut bytes);
        }
        let mut dec = Decoder::new(big_limits());
        let (items, err, left) = feed(&mut dec, &bytes, &cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
        let want: Vec<Frame> = fs.iter().map(expected).collect();
        prop_assert_eq!(only_frames(items), want);
    }

    #[test]
    fn v1_1_round_trip(
        f in frame_with(
            Command::ALL
                .into_iter()
                .filter(|c| !matches!(c, Command::Connect | Command::Connected))
                .collect(),
            text(0).prop_filter("no CR in 1.1 values", |v| !v.contains('\r')),
        ),
        cuts in cuts(1000),
    ) {
        let bytes = f.to_bytes(Version::V1_1);
        let mut dec = Decoder::new(big_limits());
        dec.set_version(Version::V1_1);
        let (items, err, left) = feed(&mut dec, &bytes, &cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(only_frames(items), vec![expected(&f)]);
    }

    #[test]
    fn unescaped_round_trip(
        f in frame_with(
            vec![Command::Connect, Command::Connected, Command::Send],
            string_regex(r"[a-z0-9 .,:/\\가-힣-]{0,12}").unwrap(),
        ),
    ) {
        // Names must not hold ':' when nothing is escaped.
        let f = Frame {
            headers: f.headers.into_iter().map(|(n, v)| (n.replace([':', '\n', '\r'], "_"), v)).collect(),
            ..f
        };
        prop_assume!(f.headers.iter().all(|(n, _)| n != "content-length"));
        for version in [Version::V1_0, Version::V1_2] {
            if version == Version::V1_2 && f.command == Command::Send {
                continue;
            }
            let mut dec = Decoder::new(big_limits());
            dec.set_version(version);
            let (items, err, left) = feed(&mut dec, &f.to_bytes(version), &[]);
            prop_assert_eq!(err, None);
            prop_assert_eq!(left, 0);
            prop_assert_eq!(only_frames(items), vec![expected(&f)]);
        }
    }

    /// Whatever the headers, an encoded frame decodes as exactly one frame
    /// with as many headers: no header or frame injection, in any version.
    #[test]
    fn encoding_never_injects(
        f in frame_with(Command::ALL.to_vec(), text(0)),
        version in proptest::sample::select(Version::ALL.to_vec()),
    ) {
        let raw = matches!(f.command, Command::Connect | Command::Connected) || version == Version::V1_0;
        // Unescaped, a name starting with ':' cannot be represented.
        prop_assume!(!(raw && f.headers.iter().any(|(n, _)| n.starts_with(':'))));
        let bytes = f.to_bytes(version);
        let mut dec = Decoder::new(big_limits());
        dec.set_version(version);
        let (items, err, left) = feed(&mut dec, &bytes, &[]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(left, 0);
        let got = only_frames(items);
        prop_assert_eq!(got.len(), 1);
        let want = expected(&f);
        prop_assert_eq!(got[0].command, want.command);
        prop_assert_eq!(got[0].headers.len(), want.headers.len());
        prop_assert_eq!(&got[0].body, &want.body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in cuts(400),
        version in proptest::sample::select(Version::ALL.to_vec()),
    ) {
        for limits in [Limits::default(), Limits { max_frame_bytes: 50, max_headers: 2, max_header_bytes: 10 }] {
            let mut dec = Decoder::new(limits);
            dec.set_version(version);
            let _ = feed(&mut dec, &bytes, &cuts);
        }
    }

    #[test]
    fn valid_prefix_then_garbage_never_panics(
        f in escaped_frame(),
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in cuts(800),
    ) {
        let bytes = f.to_bytes(Version::V1_2);
        let mut input = bytes[..cut.index(bytes.len() + 1)].to_vec();
        input.extend_from_slice(&tail);
        let mut dec = Decoder::new(big_limits());
        let _ = feed(&mut dec, &input, &cuts);
        // a whole frame followed by garbage still yields the frame first
        let mut input = bytes.to_vec();
        input.extend_from_slice(&tail);
        let mut dec = Decoder::new(big_limits());
        let (items, _, _) = feed(&mut dec, &input, &cuts);
        let got = only_frames(items);
        prop_assert_eq!(got.first(), Some(&expected(&f)));
    }

}

proptest! {
    // Cheap cases that cover every decoder path: run many.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Decoding does not depend on chunking: the same items (up to merged
    /// heart-beats), the same error, the same left-over bytes.
    #[test]
    fn chunking_does_not_matter(
        bytes in stompish(),
        cuts in cuts(300),
        limits in small_limits(),
        version in proptest::sample::select(Version::ALL.to_vec()),
    ) {
        let mut whole = Decoder::new(limits);
        whole.set_version(version);
        let (items_w, err_w, left_w) = feed(&mut whole, &bytes, &[]);
        let mut chunked = Decoder::new(limits);
        chunked.set_version(version);
        let (items_c, err_c, left_c) = feed(&mut chunked, &bytes, &cuts);
        prop_assert_eq!(collapse(items_w), collapse(items_c));
        // (on error, the chunked feed stops before all bytes are in)
        if err_w.is_none() {
            prop_assert_eq!(left_w, left_c);
        }
        prop_assert_eq!(err_w, err_c);
    }

    #[test]
    fn byte_by_byte_does_not_matter(
        bytes in stompish(),
        limits in small_limits(),
    ) {
        let (items_w, err_w, left_w) = feed(&mut Decoder::new(limits), &bytes, &[]);
        let every: Vec<usize> = (0..bytes.len()).collect();
        let (items_c, err_c, left_c) = feed(&mut Decoder::new(limits), &bytes, &every);
        prop_assert_eq!(collapse(items_w), collapse(items_c));
        // (on error, the chunked feed stops before all bytes are in)
        if err_w.is_none() {
            prop_assert_eq!(left_w, left_c);
        }
        prop_assert_eq!(err_w, err_c);
    }
}
