//! The per-connection loop, the same for WebSocket and TCP: read bytes, decode
//! frames, dispatch them to the session, enforce the heart-beat deadline; a
//! separate writer task owns the sending half.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use quicktalk_stomp::{Decoder, Item, Limits};
use tracing::Instrument as _;

use super::replier::Replier;
use super::session::{Flow, ProtocolError, Session};
use super::transport::{WireRead, WireWrite};
use super::writer::{self, error_frame, WireState};
use crate::fanout::{Outbound, Outlet};
use crate::state::AppState;

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run<R: WireRead, W: WireWrite>(
    state: Arc<AppState>,
    read: R,
    write: W,
    url_token: Option<String>,
    peer: String,
) {
    let id = state.next_connection_id();
    let span = tracing::info_span!("conn", id, %peer);
    serve(state, read, write, url_token, id)
        .instrument(span)
        .await
}

async fn serve<R: WireRead, W: WireWrite>(
    state: Arc<AppState>,
    mut read: R,
    write: W,
    url_token: Option<String>,
    id: u64,
) {
    let metrics = state.metrics.clone();
    metrics.connections.inc();
    metrics.connections_total.inc();
    let (outlet, rx) = Outlet::new(id, state.config.outbound_queue, metrics.clone());
    let wire = Arc::new(WireState::default());
    let writer = tokio::spawn(
        writer::run(write, rx, outlet.clone(), wire.clone(), metrics.clone()).in_current_span(),
    );
    let replier = Replier::new(outlet.clone(), state.hub.clone());
    let mut session = Session::new(state.clone(), replier, wire, url_token);
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: state.config.max_frame_bytes,
        ..Limits::default()
    });
    let mut buf = BytesMut::new();
    let mut deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;

    'read: loop {
        let got = tokio::select! {
            r = read.read(&mut buf) => r,
            _ = tokio::time::sleep_until(deadline) => {
                let why = if session.connected() { "heart-beat timeout: nothing received" } else { "no CONNECT frame in time" };
                tracing::debug!(why, "dropping silent client");
                outlet.kill(why);
                break;
            }
            _ = outlet.closing().cancelled() => break,
            _ = state.shutdown.cancelled() => {
                // Queued RECEIPTs and messages go out first, then the ERROR.
                if outlet.push(Outbound::Frame(error_frame("server is shutting down", None))) {
                    outlet.push(Outbound::Close);
                }
                break;
            }
        };
        match got {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                outlet.close();
                break;
            }
        }
        if let Some(t) = session.read_timeout() {
            deadline = tokio::time::Instant::now() + t;
        } else if session.connected() {
            deadline = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(Item::Heartbeat)) => {}
                Ok(Some(Item::Frame(frame))) => {
                    metrics.frames_in.inc();
                    let was_connected = session.connected();
                    match session.handle(frame).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Disconnect) => {
                            outlet.push(Outbound::Close);
                            break 'read;
                        }
                        Err(e) => {
                            protocol_error(&outlet, &state, "frame", e);
                            break 'read;
                        }
                    }
                    if !was_connected && session.connected() {
                        decoder.set_version(session.version());
                        deadline = tokio::time::Instant::now()
                            + session
                                .read_timeout()
                                .unwrap_or(Duration::from_secs(365 * 24 * 3600));
                    }
                }
                Err(e) => {
                    let err = ProtocolError {
                        message: e.to_string(),
                        receipt: None,
                    };
                    protocol_error(&outlet, &state, "decode", err);
                    break 'read;
                }
            }
        }
    }
    session.close();
    if tokio::time::timeout(Duration::from_secs(12), writer)
        .await
        .is_err()
    {
        tracing::warn!("writer did not finish in time");
    }
    metrics.connections.dec();
}

fn protocol_error(outlet: &Outlet, state: &AppState, kind: &str, e: ProtocolError) {
    tracing::debug!(error = %e.message, "protocol error");
    state
        .metrics
        .protocol_errors
        .with_label_values(&[kind])
        .inc();
    if outlet.push(Outbound::Frame(error_frame(
        &e.message,
        e.receipt.as_deref(),
    ))) {
        outlet.push(Outbound::Close);
    }
}
