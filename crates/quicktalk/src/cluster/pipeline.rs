//! The multi-node pipeline: `submit` produces to the messages topic (partitioned
//! by room) and parks the reply; the sequencer reads, by hand-assigned
//! partitions (no consumer group), the partitions whose lease this node holds
//! (`ownership`), applies their records to PostgreSQL in batches under that
//! lease, and publishes the stored messages and the replies on the events topic.
//!
//! The sequencer never retries a deterministic failure for ever: a record that
//! cannot be decoded, or that the store refuses on its own (a data error), is
//! rejected (its sender hears why) and its offset consumed; only transient
//! errors (database unreachable) are retried, with back-off. Before reading a
//! partition it compares the broker's log with the stored position: a log that
//! ends below the applied offset was recreated or rewound, and is applied as a
//! new log incarnation instead of being mistaken for records applied before.
//!
//! Health ([`Pipeline::health`], which `/healthz` reports): if the sequencer or
//! the ownership loop dies, the node hands its partitions back and is down for
//! good; while the broker does not answer a metadata request (every
//! [`PROBE_EVERY`]) it is down, and holds no partitions, until it does.
//!
//! A SEND whose fate is unknown is answered `outcome_unknown`: no reply within
//! the reply timeout (`--kafka-reply-timeout-ms`), or a delivery error after the
//! record went to the broker (it may be in the log and get applied). Only a
//! record refused before it left this node is `unavailable`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::FutureExt as _;
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::bus::KafkaBus;
use super::ownership::{self, Owned};
use super::trace::{self, Hop};
use super::wire::{Event, Outcome, ReplyTo, Request, Stored};
use super::{partition_of, ClusterConfig};
use crate::domain::pipeline::{Pipeline, PipelineHealth, Reply};
use crate::domain::push::notifier::Notifier;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{Appended, NewMessage};
use crate::store::postgres::{Lease, LogRecord, Logged, PostgresStore};
use crate::store::StoreError;

/// How often the broker is asked for the messages topic's metadata (health).
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long that request may take before the broker counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

const SEQUENCER_FAILED: &str = "the message sequencer failed";
const OWNERSHIP_FAILED: &str = "partition ownership stopped";
const KAFKA_UNREACHABLE: &str = "the message log (Kafka) is unreachable";

/// Called by the sequencer with every decodable record before its batch is
/// stored: fault injection for tests (e.g. a hook that panics).
pub type RecordHook = Arc<dyn Fn(&NewMessage) + Send + Sync>;

/// This node's pipeline health. A failure (the sequencer or ownership ended) is
/// for good; the broker being unreachable lasts until it answers again (and
/// meanwhile ownership holds no partitions: `reachable`).
#[derive(Clone)]
struct Health {
    shared: PipelineHealth,
    failed: Arc<Mutex<Option<&'static str>>>,
    reachable: Arc<watch::Sender<bool>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            shared: PipelineHealth::default(),
            failed: Arc::default(),
            reachable: Arc::new(watch::channel(true).0),
        }
    }
}

impl Health {
    fn fail(&self, why: &'static str) {
        let mut failed = self.failed.lock();
        failed.get_or_insert(why);
        self.shared.set_down(failed.unwrap_or(why));
    }

    fn broker_reachable(&self, reachable: bool) {
        self.reachable
            .send_if_modified(|r| std::mem::replace(r, reachable) != reachable);
        let failed = self.failed.lock();
        match (*failed, reachable) {
            (Some(_), _) => {}
            (None, true) => self.shared.set_up(),
            (None, false) => self.shared.set_down(KAFKA_UNREACHABLE),
        }
    }
}

pub struct KafkaPipeline {
    node: Arc<str>,
    topic: String,
    partitions: i32,
    producer: FutureProducer,
    next_req: AtomicU64,
    pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>>,
    health: Health,
    metrics: Arc<Metrics>,
}

