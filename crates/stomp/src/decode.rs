//! Incremental frame decoding: bytes in, [`Item`]s out, within [`Limits`].
//!
//! The [`Decoder`] works on the front of a caller-owned [`BytesMut`] to which
//! the caller appends whatever arrives (a whole WebSocket message or any
//! slice of a TCP stream). It consumes exactly the bytes of each item it
//! returns and leaves the rest. While a frame is incomplete it remembers how
//! far it has scanned, so a large frame trickling in is scanned once in
//! total, not once per call; and it never looks further than
//! [`Limits::max_frame_bytes`] into the buffer, so memory and work stay
//! bounded whatever the peer sends.

use bytes::{Buf, Bytes, BytesMut};

use crate::escape::{unescape, Escaping};
use crate::{Command, DecodeError, Frame, Version};

/// Size limits enforced by the [`Decoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole frame: command line + headers + body + NUL (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Most headers in one frame (default 64).
    pub max_headers: usize,
    /// Longest single header line (or command line), without its EOL (default 8 KiB).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_headers: 64,
            max_header_bytes: 8 * 1024,
        }
    }
}

/// What [`Decoder::decode`] found at the front of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// One or more EOLs (`\n` or `\r\n`) outside a frame: a heart-beat.
    Heartbeat,
}

/// Where the decoder is within the frame at the front of the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    /// Reading the command line.
    #[default]
    Command,
    /// Reading header lines.
    Headers(Command),
    /// Headers done; the body starts at this offset.
    Body(Command, usize),
}

/// Progress on the (incomplete) frame at the front of the buffer. All
/// offsets are from the start of the buffer; `line_start <= scan`.
#[derive(Clone, Debug, Default)]
struct Partial {
    stage: Stage,
    /// Everything before this offset has been scanned.
    scan: usize,
    /// Start of the line being read (command or header stage).
    line_start: usize,
    headers: Vec<(String, String)>,
    /// First `content-length` header, parsed.
    content_length: Option<usize>,
}

impl Partial {
    fn is_fresh(&self) -> bool {
        self.stage == Stage::Command && self.scan == 0
    }
}

