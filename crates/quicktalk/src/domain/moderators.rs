//! What moderators do (contract §5): work the review queue (user reports and
//! flagged messages, with the surrounding messages), ban and unban users, and
//! delete messages (a tombstone that keeps `seq`).
//!
//! [`Moderation::ban`] is the one place a ban takes effect, whoever asks (a
//! moderator, or automatic escalation with `by: None`): stored first; then the
//! user's cached copy is dropped on this node at once and on every node by
//! `BusEvent::UserChanged` (which also closes their sockets everywhere); they
//! leave random matching (a running match ends for the partner with
//! `partner_left`). Every route checks bans through
//! [`Accounts`](super::accounts::Accounts), so an expired temporary ban stops
//! applying by itself.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::accounts::UserCache;
use super::matching::MatchService;
use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::fanout::{Hub, BANNED};
use crate::model::{
    now_ms, rfc3339, HistoryQuery, Message, MessageId, Room, RoomId, RoomKind, User, UserId,
    BAN_FOREVER,
};
use crate::store::moderation::{Ban, Deleted, QueueItem, QueueKind, QueueQuery, Resolved};
use crate::store::Store;

/// Longest ban reason, in characters.
pub const MAX_BAN_REASON: usize = 500;
/// Longest resolution note, in characters.
pub const MAX_RESOLUTION: usize = 200;
/// Largest queue page.
pub const MAX_QUEUE_PAGE: usize = 100;
pub const DEFAULT_QUEUE_PAGE: usize = 50;
/// Most bans listed.
pub const MAX_BANS_LISTED: usize = 500;
/// Messages of context on each side of a queued message (or the room's last
/// `2 * CONTEXT` when the item names no message).
const CONTEXT: usize = 5;

/// A queue item as moderators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub id: i64,
    pub kind: QueueKind,
    pub created_at: String,
    pub room: RoomBrief,
    pub subject: Subject,
    pub reporter: Option<User>,
    pub reason: String,
    pub categories: Vec<String>,
    pub score: Option<f64>,
    pub message: Option<Message>,
    pub context: Vec<Message>,
    pub resolved: Option<ResolutionView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoomBrief {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
}

/// The reported or flagged user, with `banned_until` while banned (RFC 3339,
/// `null` for a ban until lifted).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subject {
    #[serde(flatten)]
    pub user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub banned_until: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolutionView {
    pub at: String,
    /// `null` when resolved automatically.
    pub by: Option<User>,
    pub resolution: Option<String>,
}

/// A ban as the API shows it: `banned_until` `null` = until lifted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BanView {
    pub user: User,
    pub banned_until: Option<String>,
    pub reason: String,
}

impl From<Ban> for BanView {
    fn from(b: Ban) -> Self {
        BanView {
            user: b.user,
            banned_until: until_json(b.until),
            reason: b.reason,
        }
    }
}

fn until_json(until: i64) -> Option<String> {
    (until != BAN_FOREVER).then(|| rfc3339(until))
}

pub struct Moderation {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    matching: Arc<MatchService>,
    users: Arc<UserCache>,
}

/// Only moderators and admins.
fn require_staff(user: &User) -> AppResult<()> {
    if user.role.moderates() {
        Ok(())
    } else {
        Err(AppError::forbidden("moderators only"))
    }
}

/// Looked-up users and rooms of one queue page (each read once).
#[derive(Default)]
struct Lookups {
    users: HashMap<UserId, Option<User>>,
    rooms: HashMap<RoomId, Option<Room>>,
}

impl super::moderation::AutoBan for Moderation {
    fn auto_ban<'a>(
        &'a self,
        user: UserId,
        until: i64,
        reason: &'a str,
    ) -> futures_util::future::BoxFuture<'a, AppResult<()>> {
        Box::pin(async move { self.ban(None, user, Some(until), reason).await.map(drop) })
    }
}