impl KafkaPipeline {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        cfg: &ClusterConfig,
        node: Arc<str>,
        producer: FutureProducer,
        partitions: i32,
        store: Arc<PostgresStore>,
        bus: Arc<KafkaBus>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> anyhow::Result<(Arc<Self>, tokio::task::JoinHandle<()>)> {
        let pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>> = Arc::default();
        let p = pending.clone();
        let m = metrics.clone();
        bus.on_reply(Box::new(move |req, outcome| {
            if let Some((reply, at)) = p.lock().remove(&req) {
                trace::observe_span(&m, Hop::Receipt, at.elapsed());
                reply.send(into_result(outcome));
            }
        }));
        let topic = cfg.messages_topic();
        // Partitions are assigned by hand (see `ownership`), each from the offset
        // the store says comes next: no consumer group, no offsets in Kafka.
        let consumer: StreamConsumer = cfg
            .client()
            .set("group.id", format!("{}.sequencer", cfg.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", cfg.fetch_wait_ms.to_string())
            // A position the broker does not have is an error to look into
            // (a recreated topic), never a silent jump.
            .set("auto.offset.reset", "error")
            .create()
            .context("creating the sequencer consumer")?;
        let meta: Arc<BaseConsumer> = Arc::new(
            cfg.client()
                .create()
                .context("creating the sequencer's metadata client")?,
        );
        // Reads one record to confirm a log that seems to end below its applied
        // offset (`Sequencer::really_reset`); assigned only while it does.
        let check: Arc<BaseConsumer> = Arc::new(
            cfg.client()
                .set("group.id", format!("{}.sequencer.check", cfg.topic_prefix))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "error")
                .set("fetch.wait.max.ms", "10")
                .create()
                .context("creating the sequencer's log check consumer")?,
        );
        let (owned_tx, owned_rx) = watch::channel(Owned::new());
        let (active_tx, active_rx) = watch::channel(BTreeSet::new());
        let opts = (*store.pool().connect_options()).clone();
        let health = Health::default();
        // Ownership stops with the node, or when the sequencer died.
        let own_stop = stop.child_token();
        {
            let (topic, node, health, own_stop, stop) = (
                topic.clone(),
                node.clone(),
                health.clone(),
                own_stop.clone(),
                stop.clone(),
            );
            let reachable = health.reachable.subscribe();
            tokio::spawn(async move {
                let r = ownership::run(
                    opts, topic, node, partitions, owned_tx, active_rx, reachable, own_stop,
                )
                .await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "partition ownership stopped");
                }
                if !stop.is_cancelled() {
                    health.fail(OWNERSHIP_FAILED);
                }
            });
        }
        tokio::spawn(probe(
            meta.clone(),
            topic.clone(),
            health.clone(),
            stop.clone(),
        ));
        let pipeline = Arc::new(KafkaPipeline {
            node: node.clone(),
            topic: topic.clone(),
            partitions,
            producer,
            next_req: AtomicU64::new(1),
            pending: pending.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
        });
        tokio::spawn(sweep(pending.clone(), cfg.reply_timeout, stop.clone()));
        let seq = Sequencer {
            consumer,
            log: LogCheck {
                store: store.clone(),
                meta,
                check,
                topic: topic.clone(),
            },
            topic,
            node,
            store,
            bus,
            metrics: metrics.clone(),
            max_batch: cfg.max_batch,
            active: active_tx,
            epochs: HashMap::new(),
            fenced: HashMap::new(),
            hook: cfg.record_hook.clone(),
            notifier: cfg.notifier.clone(),
        };
        let task = tokio::spawn(seq.run(stop.clone(), owned_rx, pending));
        Ok((pipeline, supervise(task, stop, own_stop, health, metrics)))
    }
}

/// Answers `outcome_unknown` to every request waiting longer than `timeout`
/// (its record may still be applied: the sequencer died after storing it and
/// the new owner's reply went nowhere, or Kafka is slow or down).
async fn sweep(
    pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>>,
    timeout: Duration,
    stop: CancellationToken,
) {
    let every = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        let expired: Vec<Reply> = {
            let mut map = pending.lock();
            let old: Vec<u64> = map
                .iter()
                .filter(|(_, (_, at))| now.duration_since(*at) > timeout)
                .map(|(k, _)| *k)
                .collect();
            old.into_iter()
                .filter_map(|k| map.remove(&k))
                .map(|(r, _)| r)
                .collect()
        };
        for r in expired {
            r.send(Err(NOT_CONFIRMED));
        }
    }
}