/// Incremental STOMP decoder.
///
/// Decodes items from the front of the connection's read buffer, consuming
/// exactly their bytes. It never looks further than
/// [`Limits::max_frame_bytes`] into the buffer, and a frame trickling in is
/// scanned once in total, not once per call.
///
/// The decoder keeps scan progress on the frame at the front of the buffer
/// between calls, so pass the same buffer every time and only append to it
/// (or call [`Decoder::reset`] before switching to another buffer).
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    partial: Partial,
    /// Bytes searched so far, to test that scanning stays linear.
    #[cfg(test)]
    scanned: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with the given limits, un-escaping headers with STOMP 1.2
    /// rules until told otherwise (`CONNECT` is never un-escaped anyway).
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            version: Version::V1_2,
            partial: Partial::default(),
            #[cfg(test)]
            scanned: 0,
        }
    }

    /// Sets the negotiated version; it decides header un-escaping of the
    /// frames decoded from now on.
    pub fn set_version(&mut self, v: Version) {
        self.version = v;
    }

    /// The version headers are un-escaped with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Forgets progress on a partly received frame. Needed only if the
    /// caller discards or replaces the buffer between calls.
    pub fn reset(&mut self) {
        self.partial = Partial::default();
    }

    /// Tries to decode one item from the front of `buf`, consuming exactly
    /// its bytes.
    ///
    /// * `Ok(Some(Item::Heartbeat))`: any number of leading EOLs (`\n` or
    ///   `\r\n`) were consumed.
    /// * `Ok(Some(Item::Frame(_)))`: one frame was consumed.
    /// * `Ok(None)`: more bytes are needed; nothing was consumed.
    /// * `Err(_)`: the stream is not valid STOMP or breaks a [`Limits`];
    ///   this is fatal for the connection (send `ERROR` and close).
    ///
    /// Never panics, whatever the input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, DecodeError> {
        if buf.len() < self.partial.scan {
            // The caller replaced or drained the buffer: start over.
            self.partial = Partial::default();
        }
        if self.partial.is_fresh() {
            let eols = leading_eols(buf);
            if eols > 0 {
                buf.advance(eols);
                return Ok(Some(Item::Heartbeat));
            }
            if buf.is_empty() || buf[..] == b"\r"[..] {
                // A lone CR may be the start of a "\r\n" heart-beat.
                return Ok(None);
            }
        }
        let result = self.decode_frame(buf);
        if result.is_err() {
            self.partial = Partial::default();
        }
        result
    }

    fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, DecodeError> {
        let limits = self.limits;
        let max = limits.max_frame_bytes;
        let too_large = DecodeError::FrameTooLarge { limit: max };
        let p = &mut self.partial;

        // A frame may not be longer than `max`, so nothing past that is ever
        // looked at.
        let window = &buf[..buf.len().min(max)];

        // Command line and headers, one line at a time.
        let (command, body_start) = loop {
            let command = match p.stage {
                Stage::Body(command, start) => break (command, start),
                Stage::Headers(command) => Some(command),
                Stage::Command => None,
            };
            let from = p.scan;
            #[cfg(test)]
            {
                self.scanned += window.len().saturating_sub(from);
            }
            let Some(nl) = find(window, from, b'\n') else {
                p.scan = window.len();
                // The line so far, less a CR that may turn out to be its EOL.
                let pending = window.len().saturating_sub(p.line_start);
                if pending > limits.max_header_bytes.saturating_add(1) {
                    return Err(DecodeError::HeaderTooLong {
                        limit: limits.max_header_bytes,
                    });
                }
                return need_more(buf.len(), max);
            };
            let line = window.get(p.line_start..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            p.line_start = nl + 1;
            p.scan = nl + 1;
            if line.len() > limits.max_header_bytes {
                return Err(DecodeError::HeaderTooLong {
                    limit: limits.max_header_bytes,
                });
            }
            match command {
                None => p.stage = Stage::Headers(parse_command(line)?),
                Some(command) if line.is_empty() => p.stage = Stage::Body(command, nl + 1),
                Some(command) => {
                    if p.headers.len() >= limits.max_headers {
                        return Err(DecodeError::TooManyHeaders {
                            limit: limits.max_headers,
                        });
                    }
                    let mode = Escaping::for_frame(command, self.version);
                    let (name, value) = parse_header(line, mode)?;
                    if p.content_length.is_none() && name == "content-length" {
                        let len = parse_content_length(&value, max)?;
                        if len > max {
                            return Err(too_large);
                        }
                        p.content_length = Some(len);
                    }
                    p.headers.push((name, value));
                }
            }
        };

        // Body and the NUL after it.
        let (body_end, total) = match p.content_length {
            Some(len) => {
                let end = body_start.checked_add(len).ok_or(too_large.clone())?;
                let total = end.checked_add(1).ok_or(too_large.clone())?;
                if total > max {
                    return Err(too_large);
                }
                match buf.get(end) {
                    None => return need_more(buf.len(), max),
                    Some(0) => (end, total),
                    Some(_) => return Err(DecodeError::MissingNul),
                }
            }
            None => {
                let window = &buf[..buf.len().min(max)];
                let from = p.scan.max(body_start);
                #[cfg(test)]
                {
                    self.scanned += window.len().saturating_sub(from);
                }
                match find(window, from, 0) {
                    Some(nul) => (nul, nul + 1),
                    None => {
                        p.scan = window.len();
                        return need_more(buf.len(), max);
                    }
                }
            }
        };

        // Copy the body out rather than split the buffer: a small body must
        // not keep the connection's whole read buffer allocated.
        let body = Bytes::copy_from_slice(buf.get(body_start..body_end).unwrap_or_default());
        let headers = std::mem::take(&mut p.headers);
        *p = Partial::default();
        buf.advance(total);
        Ok(Some(Item::Frame(Frame {
            command,
            headers,
            body,
        })))
    }
}

/// `Ok(None)` unless the buffered part of the current frame already exceeds
/// the frame limit.
fn need_more(buffered: usize, max: usize) -> Result<Option<Item>, DecodeError> {
    if buffered > max {
        Err(DecodeError::FrameTooLarge { limit: max })
    } else {
        Ok(None)
    }
}

/// Number of bytes of `\n` / `\r\n` at the front of `buf`.
fn leading_eols(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i) {
            Some(b'\n') => i += 1,
            Some(b'\r') if buf.get(i + 1) == Some(&b'\n') => i += 2,
            _ => return i,
        }
    }
}

/// Offset of the first `needle` in `hay` at or after `from`.
fn find(hay: &[u8], from: usize, needle: u8) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| from + i)
}

fn parse_command(line: &[u8]) -> Result<Command, DecodeError> {
    if let Some(command) = Command::from_bytes(line) {
        return Ok(command);
    }
    match std::str::from_utf8(line) {
        Ok(s) => Err(DecodeError::UnknownCommand(s.chars().take(32).collect())),
        Err(_) => Err(DecodeError::NotUtf8),
    }
}

/// Splits `name:value` at the first `:` and un-escapes both halves.
fn parse_header(line: &[u8], mode: Escaping) -> Result<(String, String), DecodeError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(DecodeError::MalformedHeader)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() {
        return Err(DecodeError::MalformedHeader);
    }
    if line.contains(&0) {
        return Err(DecodeError::NulInHeader);
    }
    let name = std::str::from_utf8(name).map_err(|_| DecodeError::NotUtf8)?;
    let value = std::str::from_utf8(value).map_err(|_| DecodeError::NotUtf8)?;
    Ok((unescape(name, mode)?, unescape(value, mode)?))
}

/// A decimal `content-length`; too many digits to fit is a too-large frame.
fn parse_content_length(v: &str, max: usize) -> Result<usize, DecodeError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::InvalidContentLength);
    }
    v.parse()
        .map_err(|_| DecodeError::FrameTooLarge { limit: max })
}

#[cfg(test)]
mod tests;
