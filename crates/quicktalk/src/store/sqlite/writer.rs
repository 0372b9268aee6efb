//! The SQLite writer thread's state and the sequencing transaction.
//!
//! Poison-proof: an item SQLite refuses deterministically (a constraint or type
//! error), or that PostgreSQL could not store either (NUL in a text column: both
//! backends agree on what is storable), is rejected on its own as
//! [`AppendRejected::Unstorable`]; the batch is rolled back and rerun without it,
//! so the rest commits with gapless `seq`.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use super::{media, message_row, search, MESSAGE_COLS};
use crate::model::{
    now_ms, AppendRejected, Appended, Message, MessageKind, NewMessage, Room, RoomId, RoomKind,
    UserId, UserRef,
};
use crate::store::NewRoom;

pub struct Writer {
    pub conn: Connection,
    /// `rooms.last_seq` as committed; valid because this thread is the only writer.
    /// Cleared when it grows past `last_seq_max` (a miss reads the row).
    last_seq: HashMap<RoomId, i64>,
    last_seq_max: usize,
    /// Memberships known to exist (committed) in rooms that are not closed; valid
    /// for the same reason ([`Writer::close_room`] drops a closed room's). Saves a
    /// lookup per stored message. Cleared when it grows past [`MEMBER_CACHE_MAX`].
    members: HashSet<(RoomId, UserId)>,
}

const MEMBER_CACHE_MAX: usize = 1_000_000;
/// Rooms whose `last_seq` is cached (every random chat is a new room).
pub const LAST_SEQ_CACHE_MAX: usize = 100_000;

/// Why a batch attempt failed: at item `index` (if known), with `error`.
struct Failed {
    index: Option<usize>,
    error: rusqlite::Error,
}

impl From<rusqlite::Error> for Failed {
    fn from(error: rusqlite::Error) -> Self {
        Failed { index: None, error }
    }
}

/// Whether SQLite refused the data itself: rerunning the item fails again.
fn is_deterministic(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ConstraintViolation | TypeMismatch | TooBig)
    )
}

/// What PostgreSQL cannot store either: NUL in a text column.
fn storable(m: &NewMessage) -> bool {
    !(m.text.contains('\0')
        || m.sender.name.contains('\0')
        || m.client_id.as_deref().is_some_and(|c| c.contains('\0')))
}

/// What a batch changed in one room, applied to `rooms` once at the end.
struct RoomDelta {
    last_seq: i64,
    last_at: i64,
    members: i64,
}

/// Inserts a room and joins `members` to it (join messages 1, 2, …) inside `tx`,
/// which the caller commits, then passes the result to [`Writer::remember_room`].
pub fn insert_room(
    tx: &Connection,
    n: NewRoom,
    members: Vec<UserRef>,
) -> rusqlite::Result<(Room, Vec<Message>)> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO rooms (name, visibility, kind, created_by, created_at, moderation) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        n.name,
        n.visibility.as_str(),
        n.kind.as_str(),
        n.created_by,
        now,
        n.moderation.as_str()
    ])?;
    let id = tx.last_insert_rowid();
    let mut joins = Vec::with_capacity(members.len());
    for (i, user) in members.into_iter().enumerate() {
        let seq = i as i64 + 1;
        tx.prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at, join_seq, read_seq) VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![id, user.id, now, seq])?;
        tx.prepare_cached(
            "INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, \
                                   sender_guest) \
             VALUES (?1, ?2, 'join', ?3, ?4, '', NULL, ?5, ?6)",
        )?
        .execute(params![id, seq, user.id, user.name, now, user.guest])?;
        joins.push(Message {
            id: tx.last_insert_rowid(),
            room_id: id,
            seq,
            kind: MessageKind::Join,
            sender: user,
            text: String::new(),
            client_id: None,
            sent_at: now,
            masked: false,
            attachments: Vec::new(),
        });
    }
    let n_members = joins.len() as i64;
    let last_at = (n_members > 0).then_some(now);
    tx.prepare_cached(
        "UPDATE rooms SET last_seq = ?2, member_count = ?2, last_message_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, n_members, last_at])?;
    let room = Room {
        id,
        name: n.name,
        visibility: n.visibility,
        kind: n.kind,
        member_count: n_members,
        last_seq: n_members,
        created_at: now,
        last_message_at: last_at,
        closed_at: None,
        moderation: n.moderation,
        created_by: n.created_by,
    };
    Ok((room, joins))
}

