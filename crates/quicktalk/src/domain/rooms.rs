//! Rooms: create, list, join, leave, members, history, read cursors, posting,
//! and each room's moderation policy (set by its creator or a moderator).
//! A new room may not be named like a registered user other than its creator,
//! nor with a name moderation refuses. A posted text goes through
//! [`moderation::moderate_text`] under the room's policy before it is submitted
//! to the pipeline (so every pipeline, local or cluster, stores only moderated
//! text); a blocked one is a strike ([`moderation::Escalation`]).
//! Access rule: a private room and its history are for members only; a public
//! room's history is readable by anyone signed in; posting needs membership.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::media;
use super::moderation::{self, Escalation};
use super::pipeline::{settle, Pipeline, Reply, Ticket};
use super::validate;
use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::fanout::Hub;
use crate::metrics::Metrics;
use crate::model::{
    now_ms, AppendRejected, Appended, HistoryQuery, Member, Message, MessageId, MessageKind,
    NewMessage, Room, RoomId, RoomKind, RoomPolicy, RoomView, User, UserRef, Visibility,
};
use crate::store::search::{SearchPage, SearchQuery, SearchScope};
use crate::store::{list_position, NewMessageReport, NewRoom, RoomListQuery, Store};

pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;
const MAX_LISTED_ROOMS: usize = 500;
/// Rooms whose metadata is kept in memory; cleared when it grows past this.
const ROOM_META_CACHE_MAX: usize = 500_000;
/// How long a cached moderation policy is trusted for a SEND: a change made on
/// this node applies at once (the entry is dropped), one made on another node
/// within this long.
const POLICY_TTL: Duration = Duration::from_secs(5);

/// What a room's access checks and SENDs need without the store: visibility and
/// kind never change; the moderation policy may, so it carries when it was read.
#[derive(Clone, Copy)]
struct RoomMeta {
    visibility: Visibility,
    kind: RoomKind,
    policy: RoomPolicy,
    read_at: Instant,
}

pub struct Rooms {
    meta: parking_lot::RwLock<std::collections::HashMap<RoomId, RoomMeta>>,
    store: Arc<dyn Store>,
    pipeline: Arc<dyn Pipeline>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    /// `--moderation off`: no room's messages are classified.
    moderation_on: bool,
    escalation: Arc<Escalation>,
    /// `quicktalk_moderation_verdicts_total` for allow, flag, mask, block,
    /// resolved once (no label lookup per message).
    verdicts: [prometheus::IntCounter; 4],
}

impl Rooms {
    pub fn new(
        store: Arc<dyn Store>,
        pipeline: Arc<dyn Pipeline>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        moderation_on: bool,
        escalation: Arc<Escalation>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Rooms {
            meta: Default::default(),
            store,
            pipeline,
            bus,
            hub,
            moderation_on,
            escalation,
            verdicts: ["allow", "flag", "mask", "block"]
                .map(|a| metrics.moderation_verdicts.with_label_values(&[a])),
        }
    }

    async fn room(&self, id: RoomId) -> AppResult<Room> {
        self.store.room(id).await?.ok_or(AppError::NotFound("room"))
    }

    /// A room's metadata, cached (its policy may be stale: see [`Self::policy`]).
    async fn meta(&self, id: RoomId) -> AppResult<RoomMeta> {
        self.meta_within(id, None).await
    }

    /// A room's metadata, read again when the cached entry is older than `max_age`.
    async fn meta_within(&self, id: RoomId, max_age: Option<Duration>) -> AppResult<RoomMeta> {
        if let Some(m) = self.meta.read().get(&id).copied() {
            if max_age.is_none_or(|age| m.read_at.elapsed() < age) {
                return Ok(m);
            }
        }
        let room = self.room(id).await?;
        let m = RoomMeta {
            visibility: room.visibility,
            kind: room.kind,
            policy: room.moderation,
            read_at: Instant::now(),
        };
        let mut meta = self.meta.write();
        if meta.len() >= ROOM_META_CACHE_MAX {
            meta.clear();
        }
        meta.insert(id, m);
        Ok(m)
    }

    /// The classifier policy for texts posted to room `id` (at most
    /// [`POLICY_TTL`] old; `Off` for every room with `--moderation off`).
    async fn policy(&self, id: RoomId) -> AppResult<quicktalk_moderation::Policy> {
        if !self.moderation_on {
            return Ok(quicktalk_moderation::Policy::Off);
        }
        let m = self.meta_within(id, Some(POLICY_TTL)).await?;
        Ok(moderation::text_policy(m.kind, m.policy))
    }

