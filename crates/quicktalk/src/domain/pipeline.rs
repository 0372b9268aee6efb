//! The message pipeline: accepted message → sequenced + durably stored → published.
//!
//! [`Pipeline`] is the seam where a distributed log (Kafka) sits in multi-node mode:
//! `submit` means "accepted"; the ticket resolves once the message is stored. The
//! single-node [`LocalPipeline`] is a bounded queue drained by one sequencer task
//! that commits everything queued so far as one batch (group commit: many messages
//! per fsync, none acknowledged before its commit), then publishes each stored
//! message on the bus in `seq` order.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{Appended, NewMessage};
use crate::store::Store;

/// Resolves when the message is stored (or rejected).
pub type Ticket = oneshot::Receiver<AppResult<Appended>>;

/// Called once the message is stored (or rejected), on the pipeline's task: must
/// not block. Cheaper than a [`Ticket`] for the hot path (no task to await it).
pub type Done = Box<dyn FnOnce(AppResult<Appended>) + Send>;

/// How the submitter hears the outcome.
pub enum Reply {
    Ticket(oneshot::Sender<AppResult<Appended>>),
    Callback(Done),
}

impl Reply {
    pub fn send(self, outcome: AppResult<Appended>) {
        match self {
            Reply::Ticket(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Callback(done) => done(outcome),
        }
    }
}

#[async_trait]
pub trait Pipeline: Send + Sync + 'static {
    /// Accepts a message; `reply` hears the outcome once it is stored or rejected.
    /// Messages submitted by one caller keep their order.
    async fn submit_with(&self, message: NewMessage, reply: Reply) -> AppResult<()>;

    /// Accepts a message; the ticket resolves once it is stored or rejected.
    async fn submit(&self, message: NewMessage) -> AppResult<Ticket> {
        let (tx, ticket) = oneshot::channel();
        self.submit_with(message, Reply::Ticket(tx)).await?;
        Ok(ticket)
    }
}

/// Waits for a ticket.
pub async fn settle(ticket: Ticket) -> AppResult<Appended> {
    ticket
        .await
        .unwrap_or(Err(AppError::Unavailable("server is shutting down")))
}

type Item = (NewMessage, Reply);

pub struct LocalPipeline {
    tx: mpsc::Sender<Item>,
}

impl LocalPipeline {
    /// Starts the sequencer. On `stop` it stops accepting, commits everything
    /// already accepted, and the returned task ends.
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        max_batch: usize,
        stop: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1024) * 4);
        let task = tokio::spawn(sequencer(rx, store, bus, metrics, max_batch, stop));
        (Arc::new(LocalPipeline { tx }), task)
    }
}

#[async_trait]
impl Pipeline for LocalPipeline {
    async fn submit_with(&self, message: NewMessage, reply: Reply) -> AppResult<()> {
        self.tx
            .send((message, reply))
            .await
            .map_err(|_| AppError::Unavailable("server is shutting down"))
    }
}

async fn sequencer(
    mut rx: mpsc::Receiver<Item>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    stop: CancellationToken,
) {
    let mut closing = false;
    loop {
        let first = if closing {
            rx.recv().await
        } else {
            tokio::select! {
                item = rx.recv() => item,
                _ = stop.cancelled() => {
                    rx.close();
                    closing = true;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        commit(batch, &*store, &*bus, &metrics).await;
    }
    tracing::debug!("sequencer drained and stopped");
}

async fn commit(batch: Vec<Item>, store: &dyn Store, bus: &dyn Bus, metrics: &Metrics) {
    let (messages, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let n = messages.len();
    let started = Instant::now();
    let result = store.append(messages).await;
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.commit_batch.observe(n as f64);
    match result {
        Ok(outcomes) => {
            for (outcome, reply) in outcomes.into_iter().zip(replies) {
                let outcome = outcome.map_err(AppError::from);
                if let Ok(Appended::New(m)) = &outcome {
                    metrics.messages_stored.inc();
                    bus.publish(BusEvent::Message(Arc::new(m.clone())));
                }
                reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batch = n, "commit failed; batch rejected");
            for reply in replies {
                reply.send(Err(AppError::Unavailable(
                    "message could not be stored; retry",
                )));
            }
        }
    }
}
