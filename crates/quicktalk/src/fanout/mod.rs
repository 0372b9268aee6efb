//! The fan-out core: who is subscribed to what on this node, and delivery into
//! each connection's bounded outbound queue.
//!
//! Invariants:
//! - An event's JSON body is built once ([`Event`]) and shared by every
//!   subscriber (`Arc`); each connection's writer adds only its own headers.
//! - Delivery never blocks and never buffers without bound: a full outbound
//!   queue disconnects that subscriber ([`Outlet::push`]) with an ERROR saying why.
//! - Per subscription, stored messages are delivered in `seq` order, each once:
//!   a subscription that is replaying history buffers live events and hands over
//!   with de-duplication by `seq` ([`RoomSubscription::finish_replay`]).
//! - Lock order: a room's own lock is never awaited while the global room map is
//!   locked for writing (only an empty room's, briefly), so one busy room never
//!   stalls the others. An unsubscribed [`RoomSubscription`] is closed: nothing
//!   more (live or replayed) is queued for it.
//! - Presence (who is subscribed to a room) is tracked here; changes mark the room
//!   dirty and [`Hub::flush_presence`] broadcasts one snapshot per dirty room, so a
//!   burst of joins in a big room costs one message, not one per join.
//! - A room's first subscription on this node is reported to the room watcher
//!   ([`Hub::set_room_watcher`], multi-node mode: the events receiver starts
//!   checking that room for lost events) before it is registered.
//! - Every connected (authenticated) connection is registered by user
//!   ([`Hub::register_connection`]), so a ban closes all of a user's sockets on
//!   this node ([`BusEvent::UserChanged`] with `banned`); the user watcher
//!   ([`Hub::set_user_watcher`]) hears of every user change first (the
//!   authentication cache forgets the user).
//! - Blocks (contract §7, [`blocks`]): a connected blocker gets a blocked
//!   user's messages as `kind:"hidden"` placeholders with the same `seq`, none
//!   of their typing, and presence without them. Lock order: a room's lock,
//!   then the block table's; the block table's, then `connections`.

mod blocks;
mod outlet;
mod presence;

pub use outlet::{Event, Outbound, Outlet};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::json;

use crate::bus::{BusEvent, BusSink};
use crate::metrics::Metrics;
use crate::model::{MessageKind, RoomId, UserId, UserRef};

/// Most users listed in one presence event (`count` has the total).
pub const PRESENCE_LIST_MAX: usize = 100;

/// Most live events a replaying subscription buffers before it is dropped as too slow.
const REPLAY_BUFFER_CAP: usize = 10_000;

pub fn room_destination(room: RoomId) -> String {
    format!("/topic/rooms.{room}")
}
pub const USER_EVENTS: &str = "/user/queue/events";
pub const USER_ERRORS: &str = "/user/queue/errors";

enum SubState {
    Replaying(Vec<Arc<Event>>),
    Live {
        last_seq: i64,
    },
    /// Unsubscribed: nothing more is queued for it, not even a replay's page.
    Closed,
}

/// One STOMP subscription to a room's topic.
pub struct RoomSubscription {
    pub room: RoomId,
    pub user: UserRef,
    sub_id: Arc<str>,
    outlet: Arc<Outlet>,
    state: Mutex<SubState>,
}

impl RoomSubscription {
    fn deliver(&self, ev: &Arc<Event>) {
        let mut st = self.state.lock();
        match &mut *st {
            SubState::Replaying(buf) => {
                if buf.len() >= REPLAY_BUFFER_CAP {
                    drop(st);
                    self.outlet
                        .kill("slow consumer: too many messages arrived during history replay");
                } else {
                    buf.push(ev.clone());
                }
            }
            SubState::Live { last_seq } => {
                if let Some(seq) = ev.seq {
                    if seq <= *last_seq {
                        return;
                    }
                    *last_seq = seq;
                }
                self.outlet.push(Outbound::Event {
                    sub: self.sub_id.clone(),
                    event: ev.clone(),
                });
            }
            SubState::Closed => {}
        }
    }

