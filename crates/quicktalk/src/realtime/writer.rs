//! The writer task: drains a connection's outbound queue onto the wire, encodes
//! MESSAGE frames from shared event bodies, and sends heart-beats when idle.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use quicktalk_stomp::{Command, Frame, Version};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::transport::WireWrite;
use crate::fanout::{Outbound, Outlet};
use crate::metrics::Metrics;

/// Most queued items written before one flush.
const WRITE_BATCH: usize = 64;
/// How long a closing connection may take to write its ERROR and close.
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

/// What the session negotiates and the writer needs: version and heart-beat.
#[derive(Default)]
pub struct WireState {
    version: AtomicU8,
    send_every_ms: AtomicU32,
}

impl WireState {
    pub fn set(&self, version: Version, send_every_ms: u32) {
        self.version.store(version as u8, Ordering::Release);
        self.send_every_ms.store(send_every_ms, Ordering::Release);
    }
    fn version(&self) -> Version {
        match self.version.load(Ordering::Acquire) {
            0 => Version::V1_0,
            1 => Version::V1_1,
            _ => Version::V1_2,
        }
    }
    fn send_every(&self) -> Option<Duration> {
        match self.send_every_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(Duration::from_millis(ms as u64)),
        }
    }
}

/// An ERROR frame with a `message` header and the same text as body.
pub fn error_frame(message: &str, receipt: Option<&str>) -> Frame {
    let mut f = Frame::new(Command::Error)
        .with_header("message", message)
        .with_header("content-type", "text/plain");
    if let Some(r) = receipt {
        f.push_header("receipt-id", r);
    }
    f.with_body(message.to_owned())
}

fn encode(item: &Outbound, version: Version, out: &mut BytesMut) {
    match item {
        Outbound::Event { sub, event } => {
            Frame::new(Command::Message)
                .with_header("destination", &*event.destination)
                .with_header("subscription", &**sub)
                .with_header("message-id", &*event.message_id)
                .with_header("content-type", "application/json")
                .with_body(event.body.clone())
                .encode(version, out);
        }
        Outbound::Frame(f) => f.encode(version, out),
        Outbound::Close => {}
    }
}

pub async fn run<W: WireWrite>(
    mut wire: W,
    mut rx: mpsc::Receiver<Outbound>,
    outlet: Arc<Outlet>,
    state: Arc<WireState>,
    metrics: Arc<Metrics>,
) {
    let mut buf = BytesMut::with_capacity(1024);
    let mut last_write = Instant::now();
    let mut error = false;
    loop {
        let heartbeat_at = state
            .send_every()
            .map(|every| last_write + every)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = outlet.closing().cancelled() => {
                if let Some(reason) = outlet.take_reason() {
                    error = true;
                    buf.clear();
                    error_frame(&reason, None).encode(state.version(), &mut buf);
                    let bytes = buf.split().freeze();
                    let _ = tokio::time::timeout(GIVE_UP_AFTER, async {
                        let _ = wire.frame(bytes).await;
                        let _ = wire.flush().await;
                    })
                    .await;
                }
                break;
            }
            item = rx.recv() => {
                let Some(item) = item else { break };
                // A peer that stops reading blocks the write; a kill must still win.
                let wrote = tokio::select! {
                    r = write_batch(&mut wire, item, &mut rx, &state, &metrics, &mut buf, &mut error) => r,
                    _ = outlet.closing().cancelled() => continue,
                };
                match wrote {
                    Batch::Written => {
                        last_write = Instant::now();
                        outlet.notify_drained();
                    }
                    Batch::Close => break,
                    Batch::Failed => {
                        outlet.close();
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(heartbeat_at) => {
                if wire.heartbeat().await.is_err() || wire.flush().await.is_err() {
                    outlet.close();
                    break;
                }
                last_write = Instant::now();
            }
        }
    }
    let _ = tokio::time::timeout(GIVE_UP_AFTER, wire.close(error)).await;
    outlet.close();
}

enum Batch {
    Written,
    Close,
    Failed,
}

/// Writes `first` and whatever else is queued (up to [`WRITE_BATCH`]), then flushes.
async fn write_batch<W: WireWrite>(
    wire: &mut W,
    first: Outbound,
    rx: &mut mpsc::Receiver<Outbound>,
    state: &WireState,
    metrics: &Metrics,
    buf: &mut BytesMut,
    error: &mut bool,
) -> Batch {
    let mut item = first;
    let mut n = 0;
    loop {
        if matches!(item, Outbound::Close) {
            let _ = wire.flush().await;
            return Batch::Close;
        }
        if let Outbound::Frame(f) = &item {
            *error |= f.command == Command::Error;
        }
        encode(&item, state.version(), buf);
        if wire.frame(buf.split().freeze()).await.is_err() {
            return Batch::Failed;
        }
        metrics.frames_out.inc();
        n += 1;
        if n >= WRITE_BATCH {
            break;
        }
        match rx.try_recv() {
            Ok(next) => item = next,
            Err(_) => break,
        }
    }
    if wire.flush().await.is_err() {
        return Batch::Failed;
    }
    Batch::Written
}