impl Writer {
    pub fn new(conn: Connection) -> Self {
        Self::with_cache_limit(conn, LAST_SEQ_CACHE_MAX)
    }

    pub fn with_cache_limit(conn: Connection, last_seq_max: usize) -> Self {
        Writer {
            conn,
            last_seq: HashMap::new(),
            last_seq_max,
            members: HashSet::new(),
        }
    }

    /// Rooms whose `last_seq` is cached now.
    #[cfg(test)]
    pub fn cached_rooms(&self) -> usize {
        self.last_seq.len()
    }

    fn cache_last_seq(&mut self, room: RoomId, seq: i64) {
        if self.last_seq.len() >= self.last_seq_max && !self.last_seq.contains_key(&room) {
            self.last_seq.clear();
        }
        self.last_seq.insert(room, seq);
    }

    /// Inserts a room and joins `members` to it (join messages 1, 2, …), one transaction.
    pub fn create_room(
        &mut self,
        n: NewRoom,
        members: Vec<UserRef>,
    ) -> rusqlite::Result<(Room, Vec<Message>)> {
        let tx = self.conn.transaction()?;
        let (room, joins) = insert_room(&tx, n, members)?;
        tx.commit()?;
        self.remember_room(&room, &joins);
        Ok((room, joins))
    }

    /// Caches what [`insert_room`] wrote, once its transaction is committed.
    pub fn remember_room(&mut self, room: &Room, joins: &[Message]) {
        self.cache_last_seq(room.id, room.last_seq);
        for m in joins {
            self.members.insert((room.id, m.sender.id));
        }
    }

