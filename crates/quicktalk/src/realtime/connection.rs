//! The per-connection loop, the same for WebSocket and TCP, in one task: read
//! bytes, decode frames, dispatch them to the session; drain the outbound queue
//! onto the wire; send heart-beats when idle; enforce the client's heart-beat.
//!
//! One task per connection (not a reader and a writer) keeps an idle
//! connection's memory small. Writing has priority over reading, so a client that
//! floods us while not reading is slowed down by its own socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use quicktalk_stomp::{Decoder, Item, Limits};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::replier::Replier;
use super::session::{Flow, ProtocolError, Session};
use super::transport::{Input, WireRead, WireWrite};
use super::writer::{error_frame, write_batch, Written, WRITE_BATCH};
use crate::fanout::{Outbound, Outlet};
use crate::state::AppState;

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to write its last frames.
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);
/// "Never", for deadlines that are off.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The connection's future, to be spawned as its own task. A plain `fn`: an
/// `async fn` wrapper would hold the inner future and its arguments side by side.
pub fn run<R: WireRead, W: WireWrite>(
    state: Arc<AppState>,
    read: R,
    write: W,
    url_token: Option<String>,
    peer: String,
) -> impl std::future::Future<Output = ()> + Send {
    let id = state.next_connection_id();
    let span = tracing::info_span!("conn", id, %peer);
    let ip = peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
    serve(state, read, write, url_token, id, ip).instrument(span)
}

enum End {
    /// Killed (slow consumer, heart-beat timeout…): send the reason as ERROR.
    Killed,
    /// Everything queued was written (DISCONNECT, protocol error, shutdown).
    Drained,
    /// The peer went away or the wire failed.
    Gone,
}

async fn serve<R: WireRead, W: WireWrite>(
    state: Arc<AppState>,
    mut read: R,
    mut write: W,
    url_token: Option<String>,
    id: u64,
    client_ip: Option<std::net::IpAddr>,
) {
    let metrics = state.metrics.clone();
    metrics.connections.inc();
    metrics.connections_total.inc();
    let outlet = Outlet::new(id, state.config.outbound_queue, metrics.clone());
    let replier = Replier::new(outlet.clone(), state.hub.clone());
    let mut session = Session::new(state.clone(), replier, url_token, client_ip);
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: state.config.max_frame_bytes,
        ..Limits::default()
    });
    let mut inbuf = BytesMut::new();
    let mut outbuf = BytesMut::new();
    let mut batch = Vec::new();
    let mut read_deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut last_write = Instant::now();
    let mut reading = true;
    let mut error_sent = false;

    let end = loop {
        let heartbeat_at = session
            .send_every()
            .map_or_else(|| Instant::now() + FAR, |every| last_write + every);
        // One timer for both deadlines (a timer is the biggest part of an idle
        // connection's future); which one fired is decided when it does.
        let read_expires = if reading {
            read_deadline
        } else {
            Instant::now() + FAR
        };
        let wake_at = read_expires.min(heartbeat_at);
        tokio::select! {
            biased;
            _ = outlet.closed() => break End::Killed,
            _ = state.shutdown.cancelled(), if reading => {
                // Queued RECEIPTs and messages go out first, then the ERROR.
                reading = false;
                finish(&outlet, "server is shutting down", None);
            }
            _ = outlet.wait_queued() => {
                outlet.take(&mut batch, WRITE_BATCH);
                // A peer that stops reading blocks the write; a kill must still win.
                let written = tokio::select! {
                    // Boxed: keeps the idle connection's future small.
                    w = Box::pin(write_batch(&mut write, &mut batch, session.version(), &mut outbuf, &metrics, &mut error_sent)) => w,
                    _ = outlet.closed() => break End::Killed,
                };
                match written {
                    Written::Ok => {
                        last_write = Instant::now();
                        outlet.notify_drained();
                        // Idle connections hold no write buffers (busy ones keep theirs).
                        if outlet.is_empty() {
                            batch = Vec::new();
                            outbuf = BytesMut::new();
                        }
                    }
                    Written::Close => break End::Drained,
                    Written::Failed => break End::Gone,
                }
            }
            got = read.read(&mut inbuf), if reading => {
                match got {
                    Ok(Input::Data) => {}
                    Ok(Input::Ping(payload)) => {
                        if Box::pin(write.pong(payload)).await.is_err() {
                            break End::Gone;
                        }
                        continue;
                    }
                    Ok(Input::Eof) | Err(_) => break End::Gone,
                }
                let now = Instant::now();
                // Boxed: frame handling awaits deep call chains; an idle connection
                // should not carry their state around.
                let ok = Box::pin(handle_input(&mut session, &mut decoder, &mut inbuf, &outlet, &state)).await;
                // Any bytes (frames or heart-beat EOLs) prove the client is alive.
                read_deadline = match (session.read_timeout(), session.connected()) {
                    (Some(t), _) => now + t,
                    (None, true) => now + FAR,
                    (None, false) => read_deadline,
                };
                if !ok {
                    // Stop reading; the queue (ending in Close) drains.
                    reading = false;
                } else if inbuf.is_empty() {
                    // Give the buffer back between frames: idle connections hold none.
                    inbuf = BytesMut::new();
                }
            }
            _ = tokio::time::sleep_until(wake_at) => {
                let now = Instant::now();
                if reading && now >= read_deadline {
                    let why = if session.connected() { "heart-beat timeout: nothing received" } else { "no CONNECT frame in time" };
                    tracing::debug!(why, "dropping silent client");
                    outlet.kill(why);
                } else if now >= heartbeat_at {
                    let sent = Box::pin(async { write.heartbeat().await?; write.flush().await }).await;
                    if sent.is_err() {
                        break End::Gone;
                    }
                    last_write = Instant::now();
                }
            }
        }
    };

    // Boxed: the closing writes happen once; an idle connection's future should
    // not reserve room for them.
    Box::pin(close_wire(
        end,
        &mut write,
        &outlet,
        session.version(),
        outbuf,
        error_sent,
    ))
    .await;
    outlet.close();
    session.close();
    metrics.connections.dec();
}

