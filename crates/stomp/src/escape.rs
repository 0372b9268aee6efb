//! Header escaping and un-escaping (STOMP 1.1/1.2 "Value Encoding").
//!
//! | version | escaped octets |
//! |---------|----------------|
//! | 1.0     | none |
//! | 1.1     | `\` → `\\`, LF → `\n`, `:` → `\c` |
//! | 1.2     | 1.1 plus CR → `\r` |
//!
//! `CONNECT` and `CONNECTED` frames are never escaped, whatever the version.

use bytes::{BufMut, BytesMut};

use crate::{Command, DecodeError, Version};

/// How header names and values of one frame are (un)escaped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// Octets are taken as they are (1.0, `CONNECT`, `CONNECTED`).
    Raw,
    /// `\\`, `\n`, `\c`.
    V1_1,
    /// `\\`, `\n`, `\c`, `\r`.
    V1_2,
}

impl Escaping {
    /// The escaping that applies to headers of `command` under `version`.
    pub(crate) fn for_frame(command: Command, version: Version) -> Escaping {
        if command.is_escape_exempt() {
            return Escaping::Raw;
        }
        match version {
            Version::V1_0 => Escaping::Raw,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        }
    }

    /// Whether `b` must be written differently than itself.
    fn is_special(self, b: u8) -> bool {
        // A raw LF would end the header line early (header injection), a raw NUL
        // the frame; neither has an escape in every version.
        b == b'\0'
            || match self {
                Escaping::Raw => b == b'\n',
                Escaping::V1_1 => matches!(b, b'\\' | b'\n' | b':'),
                Escaping::V1_2 => matches!(b, b'\\' | b'\n' | b':' | b'\r'),
            }
    }
}

/// Appends `s` to `out`, escaped per `mode`.
///
/// In [`Escaping::Raw`] mode a LF cannot be represented (it would end the
/// header line and let the rest be read as another header), so it is written
/// as a space; so is a NUL in any mode (STOMP has no escape for it, and a raw
/// one would end the frame). Every other octet is copied as is.
pub(crate) fn write_escaped(out: &mut BytesMut, s: &str, mode: Escaping) {
    let bytes = s.as_bytes();
    // Fast path: nothing to escape, copy at once.
    let Some(first) = bytes.iter().position(|&b| mode.is_special(b)) else {
        out.put_slice(bytes);
        return;
    };
    out.put_slice(&bytes[..first]);
    for &b in &bytes[first..] {
        match (mode, b) {
            (_, b'\0') | (Escaping::Raw, b'\n') => out.put_u8(b' '),
            (Escaping::Raw, _) => out.put_u8(b),
            (_, b'\\') => out.put_slice(b"\\\\"),
            (_, b'\n') => out.put_slice(b"\\n"),
            (_, b':') => out.put_slice(b"\\c"),
            (Escaping::V1_2, b'\r') => out.put_slice(b"\\r"),
            _ => out.put_u8(b),
        }
    }
}

/// Un-escapes one header name or value per `mode`.
///
/// Any backslash sequence not defined for the mode, or a trailing lone
/// backslash, is [`DecodeError::InvalidEscape`].
pub(crate) fn unescape(s: &str, mode: Escaping) -> Result<String, DecodeError> {
    if mode == Escaping::Raw || !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next() {
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('c') => ':',
            Some('r') if mode == Escaping::V1_2 => '\r',
            _ => return Err(DecodeError::InvalidEscape),
        };
        out.push(decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, mode: Escaping) -> String {
        let mut out = BytesMut::new();
        write_escaped(&mut out, s, mode);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn mode_per_command_and_version() {
        use Escaping::*;
        assert_eq!(Escaping::for_frame(Command::Send, Version::V1_0), Raw);
        assert_eq!(Escaping::for_frame(Command::Send, Version::V1_1), V1_1);
        assert_eq!(Escaping::for_frame(Command::Message, Version::V1_2), V1_2);
        assert_eq!(Escaping::for_frame(Command::Stomp, Version::V1_2), V1_2);
        assert_eq!(Escaping::for_frame(Command::Connect, Version::V1_2), Raw);
        assert_eq!(Escaping::for_frame(Command::Connected, Version::V1_1), Raw);
    }

    #[test]
    fn escapes_per_version() {
        let s = "a\\b\nc:d\re";
        assert_eq!(esc(s, Escaping::V1_2), "a\\\\b\\nc\\cd\\re");
        assert_eq!(esc(s, Escaping::V1_1), "a\\\\b\\nc\\cd\re");
        assert_eq!(esc(s, Escaping::Raw), "a\\b c:d\re");
        assert_eq!(esc("plain 한국어", Escaping::V1_2), "plain 한국어");
        assert_eq!(esc("", Escaping::V1_2), "");
        for mode in [Escaping::Raw, Escaping::V1_1, Escaping::V1_2] {
            assert_eq!(esc("a\0b", mode), "a b", "{mode:?}");
        }
    }

    #[test]
    fn unescapes_per_version() {
        assert_eq!(
            unescape("a\\\\b\\nc\\cd\\re", Escaping::V1_2).unwrap(),
            "a\\b\nc:d\re"
        );
        assert_eq!(
            unescape("a\\\\b\\nc\\cd", Escaping::V1_1).unwrap(),
            "a\\b\nc:d"
        );
        assert_eq!(
            unescape("a\\re", Escaping::V1_1),
            Err(DecodeError::InvalidEscape)
        );
        assert_eq!(unescape("a\\nb\\t", Escaping::Raw).unwrap(), "a\\nb\\t");
        assert_eq!(unescape("한\\c국", Escaping::V1_2).unwrap(), "한:국");
    }

    #[test]
    fn invalid_escapes() {
        for bad in ["\\t", "abc\\", "\\", "\\C", "\\\\\\", "x\\한"] {
            assert_eq!(
                unescape(bad, Escaping::V1_2),
                Err(DecodeError::InvalidEscape),
                "{bad:?}"
            );
            assert_eq!(
                unescape(bad, Escaping::V1_1),
                Err(DecodeError::InvalidEscape),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn round_trip_examples() {
        for s in ["", "\\", "\\\\n", ":::", "\r\n", "한국어:값\\", "a\\cb"] {
            assert_eq!(
                unescape(&esc(s, Escaping::V1_2), Escaping::V1_2).unwrap(),
                s
            );
            if !s.contains('\r') {
                assert_eq!(
                    unescape(&esc(s, Escaping::V1_1), Escaping::V1_1).unwrap(),
                    s
                );
            }
        }
    }
}