    /// Closes room `id` to new text and system messages (its members stay and can
    /// still read). Returns whether it was open.
    pub fn close_room(&mut self, id: RoomId) -> rusqlite::Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE rooms SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL")?
            .execute(params![id, now_ms()])?;
        let users: Vec<UserId> = self
            .conn
            .prepare_cached("SELECT user_id FROM members WHERE room_id = ?1")?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for u in users {
            self.members.remove(&(id, u));
        }
        Ok(n > 0)
    }

    pub fn close_open_rooms(&mut self, kind: RoomKind) -> rusqlite::Result<u64> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE rooms SET closed_at = ?2 WHERE kind = ?1 AND closed_at IS NULL",
            )?
            .execute(params![kind.as_str(), now_ms()])?;
        // Cached memberships let text through without reading the room: forget them.
        self.members.clear();
        Ok(n as u64)
    }

    pub fn append(
        &mut self,
        batch: Vec<NewMessage>,
    ) -> rusqlite::Result<Vec<Result<Appended, AppendRejected>>> {
        let mut refused: HashSet<usize> = batch
            .iter()
            .enumerate()
            .filter(|(_, m)| !storable(m))
            .map(|(i, _)| i)
            .collect();
        loop {
            match self.try_append(&batch, &refused) {
                Ok(out) => return Ok(out),
                Err(Failed {
                    index: Some(i),
                    error,
                }) if is_deterministic(&error) => {
                    tracing::warn!(%error, "message refused by the database; rejected alone");
                    refused.insert(i);
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    /// One attempt at `batch` in one transaction, skipping the `refused` items.
    fn try_append(
        &mut self,
        batch: &[NewMessage],
        refused: &HashSet<usize>,
    ) -> Result<Vec<Result<Appended, AppendRejected>>, Failed> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(batch.len());
        let mut deltas: HashMap<RoomId, RoomDelta> = HashMap::new();
        // Joins and leaves of this batch, applied to the cache only after commit.
        let mut member_changes: HashMap<(RoomId, UserId), bool> = HashMap::new();
        // Memberships confirmed by this batch (cached after commit).
        let mut known_members: Vec<(RoomId, UserId)> = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            if refused.contains(&i) {
                out.push(Err(AppendRejected::Unstorable));
                continue;
            }
            let at = |error| Failed {
                index: Some(i),
                error,
            };
            let last = match deltas.get(&m.room_id) {
                Some(d) => Some(d.last_seq),
                None => match self.last_seq.get(&m.room_id) {
                    Some(s) => Some(*s),
                    None => tx
                        .prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")?
                        .query_row([m.room_id], |r| r.get(0))
                        .optional()?,
                },
            };
            let Some(last) = last else {
                out.push(Err(AppendRejected::RoomNotFound));
                continue;
            };
            let seq = last + 1;
            let mut member_change = 0;
            match m.kind {
                // A tombstone is made by deleting a stored message, and a hidden
                // message is a reader's view of one: neither is ever appended.
                MessageKind::Deleted | MessageKind::Hidden => {
                    out.push(Err(AppendRejected::Unstorable));
                    continue;
                }
                MessageKind::Text | MessageKind::System => {
                    let key = (m.room_id, m.sender.id);
                    // The cache holds committed memberships of open rooms; a join or
                    // leave earlier in this batch is visible to the transaction only.
                    let may_post =
                        if !member_changes.contains_key(&key) && self.members.contains(&key) {
                            Ok(())
                        } else {
                            // Membership and the room's state in one lookup.
                            let closed: Option<bool> = tx
                                .prepare_cached(
                                    "SELECT r.closed_at IS NOT NULL FROM members m \
                                 JOIN rooms r ON r.id = m.room_id \
                                 WHERE m.room_id = ?1 AND m.user_id = ?2",
                                )?
                                .query_row(params![m.room_id, m.sender.id], |r| r.get(0))
                                .optional()?;
                            match closed {
                                None => Err(AppendRejected::NotMember),
                                Some(true) => Err(AppendRejected::RoomClosed),
                                Some(false) => {
                                    known_members.push(key);
                                    Ok(())
                                }
                            }
                        };
                    if may_post == Err(AppendRejected::NotMember) {
                        out.push(Err(AppendRejected::NotMember));
                        continue;
                    }
                    // The client_id lookup first: a retry of a message stored before
                    // the room closed still gets its original.
                    if let Some(cid) = &m.client_id {
                        let earlier: Option<Message> = tx
                            .prepare_cached(&format!(
                                "SELECT {MESSAGE_COLS} FROM messages \
                                 WHERE room_id = ?1 AND sender_id = ?2 AND client_id = ?3"
                            ))?
                            .query_row(params![m.room_id, m.sender.id, cid], message_row)
                            .optional()?;
                        if let Some(mut earlier) = earlier {
                            media::attach(&tx, std::slice::from_mut(&mut earlier))?;
                            out.push(Ok(Appended::Duplicate(earlier)));
                            continue;
                        }
                    }
                    if let Err(rejected) = may_post {
                        out.push(Err(rejected));
                        continue;
                    }
                }
                MessageKind::Join => {
                    let n = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO members (room_id, user_id, joined_at, join_seq, read_seq) \
                             VALUES (?1, ?2, ?3, ?4, ?4)",
                        )?
                        .execute(params![m.room_id, m.sender.id, m.sent_at, seq])
                        .map_err(at)?;
                    if n == 0 {
                        out.push(Ok(Appended::Unchanged));
                        continue;
                    }
                    member_changes.insert((m.room_id, m.sender.id), true);
                    member_change = 1;
                }
                MessageKind::Leave => {
                    let n = tx
                        .prepare_cached("DELETE FROM members WHERE room_id = ?1 AND user_id = ?2")?
                        .execute(params![m.room_id, m.sender.id])?;
                    if n == 0 {
                        out.push(Ok(Appended::Unchanged));
                        continue;
                    }
                    member_changes.insert((m.room_id, m.sender.id), false);
                    member_change = -1;
                }
            }
            tx.prepare_cached(
                "INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, \
                                       sender_guest, masked) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                m.room_id,
                seq,
                m.kind.as_str(),
                m.sender.id,
                m.sender.name,
                m.text,
                m.client_id,
                m.sent_at,
                m.sender.guest,
                m.moderation.masked
            ])
            .map_err(at)?;
            let id = tx.last_insert_rowid();
            media::store_attachments(&tx, id, &m.attachments).map_err(at)?;
            search::index(&tx, id, m.kind, &m.text).map_err(at)?;
            if let Some(flag) = &m.moderation.flag {
                tx.prepare_cached(
                    "INSERT INTO moderation_queue (kind, room_id, message_id, subject_id, reason, score, created_at) \
                     VALUES ('flag', ?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    m.room_id,
                    id,
                    m.sender.id,
                    flag.categories.join(","),
                    f64::from(flag.score_milli) / 1000.0,
                    m.sent_at
                ])
                .map_err(at)?;
            }
            let d = deltas.entry(m.room_id).or_insert(RoomDelta {
                last_seq: seq,
                last_at: m.sent_at,
                members: 0,
            });
            d.last_seq = seq;
            d.last_at = m.sent_at;
            d.members += member_change;
            out.push(Ok(Appended::New(Message {
                id,
                room_id: m.room_id,
                seq,
                kind: m.kind,
                sender: m.sender.clone(),
                text: m.text.clone(),
                client_id: m.client_id.clone(),
                sent_at: m.sent_at,
                masked: m.moderation.masked,
                attachments: m.attachments.clone(),
            })));
        }
        for (room, d) in &deltas {
            tx.prepare_cached(
                "UPDATE rooms SET last_seq = ?2, last_message_at = ?3, member_count = member_count + ?4 \
                 WHERE id = ?1",
            )?
            .execute(params![room, d.last_seq, d.last_at, d.members])?;
        }
        let committed = tx.commit();
        match committed {
            Ok(()) => {
                for (room, d) in deltas {
                    self.cache_last_seq(room, d.last_seq);
                }
                if self.members.len() > MEMBER_CACHE_MAX {
                    self.members.clear();
                }
                self.members.extend(
                    known_members
                        .into_iter()
                        .filter(|k| !member_changes.contains_key(k)),
                );
                // A new join is cached by its first message's lookup, which also
                // checks that the room is open.
                for (key, member) in member_changes {
                    if !member {
                        self.members.remove(&key);
                    }
                }
                Ok(out)
            }
            Err(e) => {
                self.last_seq.clear();
                self.members.clear();
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RoomKind, Visibility};

    fn writer(last_seq_max: usize) -> Writer {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::super::migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO users (id, display_name, guest, created_at) VALUES (1, 'a', 1, 0)",
            [],
        )
        .unwrap();
        Writer::with_cache_limit(conn, last_seq_max)
    }

    fn user() -> UserRef {
        UserRef {
            id: 1,
            name: "a".into(),
            guest: true,
        }
    }

    fn room(w: &mut Writer) -> RoomId {
        let new = NewRoom {
            name: "r".into(),
            visibility: Visibility::Public,
            kind: RoomKind::Random,
            created_by: 1,
            moderation: crate::model::RoomPolicy::Standard,
        };
        w.create_room(new, vec![user()]).unwrap().0.id
    }

    fn text(room: RoomId, t: &str) -> NewMessage {
        NewMessage {
            room_id: room,
            kind: MessageKind::Text,
            sender: user(),
            text: t.into(),
            client_id: None,
            sent_at: 1,
            moderation: Default::default(),
            attachments: vec![],
        }
    }

    #[test]
    fn the_last_seq_cache_stays_bounded_and_reloads_on_a_miss() {
        let mut w = writer(8);
        let rooms: Vec<RoomId> = (0..100).map(|_| room(&mut w)).collect();
        assert!(w.cached_rooms() <= 8, "{} rooms cached", w.cached_rooms());
        // The first room was evicted long ago: its seq comes from the row.
        let out = w.append(vec![text(rooms[0], "hi")]).unwrap();
        let Ok(Appended::New(m)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(m.seq, 2);
        let out = w.append(vec![text(rooms[0], "again")]).unwrap();
        assert!(matches!(&out[0], Ok(Appended::New(m)) if m.seq == 3));
    }

    #[test]
    fn a_refused_item_is_rejected_alone() {
        let mut w = writer(8);
        let r = room(&mut w);
        // A join by a user that does not exist breaks the foreign key.
        let ghost = NewMessage {
            kind: MessageKind::Join,
            sender: UserRef {
                id: 999,
                name: "ghost".into(),
                guest: false,
            },
            ..text(r, "")
        };
        let out = w
            .append(vec![
                text(r, "one"),
                text(r, "nul\0"),
                ghost,
                text(r, "two"),
            ])
            .unwrap();
        assert_eq!(out[1], Err(AppendRejected::Unstorable));
        assert_eq!(out[2], Err(AppendRejected::Unstorable));
        let seqs: Vec<i64> = [&out[0], &out[3]]
            .iter()
            .map(|o| match o {
                Ok(Appended::New(m)) => m.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [2, 3]);
    }
}
