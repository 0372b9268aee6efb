//! The records of contract §7 as the store keeps them: profile changes, friend
//! requests and their answers. Friendships, blocks and direct rooms are pairs of
//! user ids; the store keeps a pair in one canonical order (lower id first), so a
//! uniqueness rule holds whichever side acts, however many act at once.

use crate::model::{DmPolicy, UserId};

/// A change to a user's profile; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    /// Already validated, NFC, moderated. For a registered user the store
    /// replaces the old name's skeleton in the same transaction (`NameTaken`
    /// if another registered user holds the new one).
    pub display_name: Option<String>,
    /// `Some(None)` clears it.
    pub status_message: Option<Option<String>>,
    /// An avatar id whose objects are already stored; `Some(None)` clears it.
    pub avatar: Option<Option<String>>,
    pub dm_policy: Option<DmPolicy>,
}

impl ProfilePatch {
    pub fn is_empty(&self) -> bool {
        self == &ProfilePatch::default()
    }
}

/// Where a friend request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FriendRequestStatus {
    Pending,
    Accepted,
    Declined,
    Cancelled,
}

impl FriendRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FriendRequestStatus::Pending => "pending",
            FriendRequestStatus::Accepted => "accepted",
            FriendRequestStatus::Declined => "declined",
            FriendRequestStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(FriendRequestStatus::Pending),
            "accepted" => Some(FriendRequestStatus::Accepted),
            "declined" => Some(FriendRequestStatus::Declined),
            "cancelled" => Some(FriendRequestStatus::Cancelled),
            _ => None,
        }
    }
}

/// One friend request, `from` asking `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub id: i64,
    pub from: UserId,
    pub to: UserId,
    pub status: FriendRequestStatus,
    /// When it was made (ms).
    pub created_at: i64,
}

/// What asking to be friends did ([`super::Store::friend_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FriendAsk {
    /// A new pending request.
    Created(FriendRequest),
    /// The same request was already pending: it, unchanged.
    Repeated(FriendRequest),
    /// The other side had already asked: their request, now accepted, and the
    /// two are friends.
    Accepted(FriendRequest),
    /// They were friends already.
    AlreadyFriends,
    /// One of the two blocks the other (checked in the same transaction).
    Blocked,
}

/// An answer to a pending request: `Accept`/`Decline` by its target, `Cancel`
/// by its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FriendAnswer {
    Accept,
    Decline,
    Cancel,
}

/// What answering did ([`super::Store::answer_friend_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The request as it is now (accepted: the two are friends).
    Done(FriendRequest),
    /// No such request, or the caller may not give this answer to it.
    NotFound,
    /// It was answered before: as it is.
    NotPending(FriendRequest),
}

/// Two user ids in the store's canonical order (lower first).
pub fn pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}
