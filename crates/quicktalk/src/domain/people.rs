//! Friends, blocks and direct rooms (contract §7).
//!
//! - Friends are for registered users (a guest gets `403 registration_required`):
//!   requests, answers, unfriending, each told live to both sides on
//!   `/user/queue/events` (`friend.request`, `friend.accepted`,
//!   `friend.cancelled`, `friend.removed`). At most one request per pair is
//!   pending (a uniqueness rule in the store).
//! - A block is enforced by the server everywhere, and never told to the
//!   blocked user: refusals are the generic `403 not_allowed`. Every change
//!   publishes the blocker's whole list (`BusEvent::BlockChanged`), so each
//!   node's hub filters what reaches the blocker's connections there.
//! - One `direct` room per pair, created atomically by the store; who may
//!   open one and post to it is [`direct_allowed`], checked on every post.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::fanout::Hub;
use crate::limits::{Key, Limit, Limits};
use crate::model::{
    now_ms, rfc3339, DmPolicy, RoomId, RoomKind, RoomPolicy, RoomView, User, UserId, Visibility,
};
use crate::store::people::{Answered, FriendAnswer, FriendAsk, FriendRequest};
use crate::store::{NewRoom, Store};

/// Most users one user may block.
pub const MAX_BLOCKS: usize = 1000;
/// Most friends one user may have (a request beyond it is refused).
pub const MAX_FRIENDS: usize = 1000;

/// The refusal that does not say why (a block, or the peer's DM policy).
pub fn not_allowed() -> AppError {
    AppError::Forbidden {
        code: "not_allowed",
        message: "this is not allowed".into(),
    }
}

fn registration_required() -> AppError {
    AppError::Forbidden {
        code: "registration_required",
        message: "only registered users can have friends; create an account first".into(),
    }
}

fn not_yourself() -> AppError {
    AppError::invalid("invalid_user", "you cannot do this with yourself")
}

/// A friend request as the API shows it: `user` is the other party.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub from: UserId,
    pub to: UserId,
    pub status: crate::store::people::FriendRequestStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub user: User,
}

/// A friend in `GET /friends`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Friend {
    pub id: UserId,
    pub username: Option<String>,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub online: bool,
}

/// A user's pending requests, split by direction.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Requests {
    pub incoming: Vec<RequestView>,
    pub outgoing: Vec<RequestView>,
}

pub struct People {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    limits: Arc<Limits>,
}