const NOT_CONFIRMED: AppError = AppError::OutcomeUnknown(
    "the message was not confirmed in time; retry with the same client_id",
);

/// Asks the broker for the messages topic's metadata every [`PROBE_EVERY`]:
/// the node is down while it gets no answer.
async fn probe(meta: Arc<BaseConsumer>, topic: String, health: Health, stop: CancellationToken) {
    loop {
        let (m, t) = (meta.clone(), topic.clone());
        let answered = tokio::task::spawn_blocking(move || {
            m.fetch_metadata(Some(&t), PROBE_TIMEOUT).map(|md| {
                md.topics()
                    .iter()
                    .any(|x| x.name() == t && x.error().is_none())
            })
        })
        .await;
        let reachable = match answered {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the Kafka broker did not answer a metadata request");
                false
            }
            Err(_) => false,
        };
        health.broker_reachable(reachable);
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn into_result(o: Outcome) -> AppResult<Appended> {
    o.into_result()
}

/// What a SEND whose record the producer could not deliver gets. Only an error
/// that means the record never entered the log (purged from the local queue
/// before it was sent, an unknown topic or partition, or refused by the broker
/// as too large) is `unavailable`; after a time-out or a lost connection the
/// record may be in the log, and then it will be applied: `outcome_unknown`.
fn delivery_failed(e: &KafkaError) -> AppError {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::PurgeQueue
            | RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition,
        ) => AppError::Unavailable("the message log refused the message; retry"),
        _ => AppError::OutcomeUnknown(
            "the message log did not confirm the message; retry with the same client_id",
        ),
    }
}

/// Watches the sequencer: if it ends before `stop` (a panic), the node hands
/// its partitions back (ownership stops, so other nodes take them) and reports
/// unhealthy. The returned task ends when the sequencer has.
fn supervise(
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
    own_stop: CancellationToken,
    health: Health,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let r = task.await;
        if stop.is_cancelled() && r.is_ok() {
            return;
        }
        match r {
            Err(e) => {
                tracing::error!(error = %e, "the sequencer died; handing this node's partitions back")
            }
            Ok(()) => tracing::error!("the sequencer stopped; handing this node's partitions back"),
        }
        health.fail(SEQUENCER_FAILED);
        metrics.partitions_owned.set(0);
        own_stop.cancel();
    })
}

#[async_trait]
impl Pipeline for KafkaPipeline {
    async fn submit_with(&self, message: NewMessage, reply: Reply) -> AppResult<()> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let room = message.room_id;
        let accepted = Instant::now();
        let payload = serde_json::to_vec(&Request {
            node: self.node.to_string(),
            req,
            msg: message,
            at: Some(trace::now_us()),
        })
        .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding a request: {e}")))?;
        self.pending.lock().insert(req, (reply, accepted));
        let key = room.to_be_bytes();
        let record = FutureRecord::to(&self.topic)
            .partition(partition_of(room, self.partitions))
            .key(&key)
            .payload(&payload);
        // Enqueued without waiting for the broker, so a connection can have many
        // SENDs in flight (the producer keeps their order per partition); the
        // reply comes when the message is stored, or an error if Kafka refuses it.
        match self.producer.send_result(record) {
            Ok(delivery) => {
                let pending = self.pending.clone();
                let metrics = self.metrics.clone();
                tokio::spawn(async move {
                    let failed = match delivery.await {
                        Ok(Ok(_)) => {
                            trace::observe_span(&metrics, Hop::Produce, accepted.elapsed());
                            return;
                        }
                        Ok(Err((e, _))) => delivery_failed(&e),
                        // The producer went away with the record: it may have been sent.
                        Err(_) => AppError::OutcomeUnknown(
                            "the message log did not confirm the message; retry with the same client_id",
                        ),
                    };
                    tracing::warn!(error = %failed, "producing a message to Kafka");
                    if let Some((reply, _)) = pending.lock().remove(&req) {
                        reply.send(Err(failed));
                    }
                });
                Ok(())
            }
            Err((e, _)) => {
                // Refused before it left this node (e.g. the local queue is full).
                self.pending.lock().remove(&req);
                tracing::warn!(error = %e, "producing a message to Kafka");
                Err(AppError::Unavailable(
                    "the message log is unavailable; retry",
                ))
            }
        }
    }

    fn health(&self) -> PipelineHealth {
        self.health.shared.clone()
    }
}

