//! The sending half of a connection: encodes queued items (MESSAGE frames from
//! shared event bodies, other frames as they are) and writes them in batches.

use bytes::BytesMut;
use quicktalk_stomp::{encode_parts, Command, Frame, Version};

use super::transport::WireWrite;
use crate::fanout::Outbound;
use crate::metrics::Metrics;

/// Most queued items written before one flush.
pub const WRITE_BATCH: usize = 64;

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
        // The hot path: shared body, borrowed headers, no allocation.
        Outbound::Event { sub, event } => encode_parts(
            out,
            Command::Message,
            version,
            &[
                ("destination", &event.destination),
                ("subscription", sub),
                ("message-id", &event.message_id),
                ("content-type", "application/json"),
            ],
            &event.body,
        ),
        Outbound::Frame(f) => f.encode(version, out),
        Outbound::Close => {}
    }
}

pub enum Written {
    /// The batch is on the wire.
    Ok,
    /// A `Close` item was reached (everything before it is on the wire).
    Close,
    /// The wire failed.
    Failed,
}

/// Writes `batch` (draining it), then flushes. `error` is set if an ERROR frame
/// went out (the close then says so).
pub async fn write_batch<W: WireWrite>(
    wire: &mut W,
    batch: &mut Vec<Outbound>,
    version: Version,
    buf: &mut BytesMut,
    metrics: &Metrics,
    error: &mut bool,
) -> Written {
    for item in batch.drain(..) {
        if matches!(item, Outbound::Close) {
            return match wire.flush().await {
                Ok(()) => Written::Close,
                Err(_) => Written::Failed,
            };
        }
        if let Outbound::Frame(f) = &item {
            *error |= f.command == Command::Error;
        }
        encode(&item, version, buf);
        if wire.frame(buf.split().freeze()).await.is_err() {
            return Written::Failed;
        }
        metrics.frames_out.inc();
    }
    match wire.flush().await {
        Ok(()) => Written::Ok,
        Err(_) => Written::Failed,
    }
}
