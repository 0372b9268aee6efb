//! The events topic: every node publishes to it and every node reads all of it
//! (assigned every partition from the end; no consumer group), delivering into
//! its own hub. Stored messages are delivered per room in `seq` order with no
//! gap: a repeat is dropped and a hole (a message whose event was lost, or came
//! late from a partition's former owner) is filled from the store first. A lost
//! last message in a quiet room has no later message to reveal it: every
//! [`REPAIR_EVERY`] the receiver compares the rooms with local subscribers with
//! the store's `last_seq` (one query for all of them) and delivers what it
//! missed. A room is known to the receiver from its first delivered event, or
//! from its first local subscription, whichever comes first: the hub reports
//! the subscription ([`Hub::set_room_watcher`]) and the receiver reads the
//! room's `last_seq` at once (batched) as a *floor* — nothing at or below it is
//! owed to the new subscriber by the live stream, everything above it is, so a
//! room whose very first event is lost is repaired too. (A message stored in
//! the milliseconds between that subscription and the floor's read, whose event
//! is also lost, is not.) The per-room `last_seq` it keeps is bounded
//! ([`RoomSeqs`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;

use super::trace::{self, Hop};
use super::wire::{Event, Outcome, Stored};
use super::{partition_of, ClusterConfig};
use crate::bus::{Bus, BusEvent, BusSink};
use crate::fanout::Hub;
use crate::metrics::Metrics;
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
    /// Rooms that just got their first local subscription, for the receiver.
    watch: Mutex<HashSet<RoomId>>,
    watched: Notify,
}

impl KafkaBus {
    pub(super) async fn start(
        cfg: &ClusterConfig,
        node: Arc<str>,
        producer: FutureProducer,
        partitions: i32,
        store: Arc<PostgresStore>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let topic = cfg.events_topic();
        let consumer: StreamConsumer = cfg
            .client()
            .set("group.id", format!("{}.node.{node}", cfg.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", cfg.fetch_wait_ms.to_string())
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
            watch: Mutex::default(),
            watched: Notify::new(),
        });
        let watcher = bus.clone();
        hub.set_room_watcher(Box::new(move |room| {
            watcher.watch.lock().insert(room);
            watcher.watched.notify_one();
        }));
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
            metrics,
        };
        let watched = bus.clone();
        tokio::spawn(async move {
            let mut repair = tokio::time::interval(REPAIR_EVERY);
            repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    // First: a room's floor is read before its next event is handled.
                    biased;
                    _ = watched.watched.notified() => receiver.watch().await,
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
                    _ = repair.tick() => {
                        // Floors whose read failed are retried here.
                        receiver.watch().await;
                        receiver.repair().await;
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

    /// Enqueues an event (delivery is asynchronous; order per partition is
    /// kept). Returns the broker's acknowledgement to come, if it was enqueued.
    pub(super) fn send(&self, key: i64, ev: &Event) -> Option<DeliveryFuture> {
        let payload = match serde_json::to_vec(ev) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "encoding an event");
                return None;
            }
        };
        let key_bytes = key.to_be_bytes();
        let record = FutureRecord::to(&self.topic)
            .partition(partition_of(key, self.partitions))
            .key(&key_bytes)
            .payload(&payload);
        match self.producer.send_result(record) {
            Ok(acked) => Some(acked),
            Err((e, _)) => {
                tracing::error!(error = %e, "publishing an event to Kafka");
                None
            }
        }
    }
}

/// Most bytes of messages (estimated) in one `Messages` record, well below
/// a broker's usual 1 MB record limit.
const STORED_RECORD_BYTES: usize = 256 * 1024;

impl KafkaBus {
    /// Publishes a sequencer batch's stored messages: one `Messages` record per
    /// events partition (split when large), in order. Returns, per record
    /// enqueued, its message count and the broker's acknowledgement to come.
    pub(super) fn send_stored(
        &self,
        stored: Vec<Stored>,
        committed: i64,
    ) -> Vec<(usize, DeliveryFuture)> {
        let mut by_partition: Vec<Vec<Stored>> = (0..self.partitions).map(|_| Vec::new()).collect();
        for s in stored {
            by_partition[partition_of(s.m.room_id, self.partitions) as usize].push(s);
        }
        let mut acks = Vec::new();
        for ms in by_partition.into_iter().filter(|ms| !ms.is_empty()) {
            for chunk in chunks(ms, STORED_RECORD_BYTES) {
                let (n, key) = (chunk.len(), chunk[0].m.room_id);
                if let Some(a) = self.send(
                    key,
                    &Event::Messages {
                        ms: chunk,
                        committed,
                    },
                ) {
                    acks.push((n, a));
                }
            }
        }
        acks
    }
}

