//! The multi-node pipeline: `submit` produces to the messages topic (partitioned
//! by room) and parks the reply; the sequencer, a consumer-group member, applies
//! the records of the partitions it owns to PostgreSQL in batches and publishes
//! the stored messages and the replies on the events topic.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::FutureExt as _;
use parking_lot::Mutex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::bus::KafkaBus;
use super::ownership;
use super::wire::{Event, Outcome, Request};
use super::{partition_of, ClusterConfig};
use crate::domain::pipeline::{Pipeline, Reply};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{AppendRejected, Appended, NewMessage};
use crate::store::postgres::{LogRecord, Logged, PostgresStore};

/// A request not answered in this long gets an error (its sequencer died and the
/// new owner's reply went to a node that no longer waits, or Kafka is down).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct KafkaPipeline {
    node: Arc<str>,
    topic: String,
    partitions: i32,
    producer: FutureProducer,
    next_req: AtomicU64,
    pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>>,
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
        bus.on_reply(Box::new(move |req, outcome| {
            if let Some((reply, _)) = p.lock().remove(&req) {
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
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("creating the sequencer consumer")?;
        let (owned_tx, owned_rx) = watch::channel(BTreeSet::new());
        let (active_tx, active_rx) = watch::channel(BTreeSet::new());
        let opts = (*store.pool().connect_options()).clone();
        let prefix = cfg.topic_prefix.clone();
        let own_stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) =
                ownership::run(opts, prefix, partitions, owned_tx, active_rx, own_stop).await
            {
                tracing::error!(error = %e, "partition ownership stopped");
            }
        });
        let pipeline = Arc::new(KafkaPipeline {
            node,
            topic: topic.clone(),
            partitions,
            producer,
            next_req: AtomicU64::new(1),
            pending: pending.clone(),
        });
        let sweeper = pending.clone();
        let sweep_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = sweep_stop.cancelled() => return,
                }
                let now = Instant::now();
                let expired: Vec<Reply> = {
                    let mut map = sweeper.lock();
                    let old: Vec<u64> = map
                        .iter()
                        .filter(|(_, (_, at))| now.duration_since(*at) > REPLY_TIMEOUT)
                        .map(|(k, _)| *k)
                        .collect();
                    old.into_iter()
                        .filter_map(|k| map.remove(&k))
                        .map(|(r, _)| r)
                        .collect()
                };
                for r in expired {
                    r.send(Err(AppError::Unavailable(
                        "the message was not confirmed in time; retry",
                    )));
                }
            }
        });
        let seq = Sequencer {
            consumer,
            topic,
            store,
            bus,
            metrics,
            max_batch: cfg.max_batch,
            active: active_tx,
        };
        let task = tokio::spawn(seq.run(stop, owned_rx, pending));
        Ok((pipeline, task))
    }
}

fn into_result(o: Outcome) -> AppResult<Appended> {
    match o {
        Outcome::New(m) => Ok(Appended::New(m.into())),
        Outcome::Duplicate(m) => Ok(Appended::Duplicate(m.into())),
        Outcome::Unchanged => Ok(Appended::Unchanged),
        Outcome::RoomNotFound => Err(AppendRejected::RoomNotFound.into()),
        Outcome::NotMember => Err(AppendRejected::NotMember.into()),
        Outcome::RoomClosed => Err(AppendRejected::RoomClosed.into()),
        Outcome::Failed(_) => Err(AppError::Unavailable(
            "the message could not be confirmed; retry",
        )),
    }
}

#[async_trait]
impl Pipeline for KafkaPipeline {
    async fn submit_with(&self, message: NewMessage, reply: Reply) -> AppResult<()> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let room = message.room_id;
        let payload = serde_json::to_vec(&Request {
            node: self.node.to_string(),
            req,
            msg: message,
        })
        .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding a request: {e}")))?;
        self.pending.lock().insert(req, (reply, Instant::now()));
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
                tokio::spawn(async move {
                    let failed = match delivery.await {
                        Ok(Ok(_)) => return,
                        Ok(Err((e, _))) => e.to_string(),
                        Err(_) => "the producer dropped the message".to_owned(),
                    };
                    tracing::warn!(error = %failed, "producing a message to Kafka");
                    if let Some((reply, _)) = pending.lock().remove(&req) {
                        reply.send(Err(AppError::Unavailable(
                            "the message log is unavailable; retry",
                        )));
                    }
                });
                Ok(())
            }
            Err((e, _)) => {
                self.pending.lock().remove(&req);
                tracing::warn!(error = %e, "producing a message to Kafka");
                Err(AppError::Unavailable(
                    "the message log is unavailable; retry",
                ))
            }
        }
    }
}