    /// Sets room `id`'s moderation policy (`"off"`, `"standard"`, `"strict"`):
    /// its creator or a moderator may; a random chat's is fixed (strict).
    /// Returns the room as `user` sees it.
    pub async fn set_moderation(
        &self,
        user: &User,
        id: RoomId,
        policy: Option<&str>,
    ) -> AppResult<RoomView> {
        let policy = match policy {
            None => None,
            Some(p) => Some(RoomPolicy::parse(p).ok_or(AppError::invalid(
                "invalid_moderation",
                "moderation must be \"off\", \"standard\" or \"strict\"",
            ))?),
        };
        let room = self.room(id).await?;
        if room.kind == RoomKind::Random {
            return Err(AppError::forbidden(
                "a random chat's moderation is always strict",
            ));
        }
        if room.created_by != user.id && !user.role.moderates() {
            return Err(AppError::forbidden(
                "only the room's creator or a moderator may change its moderation",
            ));
        }
        if let Some(policy) = policy {
            if !self.store.set_room_moderation(id, policy).await? {
                return Err(AppError::NotFound("room"));
            }
            // This node's SENDs see the change at once; other nodes' within POLICY_TTL.
            self.meta.write().remove(&id);
            tracing::info!(
                room_id = id,
                by = user.id,
                policy = policy.as_str(),
                "room moderation set"
            );
        }
        let room = self.room(id).await?;
        let unread = self.store.unread(id, user.id).await?;
        Ok(RoomView::new(&room, unread))
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
        policy: RoomPolicy,
    ) -> AppResult<RoomView> {
        let name = validate::name(name, "invalid_room_name", "room name")?;
        moderation::check_name(&name, "room name")?;
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
                    moderation: policy,
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
    /// A direct room cannot be left (it is the pair's one room; block instead).
    pub async fn leave(&self, user: &User, id: RoomId) -> AppResult<()> {
        let room = self.room(id).await?;
        if room.visibility == Visibility::Private && !self.store.is_member(id, user.id).await? {
            return Err(AppError::forbidden("this room is private"));
        }
        if room.kind == RoomKind::Direct {
            return Err(AppError::Forbidden {
                code: "not_allowed",
                message: "a direct conversation cannot be left".into(),
            });
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
                attachments: Vec::new(),
            })
            .await?;
        settle(ticket).await.map(|_| ())
    }

    pub async fn members(&self, user: &User, id: RoomId) -> AppResult<Vec<Member>> {
        self.check_readable(user, id).await?;
        let mut online: HashSet<_> = self.hub.online(id).into_iter().map(|u| u.id).collect();
        // Someone the caller blocks is never shown online to them (contract §7).
        for blocked in self.store.blocked_by(user.id).await? {
            online.remove(&blocked);
        }
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
        let (mut page, more) = self.store.messages(id, q).await?;
        self.hide_blocked(user, &mut page).await?;
        Ok((page, more))
    }

    /// The messages around `seq` in room `id` (contract §9, to open a search hit
    /// in context): up to `limit`, ascending; about half at or before `seq`
    /// (`seq` itself included), the rest after it. Returns the page, whether
    /// older messages exist before it, and whether newer ones exist after it.
    pub async fn history_around(
        &self,
        user: &User,
        id: RoomId,
        seq: i64,
        limit: usize,
    ) -> AppResult<(Vec<Message>, bool, bool)> {
        self.check_readable(user, id).await?;
        let after_limit = limit / 2;
        let (mut page, more_before) = self
            .store
            .messages(
                id,
                HistoryQuery {
                    before_seq: Some(seq.saturating_add(1)),
                    after_seq: None,
                    limit: limit - after_limit,
                },
            )
            .await?;
        // With a page of one there is no room for newer messages, but the
        // caller still learns whether any exist.
        let (newer, more_after) = self
            .store
            .messages(
                id,
                HistoryQuery {
                    before_seq: None,
                    after_seq: Some(seq),
                    limit: after_limit.max(1),
                },
            )
            .await?;
        let more_after = if after_limit == 0 {
            !newer.is_empty()
        } else {
            page.extend(newer);
            more_after
        };
        self.hide_blocked(user, &mut page).await?;
        Ok((page, more_before, more_after))
    }

    /// A blocked sender's messages are placeholders, as live (contract §7).
    async fn hide_blocked(&self, user: &User, page: &mut [Message]) -> AppResult<()> {
        let blocked: HashSet<_> = self.store.blocked_by(user.id).await?.into_iter().collect();
        if !blocked.is_empty() {
            for m in page {
                if blocked.contains(&m.sender.id) {
                    *m = m.hidden();
                }
            }
        }
        Ok(())
    }

