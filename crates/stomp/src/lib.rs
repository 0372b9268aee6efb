//! Sans-I/O STOMP 1.0/1.1/1.2 codec: bytes in, frames out; frames to bytes.
//!
//! No sockets, no async runtime: the caller appends received bytes (a
//! WebSocket message or any chunk of a TCP stream) to one [`BytesMut`] and
//! calls [`Decoder::decode`] in a loop; frames are turned into bytes with
//! [`Frame::encode`]. Decoding never panics and stays within [`Limits`].
//!
//! Modules (private; everything is re-exported at the root):
//! `command` ([`Command`]), `frame` ([`Frame`]), `version` ([`Version`],
//! [`HeartBeat`], [`negotiate_heartbeat`]), `decode` ([`Decoder`], [`Limits`],
//! [`Item`]), `encode` ([`Frame::encode`]), `escape` (header escaping per
//! version) and `error` ([`DecodeError`]).
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use quicktalk_stomp::{Command, Decoder, Frame, Item, Limits, Version};
//!
//! let mut decoder = Decoder::new(Limits::default());
//! let mut buf = BytesMut::new();
//! buf.extend_from_slice(b"SEND\ndestination:/topic/room\\c1\ncontent-type:text/plain\n\nhi");
//! // Incomplete: nothing consumed yet.
//! assert_eq!(decoder.decode(&mut buf), Ok(None));
//!
//! buf.extend_from_slice(b" there\0\n");
//! let Some(Item::Frame(frame)) = decoder.decode(&mut buf).unwrap() else {
//!     panic!("expected a frame");
//! };
//! assert_eq!(frame.command, Command::Send);
//! assert_eq!(frame.header("destination"), Some("/topic/room:1")); // 1.2 un-escaping
//! assert_eq!(&frame.body[..], b"hi there");
//! // The trailing EOL is a heart-beat.
//! assert_eq!(decoder.decode(&mut buf), Ok(Some(Item::Heartbeat)));
//! assert_eq!(decoder.decode(&mut buf), Ok(None));
//!
//! // And back to bytes: a content-length header is added for the body.
//! let reply = Frame::new(Command::Message)
//!     .with_header("destination", "/topic/room:1")
//!     .with_body("hi there");
//! assert_eq!(
//!     &reply.to_bytes(Version::V1_2)[..],
//!     b"MESSAGE\ndestination:/topic/room\\c1\ncontent-length:8\n\nhi there\0"
//! );
//! ```
//!
//! [`BytesMut`]: bytes::BytesMut

#![warn(missing_docs)]

mod command;
mod decode;
mod encode;
mod error;
mod escape;
mod frame;
mod version;

pub use command::Command;
pub use decode::{Decoder, Item, Limits};
pub use encode::encode_parts;
pub use error::DecodeError;
pub use frame::Frame;
pub use version::{negotiate_heartbeat, HeartBeat, Version};
