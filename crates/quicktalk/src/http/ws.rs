//! `GET /ws`: the WebSocket upgrade handshake (RFC 6455 §4.2) with the STOMP
//! subprotocols. Once upgraded, the socket is handed to the real-time adapter
//! ([`crate::realtime::ws::serve`]), which runs STOMP over its own framing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use sha1::{Digest, Sha1};

use super::client_ip::ClientIp;
use super::ApiError;
use crate::limits::{Key, Limit};
use crate::state::AppState;

/// Subprotocols we speak, most preferred first.
const PROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

#[derive(Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn bad(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ClientIp(ip): ClientIp,
    mut req: Request,
) -> Response {
    if let Err(e) = state.limits.check(Limit::ConnectIp, Key::Ip(ip)) {
        return ApiError::from(e).into_response();
    }
    // The session counts against the client's IP, not the proxy's.
    let peer = SocketAddr::new(ip, peer.port());
    let headers = req.headers();
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return bad(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks STOMP over WebSocket",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut r = bad(
            StatusCode::BAD_REQUEST,
            "unsupported_websocket_version",
            "WebSocket version 13 is required",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_upgrade",
            "missing Sec-WebSocket-Key",
        );
    };
    let accept = accept_key(key.as_bytes());
    let protocol = PROTOCOLS
        .into_iter()
        .find(|p| has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, p));
    let token = Query::<WsParams>::try_from_uri(req.uri())
        .ok()
        .and_then(|Query(p)| p.access_token);
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return bad(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "the connection cannot be upgraded",
        );
    };
    // A WebSocket message a little over the frame limit still reaches the STOMP
    // codec, which answers with an ERROR; far bigger ones close the socket.
    let max_frame = state.config.max_frame_bytes * 4;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => crate::realtime::ws::serve(state, upgraded, token, peer, max_frame),
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    res
}
