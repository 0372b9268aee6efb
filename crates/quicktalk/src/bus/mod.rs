//! The event bus: how stored messages and ephemeral events reach every node's
//! subscribers. Behind the [`Bus`] trait, one module per backend.
//!
//! Single node: [`local::LocalBus`] hands events straight to this node's fan-out
//! hub. A multi-node backend publishes to a shared log and feeds the hub of every
//! node from it; producers never know which one they talk to.

pub mod local;

use std::sync::Arc;

use bytes::Bytes;

use crate::model::{Message, MessageId, RoomId, UserId, UserRef};

/// An event to fan out.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// A message that is durably stored.
    Message(Arc<Message>),
    /// Someone is typing in a room (never stored).
    Typing { room_id: RoomId, user: UserRef },
    /// A JSON event for one user's `/user/queue/events`.
    User { user_id: UserId, body: Bytes },
    /// A user's role or ban changed (contract §5): every node forgets its cached
    /// copy of the user; when `banned`, their connections on every node close.
    UserChanged { user_id: UserId, banned: bool },
    /// A stored message became a tombstone (contract §5): the room's subscribers
    /// get `{"type":"message.deleted","room_id","id","seq"}`.
    MessageDeleted {
        room_id: RoomId,
        id: MessageId,
        seq: i64,
    },
    /// `blocker` now blocks exactly `blocked` (contract §7, the whole list, so
    /// a lost or reordered event is repaired by the next): every node with
    /// connections of `blocker` filters what reaches them.
    BlockChanged {
        blocker: UserId,
        blocked: Vec<UserId>,
    },
    /// `user_id` was active at `at` (ms, contract §8): in `session` (0: none),
    /// which is now focused or not (`None`: unchanged), and moved their read
    /// cursor in a room to a seq (`read`). Every node's push planner hears it.
    Activity {
        user_id: UserId,
        session: u64,
        focused: Option<bool>,
        read: Option<(RoomId, i64)>,
        at: i64,
    },
    /// `user_id`'s push subscriptions or notification levels changed: every
    /// node's push planner forgets what it cached about them.
    PushChanged { user_id: UserId },
}

/// Publishes events to every node's subscribers.
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, event: BusEvent);
}

/// What a bus delivers into: the fan-out hub of this node.
pub trait BusSink: Send + Sync + 'static {
    fn deliver(&self, event: BusEvent);
}