/// Sends the kill reason (if any) and closes the wire, each bounded in time.
async fn close_wire<W: WireWrite>(
    end: End,
    write: &mut W,
    outlet: &Outlet,
    version: quicktalk_stomp::Version,
    mut outbuf: BytesMut,
    mut error_sent: bool,
) {
    if let End::Killed = end {
        if let Some(reason) = outlet.take_reason() {
            error_sent = true;
            error_frame(&reason, None).encode(version, &mut outbuf);
            let bytes = outbuf.split().freeze();
            let _ = tokio::time::timeout(GIVE_UP_AFTER, async {
                let _ = write.frame(bytes).await;
                let _ = write.flush().await;
            })
            .await;
        }
    }
    if !matches!(end, End::Gone) {
        let _ = tokio::time::timeout(GIVE_UP_AFTER, write.close(error_sent)).await;
    }
}

/// Decodes and handles every complete frame in `inbuf`. `false` once the
/// connection is ending (DISCONNECT or a protocol error): stop reading.
async fn handle_input(
    session: &mut Session,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
    outlet: &Outlet,
    state: &AppState,
) -> bool {
    loop {
        match decoder.decode(inbuf) {
            Ok(None) => return true,
            Ok(Some(Item::Heartbeat)) => {}
            Ok(Some(Item::Frame(frame))) => {
                state.metrics.frames_in.inc();
                let was_connected = session.connected();
                match session.handle(frame).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Disconnect) => {
                        outlet.push(Outbound::Close);
                        return false;
                    }
                    Err(e) => {
                        protocol_error(outlet, state, "frame", e);
                        return false;
                    }
                }
                if !was_connected && session.connected() {
                    decoder.set_version(session.version());
                }
            }
            Err(e) => {
                let err = ProtocolError {
                    message: e.to_string(),
                    receipt: None,
                };
                protocol_error(outlet, state, "decode", err);
                return false;
            }
        }
    }
}

/// Queues an ERROR and then the close.
fn finish(outlet: &Outlet, message: &str, receipt: Option<&str>) {
    if outlet.push(Outbound::frame(error_frame(message, receipt))) {
        outlet.push(Outbound::Close);
    }
}

fn protocol_error(outlet: &Outlet, state: &AppState, kind: &str, e: ProtocolError) {
    tracing::debug!(error = %e.message, "protocol error");
    state
        .metrics
        .protocol_errors
        .with_label_values(&[kind])
        .inc();
    finish(outlet, &e.message, e.receipt.as_deref());
}