impl Moderation {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        matching: Arc<MatchService>,
        users: Arc<UserCache>,
    ) -> Self {
        Moderation {
            store,
            bus,
            hub,
            matching,
            users,
        }
    }

    /// A page of the review queue, oldest first, and whether more follow.
    pub async fn queue(&self, by: &User, q: QueueQuery) -> AppResult<(Vec<QueueEntry>, bool)> {
        require_staff(by)?;
        let (items, more) = self.store.moderation_queue(q).await?;
        let mut seen = Lookups::default();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.entry(item, &mut seen).await?);
        }
        Ok((out, more))
    }

    /// Resolves an open item, with an optional note (at most [`MAX_RESOLUTION`]
    /// characters); `409 already_resolved` if it was resolved before.
    pub async fn resolve(
        &self,
        by: &User,
        id: i64,
        resolution: Option<&str>,
    ) -> AppResult<QueueEntry> {
        require_staff(by)?;
        let note = match resolution.map(str::trim) {
            None | Some("") => None,
            Some(r) if r.chars().count() > MAX_RESOLUTION || r.chars().any(char::is_control) => {
                return Err(AppError::invalid(
                    "invalid_resolution",
                    format!("resolution must be at most {MAX_RESOLUTION} characters"),
                ))
            }
            Some(r) => Some(r.to_owned()),
        };
        match self
            .store
            .resolve_queue_item(id, Some(by.id), note, now_ms())
            .await?
        {
            Resolved::Now(item) => {
                tracing::info!(item = id, by = by.id, "queue item resolved");
                self.entry(item, &mut Lookups::default()).await
            }
            Resolved::Already(_) => Err(AppError::conflict(
                "already_resolved",
                "this item was resolved already",
            )),
            Resolved::NotFound => Err(AppError::NotFound("queue item")),
        }
    }

    /// Bans `user` until `until` (ms; `None` = until lifted) for `reason`
    /// (1–[`MAX_BAN_REASON`] characters). `by` is the moderator, or `None` for an
    /// automatic ban (escalation). A moderator cannot ban themselves nor anyone
    /// whose role is at least theirs; an automatic ban never applies to
    /// moderators or admins. Takes effect on every node: see the module docs.
    pub async fn ban(
        &self,
        by: Option<&User>,
        user: UserId,
        until: Option<i64>,
        reason: &str,
    ) -> AppResult<BanView> {
        if let Some(by) = by {
            require_staff(by)?;
        }
        let reason = reason.trim();
        let n = reason.chars().count();
        if n == 0 || n > MAX_BAN_REASON || reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(AppError::invalid(
                "invalid_reason",
                format!("reason must be 1-{MAX_BAN_REASON} characters"),
            ));
        }
        if until.is_some_and(|t| t <= now_ms()) {
            return Err(AppError::invalid(
                "invalid_until",
                "until must be a time in the future",
            ));
        }
        if by.is_some_and(|b| b.id == user) {
            return Err(AppError::invalid(
                "cannot_ban_self",
                "you cannot ban yourself",
            ));
        }
        let target = self
            .store
            .user(user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let outranked = match by {
            Some(b) => target.role >= b.role,
            None => target.role.moderates(),
        };
        if outranked {
            return Err(AppError::forbidden(
                "you cannot ban a user whose role is equal to or above yours",
            ));
        }
        let until = until.unwrap_or(BAN_FOREVER);
        let banned = self
            .store
            .set_ban(user, until, reason)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        // This node at once; the bus tells every node (closing sockets there).
        self.users.forget(user);
        // Out of matching before the sockets close, so the partner hears
        // `partner_left` now rather than `partner_disconnected` after the grace.
        if let Err(e) = self.matching.disconnect(&banned).await {
            tracing::error!(error = %e, user, "removing a banned user from matching");
        }
        self.bus.publish(BusEvent::UserChanged {
            user_id: user,
            banned: true,
        });
        self.hub.kill_user(user, BANNED);
        tracing::info!(user, by = ?by.map(|b| b.id), until, "user banned");
        Ok(BanView {
            user: banned,
            banned_until: until_json(until),
            reason: reason.to_owned(),
        })
    }

    /// Lifts `user`'s ban (if any): they may log in and connect again at once.
    pub async fn unban(&self, by: &User, user: UserId) -> AppResult<User> {
        require_staff(by)?;
        let target = self
            .store
            .user(user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        if target.id != by.id && target.role >= by.role {
            return Err(AppError::forbidden(
                "you cannot unban a user whose role is equal to or above yours",
            ));
        }
        let user_now = self
            .store
            .clear_ban(user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        self.users.forget(user);
        self.bus.publish(BusEvent::UserChanged {
            user_id: user,
            banned: false,
        });
        tracing::info!(user, by = by.id, "ban lifted");
        Ok(user_now)
    }

    /// The bans in force now, by user id.
    pub async fn bans(&self, by: &User) -> AppResult<Vec<BanView>> {
        require_staff(by)?;
        Ok(self
            .store
            .bans(now_ms(), MAX_BANS_LISTED)
            .await?
            .into_iter()
            .map(BanView::from)
            .collect())
    }

    /// Turns a message into a tombstone (`kind:"deleted"`, text removed, `seq`
    /// kept) and tells the room's subscribers on every node
    /// (`{"type":"message.deleted",…}`). Deleting a tombstone again changes
    /// nothing. Queue items are left for the moderator to resolve.
    pub async fn delete_message(&self, by: &User, id: MessageId) -> AppResult<Message> {
        require_staff(by)?;
        match self.store.delete_message(id).await? {
            Deleted::Now(m) => {
                self.bus.publish(BusEvent::MessageDeleted {
                    room_id: m.room_id,
                    id: m.id,
                    seq: m.seq,
                });
                tracing::info!(
                    message = id,
                    room = m.room_id,
                    by = by.id,
                    "message deleted"
                );
                Ok(m)
            }
            Deleted::Already(m) => Ok(m),
            Deleted::NotDeletable(_) => Err(AppError::conflict(
                "not_deletable",
                "join and leave notices cannot be deleted",
            )),
            Deleted::NotFound => Err(AppError::NotFound("message")),
        }
    }

    async fn user(&self, id: UserId, seen: &mut Lookups) -> AppResult<Option<User>> {
        if let Some(u) = seen.users.get(&id) {
            return Ok(u.clone());
        }
        let u = self.store.user(id).await?;
        seen.users.insert(id, u.clone());
        Ok(u)
    }

    async fn entry(&self, item: QueueItem, seen: &mut Lookups) -> AppResult<QueueEntry> {
        let room = match seen.rooms.get(&item.room_id) {
            Some(r) => r.clone(),
            None => {
                let r = self.store.room(item.room_id).await?;
                seen.rooms.insert(item.room_id, r.clone());
                r
            }
        }
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("queue item {} lost its room", item.id))
        })?;
        let subject = self.user(item.subject_id, seen).await?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("queue item {} lost its user", item.id))
        })?;
        let reporter = match item.reporter_id {
            Some(id) => self.user(id, seen).await?,
            None => None,
        };
        let message = match item.message_id {
            Some(id) => self.store.message(id).await?,
            None => None,
        };
        let context = match &message {
            Some(m) => {
                let (mut before, _) = self
                    .store
                    .messages(
                        m.room_id,
                        HistoryQuery {
                            before_seq: Some(m.seq),
                            after_seq: None,
                            limit: CONTEXT,
                        },
                    )
                    .await?;
                let (after, _) = self
                    .store
                    .messages(
                        m.room_id,
                        HistoryQuery {
                            before_seq: None,
                            after_seq: Some(m.seq),
                            limit: CONTEXT,
                        },
                    )
                    .await?;
                before.extend(after);
                before
            }
            None => {
                self.store
                    .messages(
                        item.room_id,
                        HistoryQuery {
                            before_seq: None,
                            after_seq: None,
                            limit: 2 * CONTEXT,
                        },
                    )
                    .await?
                    .0
            }
        };
        let resolved = match &item.resolved {
            Some(r) => Some(ResolutionView {
                at: rfc3339(r.at),
                by: match r.by {
                    Some(id) => self.user(id, seen).await?,
                    None => None,
                },
                resolution: r.note.clone(),
            }),
            None => None,
        };
        let now = now_ms();
        let banned_until = subject
            .banned_at(now)
            .then(|| subject.banned_until.and_then(until_json));
        Ok(QueueEntry {
            id: item.id,
            kind: item.kind,
            created_at: rfc3339(item.created_at),
            room: RoomBrief {
                id: room.id,
                name: room.name,
                kind: room.kind,
            },
            subject: Subject {
                user: subject,
                banned_until,
            },
            reporter,
            categories: item.categories(),
            reason: match item.kind {
                QueueKind::Report => item.reason,
                QueueKind::Flag => format!("flagged: {}", item.categories().join(", ")),
            },
            score: item.score,
            message,
            context,
            resolved,
        })
    }
}
