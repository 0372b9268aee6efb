//! The message pipeline: accepted message → sequenced + durably stored → published.
//!
//! [`Pipeline`] is the seam where a distributed log (Kafka) sits in multi-node mode:
//! `submit` means "accepted"; the ticket resolves once the message is stored. The
//! single-node [`LocalPipeline`] is a bounded queue drained by one sequencer task
//! that commits everything queued so far as one batch (group commit: many messages
//! per fsync, none acknowledged before its commit), then publishes each stored
//! message on the bus in `seq` order.
//!
//! A sequencer that panics is restarted on the same queue (after a back-off that
//! grows while it keeps panicking); every ticket of the batch it held resolves as
//! `outcome_unknown`. [`PipelineHealth`] says whether a sequencer runs: `/healthz`
//! answers 503 while it does not. After [`MAX_RESTARTS`] panics in a row (no
//! commit in between) the pipeline stays down: queued messages are answered
//! `outcome_unknown`, new ones `unavailable`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusEvent};
use crate::domain::push::notifier::Notifier;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{Appended, NewMessage};
use crate::store::Store;

/// Whether a pipeline can take messages now. Cheap to clone; every clone shares
/// one state. Adapters read it (`/healthz`); pipelines set it.
#[derive(Clone, Default)]
pub struct PipelineHealth(Arc<Mutex<Option<&'static str>>>);

impl PipelineHealth {
    /// `Ok` while the pipeline runs, else why not.
    pub fn status(&self) -> Result<(), &'static str> {
        match *self.0.lock() {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }

    pub fn set_down(&self, why: &'static str) {
        *self.0.lock() = Some(why);
    }

    pub fn set_up(&self) {
        *self.0.lock() = None;
    }
}

/// Panics in a row after which a local sequencer is not restarted any more.
pub const MAX_RESTARTS: u32 = 5;

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

    /// Whether the pipeline runs (always, for one without a health signal).
    fn health(&self) -> PipelineHealth {
        PipelineHealth::default()
    }

    /// Accepts a message; the ticket resolves once it is stored or rejected.
    async fn submit(&self, message: NewMessage) -> AppResult<Ticket> {
        let (tx, ticket) = oneshot::channel();
        self.submit_with(message, Reply::Ticket(tx)).await?;
        Ok(ticket)
    }
}

/// Waits for a ticket. A ticket dropped unanswered was accepted, so whether it
/// was stored is not known.
pub async fn settle(ticket: Ticket) -> AppResult<Appended> {
    ticket.await.unwrap_or(Err(OUTCOME_UNKNOWN))
}

const OUTCOME_UNKNOWN: AppError =
    AppError::OutcomeUnknown("the message may not have been stored; retry with the same client_id");

type Item = (NewMessage, Reply);

/// A reply that, if dropped unanswered (a panic unwinding the sequencer),
/// answers `outcome_unknown`.
struct Pending(Option<Reply>);

impl Pending {
    fn send(mut self, outcome: AppResult<Appended>) {
        if let Some(r) = self.0.take() {
            r.send(outcome);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.send(Err(OUTCOME_UNKNOWN));
        }
    }
}

pub struct LocalPipeline {
    tx: mpsc::Sender<Item>,
    health: PipelineHealth,
}

impl LocalPipeline {
    /// Starts the sequencer. On `stop` it stops accepting, commits everything
    /// already accepted, and the returned task ends.
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        max_batch: usize,
        stop: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1024) * 4);
        let health = PipelineHealth::default();
        let task = tokio::spawn(supervise(
            rx,
            Sequencer {
                store,
                bus,
                notifier,
                metrics,
                max_batch,
                stop,
            },
            health.clone(),
        ));
        (Arc::new(LocalPipeline { tx, health }), task)
    }
}

#[async_trait]
impl Pipeline for LocalPipeline {
    async fn submit_with(&self, message: NewMessage, reply: Reply) -> AppResult<()> {
        self.tx
            .send((message, reply))
            .await
            .map_err(|_| AppError::Unavailable("the message pipeline is not running"))
    }

    fn health(&self) -> PipelineHealth {
        self.health.clone()
    }
}

#[derive(Clone)]
struct Sequencer {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Offered every new message after its commit (push notifications).
    notifier: Notifier,
    metrics: Arc<Metrics>,
    max_batch: usize,
    stop: CancellationToken,
}

/// Runs the sequencer, restarting it on the same queue when it panics.
async fn supervise(rx: mpsc::Receiver<Item>, seq: Sequencer, health: PipelineHealth) {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut panics = 0u32;
    loop {
        let committed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let run = tokio::spawn(sequencer(rx.clone(), seq.clone(), committed.clone()));
        let Err(e) = run.await else { return };
        if committed.load(std::sync::atomic::Ordering::Relaxed) {
            panics = 0;
        }
        panics += 1;
        health.set_down("the message sequencer failed");
        tracing::error!(error = %e, panics, "message sequencer died");
        if panics >= MAX_RESTARTS {
            tracing::error!("message sequencer keeps failing; the pipeline stays down");
            let mut rx = rx.lock().await;
            rx.close();
            while let Some((_, reply)) = rx.recv().await {
                Pending(Some(reply)).send(Err(OUTCOME_UNKNOWN));
            }
            return;
        }
        let wait = Duration::from_millis(100 << panics.min(6));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = seq.stop.cancelled() => {}
        }
        health.set_up();
    }
}

async fn sequencer(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Item>>>,
    seq: Sequencer,
    committed: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut rx = rx.lock_owned().await;
    let Sequencer {
        store,
        bus,
        notifier,
        metrics,
        max_batch,
        stop,
    } = seq;
    let mut closing = stop.is_cancelled();
    if closing {
        rx.close();
    }
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
        let Some((m, r)) = first else { break };
        let mut batch = vec![(m, Pending(Some(r)))];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok((m, r)) => batch.push((m, Pending(Some(r)))),
                Err(_) => break,
            }
        }
        commit(batch, &*store, &*bus, &notifier, &metrics).await;
        committed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::debug!("sequencer drained and stopped");
}

async fn commit(
    batch: Vec<(NewMessage, Pending)>,
    store: &dyn Store,
    bus: &dyn Bus,
    notifier: &Notifier,
    metrics: &Metrics,
) {
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
                    let m = Arc::new(m.clone());
                    notifier.committed(&m);
                    bus.publish(BusEvent::Message(m));
                }
                reply.send(outcome);
            }
        }
        Err(e) => {
            // Whether a failed commit took effect is not known (a connection
            // lost during COMMIT): the client retries with the same client_id.
            tracing::error!(error = %e, batch = n, "commit failed; outcome unknown");
            for reply in replies {
                reply.send(Err(OUTCOME_UNKNOWN));
            }
        }
    }
}
