//! The pipelines' side of push notifications: after a commit, each new
//! message is offered to the push planner through a bounded queue. Offering
//! never waits — a full queue drops the message's pushes (counted) and the
//! message path goes on — so push work costs the hot path one `try_send`.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::model::{Message, MessageKind};

/// Cheap to clone; one per pipeline.
#[derive(Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Arc<Message>>>,
    metrics: Arc<Metrics>,
}

/// What the planner reads.
pub type Committed = mpsc::Receiver<Arc<Message>>;

impl Notifier {
    /// A notifier and the planner's end of its queue of `capacity` messages.
    pub fn channel(capacity: usize, metrics: Arc<Metrics>) -> (Notifier, Committed) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Notifier {
                tx: Some(tx),
                metrics,
            },
            rx,
        )
    }

    /// Hears nothing (tools and tests that run a pipeline without pushes).
    pub fn off(metrics: Arc<Metrics>) -> Notifier {
        Notifier { tx: None, metrics }
    }

    /// Whether `m` (just committed) may concern the planner: messages people
    /// wrote, and joins and leaves (who is in the room changed).
    pub fn wants_kind(kind: MessageKind) -> bool {
        matches!(
            kind,
            MessageKind::Text | MessageKind::Join | MessageKind::Leave
        )
    }

    /// Offers a committed message; never waits.
    pub fn committed(&self, m: &Arc<Message>) {
        let Some(tx) = &self.tx else { return };
        if !Self::wants_kind(m.kind) {
            return;
        }
        match tx.try_send(m.clone()) {
            Ok(()) => self.metrics.push_queue_depth.inc(),
            Err(_) => self
                .metrics
                .push_failed
                .with_label_values(&["dropped"])
                .inc(),
        }
    }
}