/// Splits messages into runs of at most `max` estimated bytes (at least one
/// message each), keeping their order.
fn chunks(ms: Vec<Stored>, max: usize) -> Vec<Vec<Stored>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for s in ms {
        let size = 256 + s.m.text.len() + s.m.sender.name.len() + 512 * s.m.attachments.len();
        if !cur.is_empty() && bytes + size > max {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(s);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
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
            BusEvent::UserChanged { user_id, banned } => {
                self.send(user_id, &Event::UserChanged { user_id, banned });
            }
            BusEvent::MessageDeleted { room_id, id, seq } => {
                self.send(room_id, &Event::MessageDeleted { room_id, id, seq });
            }
            BusEvent::BlockChanged { blocker, blocked } => {
                self.send(blocker, &Event::BlockChanged { blocker, blocked });
            }
            BusEvent::Activity {
                user_id,
                session,
                focused,
                read,
                at,
            } => {
                let ev = Event::Activity {
                    user_id,
                    session,
                    focused,
                    read,
                    at,
                };
                self.send(user_id, &ev);
            }
            BusEvent::PushChanged { user_id } => {
                self.send(user_id, &Event::PushChanged { user_id });
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
///
/// An entry is either a delivered `seq` or a *floor*: the room's `last_seq` when
/// it got its first local subscription, before any event of it was delivered.
/// Events at or below a floor are delivered as they come (they may have been
/// under way at subscription time; each subscription drops what it already
/// has); one above it replaces the floor, filling any hole first.
pub struct RoomSeqs {
    rooms: HashMap<RoomId, Entry>,
    max: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    seq: i64,
    floor: bool,
    at: Instant,
}

/// What the receiver knows of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Messages up to this `seq` were delivered.
    Delivered(i64),
    /// Nothing delivered yet; nothing at or below this `seq` is owed.
    Floor(i64),
}

impl Known {
    pub fn seq(self) -> i64 {
        match self {
            Known::Delivered(s) | Known::Floor(s) => s,
        }
    }
}

impl RoomSeqs {
    pub fn new(max: usize) -> Self {
        RoomSeqs {
            rooms: HashMap::new(),
            max: max.max(2),
        }
    }

    pub fn get(&self, room: RoomId) -> Option<Known> {
        self.rooms.get(&room).map(|e| {
            if e.floor {
                Known::Floor(e.seq)
            } else {
                Known::Delivered(e.seq)
            }
        })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Records that `seq` was delivered.
    pub fn set(&mut self, room: RoomId, seq: i64) {
        self.insert(room, seq, false);
    }

    /// Sets a floor for a room not known yet (a known room keeps what it has).
    pub fn set_floor(&mut self, room: RoomId, seq: i64) {
        if !self.rooms.contains_key(&room) {
            self.insert(room, seq, true);
        }
    }

    fn insert(&mut self, room: RoomId, seq: i64, floor: bool) {
        if self.rooms.len() >= self.max && !self.rooms.contains_key(&room) {
            let mut by_age: Vec<Instant> = self.rooms.values().map(|e| e.at).collect();
            let (_, median, _) = by_age.select_nth_unstable(self.rooms.len() / 2);
            let cut = *median;
            self.rooms.retain(|_, e| e.at > cut);
        }
        self.rooms.insert(
            room,
            Entry {
                seq,
                floor,
                at: Instant::now(),
            },
        );
    }

    pub fn rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms.keys().copied()
    }

    /// The `(room, known, stored)` of every room the store has more of.
    pub fn behind(&self, stored: &[(RoomId, i64)]) -> Vec<(RoomId, i64, i64)> {
        stored
            .iter()
            .filter_map(|&(room, last)| {
                let known = self.get(room)?.seq();
                (last > known).then_some((room, known, last))
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
    metrics: Arc<Metrics>,
}

impl Receiver {
    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Message { m } => self.message(m.into()).await,
            Event::Messages { ms, committed } => {
                let consumed = trace::now_us();
                for s in ms {
                    trace::observe(&self.metrics, Hop::ToNode, committed, consumed);
                    if let Some(r) = &s.reply {
                        if r.node == self.bus.node() {
                            if let Some(f) = self.bus.on_reply.lock().as_ref() {
                                f(r.req, Outcome::New(s.m.clone()));
                            }
                        }
                    }
                    self.message(s.m.into()).await;
                    let done = trace::now_us();
                    trace::observe(&self.metrics, Hop::FanOut, consumed, done);
                    trace::observe(&self.metrics, Hop::EndToEnd, s.at, done);
                }
            }
            Event::Typing { room_id, user } => self.hub.deliver(BusEvent::Typing { room_id, user }),
            Event::User { user_id, body } => self.hub.deliver(BusEvent::User {
                user_id,
                body: Bytes::from(body),
            }),
            Event::UserChanged { user_id, banned } => {
                self.hub.deliver(BusEvent::UserChanged { user_id, banned })
            }
            Event::MessageDeleted { room_id, id, seq } => self
                .hub
                .deliver(BusEvent::MessageDeleted { room_id, id, seq }),
            Event::BlockChanged { blocker, blocked } => self
                .hub
                .deliver(BusEvent::BlockChanged { blocker, blocked }),
            Event::Activity {
                user_id,
                session,
                focused,
                read,
                at,
            } => self.hub.deliver(BusEvent::Activity {
                user_id,
                session,
                focused,
                read,
                at,
            }),
            Event::PushChanged { user_id } => self.hub.deliver(BusEvent::PushChanged { user_id }),
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
            Some(Known::Delivered(last)) if m.seq <= last => return,
            // Stored before the first subscription: delivered as it comes, the
            // floor stays.
            Some(Known::Floor(floor)) if m.seq <= floor => {
                self.hub.deliver(BusEvent::Message(Arc::new(m)));
                return;
            }
            // A hole: deliver what is stored in between first.
            Some(known) if m.seq > known.seq() + 1 => self.fill(room, known.seq(), m.seq).await,
            _ => {}
        }
        self.last_seq.set(room, m.seq);
        self.hub.deliver(BusEvent::Message(Arc::new(m)));
    }

    /// Reads the floor of every room that just got its first local subscription
    /// and is not known yet (one query). On failure they are tried again on the
    /// next repair tick.
    async fn watch(&mut self) {
        let rooms: Vec<RoomId> = {
            let mut w = self.bus.watch.lock();
            w.retain(|r| self.last_seq.get(*r).is_none());
            w.drain().collect()
        };
        if rooms.is_empty() {
            return;
        }
        match self.store.last_seqs(&rooms).await {
            Ok(stored) => {
                for (room, last) in stored {
                    self.last_seq.set_floor(room, last);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the floor of newly watched rooms");
                self.bus.watch.lock().extend(rooms);
            }
        }
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

    /// Delivers what the store holds beyond what was delivered (or the floor),
    /// for the rooms with subscribers on this node (a lost last message in a
    /// quiet room).
    async fn repair(&mut self) {
        let watched: Vec<RoomId> = self
            .last_seq
            .rooms()
            .filter(|&r| self.hub.has_local_subscribers(r))
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
        for (room, known, last) in self.last_seq.behind(&stored) {
            tracing::debug!(room, known, last, "repairing lost message events");
            self.fill(room, known, last + 1).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(room: RoomId, seq: i64, text_len: usize) -> Stored {
        Stored {
            m: super::super::wire::WireMessage {
                id: seq,
                room_id: room,
                seq,
                kind: crate::model::MessageKind::Text,
                sender: crate::model::UserRef {
                    id: 1,
                    name: "a".into(),
                    guest: false,
                },
                text: "x".repeat(text_len),
                client_id: None,
                sent_at: 0,
                masked: false,
                attachments: vec![],
            },
            reply: None,
            at: 0,
        }
    }

    #[test]
    fn stored_messages_split_by_size_in_order() {
        let ms: Vec<Stored> = (1..=10).map(|i| stored(7, i, 1_000)).collect();
        let parts = chunks(ms, 3_000);
        assert!(parts.len() > 1, "ten messages of ~1.25 kB in 3 kB runs");
        let seqs: Vec<i64> = parts.iter().flatten().map(|s| s.m.seq).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
        for p in &parts {
            assert!(!p.is_empty());
            let bytes: usize = p.iter().map(|s| 257 + s.m.text.len()).sum();
            assert!(p.len() == 1 || bytes <= 3_000, "{bytes}");
        }
        // A message larger than the limit still travels, alone.
        let big = chunks(
            vec![stored(7, 1, 10), stored(7, 2, 9_000), stored(7, 3, 10)],
            3_000,
        );
        assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
        assert!(chunks(Vec::new(), 10).is_empty());
    }

    #[test]
    fn room_seqs_stay_bounded_and_keep_the_recent_rooms() {
        let mut s = RoomSeqs::new(100);
        for room in 0..10_000 {
            s.set(room, 1);
            assert!(s.len() <= 100);
        }
        assert_eq!(
            s.get(9_999),
            Some(Known::Delivered(1)),
            "the newest room is kept"
        );
        assert_eq!(s.get(0), None, "an old room is forgotten");
        for room in 10_000..20_000 {
            s.set_floor(room, 3);
            assert!(s.len() <= 100, "floors count towards the bound");
        }
    }

    #[test]
    fn a_floor_is_set_only_for_an_unknown_room_and_gives_way_to_a_delivery() {
        let mut s = RoomSeqs::new(10);
        s.set(1, 5);
        s.set_floor(1, 9);
        assert_eq!(
            s.get(1),
            Some(Known::Delivered(5)),
            "a known room keeps its seq"
        );
        s.set_floor(2, 9);
        assert_eq!(s.get(2), Some(Known::Floor(9)));
        s.set(2, 10);
        assert_eq!(s.get(2), Some(Known::Delivered(10)));
    }

    #[test]
    fn behind_lists_rooms_the_store_has_more_of() {
        let mut s = RoomSeqs::new(10);
        s.set(1, 5);
        s.set(2, 7);
        s.set_floor(4, 2);
        // Room 3 is not tracked: nothing to compare with.
        let stored = [(1, 6), (2, 7), (3, 9), (4, 3)];
        assert_eq!(s.behind(&stored), [(1, 5, 6), (4, 2, 3)]);
    }
}
