//! Frame encoding: [`Frame`] to wire bytes.
//!
//! `COMMAND\n`, then one `name:value\n` per header (escaped per version, see
//! `escape`), then `\n`, the body and a NUL. A non-empty body gets a
//! `content-length` header appended if the frame has none, so bodies may
//! contain NULs.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use crate::escape::{write_escaped, Escaping};
use crate::Command;
use crate::{Frame, Version};

impl Frame {
    /// Encodes the frame for a peer speaking `version`, appending to `out`.
    ///
    /// Headers are escaped per `version` (never for `CONNECT`/`CONNECTED`,
    /// never in 1.0; there a LF in a header, which cannot be represented, is
    /// written as a space). If the body is non-empty and there is no
    /// `content-length` header, `content-length:<len>` is appended as the last
    /// header. An existing `content-length` header is written as it is: it
    /// is the caller's job to keep it true.
    pub fn encode(&self, version: Version, out: &mut BytesMut) {
        let mode = Escaping::for_frame(self.command, version);
        let headers_len: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        out.reserve(self.command.as_str().len() + headers_len + self.body.len() + 40);

        out.put_slice(self.command.as_str().as_bytes());
        out.put_u8(b'\n');
        for (name, value) in &self.headers {
            write_escaped(out, name, mode);
            out.put_u8(b':');
            write_escaped(out, value, mode);
            out.put_u8(b'\n');
        }
        if !self.body.is_empty() && self.header("content-length").is_none() {
            // Writing into a BytesMut cannot fail.
            let _ = writeln!(out, "content-length:{}", self.body.len());
        }
        out.put_u8(b'\n');
        out.put_slice(&self.body);
        out.put_u8(0);
    }

    /// Encodes the frame into a new buffer; see [`Frame::encode`].
    ///
    /// (See also [`encode_parts`], which needs no owned [`Frame`].)
    pub fn to_bytes(&self, version: Version) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(version, &mut out);
        out.freeze()
    }
}

/// Encodes a frame from borrowed parts, without building a [`Frame`]: the hot
/// path of fan-out, where one body goes to many subscriptions and only a few
/// header values differ. Same rules as [`Frame::encode`]; `content-length` is
/// written for a non-empty body.
pub fn encode_parts(
    out: &mut BytesMut,
    command: Command,
    version: Version,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mode = Escaping::for_frame(command, version);
    let headers_len: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    out.reserve(command.as_str().len() + headers_len + body.len() + 40);
    out.put_slice(command.as_str().as_bytes());
    out.put_u8(b'\n');
    for (name, value) in headers {
        write_escaped(out, name, mode);
        out.put_u8(b':');
        write_escaped(out, value, mode);
        out.put_u8(b'\n');
    }
    if !body.is_empty() {
        let _ = writeln!(out, "content-length:{}", body.len());
    }
    out.put_u8(b'\n');
    out.put_slice(body);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use crate::{Command, Frame, Version};

    #[test]
    fn plain_frame() {
        let f = Frame::new(Command::Receipt).with_header("receipt-id", "77");
        assert_eq!(
            &f.to_bytes(Version::V1_2)[..],
            b"RECEIPT\nreceipt-id:77\n\n\0"
        );
    }

    #[test]
    fn body_gets_content_length() {
        let f = Frame::new(Command::Message)
            .with_header("destination", "/q")
            .with_body(&b"a\0b"[..]);
        assert_eq!(
            &f.to_bytes(Version::V1_2)[..],
            b"MESSAGE\ndestination:/q\ncontent-length:3\n\na\0b\0"
        );
    }

    #[test]
    fn existing_content_length_is_kept() {
        let f = Frame::new(Command::Send)
            .with_header("content-length", "2")
            .with_body(&b"hi"[..]);
        assert_eq!(
            &f.to_bytes(Version::V1_2)[..],
            b"SEND\ncontent-length:2\n\nhi\0"
        );
    }

    #[test]
    fn escaping_per_version() {
        let f = Frame::new(Command::Message).with_header("k:\\", "a\nb\rc");
        assert_eq!(
            &f.to_bytes(Version::V1_2)[..],
            b"MESSAGE\nk\\c\\\\:a\\nb\\rc\n\n\0"
        );
        assert_eq!(
            &f.to_bytes(Version::V1_1)[..],
            b"MESSAGE\nk\\c\\\\:a\\nb\rc\n\n\0"
        );
        // 1.0: raw, except LF which would inject a header line
        assert_eq!(
            &f.to_bytes(Version::V1_0)[..],
            b"MESSAGE\nk:\\:a b\rc\n\n\0"
        );
    }

    #[test]
    fn connected_is_never_escaped() {
        let f = Frame::new(Command::Connected).with_header("server", "a:b\\c");
        assert_eq!(
            &f.to_bytes(Version::V1_2)[..],
            b"CONNECTED\nserver:a:b\\c\n\n\0"
        );
    }

    #[test]
    fn encode_parts_matches_frame_encode() {
        for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let headers = [
                ("destination", "/topic/rooms.1"),
                ("subscription", "a:b\\c\n"),
            ];
            let mut frame = Frame::new(Command::Message);
            for (n, v) in headers {
                frame.push_header(n, v);
            }
            let frame = frame.with_body(&b"{\"x\":1}"[..]);
            let mut a = bytes::BytesMut::new();
            super::encode_parts(&mut a, Command::Message, version, &headers, b"{\"x\":1}");
            assert_eq!(a.freeze(), frame.to_bytes(version), "{version:?}");
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = bytes::BytesMut::from(&b"x"[..]);
        Frame::new(Command::Disconnect).encode(Version::V1_2, &mut out);
        assert_eq!(&out[..], b"xDISCONNECT\n\n\0");
    }
}