    /// Queues one replayed (stored) message, under the normal slow-consumer rule.
    /// `false` once the subscription is closed or the connection is closing. Checked
    /// and queued under the subscription's lock, so nothing is queued for it after
    /// the UNSUBSCRIBE that closed it (and hence after that frame's RECEIPT).
    pub fn push_replayed(&self, event: Arc<Event>) -> bool {
        let st = self.state.lock();
        if matches!(*st, SubState::Closed) {
            return false;
        }
        self.outlet.push(Outbound::Event {
            sub: self.sub_id.clone(),
            event,
        })
    }

    /// Marks the subscription closed: delivery and replay stop queueing for it.
    fn close(&self) {
        *self.state.lock() = SubState::Closed;
    }

    pub fn is_closed(&self) -> bool {
        matches!(*self.state.lock(), SubState::Closed)
    }

    /// Ends a history replay that delivered everything up to `replayed_seq`: buffered
    /// live events newer than that are delivered, and the subscription goes live.
    pub fn finish_replay(&self, replayed_seq: i64) {
        let mut st = self.state.lock();
        if matches!(*st, SubState::Closed) {
            return;
        }
        let buffered = match std::mem::replace(
            &mut *st,
            SubState::Live {
                last_seq: replayed_seq,
            },
        ) {
            SubState::Replaying(buf) => buf,
            SubState::Live { .. } | SubState::Closed => Vec::new(),
        };
        let SubState::Live { last_seq } = &mut *st else {
            unreachable!()
        };
        for ev in buffered {
            if let Some(seq) = ev.seq {
                if seq <= *last_seq {
                    continue;
                }
                *last_seq = seq;
            }
            self.outlet.push(Outbound::Event {
                sub: self.sub_id.clone(),
                event: ev,
            });
        }
    }

    pub fn sub_id(&self) -> &Arc<str> {
        &self.sub_id
    }
}

/// One subscription to `/user/queue/events`.
pub struct UserSubscription {
    pub user: UserId,
    sub_id: Arc<str>,
    outlet: Arc<Outlet>,
}

#[derive(Default)]
struct RoomState {
    /// Taken out of the hub's map (it was empty): a subscriber that got this
    /// `Arc` just before must look the room up again.
    removed: bool,
    subs: Vec<Arc<RoomSubscription>>,
    /// user id -> (the user, number of subscriptions on this node), in id order
    online: BTreeMap<UserId, (UserRef, usize)>,
}

/// Told the room of a subscription about to be a room's first on this node.
/// Called on the subscriber's task: must not block.
pub type RoomWatcher = Box<dyn Fn(RoomId) + Send + Sync>;

/// Told of a user whose role or ban changed (on any node). Must not block.
pub type UserWatcher = Box<dyn Fn(UserId) + Send + Sync>;

/// Hears the events the push planner needs (activity, push changes, blocks).
pub type PushWatcher = Box<dyn Fn(&BusEvent) + Send + Sync>;

/// The ERROR `message` a banned user's connections close with (contract §5).
pub const BANNED: &str = "banned";