struct Sequencer {
    consumer: StreamConsumer,
    /// For the partitions' watermarks (blocking calls, made off the runtime).
    /// Reads the broker's view of the log (watermarks, a suspected reset).
    log: LogCheck,
    topic: String,
    /// This node's id: the lease owner it writes under.
    node: Arc<str>,
    store: Arc<PostgresStore>,
    bus: Arc<KafkaBus>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    /// The partitions being read now (ownership waits on it before handing back).
    active: watch::Sender<BTreeSet<i32>>,
    /// The lease epoch of each partition being read.
    epochs: HashMap<i32, i64>,
    /// Partitions the store fenced at this epoch: not read again until ownership
    /// says otherwise.
    fenced: HashMap<i32, i64>,
    hook: Option<RecordHook>,
    notifier: Notifier,
}

/// Who sent a request (decodable even when the message in it is not).
#[derive(serde::Deserialize)]
struct Origin {
    node: String,
    req: u64,
}

/// One polled record, owned.
struct Polled {
    partition: i32,
    offset: i64,
    request: Result<Request, Option<Origin>>,
    /// When the sequencer received it (µs).
    consumed: i64,
}

/// What became of one record.
enum Fate {
    Logged(Logged),
    /// Refused on its own (the reason goes to its sender); its offset is consumed.
    Rejected(String),
}

/// How often the broker's logs are compared with the stored positions while
/// reading (a topic recreated under a running sequencer).
const RECHECK: Duration = Duration::from_secs(5);

/// What the sequencer asks the broker about its log, off its loop.
#[derive(Clone)]
struct LogCheck {
    store: Arc<PostgresStore>,
    /// For the partitions' watermarks (blocking calls, made off the runtime).
    meta: Arc<BaseConsumer>,
    /// Reads one record to confirm a suspected reset; assigned only meanwhile.
    check: Arc<BaseConsumer>,
    topic: String,
}

impl LogCheck {
    /// The partition's low and high watermarks on the broker.
    async fn watermarks(&self, p: i32) -> anyhow::Result<(i64, i64)> {
        let meta = self.meta.clone();
        let topic = self.topic.clone();
        let w = tokio::task::spawn_blocking(move || {
            meta.fetch_watermarks(&topic, p, Duration::from_secs(5))
        })
        .await?
        .with_context(|| format!("fetching the watermarks of partition {p}"))?;
        Ok(w)
    }

    /// Whether partition `p`'s log really ends below `applied`, as the
    /// broker's answer for its latest offset said. That answer alone is not
    /// trusted: tansu 0.6 answers with the first offset of the batch with the
    /// newest timestamp, which under load can be thousands of records behind
    /// the end, and resetting on it would apply them all again. So the log is
    /// read: from `applied - 1`, then (a broker that serves only whole batches
    /// from their first offset) from up to [`CHECK_BACK`] records before it. A
    /// record at or past `applied - 1` says no; an offset-out-of-range answer,
    /// or records that stop below it, say yes; nothing at all: not now (looked
    /// at again on the next check).
    async fn really_reset(&self, p: i32, applied: i64, low: i64) -> bool {
        if applied <= 0 {
            return false;
        }
        let (c, topic) = (self.check.clone(), self.topic.clone());
        let verdict = tokio::task::spawn_blocking(move || {
            let first = read_past(&c, &topic, p, applied - 1, applied);
            let v = match first {
                Some(v) => Some(v),
                None => read_past(&c, &topic, p, (applied - 1 - CHECK_BACK).max(low), applied),
            };
            let _ = c.unassign();
            v
        })
        .await
        .ok()
        .flatten();
        if verdict != Some(true) {
            tracing::warn!(
                partition = p,
                applied,
                confirmed = ?verdict,
                "the broker said the log ends below the applied offset, but reading it does not \
                 confirm it; not resetting"
            );
        }
        verdict == Some(true)
    }

