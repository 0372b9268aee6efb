//! Rooms: create, list, join, leave, members, history, read cursors, and posting.
//! A new room may not be named like a registered user other than its creator.
//! Access rule: a private room and its history are for members only; a public
//! room's history is readable by anyone signed in; posting needs membership.

use std::collections::HashSet;
use std::sync::Arc;

use super::pipeline::{settle, Pipeline, Reply, Ticket};
use super::validate;
use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::fanout::Hub;
use crate::model::{
    now_ms, AppendRejected, Appended, HistoryQuery, Member, Message, MessageKind, NewMessage, Room,
    RoomId, RoomKind, RoomPolicy, RoomView, User, UserRef, Visibility,
};
use crate::store::{list_position, NewRoom, RoomListQuery, Store};

pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
const MAX_LISTED_ROOMS: usize = 500;
/// Rooms whose metadata is kept in memory; cleared when it grows past this.
const ROOM_META_CACHE_MAX: usize = 500_000;

/// What never changes about a room: enough for access checks without the store.
#[derive(Clone, Copy)]
struct RoomMeta {
    visibility: Visibility,
    kind: RoomKind,
}

pub struct Rooms {
    meta: parking_lot::RwLock<std::collections::HashMap<RoomId, RoomMeta>>,
    store: Arc<dyn Store>,
    pipeline: Arc<dyn Pipeline>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
}

impl Rooms {
    pub fn new(
        store: Arc<dyn Store>,
        pipeline: Arc<dyn Pipeline>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
    ) -> Self {
        Rooms {
            meta: Default::default(),
            store,
            pipeline,
            bus,
            hub,
        }
    }

    async fn room(&self, id: RoomId) -> AppResult<Room> {
        self.store.room(id).await?.ok_or(AppError::NotFound("room"))
    }

    /// A room's unchanging metadata, cached.
    async fn meta(&self, id: RoomId) -> AppResult<RoomMeta> {
        if let Some(m) = self.meta.read().get(&id).copied() {
            return Ok(m);
        }
        let room = self.room(id).await?;
        let m = RoomMeta {
            visibility: room.visibility,
            kind: room.kind,
        };
        let mut meta = self.meta.write();
        if meta.len() >= ROOM_META_CACHE_MAX {
            meta.clear();
        }
        meta.insert(id, m);
        Ok(m)
    }

    /// May `user` read (subscribe to) room `id`? Cheap: room metadata is cached
    /// (it never changes), and only private rooms need a membership lookup.
    pub async fn check_readable(&self, user: &User, id: RoomId) -> AppResult<()> {
        let meta = self.meta(id).await?;
        if meta.visibility == Visibility::Private && !self.store.is_member(id, user.id).await? {
            return Err(AppError::forbidden("this room is private"));
        }
        Ok(())
    }

    /// The room if `user` may read it, with `Some(unread)` when a member.
    pub async fn readable(&self, user: &User, id: RoomId) -> AppResult<(Room, Option<i64>)> {
        let room = self.room(id).await?;
        let unread = self.store.unread(id, user.id).await?;
        if unread.is_none() && room.visibility == Visibility::Private {
            return Err(AppError::forbidden("this room is private"));
        }
        Ok((room, unread))
    }

    pub async fn create(
        &self,
        user: &User,
        name: &str,
        visibility: Visibility,
    ) -> AppResult<RoomView> {
        let name = validate::name(name, "invalid_room_name", "room name")?;
        // A room named like a registered user could pass for a chat with them.
        validate::impersonates(&*self.store, &name, Some(user.id)).await?;
        // The room and the creator's join (message 1) are one transaction.
        let (room, _) = self
            .store
            .create_room_with(
                NewRoom {
                    name,
                    visibility,
                    kind: RoomKind::Group,
                    created_by: user.id,
                    moderation: RoomPolicy::Standard,
                },
                vec![user.as_ref()],
            )
            .await?;
        Ok(RoomView::new(&room, Some(0)))
    }

    /// A page of the rooms `user` sees (public group rooms and their own), most
    /// recently active first, and the cursor of the next page if there is one.
    pub async fn list(
        &self,
        user: &User,
        q: RoomListQuery,
    ) -> AppResult<(Vec<RoomView>, Option<String>)> {
        let (rooms, more) = self.store.list_rooms(user.id, &q).await?;
        let next = match rooms.last() {
            Some(last) if more => {
                let (at, id) = list_position(&last.room);
                Some(format!("{at}_{id}"))
            }
            _ => None,
        };
        Ok((
            rooms
                .iter()
                .map(|r| RoomView::new(&r.room, r.unread))
                .collect(),
            next,
        ))
    }

    pub async fn get(&self, user: &User, id: RoomId) -> AppResult<RoomView> {
        let (room, unread) = self.readable(user, id).await?;
        Ok(RoomView::new(&room, unread))
    }

    pub async fn join(&self, user: &User, id: RoomId) -> AppResult<RoomView> {
        let room = self.room(id).await?;
        if room.visibility == Visibility::Private && !self.store.is_member(id, user.id).await? {
            return Err(AppError::forbidden("this room is private"));
        }
        self.membership(user, id, MessageKind::Join).await?;
        self.get(user, id).await
    }

    /// Leaves a room; a non-member of a private room is refused (as for reading).
    pub async fn leave(&self, user: &User, id: RoomId) -> AppResult<()> {
        let room = self.room(id).await?;
        if room.visibility == Visibility::Private && !self.store.is_member(id, user.id).await? {
            return Err(AppError::forbidden("this room is private"));
        }
        self.membership(user, id, MessageKind::Leave).await
    }

