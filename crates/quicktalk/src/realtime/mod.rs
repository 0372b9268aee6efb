//! STOMP 1.2 over WebSocket (`GET /ws`) and, optionally, raw TCP: the real-time adapter.
//!
//! - `transport`: the two wires behind one pair of traits (bytes in, frames out).
//! - `connection`: the per-socket loop, one task per socket: it reads and decodes
//!   frames and dispatches them, drains the bounded outbound queue onto the socket
//!   (writes first, each bounded in time), sends heart-beats and enforces the
//!   read deadlines (heart-beat or idle, CONNECT, incomplete frame).
//! - `session` and its command modules: what each STOMP command does, as calls into
//!   the domain services. No socket code there.
//! - `ws`, `tcp`: accepting connections.
//!
//! Protocol violations get `ERROR` and close (over WebSocket with a Close frame:
//! 1002 protocol error, 1007 bad UTF-8, 1009 too big, 1008 refused or dropped);
//! application rejections go to `/user/queue/errors` and the socket stays open.

mod connection;
mod destination;
mod replier;
mod session;
pub mod tcp;
mod transport;
pub mod websocket;
mod writer;
pub mod ws;

/// The JSON body of a SEND to a room (public for the fuzz targets in `fuzz/`).
pub use session::PostBody;
