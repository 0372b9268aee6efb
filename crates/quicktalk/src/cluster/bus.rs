//! The events topic: every node publishes to it and every node reads all of it
//! (assigned every partition from the end; no consumer group), delivering into
//! its own hub. Stored messages are delivered per room in `seq` order with no
//! gap: a repeat is dropped and a hole (a message whose event was lost, or came
//! late from a partition's former owner) is filled from the store first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::wire::{Event, Outcome};
use super::{partition_of, ClusterConfig};
use crate::bus::{Bus, BusEvent, BusSink};
use crate::fanout::Hub;
use crate::model::{HistoryQuery, Message, RoomId};
use crate::store::postgres::PostgresStore;
use crate::store::Store;

/// Replies this node waits for, by request id.
pub(super) type ReplyHandler = Box<dyn Fn(u64, Outcome) + Send + Sync>;

pub struct KafkaBus {
    node: Arc<str>,
    topic: String,
    partitions: i32,
    producer: FutureProducer,
    on_reply: Mutex<Option<ReplyHandler>>,
}

impl KafkaBus {
    pub(super) async fn start(
        cfg: &ClusterConfig,
        node: Arc<str>,
        producer: FutureProducer,
        partitions: i32,
        store: Arc<PostgresStore>,
        hub: Arc<Hub>,
    ) -> anyhow::Result<Arc<Self>> {
        let topic = cfg.events_topic();
        let consumer: StreamConsumer = cfg
            .client()
            .set("group.id", format!("{}.node.{node}", cfg.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .context("creating the events consumer")?;
        // Start at each partition's current end, resolved now (not lazily): every
        // event published after start-up returns reaches this node.
        let consumer = Arc::new(consumer);
        let c = consumer.clone();
        let t = topic.clone();
        let tpl = tokio::task::spawn_blocking(move || -> anyhow::Result<TopicPartitionList> {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                let (_, high) = c
                    .fetch_watermarks(&t, p, Duration::from_secs(10))
                    .with_context(|| format!("reading the end of {t}/{p}"))?;
                tpl.add_partition_offset(&t, p, Offset::Offset(high))?;
            }
            Ok(tpl)
        })
        .await??;
        consumer
            .assign(&tpl)
            .context("assigning the events topic")?;
        let bus = Arc::new(KafkaBus {
            node,
            topic,
            partitions,
            producer,
            on_reply: Mutex::new(None),
        });
        let announcer = bus.clone();
        hub.set_presence_publisher(Box::new(move |room_id, online| {
            let node = announcer.node().to_owned();
            announcer.send(
                room_id,
                &Event::Presence {
                    node,
                    room_id,
                    online,
                },
            );
        }));
        let mut receiver = Receiver {
            bus: bus.clone(),
            hub,
            store,
            last_seq: HashMap::new(),
        };
        tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(m) => {
                        if let Some(ev) = parse(m.payload()) {
                            receiver.handle(ev).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "events consumer");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(bus)
    }

    pub(super) fn on_reply(&self, f: ReplyHandler) {
        *self.on_reply.lock() = Some(f);
    }

    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// Enqueues an event (delivery is asynchronous; order per partition is kept).
    pub(super) fn send(&self, key: i64, ev: &Event) {
        let payload = match serde_json::to_vec(ev) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "encoding an event");
                return;
            }
        };
        let key_bytes = key.to_be_bytes();
        let record = FutureRecord::to(&self.topic)
            .partition(partition_of(key, self.partitions))
            .key(&key_bytes)
            .payload(&payload);
        if let Err((e, _)) = self.producer.send_result(record) {
            tracing::error!(error = %e, "publishing an event to Kafka");
        }
    }
}

impl Bus for KafkaBus {
    fn publish(&self, event: BusEvent) {
        match event {
            BusEvent::Message(m) => {
                let room = m.room_id;
                self.send(
                    room,
                    &Event::Message {
                        m: (*m).clone().into(),
                    },
                );
            }
            BusEvent::Typing { room_id, user } => {
                self.send(room_id, &Event::Typing { room_id, user });
            }
            BusEvent::User { user_id, body } => {
                let body = String::from_utf8_lossy(&body).into_owned();
                self.send(user_id, &Event::User { user_id, body });
            }
        }
    }
}

fn parse(payload: Option<&[u8]>) -> Option<Event> {
    let p = payload?;
    match serde_json::from_slice(p) {
        Ok(ev) => Some(ev),
        Err(e) => {
            tracing::warn!(error = %e, "skipping an undecodable event");
            None
        }
    }
}

/// The consuming side of one node.
struct Receiver {
    bus: Arc<KafkaBus>,
    hub: Arc<Hub>,
    store: Arc<PostgresStore>,
    /// Highest seq delivered per room.
    last_seq: HashMap<RoomId, i64>,
}

impl Receiver {
    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Message { m } => self.message(m.into()).await,
            Event::Typing { room_id, user } => self.hub.deliver(BusEvent::Typing { room_id, user }),
            Event::User { user_id, body } => self.hub.deliver(BusEvent::User {
                user_id,
                body: Bytes::from(body),
            }),
            Event::Presence {
                node,
                room_id,
                online,
            } => {
                if node != self.bus.node() {
                    self.hub.remote_presence(&node, room_id, online);
                }
            }
            Event::Reply { node, req, outcome } => {
                if node == self.bus.node() {
                    if let Some(f) = self.bus.on_reply.lock().as_ref() {
                        f(req, outcome);
                    }
                }
            }
        }
    }

    async fn message(&mut self, m: Message) {
        let room = m.room_id;
        match self.last_seq.get(&room).copied() {
            Some(last) if m.seq <= last => return,
            Some(last) if m.seq > last + 1 => {
                // A hole: deliver what is stored in between first.
                let q = HistoryQuery {
                    before_seq: Some(m.seq),
                    after_seq: Some(last),
                    limit: (m.seq - last) as usize,
                };
                match self.store.messages(room, q).await {
                    Ok((missing, _)) => {
                        for x in missing {
                            self.hub.deliver(BusEvent::Message(Arc::new(x)));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, room, "filling a gap in the event stream"),
                }
            }
            _ => {}
        }
        self.last_seq.insert(room, m.seq);
        self.hub.deliver(BusEvent::Message(Arc::new(m)));
    }
}
