//! Decode errors: the one error type of the crate.
//!
//! Every variant is fatal for the connection: the caller is expected to send
//! an `ERROR` frame whose `message` header is the [`Display`](std::fmt::Display)
//! text of the error, and then close. Those texts are therefore short,
//! lowercase and safe to show to a peer.

/// Why a byte stream could not be decoded into STOMP frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DecodeError {
    /// The frame (command line + headers + body + NUL) is larger than
    /// [`Limits::max_frame_bytes`](crate::Limits::max_frame_bytes), or its
    /// `content-length` announces a body that large.
    #[error("frame exceeds {limit} bytes")]
    FrameTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The frame has more than [`Limits::max_headers`](crate::Limits::max_headers) headers.
    #[error("more than {limit} headers")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// One header line (or the command line) is longer than
    /// [`Limits::max_header_bytes`](crate::Limits::max_header_bytes).
    #[error("header line exceeds {limit} bytes")]
    HeaderTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The command line is valid UTF-8 but not a STOMP command. Holds the
    /// command line, truncated to 32 characters.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// A header line has no `:` or an empty name.
    #[error("malformed header line")]
    MalformedHeader,
    /// An undefined escape sequence (like `\t`) or a trailing lone backslash
    /// in a header of a STOMP 1.1/1.2 frame.
    #[error("invalid escape sequence in header")]
    InvalidEscape,
    /// The command line or a header is not valid UTF-8.
    #[error("command or header is not valid utf-8")]
    NotUtf8,
    /// The `content-length` header is not a non-negative decimal integer.
    #[error("invalid content-length header")]
    InvalidContentLength,
    /// The `content-length` bytes of the body are not followed by a NUL octet.
    #[error("frame body not terminated by nul")]
    MissingNul,
    /// The `heart-beat` header is not of the form `cx,cy`.
    #[error("invalid heart-beat header")]
    InvalidHeartBeat,
    /// A header name or value holds a NUL octet, which no STOMP escape can
    /// carry (echoed back, it would end the peer's frame early).
    #[error("nul octet in header")]
    NulInHeader,
}

#[cfg(test)]
mod tests {
    use super::DecodeError;

    #[test]
    fn display_texts_are_short_and_lowercase() {
        let all = [
            DecodeError::FrameTooLarge { limit: 10 },
            DecodeError::TooManyHeaders { limit: 10 },
            DecodeError::HeaderTooLong { limit: 10 },
            DecodeError::UnknownCommand("GET".into()),
            DecodeError::MalformedHeader,
            DecodeError::InvalidEscape,
            DecodeError::NotUtf8,
            DecodeError::InvalidContentLength,
            DecodeError::MissingNul,
            DecodeError::InvalidHeartBeat,
            DecodeError::NulInHeader,
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && s.len() < 64, "{s}");
            assert!(!s.contains('\n'), "{s}");
            let first = s.chars().next().unwrap_or('X');
            assert!(first.is_lowercase(), "{s}");
        }
        assert_eq!(
            DecodeError::FrameTooLarge { limit: 65536 }.to_string(),
            "frame exceeds 65536 bytes"
        );
        assert_eq!(
            DecodeError::UnknownCommand("GET / HTTP/1.1".into()).to_string(),
            "unknown command \"GET / HTTP/1.1\""
        );
    }
}
