//! The events topic: every node publishes to it and every node reads all of it
//! (assigned every partition from the end; no consumer group), delivering into
//! its own hub. Stored messages are delivered per room in `seq` order with no
//! gap: a repeat is dropped and a hole (a message whose event was lost, or came
//! late from a partition's former owner) is filled from the store first. A lost
//! last message in a quiet room has no later message to reveal it: every
//! [`REPAIR_EVERY`] the receiver compares the rooms it delivers to local
//! subscribers with the store's `last_seq` and delivers what it missed.
//! The per-room `last_seq` it keeps is bounded ([`RoomSeqs`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            last_seq: RoomSeqs::new(MAX_TRACKED_ROOMS),
        };
        tokio::spawn(async move {
            let mut repair = tokio::time::interval(REPAIR_EVERY);
            repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    m = consumer.recv() => match m {
                        Ok(m) => {
                            if let Some(ev) = parse(m.payload()) {
                                receiver.handle(ev).await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "events consumer");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                    _ = repair.tick() => receiver.repair().await,
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

/// How often rooms with local subscribers are compared with the store.
pub const REPAIR_EVERY: Duration = Duration::from_millis(500);
/// Rooms whose delivered `seq` the receiver remembers.
const MAX_TRACKED_ROOMS: usize = 50_000;

/// The highest `seq` delivered per room, for at most `max` rooms: past that, the
/// least recently active half is forgotten. A forgotten room's next message is
/// delivered as is (like the first one after start-up); its subscribers had
/// everything up to then.
pub struct RoomSeqs {
    rooms: HashMap<RoomId, (i64, Instant)>,
    max: usize,
}

impl RoomSeqs {
    pub fn new(max: usize) -> Self {
        RoomSeqs {
            rooms: HashMap::new(),
            max: max.max(2),
        }
    }

    pub fn get(&self, room: RoomId) -> Option<i64> {
        self.rooms.get(&room).map(|(s, _)| *s)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn set(&mut self, room: RoomId, seq: i64) {
        if self.rooms.len() >= self.max && !self.rooms.contains_key(&room) {
            let mut by_age: Vec<Instant> = self.rooms.values().map(|(_, t)| *t).collect();
            let (_, median, _) = by_age.select_nth_unstable(self.rooms.len() / 2);
            let cut = *median;
            self.rooms.retain(|_, (_, t)| *t > cut);
        }
        self.rooms.insert(room, (seq, Instant::now()));
    }

    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms.keys().copied()
    }

    /// The `(room, delivered, stored)` of every room the store has more of.
    pub fn behind(&self, stored: &[(RoomId, i64)]) -> Vec<(RoomId, i64, i64)> {
        stored
            .iter()
            .filter_map(|&(room, last)| {
                let delivered = self.get(room)?;
                (last > delivered).then_some((room, delivered, last))
            })
            .collect()
    }
}

/// The consuming side of one node.
struct Receiver {
    bus: Arc<KafkaBus>,
    hub: Arc<Hub>,
    store: Arc<PostgresStore>,
    /// Highest seq delivered per room.
    last_seq: RoomSeqs,
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
        match self.last_seq.get(room) {
            Some(last) if m.seq <= last => return,
            // A hole: deliver what is stored in between first.
            Some(last) if m.seq > last + 1 => self.fill(room, last, m.seq).await,
            _ => {}
        }
        self.last_seq.set(room, m.seq);
        self.hub.deliver(BusEvent::Message(Arc::new(m)));
    }

    /// Delivers the stored messages with `after < seq < before`, in order.
    async fn fill(&mut self, room: RoomId, after: i64, before: i64) {
        let q = HistoryQuery {
            before_seq: Some(before),
            after_seq: Some(after),
            limit: (before - after) as usize,
        };
        match self.store.messages(room, q).await {
            Ok((missing, _)) => {
                for x in missing {
                    self.last_seq.set(room, x.seq);
                    self.hub.deliver(BusEvent::Message(Arc::new(x)));
                }
            }
            Err(e) => tracing::warn!(error = %e, room, "filling a gap in the event stream"),
        }
    }

    /// Delivers what the store holds beyond what was delivered, for the rooms
    /// with subscribers on this node (a lost last message in a quiet room).
    async fn repair(&mut self) {
        let watched: Vec<RoomId> = self
            .last_seq
            .rooms()
            .filter(|&r| !self.hub.online(r).is_empty())
            .collect();
        if watched.is_empty() {
            return;
        }
        let stored = match self.store.last_seqs(&watched).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "checking rooms for lost events");
                return;
            }
        };
        for (room, delivered, last) in self.last_seq.behind(&stored) {
            tracing::debug!(room, delivered, last, "repairing lost message events");
            self.fill(room, delivered, last + 1).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_seqs_stay_bounded_and_keep_the_recent_rooms() {
        let mut s = RoomSeqs::new(100);
        for room in 0..10_000 {
            s.set(room, 1);
            assert!(s.len() <= 100);
        }
        assert_eq!(s.get(9_999), Some(1), "the newest room is kept");
        assert_eq!(s.get(0), None, "an old room is forgotten");
    }

    #[test]
    fn behind_lists_rooms_the_store_has_more_of() {
        let mut s = RoomSeqs::new(10);
        s.set(1, 5);
        s.set(2, 7);
        // Room 3 is not tracked: nothing to compare with.
        let stored = [(1, 6), (2, 7), (3, 9)];
        assert_eq!(s.behind(&stored), [(1, 5, 6)]);
    }
}
