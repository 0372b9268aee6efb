//! STOMP 1.2 over WebSocket (`GET /ws`) and, optionally, raw TCP: the real-time adapter.
//!
//! - `transport`: the two wires behind one pair of traits (bytes in, frames out).
//! - `connection`: the per-socket loop — one reader (decode, heart-beat deadline,
//!   dispatch) and one writer task (bounded queue → socket, heart-beats out).
//! - `session` and its command modules: what each STOMP command does, as calls into
//!   the domain services. No socket code there.
//! - `ws`, `tcp`: accepting connections.
//!
//! Protocol violations get `ERROR` and close; application rejections go to
//! `/user/queue/errors` and the socket stays open.

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
