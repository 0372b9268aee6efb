//! The moderation records the [`Store`](super::Store) keeps (contract §5): the
//! review queue (user reports and flagged messages) and bans. Plain data; both
//! backends read and write them with the same meaning.

use crate::model::{MessageId, RoomId, User, UserId};

/// What put an item in the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// A user reported another (`/match/report`, or a message report).
    Report,
    /// The classifier flagged a stored message.
    Flag,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Report => "report",
            QueueKind::Flag => "flag",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "report" => Some(QueueKind::Report),
            "flag" => Some(QueueKind::Flag),
            _ => None,
        }
    }
}

/// Which queue items a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueState {
    /// Not resolved yet (the default).
    #[default]
    Open,
    Resolved,
    All,
}

impl QueueState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(QueueState::Open),
            "resolved" => Some(QueueState::Resolved),
            "all" => Some(QueueState::All),
            _ => None,
        }
    }
    /// The SQL condition (no user input inside).
    pub fn filter_sql(self) -> &'static str {
        match self {
            QueueState::Open => " AND resolved_at IS NULL",
            QueueState::Resolved => " AND resolved_at IS NOT NULL",
            QueueState::All => "",
        }
    }
}

/// A page of the review queue: oldest first, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueQuery {
    pub state: QueueState,
    /// Only items with a greater id (keyset paging).
    pub after: Option<i64>,
    pub limit: usize,
}

/// How an item was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub at: i64,
    /// `None` when resolved automatically.
    pub by: Option<UserId>,
    pub note: Option<String>,
}

/// One row of the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: i64,
    pub kind: QueueKind,
    pub room_id: RoomId,
    /// The reported or flagged message, if any.
    pub message_id: Option<MessageId>,
    /// The reported user, or the flagged message's sender.
    pub subject_id: UserId,
    /// `None` for flags.
    pub reporter_id: Option<UserId>,
    /// A report's reason; a flag's categories, comma-separated.
    pub reason: String,
    /// A flag's classifier score (0..1).
    pub score: Option<f64>,
    pub created_at: i64,
    pub resolved: Option<Resolution>,
}

impl QueueItem {
    /// The classifier's categories of a flag (none for a report).
    pub fn categories(&self) -> Vec<String> {
        match self.kind {
            QueueKind::Report => Vec::new(),
            QueueKind::Flag => self
                .reason
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// What [`Store::resolve_queue_item`](super::Store::resolve_queue_item) did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Resolved now: the item as it is now.
    Now(QueueItem),
    /// It had been resolved before (nothing changed): the item as it is.
    Already(QueueItem),
    NotFound,
}

/// A user's ban as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub user: User,
    /// ms; [`crate::model::BAN_FOREVER`] = until lifted.
    pub until: i64,
    pub reason: String,
}

/// What [`Store::delete_message`](super::Store::delete_message) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// Made a tombstone now: the tombstone.
    Now(crate::model::Message),
    /// It was a tombstone already (nothing changed).
    Already(crate::model::Message),
    /// A `join` or `leave`: membership history, not something a user wrote.
    NotDeletable(crate::model::Message),
    NotFound,
}