impl People {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        limits: Arc<Limits>,
    ) -> Self {
        People {
            store,
            bus,
            hub,
            limits,
        }
    }

    /// Installs whom `user` blocks in this node's hub (at CONNECT, once the
    /// connection is registered), re-reading if a block changed meanwhile.
    pub async fn load_blocks(&self, user: UserId) -> AppResult<()> {
        for _ in 0..8 {
            let generation = self.hub.block_generation();
            let list = self.store.blocked_by(user).await?;
            if self.hub.install_blocks(user, &list, generation) {
                return Ok(());
            }
        }
        Err(AppError::Unavailable("blocks keep changing; retry shortly"))
    }

    async fn user(&self, id: UserId) -> AppResult<User> {
        self.store.user(id).await?.ok_or(AppError::NotFound("user"))
    }

    /// `{"type":…}` on `user`'s `/user/queue/events`, on whichever node they are.
    fn tell(&self, user: UserId, body: serde_json::Value) {
        self.bus.publish(BusEvent::User {
            user_id: user,
            body: body.to_string().into(),
        });
    }

    fn view(&self, r: &FriendRequest, other: User) -> RequestView {
        RequestView {
            id: r.id,
            from: r.from,
            to: r.to,
            status: r.status,
            created_at: rfc3339(r.created_at),
            user: other,
        }
    }

    // ---- Friends ----

    /// `me` asks `to` to be friends: the request, and whether it is new (201)
    /// rather than accepted or repeated (200).
    pub async fn request_friend(
        &self,
        me: &User,
        to: UserId,
        ip: IpAddr,
    ) -> AppResult<(RequestView, bool)> {
        if me.guest {
            return Err(registration_required());
        }
        if to == me.id {
            return Err(not_yourself());
        }
        self.limits
            .check(Limit::FriendRequestUser, Key::User(me.id))?;
        self.limits.check(Limit::FriendRequestIp, Key::Ip(ip))?;
        let target = self.user(to).await?;
        if target.guest {
            return Err(AppError::Forbidden {
                code: "registration_required",
                message: "guests cannot have friends".into(),
            });
        }
        if self.store.friends(me.id).await?.len() >= MAX_FRIENDS {
            return Err(AppError::conflict(
                "too_many_friends",
                format!("at most {MAX_FRIENDS} friends"),
            ));
        }
        match self.store.friend_request(me.id, to, now_ms()).await? {
            FriendAsk::Created(r) => {
                self.tell(
                    to,
                    json!({"type": "friend.request", "request": self.view(&r, me.clone())}),
                );
                Ok((self.view(&r, target), true))
            }
            FriendAsk::Repeated(r) => Ok((self.view(&r, target), false)),
            FriendAsk::Accepted(r) => {
                self.accepted(&r, me, &target);
                Ok((self.view(&r, target), false))
            }
            FriendAsk::AlreadyFriends => Err(AppError::conflict(
                "already_friends",
                "you are friends already",
            )),
            FriendAsk::Blocked => Err(not_allowed()),
        }
    }

    /// Tells both sides of accepted request `r` (`me` is one of them).
    fn accepted(&self, r: &FriendRequest, me: &User, other: &User) {
        self.tell(
            other.id,
            json!({"type": "friend.accepted", "request": self.view(r, me.clone())}),
        );
        self.tell(
            me.id,
            json!({"type": "friend.accepted", "request": self.view(r, other.clone())}),
        );
    }

    /// `me`'s pending requests, incoming and outgoing.
    pub async fn requests(&self, me: &User) -> AppResult<Requests> {
        if me.guest {
            return Err(registration_required());
        }
        let pending = self.store.friend_requests(me.id).await?;
        let ids: Vec<UserId> = pending
            .iter()
            .map(|r| if r.from == me.id { r.to } else { r.from })
            .collect();
        let users: HashMap<UserId, User> = self
            .store
            .users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut out = Requests {
            incoming: Vec::new(),
            outgoing: Vec::new(),
        };
        for r in pending {
            let other = if r.from == me.id { r.to } else { r.from };
            let Some(user) = users.get(&other) else {
                continue;
            };
            let v = self.view(&r, user.clone());
            if r.from == me.id {
                out.outgoing.push(v);
            } else {
                out.incoming.push(v);
            }
        }
        Ok(out)
    }

    /// Accepts, declines (as its target) or cancels (as its sender) request `id`.
    pub async fn answer(&self, me: &User, id: i64, answer: FriendAnswer) -> AppResult<RequestView> {
        if me.guest {
            return Err(registration_required());
        }
        let r = match self
            .store
            .answer_friend_request(id, me.id, answer, now_ms())
            .await?
        {
            Answered::Done(r) => r,
            Answered::NotFound => return Err(AppError::NotFound("friend request")),
            Answered::NotPending(r) => {
                return Err(AppError::conflict(
                    "not_pending",
                    format!("this request was {} already", r.status.as_str()),
                ))
            }
        };
        let other = self
            .user(if r.from == me.id { r.to } else { r.from })
            .await?;
        match answer {
            FriendAnswer::Accept => self.accepted(&r, me, &other),
            FriendAnswer::Cancel => self.tell(
                other.id,
                json!({"type": "friend.cancelled", "request_id": r.id}),
            ),
            // A decline is not told: the sender's request just stays unanswered to them.
            FriendAnswer::Decline => {}
        }
        Ok(self.view(&r, other))
    }

    /// `me`'s friends, with whether each is connected now.
    pub async fn friends(&self, me: &User) -> AppResult<Vec<Friend>> {
        if me.guest {
            return Err(registration_required());
        }
        let ids = self.store.friends(me.id).await?;
        let online = self.hub.connected_among(&ids);
        let mut users = self.store.users(&ids).await?;
        users.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
        Ok(users
            .into_iter()
            .map(|u| Friend {
                online: online.contains(&u.id),
                id: u.id,
                avatar_url: u.avatar.as_deref().map(crate::model::avatar_url),
                status_message: u.status_message,
                username: u.username,
                display_name: u.display_name,
            })
            .collect())
    }

    /// Ends `me`'s friendship with `other`; both are told.
    pub async fn unfriend(&self, me: &User, other: UserId) -> AppResult<()> {
        if me.guest {
            return Err(registration_required());
        }
        if !self.store.remove_friend(me.id, other).await? {
            return Err(AppError::NotFound("friend"));
        }
        self.tell(other, json!({"type": "friend.removed", "user_id": me.id}));
        self.tell(me.id, json!({"type": "friend.removed", "user_id": other}));
        Ok(())
    }

    // ---- Blocks ----

    /// `me` blocks `other` (ending a friendship and pending requests); the
    /// blocked user is told nothing.
    pub async fn block(&self, me: &User, other: UserId) -> AppResult<()> {
        if other == me.id {
            return Err(not_yourself());
        }
        self.limits.check(Limit::BlockUser, Key::User(me.id))?;
        self.user(other).await?;
        let list = self.store.blocked_by(me.id).await?;
        if list.contains(&other) {
            return Ok(());
        }
        if list.len() >= MAX_BLOCKS {
            return Err(AppError::conflict(
                "too_many_blocks",
                format!("at most {MAX_BLOCKS} blocked users"),
            ));
        }
        self.store.block_user(me.id, other, now_ms()).await?;
        self.publish_blocks(me.id).await
    }

    pub async fn unblock(&self, me: &User, other: UserId) -> AppResult<()> {
        self.limits.check(Limit::BlockUser, Key::User(me.id))?;
        if self.store.unblock_user(me.id, other).await? {
            self.publish_blocks(me.id).await?;
        }
        Ok(())
    }

    async fn publish_blocks(&self, blocker: UserId) -> AppResult<()> {
        let blocked = self.store.blocked_by(blocker).await?;
        self.bus
            .publish(BusEvent::BlockChanged { blocker, blocked });
        Ok(())
    }

    /// The users `me` blocks, newest block first.
    pub async fn blocks(&self, me: &User) -> AppResult<Vec<User>> {
        let ids = self.store.blocked_by(me.id).await?;
        let mut by_id: HashMap<UserId, User> = self
            .store
            .users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    // ---- Direct rooms ----

    /// The direct room of `me` and `other`, and whether it was created now.
    pub async fn direct(
        &self,
        me: &User,
        other: UserId,
        ip: IpAddr,
    ) -> AppResult<(RoomView, User, bool)> {
        if other == me.id {
            return Err(not_yourself());
        }
        self.limits.check(Limit::DirectUser, Key::User(me.id))?;
        self.limits.check(Limit::DirectIp, Key::Ip(ip))?;
        let peer = self.user(other).await?;
        check_direct(&*self.store, me.id, &peer).await?;
        let name = direct_name(&me.display_name, &peer.display_name);
        let (room, created, _joins) = self
            .store
            .direct_room(
                NewRoom {
                    name,
                    visibility: Visibility::Private,
                    kind: RoomKind::Direct,
                    created_by: me.id,
                    moderation: RoomPolicy::Standard,
                },
                me.as_ref(),
                peer.as_ref(),
            )
            .await?;
        if created {
            self.tell(
                peer.id,
                json!({"type": "direct", "room_id": room.id, "user": me}),
            );
        }
        let unread = self.store.unread(room.id, me.id).await?;
        Ok((RoomView::new(&room, unread), peer, created))
    }
}

/// May `sender` reach `peer` directly: neither blocks the other, and `peer`
/// takes direct messages from everyone or is `sender`'s friend.
async fn check_direct(store: &dyn Store, sender: UserId, peer: &User) -> AppResult<()> {
    if store.blocked_between(sender, peer.id).await? {
        return Err(not_allowed());
    }
    if peer.dm_policy == DmPolicy::Friends && !store.are_friends(sender, peer.id).await? {
        return Err(not_allowed());
    }
    Ok(())
}

/// May `sender` post to direct room `room` now (checked on every post to a
/// direct room: a block or a changed DM policy applies at once).
pub async fn direct_allowed(store: &dyn Store, room: RoomId, sender: UserId) -> AppResult<()> {
    let Some((a, b)) = store.direct_pair(room).await? else {
        return Ok(());
    };
    let peer = if a == sender { b } else { a };
    let peer = store.user(peer).await?.ok_or_else(not_allowed)?;
    check_direct(store, sender, &peer).await
}

/// A direct room's stored name: both display names (clients show the peer's).
fn direct_name(a: &str, b: &str) -> String {
    let name = format!("{a} & {b}");
    if name.chars().count() <= 64 {
        return name;
    }
    name.chars().take(63).chain(['…']).collect()
}
