//! Message bodies: a JSON `{"text": "..."}` of a fixed size whose text carries
//! the send stamp (`ts=`, nanoseconds on the shared [`crate::clock`]) and the
//! fan-out step (`s=`), padded with `x`. The same body goes to both targets;
//! QuickTalk wraps the text in its message envelope, RabbitMQ passes it through,
//! so the stamp is found by scanning the delivered body either way.

/// A body of exactly `len` bytes when `len` is large enough (else the minimum).
pub fn body(ts_ns: u64, step: u32, len: usize) -> String {
    let mut s = format!("{{\"text\":\"ts={ts_ns} s={step} ");
    let pad = len.saturating_sub(s.len() + 2);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// A plain padded body without stamp (persist scenario).
pub fn plain(len: usize) -> String {
    let mut s = String::from("{\"text\":\"");
    let pad = len.saturating_sub(s.len() + 2).max(1);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn digits(b: &[u8]) -> Option<u64> {
    let end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    std::str::from_utf8(&b[..end]).ok()?.parse().ok()
}

/// The `(stamp, step)` of a delivered body, or `None` for anything else
/// (QuickTalk presence events, join messages, ...). For QuickTalk bodies,
/// `"type":"message"` must be present too.
pub fn parse_stamp(body: &[u8], require_message_type: bool) -> Option<(u64, u32)> {
    let at = find(body, b"ts=")?;
    let rest = &body[at + 3..];
    let ts = digits(rest)?;
    let s_at = find(rest, b" s=")?;
    let step = u32::try_from(digits(&rest[s_at + 3..])?).ok()?;
    if require_message_type && find(body, b"\"type\":\"message\"").is_none() {
        return None;
    }
    Some((ts, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_requested_size_and_is_json() {
        for len in [60usize, 100, 1000] {
            let b = body(123_456_789_012, 7, len);
            assert_eq!(b.len(), len);
            let v: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert!(v["text"]
                .as_str()
                .unwrap()
                .starts_with("ts=123456789012 s=7 "));
        }
        assert_eq!(plain(100).len(), 100);
    }

    #[test]
    fn stamp_round_trips_through_a_quicktalk_envelope() {
        let b = body(42_000, 3, 100);
        let text: serde_json::Value = serde_json::from_str(&b).unwrap();
        let envelope = serde_json::json!({
            "type": "message", "id": 1, "room_id": 2, "seq": 3, "kind": "text",
            "sender": {"id": 1, "name": "bench-owner"}, "text": text["text"],
            "sent_at": "2025-01-01T00:00:00Z"
        })
        .to_string();
        assert_eq!(parse_stamp(envelope.as_bytes(), true), Some((42_000, 3)));
        assert_eq!(parse_stamp(b.as_bytes(), false), Some((42_000, 3)));
        // A plain body has no "type": rejected when the envelope is required.
        assert_eq!(parse_stamp(b.as_bytes(), true), None);
    }

    #[test]
    fn other_events_are_ignored() {
        let presence = br#"{"type":"presence","room_id":1,"online":[{"id":1,"name":"bench-0"}]}"#;
        assert_eq!(parse_stamp(presence, true), None);
        assert_eq!(parse_stamp(b"ts=abc s=1", false), None);
        assert_eq!(parse_stamp(b"", false), None);
    }
}
