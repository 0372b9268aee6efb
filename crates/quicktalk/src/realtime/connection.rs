//! The per-connection loop, the same for WebSocket and TCP, in one task: read
//! bytes, decode frames, dispatch them to the session; drain the outbound queue
//! onto the wire; send heart-beats when idle; enforce the client's heart-beat
//! (or, without one, an idle timeout) and that every frame completes in time.
//!
//! One task per connection (not a reader and a writer) keeps an idle
//! connection's memory small. Writing has priority over reading, so a client that
//! floods us while not reading is slowed down by its own socket. Every write is
//! bounded: it races the kill switch and the write timeout, so a peer that stops
//! reading is dropped after at most `write_timeout_ms` even though nothing is read
//! (and no deadline checked) while the write is blocked.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use quicktalk_stomp::{DecodeError, Decoder, Item, Limits};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::replier::Replier;
use super::session::{Flow, ProtocolError, Session};
use super::transport::{Input, WireRead, WireWrite};
use super::websocket::{
    CLOSE_BAD_DATA, CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_TOO_BIG,
};
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
    /// A write did not complete within the write timeout: the peer is not reading.
    Stalled,
    /// The peer sent a WebSocket Close: answer with a Close echoing its code.
    PeerClosed(Option<u16>),
}

/// One socket write, bounded: a kill wins, and a write that has not completed
/// within `limit` ends the connection ([`End::Stalled`]).
async fn bounded<T>(
    outlet: &Outlet,
    limit: Duration,
    write: impl Future<Output = io::Result<T>>,
) -> Result<T, End> {
    tokio::select! {
        biased;
        _ = outlet.closed() => Err(End::Killed),
        r = write => r.map_err(|_| End::Gone),
        _ = tokio::time::sleep(limit) => Err(End::Stalled),
    }
}

/// The connection's timeouts, from the config.
struct Timeouts {
    write: Duration,
    idle: Duration,
    frame: Duration,
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
    let limits = Timeouts {
        write: Duration::from_millis(state.config.write_timeout_ms),
        idle: Duration::from_millis(state.config.idle_timeout_ms),
        frame: Duration::from_millis(state.config.frame_timeout_ms),
    };
    let mut inbuf = BytesMut::new();
    let mut outbuf = BytesMut::new();
    let mut batch = Vec::new();
    let mut read_deadline = Instant::now() + CONNECT_TIMEOUT;
    // When the first byte of the frame still incomplete arrived.
    let mut partial_since: Option<Instant> = None;
    let mut last_write = Instant::now();
    let mut reading = true;
    let mut error_sent = false;
    // The WebSocket close code once a `Close` item is queued.
    let mut close_code = CLOSE_NORMAL;

