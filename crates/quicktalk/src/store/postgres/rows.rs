//! Column lists and row mapping shared by the queries.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{bad, db};
use crate::model::{
    Message, MessageKind, Role, Room, RoomKind, RoomPolicy, User, UserRef, Visibility,
};
use crate::store::StoreResult;

pub(super) const USER_COLS: &str = "id, username, display_name, guest, role, banned_until, status_message, avatar, dm_policy, token_epoch";
/// [`USER_COLS`] of a `users u` in a join.
pub(super) const U_USER_COLS: &str =
    "u.id, u.username, u.display_name, u.guest, u.role, u.banned_until, u.status_message, u.avatar, \
     u.dm_policy, u.token_epoch";
/// How many columns [`USER_COLS`] has: a query's next column is at this index.
pub(super) const USER_COL_COUNT: usize = 10;
pub(super) const ROOM_COLS: &str =
    "r.id, r.name, r.visibility, r.kind, r.member_count, r.last_seq, r.created_at, r.last_message_at, \
     r.closed_at, r.moderation, r.created_by";
pub(super) const MESSAGE_COLS: &str =
    "id, room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, sender_guest, masked";
/// [`MESSAGE_COLS`] of a `messages m` in a join.
pub(super) const M_MESSAGE_COLS: &str =
    "m.id, m.room_id, m.seq, m.kind, m.sender_id, m.sender_name, m.text, m.client_id, m.sent_at, \
     m.sender_guest, m.masked";

pub(super) fn user_row(r: &PgRow) -> StoreResult<User> {
    Ok(User {
        id: r.try_get(0).map_err(db)?,
        username: r.try_get(1).map_err(db)?,
        display_name: r.try_get(2).map_err(db)?,
        guest: r.try_get(3).map_err(db)?,
        role: {
            let role: String = r.try_get(4).map_err(db)?;
            Role::parse(&role).ok_or_else(|| bad("role", &role))?
        },
        banned_until: r.try_get(5).map_err(db)?,
        status_message: r.try_get(6).map_err(db)?,
        avatar: r.try_get(7).map_err(db)?,
        dm_policy: {
            let p: String = r.try_get(8).map_err(db)?;
            crate::model::DmPolicy::parse(&p).ok_or_else(|| bad("dm_policy", &p))?
        },
        token_epoch: r.try_get(9).map_err(db)?,
    })
}

pub(super) fn room_row(r: &PgRow) -> StoreResult<Room> {
    let vis: String = r.try_get(2).map_err(db)?;
    let kind: String = r.try_get(3).map_err(db)?;
    Ok(Room {
        id: r.try_get(0).map_err(db)?,
        name: r.try_get(1).map_err(db)?,
        visibility: Visibility::parse(&vis).ok_or_else(|| bad("visibility", &vis))?,
        kind: RoomKind::parse(&kind).ok_or_else(|| bad("room kind", &kind))?,
        member_count: r.try_get(4).map_err(db)?,
        last_seq: r.try_get(5).map_err(db)?,
        created_at: r.try_get(6).map_err(db)?,
        last_message_at: r.try_get(7).map_err(db)?,
        closed_at: r.try_get(8).map_err(db)?,
        moderation: {
            let m: String = r.try_get(9).map_err(db)?;
            RoomPolicy::parse(&m).ok_or_else(|| bad("moderation policy", &m))?
        },
        created_by: r.try_get(10).map_err(db)?,
    })
}

pub(super) fn message_row(r: &PgRow) -> StoreResult<Message> {
    let kind: String = r.try_get(3).map_err(db)?;
    Ok(Message {
        id: r.try_get(0).map_err(db)?,
        room_id: r.try_get(1).map_err(db)?,
        seq: r.try_get(2).map_err(db)?,
        kind: MessageKind::parse(&kind).ok_or_else(|| bad("message kind", &kind))?,
        sender: UserRef {
            id: r.try_get(4).map_err(db)?,
            name: r.try_get(5).map_err(db)?,
            guest: r.try_get(9).map_err(db)?,
        },
        text: r.try_get(6).map_err(db)?,
        client_id: r.try_get(7).map_err(db)?,
        sent_at: r.try_get(8).map_err(db)?,
        masked: r.try_get(10).map_err(db)?,
        // Loaded by `media::attach`, for a whole page at once.
        attachments: Vec::new(),
    })
}
