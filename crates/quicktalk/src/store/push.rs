//! The records of contract §8 as the store keeps them: a user's Web Push
//! subscriptions (one per browser, keyed by its endpoint) and their per-room
//! notification levels.

use crate::model::UserId;

/// What a user hears about a room's messages when away (contract §8).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    /// Every message from someone else.
    All,
    /// Messages whose text names the user (`@username`).
    Mentions,
    /// Nothing.
    None,
}

impl NotifyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(NotifyLevel::All),
            "mentions" => Some(NotifyLevel::Mentions),
            "none" => Some(NotifyLevel::None),
            _ => None,
        }
    }
}

/// One browser's push subscription. The endpoint is unique: a browser used by
/// another account moves to that account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub endpoint: String,
    pub user_id: UserId,
    /// The browser's P-256 public key, base64url (as the client sent it).
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
    pub created_at: i64,
}

/// A member of a room who could be pushed to: they have at least one push
/// subscription. `level` is their own choice for the room, if they made one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub user_id: UserId,
    /// Registered users' usernames (what `@name` mentions); guests have none.
    pub username: Option<String>,
    pub level: Option<NotifyLevel>,
}

/// The default level of a room kind (contract §8).
pub fn default_level(kind: crate::model::RoomKind) -> NotifyLevel {
    match kind {
        crate::model::RoomKind::Group => NotifyLevel::Mentions,
        _ => NotifyLevel::All,
    }
}
