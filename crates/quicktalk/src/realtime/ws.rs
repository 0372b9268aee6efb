//! A WebSocket connection after the HTTP upgrade (`http::ws` did the handshake):
//! the socket is taken back from hyper and runs STOMP over our own framing
//! (`websocket.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::connection;
use super::transport::{WsRead, WsWrite};
use crate::state::AppState;

/// Starts the connection's own task. The connection future is spawned by itself
/// rather than awaited inside the upgrade task: nesting it there would store it
/// twice over (async state machines copy the futures they await), doubling every
/// connection's memory.
pub fn serve(
    state: Arc<AppState>,
    upgraded: hyper::upgrade::Upgraded,
    token: Option<String>,
    peer: SocketAddr,
    max_frame: usize,
) {
    let peer = peer.to_string();
    // The plain TCP stream when we can get it (two halves, no lock between them).
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            // Copy what came with the request, and let go of hyper's read buffer
            // (it would otherwise live as long as the connection).
            let leftover = BytesMut::from(&parts.read_buf[..]);
            let (r, w) = parts.io.into_inner().into_split();
            drop(parts.read_buf);
            tokio::spawn(connection::run(
                state,
                WsRead::new(r, leftover, max_frame),
                WsWrite::new(w),
                token,
                peer,
            ));
        }
        Err(upgraded) => {
            tracing::debug!("upgraded connection is not a plain TCP stream; using a split");
            let (r, w) = tokio::io::split(TokioIo::new(upgraded));
            tokio::spawn(connection::run(
                state,
                WsRead::new(r, BytesMut::new(), max_frame),
                WsWrite::new(w),
                token,
                peer,
            ));
        }
    }
}
