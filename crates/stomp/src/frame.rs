//! The [`Frame`] value type and its header accessors.
//!
//! Wire encoding lives in `encode`, decoding in `decode`.

use bytes::Bytes;

use crate::Command;

/// One STOMP frame: command, ordered headers (repeats kept) and body.
///
/// Header names and values are held un-escaped, as the application sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's command.
    pub command: Command,
    /// Headers in wire order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body (may contain NULs when sent with `content-length`).
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The value of the first header named `name` (case-sensitive).
    ///
    /// The first occurrence wins, as STOMP 1.2 requires for repeated headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header and returns the frame (builder style).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.push_header(name, value);
        self
    }

    /// Appends a header.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces the body and returns the frame (builder style).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_first_header_wins() {
        let mut f = Frame::new(Command::Send)
            .with_header("destination", "/a")
            .with_header("destination", "/b")
            .with_body(&b"hi"[..]);
        f.push_header("x", "1");
        assert_eq!(f.header("destination"), Some("/a"));
        assert_eq!(f.header("x"), Some("1"));
        assert_eq!(f.header("Destination"), None);
        assert_eq!(f.headers.len(), 3);
        assert_eq!(&f.body[..], b"hi");
        assert_eq!(Frame::new(Command::Ack).body.len(), 0);
    }
}