pub struct Hub {
    rooms: RwLock<HashMap<RoomId, Arc<RwLock<RoomState>>>>,
    watcher: RwLock<Option<RoomWatcher>>,
    users: RwLock<HashMap<UserId, Vec<Arc<UserSubscription>>>>,
    /// Connected (authenticated) connections by user, so a ban can close them.
    connections: Mutex<HashMap<UserId, Vec<Arc<Outlet>>>>,
    user_watcher: RwLock<Option<UserWatcher>>,
    push_watcher: RwLock<Option<PushWatcher>>,
    presence_dirty: Mutex<HashSet<RoomId>>,
    /// Other nodes' online users (multi-node mode); see `presence`.
    remote: Mutex<presence::Remote>,
    /// Whom this node's connected users block.
    blocks: blocks::BlockTable,
    next_event: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Hub {
            rooms: RwLock::default(),
            watcher: RwLock::default(),
            users: RwLock::default(),
            connections: Mutex::default(),
            user_watcher: RwLock::default(),
            push_watcher: RwLock::default(),
            presence_dirty: Mutex::default(),
            remote: Mutex::default(),
            blocks: Default::default(),
            next_event: AtomicU64::new(1),
            metrics,
        }
    }

    /// A fresh id for an event that has no stored id.
    pub fn event_id(&self) -> u64 {
        self.next_event.fetch_add(1, Ordering::Relaxed)
    }

    /// Builds a one-off event (errors, replayed history) for `destination`.
    pub fn event(&self, destination: Arc<str>, seq: Option<i64>, body: Bytes) -> Arc<Event> {
        Arc::new(Event {
            seq,
            destination,
            message_id: format!("e{}", self.event_id()).into(),
            body,
        })
    }

    /// Sets who hears of a room's first subscription on this node.
    pub fn set_room_watcher(&self, watcher: RoomWatcher) {
        *self.watcher.write() = Some(watcher);
    }

    /// Sets who hears of user changes (role, ban) from any node.
    pub fn set_user_watcher(&self, watcher: UserWatcher) {
        *self.user_watcher.write() = Some(watcher);
    }

    /// Installs the push planner's ear: it hears every
    /// [`BusEvent::Activity`], [`BusEvent::PushChanged`] and
    /// [`BusEvent::BlockChanged`] this node receives.
    pub fn set_push_watcher(&self, watcher: PushWatcher) {
        *self.push_watcher.write() = Some(watcher);
    }

    fn tell_push(&self, event: &BusEvent) {
        if let Some(w) = &*self.push_watcher.read() {
            w(event);
        }
    }

    /// Records a connection of `user` (once it is authenticated).
    pub fn register_connection(&self, user: UserId, outlet: Arc<Outlet>) {
        self.connections
            .lock()
            .entry(user)
            .or_default()
            .push(outlet);
    }

    /// Forgets a connection of `user` (it is closing); with their last one,
    /// their block list.
    pub fn unregister_connection(&self, user: UserId, outlet: &Arc<Outlet>) {
        let last = {
            let mut conns = self.connections.lock();
            match conns.get_mut(&user) {
                Some(list) => {
                    list.retain(|o| !Arc::ptr_eq(o, outlet));
                    let last = list.is_empty();
                    if last {
                        conns.remove(&user);
                    }
                    last
                }
                None => false,
            }
        };
        if last {
            // Re-checked under the block table's lock: a connection that
            // registered meanwhile keeps the list it installed.
            self.blocks.update(|b| {
                if !self.connections.lock().contains_key(&user) {
                    b.remove(user);
                }
            });
        }
    }

    /// Taken before reading a user's block list from the store, for
    /// [`install_blocks`](Self::install_blocks).
    pub fn block_generation(&self) -> u64 {
        self.blocks.read().generation()
    }

    /// Installs the block list of `user` (connected here) as read from the
    /// store after [`block_generation`](Self::block_generation) gave
    /// `generation`. `false` when a block changed since: read it again.
    pub fn install_blocks(&self, user: UserId, list: &[UserId], generation: u64) -> bool {
        self.blocks.update(|b| {
            if b.generation() != generation {
                return false;
            }
            if self.connections.lock().contains_key(&user) {
                b.set(user, list);
            }
            true
        })
    }

    /// Whom `user` (connected here) blocks, if anyone.
    pub fn blocks_of(&self, user: UserId) -> Option<Arc<HashSet<UserId>>> {
        if !self.blocks.anyone_blocked() {
            return None;
        }
        self.blocks.read().of(user)
    }

    /// Which of `ids` are connected, here or (multi-node) on a node that
    /// announces them in some room's presence.
    pub fn connected_among(&self, ids: &[UserId]) -> HashSet<UserId> {
        let mut out: HashSet<UserId> = {
            let conns = self.connections.lock();
            ids.iter()
                .copied()
                .filter(|u| conns.contains_key(u))
                .collect()
        };
        if out.len() < ids.len() {
            let wanted: HashSet<UserId> = ids.iter().copied().collect();
            self.remote.lock().users_among(&wanted, &mut out);
        }
        out
    }

    /// Closes every connection of `user` on this node with an ERROR saying
    /// `reason`; returns how many.
    pub fn kill_user(&self, user: UserId, reason: &str) -> usize {
        let outlets = self.connections.lock().get(&user).cloned();
        let outlets = outlets.unwrap_or_default();
        for o in &outlets {
            o.kill(reason);
        }
        outlets.len()
    }

    /// Whether anyone on this node is subscribed to `room`.
    pub fn has_local_subscribers(&self, room: RoomId) -> bool {
        self.room_subs(room)
            .is_some_and(|state| !state.read().subs.is_empty())
    }

    /// Registers a room subscription. With `replay`, live events are held back until
    /// [`RoomSubscription::finish_replay`].
    pub fn subscribe_room(
        &self,
        room: RoomId,
        user: UserRef,
        sub_id: Arc<str>,
        outlet: Arc<Outlet>,
        replay: bool,
    ) -> Arc<RoomSubscription> {
        let sub = Arc::new(RoomSubscription {
            room,
            user: user.clone(),
            sub_id,
            outlet,
            state: Mutex::new(if replay {
                SubState::Replaying(Vec::new())
            } else {
                SubState::Live { last_seq: 0 }
            }),
        });
        loop {
            // The global lock is held only to find (or make) the room's entry,
            // never while a room's own lock is awaited.
            let found = self.rooms.read().get(&room).cloned();
            let state = match found {
                Some(s) => s,
                None => self.rooms.write().entry(room).or_default().clone(),
            };
            let mut st = state.write();
            if st.removed {
                continue;
            }
            if st.subs.is_empty() {
                // Told before the subscription can receive anything.
                if let Some(w) = &*self.watcher.read() {
                    w(room);
                }
            }
            st.subs.push(sub.clone());
            let entry = st.online.entry(user.id).or_insert((user.clone(), 0));
            entry.1 += 1;
            if entry.1 == 1 {
                self.presence_dirty.lock().insert(room);
            }
            return sub;
        }
    }

    /// Removes a room subscription and closes it (nothing more is queued for it).
    /// Lock order: the room's lock alone for the removal; the global map's write
    /// lock only afterwards, briefly, to drop a room left empty — so a big room's
    /// fan-out (which holds its room lock) never stalls other rooms.
    pub fn unsubscribe_room(&self, sub: &Arc<RoomSubscription>) {
        sub.close();
        let Some(state) = self.room_subs(sub.room) else {
            return;
        };
        {
            let mut st = state.write();
            let Some(pos) = st.subs.iter().position(|s| Arc::ptr_eq(s, sub)) else {
                return;
            };
            st.subs.swap_remove(pos);
            if let Some(entry) = st.online.get_mut(&sub.user.id) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    st.online.remove(&sub.user.id);
                    self.presence_dirty.lock().insert(sub.room);
                }
            }
            if !st.subs.is_empty() {
                return;
            }
        }
        let mut rooms = self.rooms.write();
        let Some(current) = rooms.get(&sub.room) else {
            return;
        };
        if !Arc::ptr_eq(current, &state) {
            return;
        }
        // Re-checked under the map lock: a subscriber may have come in meanwhile.
        // Only an empty room's lock is taken here, and its holders are brief.
        let mut st = state.write();
        if st.subs.is_empty() {
            st.removed = true;
            drop(st);
            rooms.remove(&sub.room);
        }
    }

    pub fn subscribe_user(
        &self,
        user: UserId,
        sub_id: Arc<str>,
        outlet: Arc<Outlet>,
    ) -> Arc<UserSubscription> {
        let sub = Arc::new(UserSubscription {
            user,
            sub_id,
            outlet,
        });
        self.users
            .write()
            .entry(user)
            .or_default()
            .push(sub.clone());
        sub
    }

    pub fn unsubscribe_user(&self, sub: &Arc<UserSubscription>) {
        let mut users = self.users.write();
        if let Some(list) = users.get_mut(&sub.user) {
            list.retain(|s| !Arc::ptr_eq(s, sub));
            if list.is_empty() {
                users.remove(&sub.user);
            }
        }
    }

    /// Removes every subscription `user` holds to `room` on this node.
    pub fn drop_user_from_room(&self, room: RoomId, user: UserId) {
        let Some(state) = self.room_subs(room) else {
            return;
        };
        let subs: Vec<_> = state
            .read()
            .subs
            .iter()
            .filter(|s| s.user.id == user)
            .cloned()
            .collect();
        for s in subs {
            self.unsubscribe_room(&s);
        }
    }

    /// Users subscribed to `room` on this node, by id.
    pub fn online(&self, room: RoomId) -> Vec<UserRef> {
        self.online_snapshot(room, usize::MAX).0
    }

    /// The first `max` online users of `room` by id (on every node), and how many
    /// there are.
    pub fn online_snapshot(&self, room: RoomId, max: usize) -> (Vec<UserRef>, usize) {
        let remote = self.remote.lock();
        let Some(others) = remote.room(room) else {
            // One node (or nobody elsewhere): no merge, and only `max` names copied.
            return self.local_online(room, max);
        };
        let mut all: BTreeMap<UserId, UserRef> = self
            .local_online(room, usize::MAX)
            .0
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        for u in others {
            all.entry(u.id).or_insert_with(|| u.clone());
        }
        let n = all.len();
        let list = all.into_values().take(max).collect();
        (list, n)
    }

    /// The first `max` users subscribed to `room` on this node only, by id, and
    /// how many there are.
    fn local_online(&self, room: RoomId, max: usize) -> (Vec<UserRef>, usize) {
        let Some(state) = self.room_subs(room) else {
            return (Vec::new(), 0);
        };
        let st = state.read();
        let list = st
            .online
            .values()
            .take(max)
            .map(|(user, _)| user.clone())
            .collect();
        (list, st.online.len())
    }

    fn room_subs(&self, room: RoomId) -> Option<Arc<RwLock<RoomState>>> {
        self.rooms.read().get(&room).cloned()
    }

    fn fan_out_room(&self, room: RoomId, ev: Arc<Event>, skip_user: Option<UserId>) {
        let Some(state) = self.room_subs(room) else {
            return;
        };
        let st = state.read();
        for sub in &st.subs {
            if Some(sub.user.id) != skip_user {
                sub.deliver(&ev);
            }
        }
        self.metrics.fanout_events.inc();
    }

    /// Whether some connected user here blocks `sender` (one atomic load when
    /// nobody here blocks anyone).
    fn someone_hides(&self, sender: UserId) -> bool {
        self.blocks.anyone_blocked() && self.blocks.read().is_blocked(sender)
    }

    /// Fans out an event of `sender`'s: subscribers who block them get
    /// `hidden` instead (`None`: nothing).
    fn fan_out_from(
        &self,
        room: RoomId,
        sender: UserId,
        ev: Arc<Event>,
        hidden: Option<Arc<Event>>,
    ) {
        let Some(state) = self.room_subs(room) else {
            return;
        };
        let st = state.read();
        let blocks = self.blocks.read();
        for sub in &st.subs {
            if sub.user.id == sender {
                if hidden.is_some() {
                    sub.deliver(&ev);
                }
            } else if !blocks.hides(sub.user.id, sender) {
                sub.deliver(&ev);
            } else if let Some(h) = &hidden {
                sub.deliver(h);
            }
        }
        self.metrics.fanout_events.inc();
    }

    /// The presence event of `room` as it is now. In a big room the list is cut at
    /// [`PRESENCE_LIST_MAX`] users (lowest ids first); `count` is always the total,
    /// so a join in a room of N costs O(N) once per interval, not O(N²).
    pub fn presence_event(&self, room: RoomId) -> Arc<Event> {
        let (online, count) = self.online_snapshot(room, PRESENCE_LIST_MAX);
        self.presence_body(room, &online, count)
    }

    /// The presence event of `room` as `viewer` sees it (without anyone they block).
    pub fn presence_event_for(&self, room: RoomId, viewer: UserId) -> Arc<Event> {
        let (mut online, mut count) = self.online_snapshot(room, PRESENCE_LIST_MAX);
        if let Some(hides) = self.blocks_of(viewer) {
            let before = online.len();
            online.retain(|u| !hides.contains(&u.id));
            count -= before - online.len();
        }
        self.presence_body(room, &online, count)
    }

    fn presence_body(&self, room: RoomId, online: &[UserRef], count: usize) -> Arc<Event> {
        #[derive(serde::Serialize)]
        struct Presence<'a> {
            #[serde(rename = "type")]
            ty: &'static str,
            room_id: RoomId,
            online: &'a [UserRef],
            count: usize,
        }
        let body = serde_json::to_vec(&Presence {
            ty: "presence",
            room_id: room,
            online,
            count,
        })
        .expect("presence serializes");
        self.event(room_destination(room).into(), None, Bytes::from(body))
    }

    /// Broadcasts `room`'s presence; a subscriber who blocks someone listed
    /// gets the list without them (and `count` less as many).
    fn fan_out_presence(&self, room: RoomId) {
        let (online, count) = self.online_snapshot(room, PRESENCE_LIST_MAX);
        let ev = self.presence_body(room, &online, count);
        if !self.blocks.anyone_blocked() || !online.iter().any(|u| self.someone_hides(u.id)) {
            self.fan_out_room(room, ev, None);
            return;
        }
        let Some(state) = self.room_subs(room) else {
            return;
        };
        let st = state.read();
        let blocks = self.blocks.read();
        let mut filtered: HashMap<UserId, Arc<Event>> = HashMap::new();
        for sub in &st.subs {
            let viewer = sub.user.id;
            if !online.iter().any(|u| blocks.hides(viewer, u.id)) {
                sub.deliver(&ev);
                continue;
            }
            let own = filtered.entry(viewer).or_insert_with(|| {
                let kept: Vec<UserRef> = online
                    .iter()
                    .filter(|u| !blocks.hides(viewer, u.id))
                    .cloned()
                    .collect();
                let left_out = online.len() - kept.len();
                self.presence_body(room, &kept, count - left_out)
            });
            sub.deliver(own);
        }
        self.metrics.fanout_events.inc();
    }
}