    /// Whether one of `partitions` (being read now) ends below its applied
    /// offset on the broker (recreated under us): then they are re-assigned,
    /// which starts a new incarnation. Runs beside the sequencer's loop.
    async fn was_reset(self, partitions: Vec<i32>) -> bool {
        let Ok(positions) = self.store.log_positions(&self.topic).await else {
            return false;
        };
        for p in partitions {
            if let (Some(pos), Ok((low, high))) = (positions.get(&p), self.watermarks(p).await) {
                if high < pos.next_offset && self.really_reset(p, pos.next_offset, low).await {
                    return true;
                }
            }
        }
        false
    }
}

impl Sequencer {
    /// Reads exactly the partitions in `owned` (re-assigned between batches),
    /// each from the position the store says comes next, after checking that
    /// the broker's log still reaches it.
    async fn assign(&mut self, owned: &Owned) -> anyhow::Result<()> {
        self.fenced.retain(|p, e| owned.get(p) == Some(e));
        let want: Owned = owned
            .iter()
            .filter(|(p, _)| !self.fenced.contains_key(p))
            .map(|(p, e)| (*p, *e))
            .collect();
        let positions = self.store.log_positions(&self.topic).await?;
        let mut tpl = TopicPartitionList::new();
        let mut epochs = HashMap::new();
        for (&p, &epoch) in &want {
            let Some(pos) = positions.get(&p) else {
                tracing::warn!(partition = p, "no stored position for an owned partition");
                continue;
            };
            let (low, high) = self.log.watermarks(p).await?;
            let start =
                if high < pos.next_offset && self.log.really_reset(p, pos.next_offset, low).await {
                    tracing::error!(
                        partition = p,
                        low,
                        high,
                        applied = pos.next_offset,
                        "the broker's log ends below the applied offset: the topic was recreated \
                     or rewound; applying it as a new log incarnation"
                    );
                    match self
                        .store
                        .reset_log(&self.topic, &self.node, epoch, p, low)
                        .await?
                    {
                        Some(new) => new.next_offset,
                        None => {
                            self.fenced.insert(p, epoch);
                            continue;
                        }
                    }
                } else if pos.next_offset < low {
                    tracing::warn!(
                        partition = p,
                        low,
                        applied = pos.next_offset,
                        "records were deleted from the log before they were applied"
                    );
                    low
                } else {
                    pos.next_offset
                };
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(start))?;
            epochs.insert(p, epoch);
        }
        self.consumer.assign(&tpl)?;
        self.metrics.partitions_owned.set(epochs.len() as i64);
        self.active.send_replace(epochs.keys().copied().collect());
        self.epochs = epochs;
        Ok(())
    }

    async fn run(
        mut self,
        stop: CancellationToken,
        mut owned: watch::Receiver<Owned>,
        pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>>,
    ) {
        let mut reassign = false;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The log check under way, if any (it may take seconds: never in the loop).
        let mut checking: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            if reassign {
                reassign = false;
                let want = owned.borrow_and_update().clone();
                if let Err(e) = self.assign(&want).await {
                    tracing::error!(error = %e, "assigning log partitions");
                    // Read nothing rather than the wrong thing; retried shortly.
                    let _ = self.consumer.unassign();
                    self.epochs.clear();
                    self.active.send_replace(BTreeSet::new());
                    reassign = true;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => break,
                    }
                    continue;
                }
            }
            let first = tokio::select! {
                m = self.consumer.recv(), if !self.epochs.is_empty() => m,
                changed = owned.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    reassign = true;
                    continue;
                }
                _ = recheck.tick(), if !self.epochs.is_empty() && checking.is_none() => {
                    let partitions = self.epochs.keys().copied().collect();
                    checking = Some(tokio::spawn(self.log.clone().was_reset(partitions)));
                    continue;
                }
                reset = async { checking.as_mut().expect("guarded").await }, if checking.is_some() => {
                    checking = None;
                    reassign |= reset.unwrap_or(false);
                    continue;
                }
                _ = stop.cancelled() => break,
            };
            let mut batch = Vec::new();
            match first {
                Ok(m) => batch.push(own(&m)),
                Err(e) => {
                    // E.g. a position the broker no longer has: look again.
                    tracing::warn!(error = %e, "sequencer consumer");
                    reassign = true;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            // Whatever else is already fetched joins the batch (one transaction).
            while batch.len() < self.max_batch {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(own(&m)),
                    _ => break,
                }
            }
            reassign |= self.apply(batch).await;
        }
        let _ = self.consumer.unassign();
        self.active.send_replace(BTreeSet::new());
        // Let replies for this node's last requests arrive (receipts), briefly.
        let until = Instant::now() + Duration::from_secs(3);
        while !pending.lock().is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::debug!("sequencer stopped");
    }

    /// Applies a batch and answers for it. Returns whether the partitions must be
    /// re-assigned (a lease was lost, or a record came below the applied offset).
    async fn apply(&mut self, batch: Vec<Polled>) -> bool {
        let mut records = Vec::new();
        let mut origin = Vec::new();
        let mut refused = Vec::new();
        let mut stamps = Vec::new();
        let begin = trace::now_us();
        for p in batch {
            let accepted = p.request.as_ref().ok().and_then(|r| r.at).unwrap_or(0);
            trace::observe(&self.metrics, Hop::ToSequencer, accepted, p.consumed);
            trace::observe(&self.metrics, Hop::BatchWait, p.consumed, begin);
            stamps.push(accepted);
            let (who, message) = match p.request {
                Ok(r) => {
                    if let Some(hook) = &self.hook {
                        hook(&r.msg);
                    }
                    (Some((r.node, r.req)), Some(r.msg))
                }
                Err(who) => {
                    tracing::error!(
                        partition = p.partition,
                        offset = p.offset,
                        "rejecting an undecodable log record"
                    );
                    (who.map(|o| (o.node, o.req)), None)
                }
            };
            refused.push(message.is_none());
            origin.push(who);
            records.push(LogRecord {
                partition: p.partition,
                offset: p.offset,
                message,
            });
        }
        let n = records.len();
        let started = Instant::now();
        let fates = self.store_records(records).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.commit_batch.observe(n as f64);
        let committed = trace::now_us();
        let mut reassign = false;
        let mut stored = Vec::new();
        let mut replies = Vec::new();
        for (((who, fate), refused), accepted) in
            origin.into_iter().zip(fates).zip(refused).zip(stamps)
        {
            let outcome = match fate {
                (_, Fate::Logged(Logged::Applied(r))) => Outcome::from(r),
                (_, Fate::Logged(Logged::Skipped)) if refused => {
                    Outcome::Rejected("the message could not be read".into())
                }
                (_, Fate::Logged(Logged::Skipped)) => {
                    Outcome::Rejected("the message could not be stored".into())
                }
                (_, Fate::Rejected(reason)) => Outcome::Rejected(reason),
                (_, Fate::Logged(Logged::Replayed)) => {
                    // Never an acknowledgement: what that offset stored is unknown.
                    reassign = true;
                    Outcome::Failed("log position already applied".into())
                }
                (p, Fate::Logged(Logged::Fenced)) => {
                    // The lease moved: the new owner applies and answers it.
                    if let Some(e) = self.epochs.get(&p) {
                        self.fenced.insert(p, *e);
                    }
                    reassign = true;
                    continue;
                }
            };
            let Outcome::New(m) = outcome else {
                if let Some((node, req)) = who {
                    replies.push((node, req, outcome));
                }
                continue;
            };
            self.metrics.messages_stored.inc();
            trace::observe(&self.metrics, Hop::Commit, begin, committed);
            if Notifier::wants_kind(m.kind) {
                self.notifier
                    .committed(&Arc::new(crate::model::Message::from(m.clone())));
            }
            // A request without a stamp comes from a node of an older version,
            // which expects its answer in a `Reply` record.
            let reply = match who {
                Some((node, req)) if accepted > 0 => Some(ReplyTo { node, req }),
                Some((node, req)) => {
                    replies.push((node, req, Outcome::New(m.clone())));
                    None
                }
                None => None,
            };
            stored.push(Stored {
                m,
                reply,
                at: accepted,
            });
        }
        for (n, acked) in self.bus.send_stored(stored, committed) {
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                if let Ok(Ok(_)) = acked.await {
                    let now = trace::now_us();
                    for _ in 0..n {
                        trace::observe(&metrics, Hop::EventProduce, committed, now);
                    }
                }
            });
        }
        for (node, req, outcome) in replies {
            self.bus
                .send(req as i64, &Event::Reply { node, req, outcome });
        }
        reassign
    }

    /// Stores records under this node's leases. Transient failures are retried
    /// with back-off (accepted messages are never dropped for them); a batch that
    /// fails deterministically is applied record by record, and a record that
    /// fails on its own is rejected (its offset consumed, nothing stored).
    async fn store_records(&self, records: Vec<LogRecord>) -> Vec<(i32, Fate)> {
        let lease = Lease {
            owner: &self.node,
            epochs: &self.epochs,
        };
        let mut delay = Duration::from_millis(50);
        loop {
            match self
                .store
                .append_logged(&self.topic, lease, records.clone())
                .await
            {
                Ok(o) => {
                    return records
                        .iter()
                        .map(|r| r.partition)
                        .zip(o.into_iter().map(Fate::Logged))
                        .collect()
                }
                Err(e) if deterministic(&e) && records.len() > 1 => {
                    tracing::warn!(error = ?e, batch = records.len(), "a batch failed; applying its records one by one");
                    let mut out = Vec::with_capacity(records.len());
                    for r in records {
                        out.extend(Box::pin(self.store_records(vec![r])).await);
                    }
                    return out;
                }
                Err(e) if deterministic(&e) && records[0].message.is_some() => {
                    tracing::error!(
                        error = ?e,
                        partition = records[0].partition,
                        offset = records[0].offset,
                        "the store refused a log record; rejecting it"
                    );
                    let mut skip = records[0].clone();
                    skip.message = None;
                    let fates = Box::pin(self.store_records(vec![skip])).await;
                    return fates
                        .into_iter()
                        .map(|(p, f)| match f {
                            Fate::Logged(Logged::Skipped) => {
                                (p, Fate::Rejected("the message could not be stored".into()))
                            }
                            other => (p, other),
                        })
                        .collect();
                }
                Err(e) => {
                    tracing::error!(error = ?e, batch = records.len(), "storing a batch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// How far before the applied offset [`Sequencer::really_reset`] reads when
/// nothing comes from the offset itself.
const CHECK_BACK: i64 = 4096;

/// Reads `topic`/`p` from `from` with `c` (blocking: until records stop for a
/// second, 5 s at most): `Some(false)` when a record at or past `applied - 1`
/// exists, `Some(true)` when the broker says the offset is out of range or the
/// records end below `applied - 1`, `None` when nothing came (or no end was
/// reached).
fn read_past(c: &BaseConsumer, topic: &str, p: i32, from: i64, applied: i64) -> Option<bool> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(from))
        .ok()?;
    c.assign(&tpl).ok()?;
    let mut seen = false;
    let mut quiet_since = Instant::now();
    let give_up = Instant::now() + Duration::from_secs(5);
    while quiet_since.elapsed() < Duration::from_secs(1) {
        if Instant::now() > give_up {
            return None;
        }
        match c.poll(Duration::from_millis(50)) {
            Some(Ok(m)) if m.offset() >= applied - 1 => return Some(false),
            Some(Ok(_)) => {
                seen = true;
                quiet_since = Instant::now();
            }
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset,
            ))) => return Some(true),
            _ => {}
        }
    }
    seen.then_some(true)
}

