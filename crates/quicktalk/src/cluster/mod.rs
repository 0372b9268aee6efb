//! Multi-node mode: the [`Pipeline`](crate::domain::pipeline::Pipeline) and
//! [`Bus`](crate::bus::Bus) over Kafka, with PostgreSQL as the shared store.
//!
//! ```text
//! SEND ─► KafkaPipeline: produce {node, req, msg} to <prefix>.messages, partition = room % N
//!      ─► sequencer (one node owns each partition: a lease in PostgreSQL)
//!         ─► PostgresStore::append_logged (seq + store + partition offset, one transaction)
//!         ─► produce Message and Reply{node, req} events to <prefix>.events
//! every node: events consumer ─► local hub (in seq order, gaps filled from the store)
//!                             ─► Reply for this node ─► RECEIPT
//! ```
//!
//! Exactly-once application does not rely on Kafka offsets or consumer groups:
//! the store records, per partition, the next offset to apply in the same
//! transaction as the messages; a new owner starts reading there, and a record
//! delivered again is skipped (never acknowledged). Partition ownership is a
//! lease per partition in PostgreSQL (`ownership`): free at once when a dead
//! node's session closes, after 5 s without renewal when a node hangs, and
//! checked (epoch fencing) in every batch's transaction. Topics are created at start-up with the
//! admin API (a production Kafka has auto-create off). Typing and user events
//! (matching) travel on the events topic too; the matcher's state is shared in
//! PostgreSQL (`matching`).

mod bus;
mod matching;
mod ownership;
mod pipeline;
mod trace;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

pub use bus::KafkaBus;
pub use matching::SharedMatchEngine;
pub use pipeline::{KafkaPipeline, RecordHook};

use crate::fanout::Hub;
use crate::metrics::Metrics;
use crate::store::postgres::PostgresStore;

/// How a node reaches the cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    pub brokers: String,
    pub topic_prefix: String,
    pub partitions: i32,
    pub replication: i32,
    pub max_batch: usize,
    /// A SEND not answered in this long is answered `outcome_unknown`.
    pub reply_timeout: Duration,
    /// The consumers' `fetch.wait.max.ms`.
    pub fetch_wait_ms: u32,
    /// Fault injection for tests: see [`RecordHook`].
    pub record_hook: Option<RecordHook>,
    /// Offered each message this node's sequencer stores (push notifications:
    /// the sequencing node pushes, so each push is sent once).
    pub notifier: crate::domain::push::notifier::Notifier,
}

impl ClusterConfig {
    fn messages_topic(&self) -> String {
        format!("{}.messages", self.topic_prefix)
    }
    fn events_topic(&self) -> String {
        format!("{}.events", self.topic_prefix)
    }
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("socket.nagle.disable", "true")
            .set("log_level", "4");
        // librdkafka's own tracing, e.g. QUICKTALK_KAFKA_DEBUG=cgrp,protocol.
        if let Ok(d) = std::env::var("QUICKTALK_KAFKA_DEBUG") {
            c.set("debug", d).set("log_level", "7");
        }
        c
    }
}

/// The running multi-node plumbing of one node.
pub struct Cluster {
    pub bus: Arc<KafkaBus>,
    pub pipeline: Arc<KafkaPipeline>,
    /// Ends once the sequencer stopped (after `stop`).
    pub task: tokio::task::JoinHandle<()>,
}

impl Cluster {
    /// Creates the topics if needed, starts this node's events consumer and the
    /// sequencer. Returns once the events consumer is positioned, so nothing
    /// published after this returns is missed.
    pub async fn start(
        cfg: ClusterConfig,
        store: Arc<PostgresStore>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> anyhow::Result<Cluster> {
        let node: Arc<str> = format!("{:016x}", rand::random::<u64>()).into();
        ensure_topics(&cfg).await?;
        // Requests: idempotent, so a retried produce never logs a SEND twice.
        let producer: FutureProducer = cfg
            .client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .create()
            .context("creating the Kafka producer")?;
        // Events: a repeat or a reordering from a retry is harmless (receivers
        // drop what they delivered and fill holes from the store), and without
        // idempotence a broker does less per produce (tansu 0.6 rewrites its
        // whole metadata object for every idempotent batch).
        let events_producer: FutureProducer = cfg
            .client()
            .set("enable.idempotence", "false")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .create()
            .context("creating the Kafka events producer")?;
        let events_partitions = partition_count(&cfg, &cfg.events_topic()).await?;
        let messages_partitions = partition_count(&cfg, &cfg.messages_topic()).await?;
        let bus = KafkaBus::start(
            &cfg,
            node.clone(),
            events_producer,
            events_partitions,
            store.clone(),
            hub,
            metrics.clone(),
        )
        .await?;
        let (pipeline, task) = KafkaPipeline::start(
            &cfg,
            node,
            producer,
            messages_partitions,
            store,
            bus.clone(),
            metrics,
            stop,
        )?;
        Ok(Cluster {
            bus,
            pipeline,
            task,
        })
    }
}

async fn ensure_topics(cfg: &ClusterConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = cfg
        .client()
        .create()
        .context("creating the Kafka admin client")?;
    let names = [cfg.messages_topic(), cfg.events_topic()];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, cfg.partitions, TopicReplication::Fixed(cfg.replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .context("creating the Kafka topics")?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating Kafka topic {name}: {code}"),
        }
    }
    Ok(())
}

/// The topic's partition count from the broker's metadata (it may predate us).
async fn partition_count(cfg: &ClusterConfig, topic: &str) -> anyhow::Result<i32> {
    let consumer: StreamConsumer = cfg
        .client()
        .set("group.id", "quicktalk-metadata")
        .create()
        .context("creating a Kafka metadata client")?;
    let topic = topic.to_owned();
    let n = tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
        for _ in 0..50 {
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .context("fetching Kafka metadata")?;
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if !t.partitions().is_empty() {
                    return Ok(t.partitions().len() as i32);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("Kafka topic {topic} has no partitions")
    })
    .await??;
    Ok(n)
}

/// Kafka partition of a room or user id.
fn partition_of(id: i64, partitions: i32) -> i32 {
    id.rem_euclid(partitions as i64) as i32
}