impl BusSink for Hub {
    fn deliver(&self, event: BusEvent) {
        match event {
            BusEvent::Message(m) => {
                let ev = Arc::new(Event {
                    seq: Some(m.seq),
                    destination: room_destination(m.room_id).into(),
                    message_id: format!("m{}", m.id).into(),
                    body: Bytes::from(m.to_json_bytes()),
                });
                if self.someone_hides(m.sender.id) {
                    let hidden = Arc::new(Event {
                        seq: ev.seq,
                        destination: ev.destination.clone(),
                        message_id: ev.message_id.clone(),
                        body: Bytes::from(m.hidden().to_json_bytes()),
                    });
                    self.fan_out_from(m.room_id, m.sender.id, ev, Some(hidden));
                } else {
                    self.fan_out_room(m.room_id, ev, None);
                }
                if m.kind == MessageKind::Leave {
                    // Leaving ends the leaver's subscriptions (after they saw the notice):
                    // a private room's traffic must stop reaching a non-member.
                    self.drop_user_from_room(m.room_id, m.sender.id);
                }
            }
            BusEvent::Typing { room_id, user } => {
                let body = json!({"type": "typing", "room_id": room_id, "user": user});
                let ev = self.event(
                    room_destination(room_id).into(),
                    None,
                    Bytes::from(body.to_string()),
                );
                if self.someone_hides(user.id) {
                    self.fan_out_from(room_id, user.id, ev, None);
                } else {
                    self.fan_out_room(room_id, ev, Some(user.id));
                }
            }
            BusEvent::UserChanged { user_id, banned } => {
                if let Some(w) = &*self.user_watcher.read() {
                    w(user_id);
                }
                if banned {
                    self.kill_user(user_id, BANNED);
                }
            }
            BusEvent::MessageDeleted { room_id, id, seq } => {
                let body =
                    json!({"type": "message.deleted", "room_id": room_id, "id": id, "seq": seq});
                // Not a stored message's event: no `seq` of its own, so per-subscription
                // de-duplication by `seq` lets it through.
                let ev = self.event(
                    room_destination(room_id).into(),
                    None,
                    Bytes::from(body.to_string()),
                );
                self.fan_out_room(room_id, ev, None);
            }
            BusEvent::Activity { .. } | BusEvent::PushChanged { .. } => self.tell_push(&event),
            BusEvent::BlockChanged {
                ref blocker,
                ref blocked,
            } => {
                self.tell_push(&event);
                let (blocker, blocked) = (*blocker, blocked);
                self.blocks.update(|b| {
                    b.bump();
                    if self.connections.lock().contains_key(&blocker) {
                        b.set(blocker, blocked);
                    }
                });
            }
            BusEvent::User { user_id, body } => {
                let subs = self.users.read().get(&user_id).cloned();
                let ev = self.event(USER_EVENTS.into(), None, body);
                for sub in subs.iter().flatten() {
                    sub.outlet.push(Outbound::Event {
                        sub: sub.sub_id.clone(),
                        event: ev.clone(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn user(id: UserId) -> UserRef {
        UserRef {
            id,
            name: format!("u{id}"),
            guest: false,
        }
    }

    /// Defect: `unsubscribe_room` held the global rooms lock while it waited for
    /// one room's lock, so one busy room (a long fan-out holds its lock) stalled
    /// subscribing to, and publishing in, every other room.
    #[test]
    fn one_busy_room_does_not_stall_the_others() {
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let outlet = Outlet::new(1, 1000, metrics);
        let a = hub.subscribe_room(1, user(1), "a".into(), outlet.clone(), false);
        let _b = hub.subscribe_room(1, user(2), "b".into(), outlet.clone(), false);
        // Room 1 is busy: its lock is held, as during a big fan-out.
        let room1 = hub.room_subs(1).unwrap();
        let busy = room1.read();
        // Someone leaves room 1 meanwhile: that waits for room 1.
        let h = hub.clone();
        let leaving = std::thread::spawn(move || h.unsubscribe_room(&a));
        std::thread::sleep(Duration::from_millis(100));
        // Room 2 is not room 1: subscribing and publishing there go ahead.
        let (tx, rx) = mpsc::channel();
        let (h, o) = (hub.clone(), outlet.clone());
        std::thread::spawn(move || {
            let _s = h.subscribe_room(2, user(3), "c".into(), o, false);
            h.deliver(BusEvent::Typing {
                room_id: 2,
                user: user(4),
            });
            let _ = tx.send(());
        });
        let went_ahead = rx.recv_timeout(Duration::from_secs(3)).is_ok();
        drop(busy);
        leaving.join().unwrap();
        assert!(went_ahead, "room 2 waited for room 1's lock");
        assert_eq!(hub.online(1).len(), 1, "the leave went through afterwards");
    }

    /// A ban (from any node) closes every connection of that user on this node
    /// with ERROR `banned`, after the user watcher heard of it; others stay.
    #[test]
    fn a_ban_kills_every_connection_of_the_user_and_only_theirs() {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(metrics.clone());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        hub.set_user_watcher(Box::new(move |u| h.lock().push(u)));
        let (o1, o2, o3) = (
            Outlet::new(1, 10, metrics.clone()),
            Outlet::new(2, 10, metrics.clone()),
            Outlet::new(3, 10, metrics.clone()),
        );
        let gone = Outlet::new(4, 10, metrics);
        hub.register_connection(1, o1.clone());
        hub.register_connection(1, o2.clone());
        hub.register_connection(2, o3.clone());
        hub.register_connection(1, gone.clone());
        hub.unregister_connection(1, &gone);
        hub.deliver(BusEvent::UserChanged {
            user_id: 2,
            banned: false,
        });
        assert!(!o3.is_closing(), "a role change closes nothing");
        hub.deliver(BusEvent::UserChanged {
            user_id: 1,
            banned: true,
        });
        assert_eq!(*heard.lock(), vec![2, 1]);
        for o in [&o1, &o2] {
            assert!(o.is_closing());
            assert_eq!(o.take_reason().as_deref(), Some(BANNED));
        }
        assert!(!o3.is_closing());
        assert!(
            !gone.is_closing(),
            "an unregistered connection is not touched"
        );
        hub.unregister_connection(1, &o1);
        hub.unregister_connection(1, &o2);
        assert_eq!(hub.kill_user(1, BANNED), 0);
    }

    /// A deletion reaches the room's live subscribers even though its `seq` is
    /// one they already had.
    #[test]
    fn a_deletion_reaches_subscribers_past_the_seq_filter() {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(metrics.clone());
        let outlet = Outlet::new(1, 100, metrics);
        let _s = hub.subscribe_room(5, user(1), "s".into(), outlet.clone(), false);
        let msg = crate::model::Message {
            id: 10,
            room_id: 5,
            seq: 3,
            kind: MessageKind::Text,
            sender: user(2),
            text: "bad".into(),
            client_id: None,
            sent_at: 0,
            masked: false,
            attachments: vec![],
        };
        hub.deliver(BusEvent::Message(Arc::new(msg)));
        hub.deliver(BusEvent::MessageDeleted {
            room_id: 5,
            id: 10,
            seq: 3,
        });
        let mut out = Vec::new();
        outlet.take(&mut out, 10);
        let bodies: Vec<serde_json::Value> = out
            .iter()
            .filter_map(|o| match o {
                Outbound::Event { event, .. } => serde_json::from_slice(&event.body).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        assert_eq!(
            bodies[1],
            json!({"type": "message.deleted", "room_id": 5, "id": 10, "seq": 3})
        );
    }

    fn bodies(outlet: &Outlet) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        outlet.take(&mut out, 100);
        out.iter()
            .filter_map(|o| match o {
                Outbound::Event { event, .. } => serde_json::from_slice(&event.body).ok(),
                _ => None,
            })
            .collect()
    }

    /// A connected blocker gets the blocked user's message as a placeholder
    /// with the same seq, none of their typing, and presence without them; a
    /// list installed from a read older than a change event is refused.
    #[test]
    fn blocks_hide_messages_typing_and_presence_from_the_blocker_only() {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(metrics.clone());
        let (oa, oc) = (
            Outlet::new(1, 100, metrics.clone()),
            Outlet::new(3, 100, metrics),
        );
        hub.register_connection(1, oa.clone());
        hub.register_connection(3, oc.clone());
        let stale = hub.block_generation();
        hub.deliver(BusEvent::BlockChanged {
            blocker: 1,
            blocked: vec![2],
        });
        assert!(
            !hub.install_blocks(1, &[], stale),
            "a stale read is refused"
        );
        let _a = hub.subscribe_room(9, user(1), "a".into(), oa.clone(), false);
        let _c = hub.subscribe_room(9, user(3), "c".into(), oc.clone(), false);
        let _b = hub.subscribe_room(
            9,
            user(2),
            "b".into(),
            Outlet::new(2, 100, Arc::new(Metrics::new())),
            false,
        );
        let msg = crate::model::Message {
            id: 11,
            room_id: 9,
            seq: 4,
            kind: MessageKind::Text,
            sender: user(2),
            text: "secret".into(),
            client_id: Some("c1".into()),
            sent_at: 0,
            masked: false,
            attachments: vec![],
        };
        hub.deliver(BusEvent::Message(Arc::new(msg)));
        hub.deliver(BusEvent::Typing {
            room_id: 9,
            user: user(2),
        });
        hub.flush_presence();
        let a = bodies(&oa);
        let c = bodies(&oc);
        assert_eq!(
            a[0],
            json!({"type": "message", "id": 11, "room_id": 9, "seq": 4, "kind": "hidden",
                   "sent_at": "1970-01-01T00:00:00.000Z"})
        );
        assert_eq!(c[0]["text"], "secret");
        assert!(a.iter().all(|v| v["type"] != "typing"), "{a:?}");
        assert!(c.iter().any(|v| v["type"] == "typing"), "{c:?}");
        let pa = a.iter().find(|v| v["type"] == "presence").unwrap();
        let pc = c.iter().find(|v| v["type"] == "presence").unwrap();
        assert_eq!(
            (pa["count"].as_u64(), pc["count"].as_u64()),
            (Some(2), Some(3))
        );
        assert!(
            pa["online"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| u["id"] != 2),
            "{pa}"
        );
        // Unblocked (the whole list replaced): the next message is whole again.
        hub.deliver(BusEvent::BlockChanged {
            blocker: 1,
            blocked: vec![],
        });
        assert!(!hub.blocks.anyone_blocked());
        // The blocker's last connection going forgets their list.
        hub.deliver(BusEvent::BlockChanged {
            blocker: 1,
            blocked: vec![2],
        });
        hub.unregister_connection(1, &oa);
        assert!(hub.blocks_of(1).is_none());
    }

    #[test]
    fn a_closed_subscription_gets_nothing_more_and_empty_rooms_go() {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(metrics.clone());
        let outlet = Outlet::new(1, 1000, metrics);
        let s = hub.subscribe_room(7, user(1), "s".into(), outlet.clone(), true);
        let ev = hub.event("/topic/rooms.7".into(), Some(1), Bytes::from_static(b"{}"));
        assert!(s.push_replayed(ev.clone()));
        hub.unsubscribe_room(&s);
        assert!(!s.push_replayed(ev), "nothing queued after UNSUBSCRIBE");
        assert!(hub.room_subs(7).is_none(), "the empty room is dropped");
        // A new subscription to the room after that works as usual.
        let s2 = hub.subscribe_room(7, user(1), "s2".into(), outlet, false);
        assert!(!s2.is_closed());
        assert_eq!(hub.online(7).len(), 1);
    }
}