/// Whether a store error would happen again for the same records: PostgreSQL
/// data exceptions, integrity violations and program limits (classes 22, 23,
/// 54). Everything else (connection, timeout, deadlock, shutdown) is transient.
fn deterministic(e: &StoreError) -> bool {
    let StoreError::Backend(e) = e else {
        return false;
    };
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => d
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("54")),
        Some(sqlx::Error::Encode(_)) => true,
        _ => false,
    }
}

fn own(m: &rdkafka::message::BorrowedMessage<'_>) -> Polled {
    let payload = m.payload().unwrap_or_default();
    let request = serde_json::from_slice::<Request>(payload).map_err(|e| {
        tracing::warn!(error = %e, "undecodable request");
        serde_json::from_slice::<Origin>(payload).ok()
    });
    Polled {
        partition: m.partition(),
        offset: m.offset(),
        request,
        consumed: trace::now_us(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_sequencer_hands_the_partitions_back_and_reports_unhealthy() {
        let stop = CancellationToken::new();
        let own_stop = stop.child_token();
        let health = Health::default();
        let task = tokio::spawn(async { panic!("sequencer bug") });
        let metrics = Arc::new(Metrics::new());
        metrics.partitions_owned.set(2);
        supervise(
            task,
            stop.clone(),
            own_stop.clone(),
            health.clone(),
            metrics.clone(),
        )
        .await
        .unwrap();
        assert_eq!(metrics.partitions_owned.get(), 0);
        assert!(own_stop.is_cancelled(), "ownership keeps the partitions");
        assert_eq!(health.shared.status(), Err(SEQUENCER_FAILED));
        assert!(!stop.is_cancelled());
        // The broker answering again does not make a dead sequencer healthy.
        health.broker_reachable(true);
        assert_eq!(health.shared.status(), Err(SEQUENCER_FAILED));
    }

    #[tokio::test]
    async fn a_stopped_sequencer_is_not_a_failure() {
        let stop = CancellationToken::new();
        let own_stop = stop.child_token();
        let health = Health::default();
        stop.cancel();
        let task = tokio::spawn(async {});
        supervise(
            task,
            stop,
            own_stop,
            health.clone(),
            Arc::new(Metrics::new()),
        )
        .await
        .unwrap();
        assert_eq!(health.shared.status(), Ok(()));
    }

    #[test]
    fn an_unreachable_broker_is_down_until_it_answers() {
        let health = Health::default();
        let reachable = health.reachable.subscribe();
        health.broker_reachable(false);
        assert_eq!(health.shared.status(), Err(KAFKA_UNREACHABLE));
        assert!(!*reachable.borrow(), "ownership keeps the partitions");
        health.broker_reachable(true);
        assert_eq!(health.shared.status(), Ok(()));
        assert!(*reachable.borrow());
    }

    /// Contract v2: a record that may be in the log is `outcome_unknown`; only one
    /// that certainly is not stays `unavailable`.
    #[test]
    fn delivery_errors_say_whether_the_record_may_be_in_the_log() {
        use rdkafka::error::KafkaError::MessageProduction;
        for maybe in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::PurgeInflight,
        ] {
            let e = delivery_failed(&MessageProduction(maybe));
            assert_eq!(e.code(), "outcome_unknown", "{maybe:?}");
        }
        for never in [
            RDKafkaErrorCode::PurgeQueue,
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::UnknownPartition,
        ] {
            let e = delivery_failed(&MessageProduction(never));
            assert_eq!(e.code(), "unavailable", "{never:?}");
        }
    }
}