    /// A page of history search (contract §9) for `user`: in every room they
    /// are a member of, or in one room they may read (404 unknown, 403 a
    /// private room they are not in). Blocked senders' messages are left out
    /// by the store.
    pub async fn search(&self, user: &User, q: SearchQuery) -> AppResult<SearchPage> {
        if let SearchScope::Room(id) = q.scope {
            self.check_readable(user, id).await?;
        }
        Ok(self.store.search(q).await?)
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
    /// The text is moderated under the room's policy first: blocked → `moderated`
    /// (not stored, a strike), masked or flagged → stored so. Membership is
    /// checked in the storing transaction.
    pub async fn post_with(
        &self,
        sender: UserRef,
        room: RoomId,
        text: &str,
        attachments: &[String],
        client_id: Option<String>,
        reply: Reply,
    ) -> AppResult<()> {
        // With files attached the text may be empty (contract §6).
        let text = if attachments.is_empty() || !text.trim().is_empty() {
            validate::text(text)?
        } else {
            String::new()
        };
        if let Some(c) = &client_id {
            validate::client_id(c)?;
        }
        let attachments = if attachments.is_empty() {
            Vec::new()
        } else {
            media::check_attachments(&*self.store, sender.id, attachments).await?
        };
        if self.meta(room).await?.kind == RoomKind::Direct {
            super::people::direct_allowed(&*self.store, room, sender.id).await?;
        }
        let policy = self.policy(room).await?;
        let moderated = if text.is_empty() {
            Ok((text, Default::default()))
        } else {
            moderation::moderate_text(text, policy)
        };
        let (text, moderated) = match moderated {
            Ok((text, m)) => {
                if policy != quicktalk_moderation::Policy::Off {
                    let action = match (&m.flag, m.masked) {
                        (_, true) => 2,
                        (Some(_), false) => 1,
                        (None, false) => 0,
                    };
                    self.verdicts[action].inc();
                }
                (text, m)
            }
            Err(e) => {
                if matches!(e, AppError::Moderated { .. }) {
                    self.verdicts[3].inc();
                    self.escalation.strike(sender.id).await;
                }
                return Err(e);
            }
        };
        self.pipeline
            .submit_with(
                NewMessage {
                    room_id: room,
                    kind: MessageKind::Text,
                    sender,
                    text,
                    client_id,
                    sent_at: now_ms(),
                    moderation: moderated,
                    attachments,
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
        attachments: &[String],
        client_id: Option<String>,
    ) -> AppResult<Ticket> {
        let (tx, ticket) = tokio::sync::oneshot::channel();
        self.post_with(
            sender,
            room,
            text,
            attachments,
            client_id,
            Reply::Ticket(tx),
        )
        .await?;
        Ok(ticket)
    }

    /// Posts and waits until stored.
    pub async fn post_and_wait(
        &self,
        sender: UserRef,
        room: RoomId,
        text: &str,
        attachments: &[String],
        client_id: Option<String>,
    ) -> AppResult<Appended> {
        settle(
            self.post(sender, room, text, attachments, client_id)
                .await?,
        )
        .await
    }

    /// Reports message `id` to the moderators (contract §5); returns the queue
    /// id. Anyone who may read its room may report it (others: 404, as if it did
    /// not exist), except its sender (`own_message`); only text messages
    /// (`not_reportable`). A repeat by the same user returns the first report.
    /// The reason is stored masked.
    pub async fn report_message(&self, user: &User, id: MessageId, reason: &str) -> AppResult<i64> {
        let reason = validate::reason(reason)?;
        let msg = self
            .store
            .message(id)
            .await?
            .ok_or(AppError::NotFound("message"))?;
        match self.check_readable(user, msg.room_id).await {
            Ok(()) => {}
            Err(AppError::Forbidden { .. } | AppError::NotFound(_)) => {
                return Err(AppError::NotFound("message"))
            }
            Err(e) => return Err(e),
        }
        if msg.sender.id == user.id {
            return Err(AppError::invalid(
                "own_message",
                "you cannot report your own message",
            ));
        }
        if msg.kind != MessageKind::Text {
            return Err(AppError::invalid(
                "not_reportable",
                "only text messages can be reported",
            ));
        }
        let queued = self
            .store
            .report_message(NewMessageReport {
                message_id: id,
                room_id: msg.room_id,
                subject: msg.sender.id,
                reporter: user.id,
                reason: moderation::mask_reason(&reason),
            })
            .await?;
        tracing::info!(
            reporter = user.id,
            message_id = id,
            queue_id = queued,
            "message report"
        );
        Ok(queued)
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
