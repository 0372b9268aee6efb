//! Rooms: create, list, join, leave, members, history, read cursors, and posting.
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
    now_ms, Appended, HistoryQuery, Member, Message, MessageKind, NewMessage, Room, RoomId,
    RoomKind, RoomView, User, UserRef, Visibility,
};
use crate::store::{NewRoom, Store};

pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
const MAX_LISTED_ROOMS: usize = 500;
/// Rooms whose metadata is kept in memory; cleared when it grows past this.
const ROOM_META_CACHE_MAX: usize = 500_000;

/// What never changes about a room: enough for access checks without the store.
#[derive(Clone, Copy)]
struct RoomMeta {
    visibility: Visibility,
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

    /// May `user` read (subscribe to) room `id`? Cheap: room metadata is cached
    /// (it never changes), and only private rooms need a membership lookup.
    pub async fn check_readable(&self, user: &User, id: RoomId) -> AppResult<()> {
        let cached = self.meta.read().get(&id).copied();
        let meta = match cached {
            Some(m) => m,
            None => {
                let room = self.room(id).await?;
                let m = RoomMeta {
                    visibility: room.visibility,
                };
                let mut meta = self.meta.write();
                if meta.len() >= ROOM_META_CACHE_MAX {
                    meta.clear();
                }
                meta.insert(id, m);
                m
            }
        };
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
        // The room and the creator's join (message 1) are one transaction.
        let (room, _) = self
            .store
            .create_room_with(
                NewRoom {
                    name,
                    visibility,
                    kind: RoomKind::Group,
                    created_by: user.id,
                },
                vec![user.as_ref()],
            )
            .await?;
        Ok(RoomView::new(&room, Some(0)))
    }

    pub async fn list(&self, user: &User) -> AppResult<Vec<RoomView>> {
        Ok(self
            .store
            .rooms_for(user.id, MAX_LISTED_ROOMS)
            .await?
            .iter()
            .map(|r| RoomView::new(&r.room, r.unread))
            .collect())
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

    pub async fn leave(&self, user: &User, id: RoomId) -> AppResult<()> {
        self.room(id).await?;
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
            .map(|(uid, name)| Member {
                id: uid,
                name,
                online: online.contains(&uid),
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

    /// Broadcasts a typing event; members only.
    pub async fn typing(&self, user: &User, room: RoomId) -> AppResult<()> {
        if !self.store.is_member(room, user.id).await? {
            self.room(room).await?;
            return Err(AppError::Forbidden {
                code: "not_member",
                message: "you are not a member of this room".into(),
            });
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