    let end = loop {
        let heartbeat_at = session
            .send_every()
            .map_or_else(|| Instant::now() + FAR, |every| last_write + every);
        let frame_deadline = partial_since.map(|t| t + limits.frame);
        // One timer for all deadlines (a timer is the biggest part of an idle
        // connection's future); which one fired is decided when it does.
        let read_expires = if reading {
            frame_deadline.map_or(read_deadline, |f| f.min(read_deadline))
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
                close_code = CLOSE_GOING_AWAY;
                finish(&outlet, "server is shutting down", None);
            }
            _ = outlet.wait_queued() => {
                outlet.take(&mut batch, WRITE_BATCH);
                // A peer that stops reading blocks the write; a kill or the write
                // timeout must still win. Boxed: keeps the idle connection's future small.
                let written = Box::pin(bounded(&outlet, limits.write, async {
                    Ok(write_batch(&mut write, &mut batch, session.version(), &mut outbuf, &metrics, &mut error_sent).await)
                }))
                .await;
                match written {
                    Ok(Written::Ok) => {
                        last_write = Instant::now();
                        outlet.notify_drained();
                        // Idle connections hold no write buffers (busy ones keep theirs).
                        if outlet.is_empty() {
                            batch = Vec::new();
                            outbuf = BytesMut::new();
                        }
                    }
                    Ok(Written::Close) => break End::Drained,
                    Ok(Written::Failed) => break End::Gone,
                    Err(end) => break end,
                }
            }
            got = read.read(&mut inbuf), if reading => {
                match got {
                    Ok(Input::Data) => {}
                    Ok(Input::Ping(payload)) => {
                        if let Err(end) = Box::pin(bounded(&outlet, limits.write, write.pong(payload))).await {
                            break end;
                        }
                        continue;
                    }
                    Ok(Input::Close(code)) => break End::PeerClosed(code),
                    Ok(Input::Invalid { message, code }) => {
                        let err = ProtocolError { message, receipt: None };
                        protocol_error(&outlet, &state, "websocket", err);
                        close_code = code;
                        reading = false;
                        continue;
                    }
                    Ok(Input::Eof) | Err(_) => break End::Gone,
                }
                let now = Instant::now();
                // Boxed: frame handling awaits deep call chains; an idle connection
                // should not carry their state around.
                let handled = Box::pin(handle_input(&mut session, &mut decoder, &mut inbuf, &outlet, &state)).await;
                // Any bytes (frames or heart-beat EOLs) prove the client is alive.
                read_deadline = match (session.read_timeout(), session.connected()) {
                    (Some(t), _) => now + t,
                    (None, true) => now + limits.idle,
                    (None, false) => read_deadline,
                };
                // A frame's clock starts at its first byte and stops when it completes.
                partial_since = match (!inbuf.is_empty() || read.partial(), handled.progressed) {
                    (false, _) => None,
                    (true, true) => Some(now),
                    (true, false) => partial_since.or(Some(now)),
                };
                if let Some(code) = handled.ended {
                    // Stop reading; the queue (ending in Close) drains.
                    close_code = code;
                    reading = false;
                } else if inbuf.is_empty() {
                    // Give the buffer back between frames: idle connections hold none.
                    inbuf = BytesMut::new();
                }
            }
            _ = tokio::time::sleep_until(wake_at) => {
                let now = Instant::now();
                if reading && now >= read_expires {
                    let (why, kind) = if frame_deadline.is_some_and(|f| now >= f) {
                        ("frame not completed in time", "frame")
                    } else if !session.connected() {
                        ("no CONNECT frame in time", "connect")
                    } else if session.read_timeout().is_some() {
                        ("heart-beat timeout: nothing received", "heartbeat")
                    } else {
                        ("idle timeout: nothing received", "idle")
                    };
                    tracing::debug!(why, "dropping client");
                    metrics.conn_timeouts.with_label_values(&[kind]).inc();
                    outlet.kill(why);
                } else if now >= heartbeat_at {
                    let sent = Box::pin(bounded(&outlet, limits.write, async {
                        write.heartbeat().await?;
                        write.flush().await
                    }))
                    .await;
                    if let Err(end) = sent {
                        break end;
                    }
                    last_write = Instant::now();
                }
            }
        }
    };

    if let End::Stalled = end {
        tracing::debug!("dropping client: a write did not complete in time");
        metrics.conn_timeouts.with_label_values(&["write"]).inc();
        outlet.close();
    }
    // Boxed: the closing writes happen once; an idle connection's future should
    // not reserve room for them.
    Box::pin(close_wire(
        end,
        &mut write,
        &outlet,
        session.version(),
        outbuf,
        error_sent,
        close_code,
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
    error_sent: bool,
    close_code: u16,
) {
    let code = match end {
        // Not reading, or gone: nothing more can be written.
        End::Gone | End::Stalled => return,
        End::PeerClosed(code) => code,
        End::Killed => {
            if let Some(reason) = outlet.take_reason() {
                error_frame(&reason, None).encode(version, &mut outbuf);
                let bytes = outbuf.split().freeze();
                let _ = tokio::time::timeout(GIVE_UP_AFTER, async {
                    let _ = write.frame(bytes).await;
                    let _ = write.flush().await;
                })
                .await;
                Some(CLOSE_POLICY)
            } else {
                Some(close_code)
            }
        }
        End::Drained if error_sent && close_code == CLOSE_NORMAL => Some(CLOSE_POLICY),
        End::Drained => Some(close_code),
    };
    let _ = tokio::time::timeout(GIVE_UP_AFTER, write.close(code)).await;
}

/// What [`handle_input`] did with the buffer.
struct Handled {
    /// At least one item (frame or heart-beat) was decoded.
    progressed: bool,
    /// The connection is ending (DISCONNECT or a protocol error), with this
    /// WebSocket close code: stop reading.
    ended: Option<u16>,
}

/// Decodes and handles every complete frame in `inbuf`.
async fn handle_input(
    session: &mut Session,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
    outlet: &Outlet,
    state: &AppState,
) -> Handled {
    let mut progressed = false;
    let ended = loop {
        match decoder.decode(inbuf) {
            Ok(None) => break None,
            Ok(Some(Item::Heartbeat)) => progressed = true,
            Ok(Some(Item::Frame(frame))) => {
                progressed = true;
                state.metrics.frames_in.inc();
                let was_connected = session.connected();
                match session.handle(frame).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Disconnect) => {
                        outlet.push(Outbound::Close);
                        break Some(CLOSE_NORMAL);
                    }
                    Err(e) => {
                        protocol_error(outlet, state, "frame", e);
                        // A refused CONNECT is a policy matter; anything else a
                        // protocol error.
                        break Some(if was_connected {
                            CLOSE_PROTOCOL
                        } else {
                            CLOSE_POLICY
                        });
                    }
                }
                if !was_connected && session.connected() {
                    decoder.set_version(session.version());
                }
            }
            Err(e) => {
                let code = match e {
                    DecodeError::FrameTooLarge { .. } => CLOSE_TOO_BIG,
                    DecodeError::NotUtf8 => CLOSE_BAD_DATA,
                    _ => CLOSE_PROTOCOL,
                };
                let err = ProtocolError {
                    message: e.to_string(),
                    receipt: None,
                };
                protocol_error(outlet, state, "decode", err);
                break Some(code);
            }
        }
    };
    Handled { progressed, ended }
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
