//! `GET /ws`: the WebSocket upgrade with STOMP subprotocols.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::Uri;
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;

use super::connection;
use super::transport::{WsRead, WsWrite};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let token = Query::<WsParams>::try_from_uri(&uri)
        .ok()
        .and_then(|Query(p)| p.access_token);
    // Messages a little over the frame limit still reach the codec, which answers
    // with a STOMP ERROR; far bigger ones are cut off by the WebSocket layer.
    let max = state.config.max_frame_bytes * 4;
    ws.protocols(["v12.stomp", "v11.stomp", "v10.stomp"])
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(256)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            connection::run(
                state,
                WsRead(stream),
                WsWrite(sink),
                token,
                peer.to_string(),
            )
            .await
        })
}
