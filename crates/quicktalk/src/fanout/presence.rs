//! Coalesced presence broadcasts, across nodes in multi-node mode.
//!
//! A room whose local online set changed is marked dirty; every interval each
//! dirty room gets one snapshot. With several nodes, each node also announces
//! its own online users of that room (through a publisher the cluster bus
//! installs) and keeps the other nodes' latest announcements, merged into every
//! snapshot. Announcements are repeated every [`ANNOUNCE_EVERY`] and forgotten
//! after [`FORGET_AFTER`] without one, so a dead node's users go offline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::model::{RoomId, UserRef};

/// How often a node repeats its presence for every room it has users in.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// How long another node's announcement counts without being repeated.
pub const FORGET_AFTER: Duration = Duration::from_secs(25);
/// Most users one announcement carries.
const ANNOUNCE_MAX: usize = 1000;

/// Sends this node's online users of a room to the other nodes.
pub type PresencePublisher = Box<dyn Fn(RoomId, Vec<UserRef>) + Send + Sync>;

/// Other nodes' announcements.
#[derive(Default)]
pub(super) struct Remote {
    /// room -> node -> (its online users there, when it said so)
    rooms: HashMap<RoomId, HashMap<String, (Vec<UserRef>, Instant)>>,
    /// Rooms whose merged view changed because of another node.
    dirty: Vec<RoomId>,
    publisher: Option<Arc<PresencePublisher>>,
    announced_at: Option<Instant>,
}

impl Remote {
    /// Adds to `out` those of `wanted` other nodes report online in any room.
    pub(super) fn users_among(
        &self,
        wanted: &std::collections::HashSet<crate::model::UserId>,
        out: &mut std::collections::HashSet<crate::model::UserId>,
    ) {
        for nodes in self.rooms.values() {
            for (users, _) in nodes.values() {
                out.extend(users.iter().map(|u| u.id).filter(|id| wanted.contains(id)));
            }
        }
    }

    /// Every user other nodes report online in `room`.
    pub(super) fn room(&self, room: RoomId) -> Option<impl Iterator<Item = &UserRef>> {
        self.rooms
            .get(&room)
            .map(|nodes| nodes.values().flat_map(|(users, _)| users.iter()))
    }
}

impl Hub {
    /// Multi-node mode: where this node's presence announcements go.
    pub fn set_presence_publisher(&self, publisher: PresencePublisher) {
        self.remote.lock().publisher = Some(Arc::new(publisher));
    }

    /// Another node's online users of `room` (replacing what it said before).
    pub fn remote_presence(&self, node: &str, room: RoomId, online: Vec<UserRef>) {
        let mut r = self.remote.lock();
        let nodes = r.rooms.entry(room).or_default();
        if online.is_empty() {
            nodes.remove(node);
            if nodes.is_empty() {
                r.rooms.remove(&room);
            }
        } else {
            nodes.insert(node.to_owned(), (online, Instant::now()));
        }
        r.dirty.push(room);
    }

    /// Broadcasts one presence snapshot to each room whose online set changed since
    /// the last call, and announces this node's changes to the others.
    pub fn flush_presence(&self) {
        let local: Vec<RoomId> = std::mem::take(&mut *self.presence_dirty.lock())
            .into_iter()
            .collect();
        let (remote, publisher, announce_all) = {
            let mut r = self.remote.lock();
            let now = Instant::now();
            // Forget nodes that stopped announcing (they died).
            let mut expired = Vec::new();
            r.rooms.retain(|room, nodes| {
                let before = nodes.len();
                nodes.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
                if nodes.len() != before {
                    expired.push(*room);
                }
                !nodes.is_empty()
            });
            let mut remote = std::mem::take(&mut r.dirty);
            remote.extend(expired);
            let due = r
                .announced_at
                .is_none_or(|at| now.duration_since(at) >= ANNOUNCE_EVERY);
            if due && r.publisher.is_some() {
                r.announced_at = Some(now);
            }
            (remote, r.publisher.clone(), due)
        };
        let mut seen = std::collections::HashSet::new();
        for room in local.iter().chain(remote.iter()) {
            if seen.insert(*room) {
                self.fan_out_presence(*room);
            }
        }
        if let Some(publish) = publisher {
            let rooms: Vec<RoomId> = if announce_all {
                let mut all: Vec<RoomId> = self.rooms.read().keys().copied().collect();
                all.extend(local.iter().copied());
                all.sort_unstable();
                all.dedup();
                all
            } else {
                local
            };
            for room in rooms {
                publish(room, self.local_online(room, ANNOUNCE_MAX).0);
            }
        }
    }

    /// Runs [`Hub::flush_presence`] every `every` until `stop`.
    pub fn spawn_presence_flusher(
        self: &Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => hub.flush_presence(),
                    _ = stop.cancelled() => return,
                }
            }
        })
    }
}