    async fn membership(&self, user: &User, room: RoomId, kind: MessageKind) -> AppResult<()> {
        let ticket = self
            .pipeline
            .submit(NewMessage {
                room_id: room,
                kind,
                sender: user.as_ref(),
                text: String::new(),
                client_id: None,
                sent_at: now_ms(),
                moderation: Default::default(),
            })
            .await?;
        settle(ticket).await.map(|_| ())
    }

    pub async fn members(&self, user: &User, id: RoomId) -> AppResult<Vec<Member>> {
        self.check_readable(user, id).await?;
        let online: HashSet<_> = self.hub.online(id).into_iter().map(|u| u.id).collect();
        Ok(self
            .store
            .members(id)
            .await?
            .into_iter()
            .map(|u| Member {
                online: online.contains(&u.id),
                id: u.id,
                name: u.display_name,
                guest: u.guest,
                username: u.username,
            })
            .collect())
    }

    pub async fn history(
        &self,
        user: &User,
        id: RoomId,
        q: HistoryQuery,
    ) -> AppResult<(Vec<Message>, bool)> {
        self.check_readable(user, id).await?;
        Ok(self.store.messages(id, q).await?)
    }

    /// Moves the read cursor; returns the new unread count.
    pub async fn mark_read(&self, user: &User, id: RoomId, seq: i64) -> AppResult<i64> {
        self.room(id).await?;
        self.store
            .mark_read(id, user.id, seq)
            .await?
            .ok_or(AppError::Forbidden {
                code: "not_member",
                message: "you are not a member of this room".into(),
            })
    }

    /// Accepts a text message for storage; `reply` hears once it is durable.
    /// Membership and the room's existence are checked in the storing transaction.
    pub async fn post_with(
        &self,
        sender: UserRef,
        room: RoomId,
        text: &str,
        client_id: Option<String>,
        reply: Reply,
    ) -> AppResult<()> {
        let text = validate::text(text)?;
        if let Some(c) = &client_id {
            validate::client_id(c)?;
        }
        self.pipeline
            .submit_with(
                NewMessage {
                    room_id: room,
                    kind: MessageKind::Text,
                    sender,
                    text,
                    client_id,
                    sent_at: now_ms(),
                    moderation: Default::default(),
                },
                reply,
            )
            .await
    }

    /// Accepts a text message; the ticket resolves once it is durable.
    pub async fn post(
        &self,
        sender: UserRef,
        room: RoomId,
        text: &str,
        client_id: Option<String>,
    ) -> AppResult<Ticket> {
        let (tx, ticket) = tokio::sync::oneshot::channel();
        self.post_with(sender, room, text, client_id, Reply::Ticket(tx))
            .await?;
        Ok(ticket)
    }

    /// Posts and waits until stored.
    pub async fn post_and_wait(
        &self,
        sender: UserRef,
        room: RoomId,
        text: &str,
        client_id: Option<String>,
    ) -> AppResult<Appended> {
        settle(self.post(sender, room, text, client_id).await?).await
    }

    /// Broadcasts a typing event; members only, and not in an ended random chat.
    pub async fn typing(&self, user: &User, room: RoomId) -> AppResult<()> {
        let meta = self.meta(room).await?;
        if !self.store.is_member(room, user.id).await? {
            return Err(AppError::Forbidden {
                code: "not_member",
                message: "you are not a member of this room".into(),
            });
        }
        // Only random chats close; other rooms need no extra read.
        if meta.kind == RoomKind::Random && self.room(room).await?.closed_at.is_some() {
            return Err(AppendRejected::RoomClosed.into());
        }
        self.bus.publish(BusEvent::Typing {
            room_id: room,
            user: user.as_ref(),
        });
        Ok(())
    }

    /// Whether the message pipeline runs (for `/healthz`).
    pub fn pipeline_health(&self) -> super::pipeline::PipelineHealth {
        self.pipeline.health()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Checks the filters of a room listing: `kind` is a comma-separated list of
/// `group`, `random`, `direct` (default: every kind, ended random chats left out
/// unless `random` is asked for); `cursor` is a listing's `next_cursor`.
pub fn room_list_query(
    kind: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<RoomListQuery> {
    let mut kinds = Vec::new();
    for k in kind.unwrap_or("").split(',').filter(|k| !k.is_empty()) {
        let k = RoomKind::parse(k.trim()).ok_or(AppError::invalid(
            "invalid_query",
            "kind must be group, random or direct (comma-separated)",
        ))?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let limit = limit.unwrap_or(MAX_LISTED_ROOMS as i64);
    if !(1..=MAX_LISTED_ROOMS as i64).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LISTED_ROOMS}"),
        ));
    }
    let before = match cursor {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or(AppError::invalid("invalid_cursor", "unknown cursor"))?,
        ),
    };
    Ok(RoomListQuery {
        include_ended: kinds.contains(&RoomKind::Random),
        kinds,
        before,
        limit: limit as usize,
    })
}

/// Checks paging parameters of a history request.
pub fn history_query(
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<i64>,
) -> AppResult<HistoryQuery> {
    let limit = limit.unwrap_or(DEFAULT_PAGE as i64);
    if !(1..=MAX_PAGE as i64).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    if before_seq.is_some_and(|b| b < 1) || after_seq.is_some_and(|a| a < 0) {
        return Err(AppError::invalid(
            "invalid_query",
            "before_seq must be >= 1 and after_seq >= 0",
        ));
    }
    Ok(HistoryQuery {
        before_seq,
        after_seq,
        limit: limit as usize,
    })
}