struct Sequencer {
    consumer: StreamConsumer,
    topic: String,
    store: Arc<PostgresStore>,
    bus: Arc<KafkaBus>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    /// The partitions being read now (ownership waits on it before unlocking).
    active: watch::Sender<BTreeSet<i32>>,
}

/// One polled record, owned.
struct Polled {
    partition: i32,
    offset: i64,
    request: Option<Request>,
}

impl Sequencer {
    /// Reads exactly the partitions in `owned` (re-assigned between batches).
    async fn assign(&self, owned: &BTreeSet<i32>) -> anyhow::Result<()> {
        let next = self.store.next_offsets(&self.topic).await?;
        let mut tpl = TopicPartitionList::new();
        for p in owned {
            let offset = next
                .get(p)
                .map_or(Offset::Beginning, |o| Offset::Offset(*o));
            tpl.add_partition_offset(&self.topic, *p, offset)?;
        }
        self.consumer.assign(&tpl)?;
        self.metrics.partitions_owned.set(owned.len() as i64);
        self.active.send_replace(owned.clone());
        Ok(())
    }

    async fn run(
        self,
        stop: CancellationToken,
        mut owned: watch::Receiver<BTreeSet<i32>>,
        pending: Arc<Mutex<HashMap<u64, (Reply, Instant)>>>,
    ) {
        loop {
            let first = tokio::select! {
                m = self.consumer.recv(), if !self.active.borrow().is_empty() => m,
                changed = owned.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let want = owned.borrow_and_update().clone();
                    if let Err(e) = self.assign(&want).await {
                        tracing::error!(error = %e, "assigning log partitions");
                        // Read nothing rather than the wrong thing; retried on the next change.
                        let _ = self.consumer.unassign();
                        self.active.send_replace(BTreeSet::new());
                    }
                    continue;
                }
                _ = stop.cancelled() => break,
            };
            let mut batch = Vec::new();
            match first {
                Ok(m) => batch.push(own(&m)),
                Err(e) => {
                    tracing::warn!(error = %e, "sequencer consumer");
                    tokio::time::sleep(Duration::from_millis(200)).await;
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
            self.apply(batch).await;
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

    async fn apply(&self, batch: Vec<Polled>) {
        let mut records = Vec::new();
        let mut origin = Vec::new();
        for p in batch {
            match p.request {
                Some(r) => {
                    origin.push((r.node, r.req));
                    records.push(LogRecord {
                        partition: p.partition,
                        offset: p.offset,
                        message: r.msg,
                    });
                }
                None => tracing::warn!(
                    partition = p.partition,
                    offset = p.offset,
                    "skipping an undecodable request"
                ),
            }
        }
        let n = records.len();
        let started = Instant::now();
        // Never drop accepted messages: retry until the store takes them.
        let mut delay = Duration::from_millis(50);
        let outcomes = loop {
            match self.store.append_logged(&self.topic, records.clone()).await {
                Ok(o) => break o,
                Err(e) => {
                    tracing::error!(error = ?e, batch = n, "storing a batch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.commit_batch.observe(n as f64);
        for ((node, req), logged) in origin.into_iter().zip(outcomes) {
            let outcome = match logged {
                Logged::Applied(r) => Outcome::from(r),
                // Applied before this delivery: publish again (receivers drop
                // repeats) and answer for it, in case the first answer was lost.
                Logged::Replayed(Some(m)) => Outcome::New(m.into()),
                Logged::Replayed(None) => Outcome::Failed("already processed".into()),
            };
            if let Outcome::New(m) = &outcome {
                self.metrics.messages_stored.inc();
                self.bus.send(m.room_id, &Event::Message { m: m.clone() });
            }
            self.bus
                .send(req as i64, &Event::Reply { node, req, outcome });
        }
    }
}

fn own(m: &rdkafka::message::BorrowedMessage<'_>) -> Polled {
    let request = m
        .payload()
        .and_then(|p| match serde_json::from_slice::<Request>(p) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable request");
                None
            }
        });
    Polled {
        partition: m.partition(),
        offset: m.offset(),
        request,
    }
}
