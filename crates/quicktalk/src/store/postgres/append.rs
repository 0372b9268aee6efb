//! One batch of messages in one transaction: lock the batch's rooms, read their
//! `last_seq`, memberships and earlier `client_id`s set-wise, decide every item in
//! order, write with multi-row `unnest` inserts.
//!
//! Poison-proof: the batch runs under a savepoint. When PostgreSQL refuses it
//! deterministically (SQLSTATE class 22 data exception, e.g. NUL in `text`, or 23
//! integrity violation), it is rolled back to the savepoint and retried one item
//! per savepoint: the refused items become [`AppendRejected::Unstorable`] and the
//! rest commit. Any other error (connection loss, serialization) fails the batch.

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Row, Transaction};

use super::db;
use super::media::{self, AttachmentCols};
use super::rows::*;
use super::PostgresStore;
use crate::model::{AppendRejected, Appended, Message, MessageKind, NewMessage, RoomId, UserId};
use crate::store::{StoreError, StoreResult};

/// Rows to write, column by column (for `unnest`).
#[derive(Default)]
struct MessageCols {
    room: Vec<i64>,
    seq: Vec<i64>,
    kind: Vec<&'static str>,
    sender: Vec<i64>,
    sender_name: Vec<String>,
    sender_guest: Vec<bool>,
    masked: Vec<bool>,
    text: Vec<String>,
    /// `store::search::fold` of a `text` message's text where it differs.
    search_text: Vec<Option<String>>,
    client_id: Vec<Option<String>>,
    sent_at: Vec<i64>,
    log_id: Vec<Option<i64>>,
    log_offset: Vec<Option<i64>>,
}

/// What happened to one (room, user) membership over the batch.
struct MemberChange {
    was: bool,
    now: bool,
    /// Seq and time of the last join in this batch.
    join: Option<(i64, i64)>,
}

/// A room's state while the batch is decided.
struct RoomState {
    last_seq: i64,
    /// Closed to text/system messages (an ended random chat).
    closed: bool,
    last_at: Option<i64>,
    members_delta: i64,
    touched: bool,
}

/// Whether `e` is PostgreSQL refusing the data itself (SQLSTATE class 22 or 23):
/// the same statement would fail again, so retrying the batch cannot help.
pub(super) fn is_deterministic(e: &StoreError) -> bool {
    let StoreError::Backend(e) = e else {
        return false;
    };
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
    })
}

async fn exec(tx: &mut Transaction<'_, Postgres>, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql).execute(&mut **tx).await.map_err(db)?;
    Ok(())
}

impl PostgresStore {
    /// Each existing room's `last_seq`, for the event receiver's repair check.
    pub async fn last_seqs(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, i64)>> {
        sqlx::query_as("SELECT id, last_seq FROM rooms WHERE id = ANY($1)")
            .bind(rooms)
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    /// Appends `batch` inside `tx` (see the module docs for poisoned items).
    /// `pos[i]` is item `i`'s place in the log (log id, offset), if it has one.
    pub(super) async fn append_tx(
        tx: &mut Transaction<'_, Postgres>,
        batch: Vec<NewMessage>,
        pos: Vec<Option<(i64, i64)>>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        exec(tx, "SAVEPOINT append_batch").await?;
        match Self::append_batch(tx, batch.clone(), pos.clone()).await {
            Ok(out) => {
                exec(tx, "RELEASE SAVEPOINT append_batch").await?;
                return Ok(out);
            }
            Err(e) if is_deterministic(&e) => {
                tracing::warn!(error = %e, batch = batch.len(), "batch refused; storing item by item");
                exec(tx, "ROLLBACK TO SAVEPOINT append_batch").await?;
            }
            Err(e) => return Err(e),
        }
        let mut out = Vec::with_capacity(batch.len());
        for (m, p) in batch.into_iter().zip(pos) {
            exec(tx, "SAVEPOINT append_item").await?;
            match Self::append_batch(tx, vec![m], vec![p]).await {
                Ok(mut one) => {
                    exec(tx, "RELEASE SAVEPOINT append_item").await?;
                    out.push(one.pop().expect("one outcome per item"));
                }
                Err(e) if is_deterministic(&e) => {
                    tracing::warn!(error = %e, "message refused by the database; rejected alone");
                    exec(tx, "ROLLBACK TO SAVEPOINT append_item").await?;
                    exec(tx, "RELEASE SAVEPOINT append_item").await?;
                    out.push(Err(AppendRejected::Unstorable));
                }
                Err(e) => return Err(e),
            }
        }
        exec(tx, "RELEASE SAVEPOINT append_batch").await?;
        Ok(out)
    }

    async fn append_batch(
        tx: &mut Transaction<'_, Postgres>,
        batch: Vec<NewMessage>,
        pos: Vec<Option<(i64, i64)>>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        // 1. Lock the rooms (in id order: no deadlock between two batches).
        let mut room_ids: Vec<i64> = batch.iter().map(|m| m.room_id).collect();
        room_ids.sort_unstable();
        room_ids.dedup();
        let mut rooms: HashMap<RoomId, RoomState> = HashMap::new();
        for r in sqlx::query(
            "SELECT id, last_seq, closed_at IS NOT NULL FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
                .bind(&room_ids)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?
        {
            rooms.insert(
                r.get(0),
                RoomState {
                    last_seq: r.get(1),
                    closed: r.get(2),
                    last_at: None,
                    members_delta: 0,
                    touched: false,
                },
            );
        }

        // 2. Current memberships of every (room, sender) in the batch.
        let (mr, mu): (Vec<i64>, Vec<i64>) = batch
            .iter()
            .filter(|m| rooms.contains_key(&m.room_id))
            .map(|m| (m.room_id, m.sender.id))
            .collect::<HashSet<_>>()
            .into_iter()
            .unzip();
        let mut member: HashSet<(RoomId, UserId)> = HashSet::new();
        if !mr.is_empty() {
            for r in sqlx::query(
                "SELECT m.room_id, m.user_id FROM members m \
                 JOIN unnest($1::bigint[], $2::bigint[]) AS k(r, u) ON m.room_id = k.r AND m.user_id = k.u",
            )
            .bind(&mr)
            .bind(&mu)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?
            {
                member.insert((r.get(0), r.get(1)));
            }
        }

        // 3. Messages stored earlier under the batch's client_ids.
        let mut cr = Vec::new();
        let mut cs = Vec::new();
        let mut cc = Vec::new();
        for m in &batch {
            if let (Some(cid), true) = (&m.client_id, rooms.contains_key(&m.room_id)) {
                cr.push(m.room_id);
                cs.push(m.sender.id);
                cc.push(cid.clone());
            }
        }
        let mut earlier: HashMap<(RoomId, UserId, String), Message> = HashMap::new();
        if !cr.is_empty() {
            let mut found = Vec::new();
            let sql = format!(
                "SELECT {M_MESSAGE_COLS} FROM messages m \
                 JOIN unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(r, s, c) \
                 ON m.room_id = k.r AND m.sender_id = k.s AND m.client_id = k.c"
            );
            for r in sqlx::query(&sql)
                .bind(&cr)
                .bind(&cs)
                .bind(&cc)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?
            {
                found.push(message_row(&r)?);
            }
            // A duplicate answers with the original as stored, files included.
            media::attach(&mut **tx, &mut found).await?;
            for m in found {
                let key = (
                    m.room_id,
                    m.sender.id,
                    m.client_id.clone().unwrap_or_default(),
                );
                earlier.insert(key, m);
            }
        }

        // 4. Decide every item in order.
        let mut out: Vec<Result<Appended, AppendRejected>> = Vec::with_capacity(batch.len());
        // Index into `out` of each new message, in insertion order.
        let mut new_at: Vec<usize> = Vec::new();
        // (index in `out`, categories, score) of the flagged new messages.
        let mut flags: Vec<(usize, String, u16)> = Vec::new();
        let mut cols = MessageCols::default();
        let mut changes: HashMap<(RoomId, UserId), MemberChange> = HashMap::new();
        // client_ids stored by this batch: a repeat inside it is a duplicate too.
        let mut batch_cids: HashMap<(RoomId, UserId, String), usize> = HashMap::new();
        for (m, p) in batch.into_iter().zip(pos) {
            let Some(room) = rooms.get_mut(&m.room_id) else {
                out.push(Err(AppendRejected::RoomNotFound));
                continue;
            };
            let key = (m.room_id, m.sender.id);
            let is_member = changes
                .get(&key)
                .map_or_else(|| member.contains(&key), |c| c.now);
            let seq = room.last_seq + 1;
            match m.kind {
                // A tombstone is made by deleting a stored message, and a hidden
                // message is a reader's view of one: neither is ever appended.
                MessageKind::Deleted | MessageKind::Hidden => {
                    out.push(Err(AppendRejected::Unstorable));
                    continue;
                }
                MessageKind::Text | MessageKind::System => {
                    if !is_member {
                        out.push(Err(AppendRejected::NotMember));
                        continue;
                    }
                    if let Some(cid) = &m.client_id {
                        let ck = (m.room_id, m.sender.id, cid.clone());
                        if let Some(e) = earlier.get(&ck) {
                            out.push(Ok(Appended::Duplicate(e.clone())));
                            continue;
                        }
                        if room.closed {
                            out.push(Err(AppendRejected::RoomClosed));
                            continue;
                        }
                        if let Some(&i) = batch_cids.get(&ck) {
                            let Ok(Appended::New(first)) = &out[i] else {
                                unreachable!("batch_cids points at new messages")
                            };
                            out.push(Ok(Appended::Duplicate(first.clone())));
                            continue;
                        }
                        batch_cids.insert(ck, out.len());
                    }
                    // After the client_id lookup: a retry of a message stored before
                    // the room closed still gets its original.
                    if room.closed {
                        out.push(Err(AppendRejected::RoomClosed));
                        continue;
                    }
                }
                MessageKind::Join => {
                    if is_member {
                        out.push(Ok(Appended::Unchanged));
                        continue;
                    }
                    let c = changes.entry(key).or_insert(MemberChange {
                        was: false,
                        now: false,
                        join: None,
                    });
                    c.now = true;
                    c.join = Some((seq, m.sent_at));
                    room.members_delta += 1;
                }
                MessageKind::Leave => {
                    if !is_member {
                        out.push(Ok(Appended::Unchanged));
                        continue;
                    }
                    let c = changes.entry(key).or_insert(MemberChange {
                        was: true,
                        now: true,
                        join: None,
                    });
                    c.now = false;
                    room.members_delta -= 1;
                }
            }
            room.last_seq = seq;
            room.last_at = Some(m.sent_at);
            room.touched = true;
            cols.room.push(m.room_id);
            cols.seq.push(seq);
            cols.kind.push(m.kind.as_str());
            cols.sender.push(m.sender.id);
            cols.sender_name.push(m.sender.name.clone());
            cols.sender_guest.push(m.sender.guest);
            cols.masked.push(m.moderation.masked);
            if let Some(flag) = &m.moderation.flag {
                flags.push((out.len(), flag.categories.join(","), flag.score_milli));
            }
            cols.text.push(m.text.clone());
            cols.search_text.push(match m.kind {
                MessageKind::Text => crate::store::search::stored_fold(&m.text),
                _ => None,
            });
            cols.client_id.push(m.client_id.clone());
            cols.sent_at.push(m.sent_at);
            cols.log_id.push(p.map(|p| p.0));
            cols.log_offset.push(p.map(|p| p.1));
            new_at.push(out.len());
            out.push(Ok(Appended::New(Message {
                id: 0,
                room_id: m.room_id,
                seq,
                kind: m.kind,
                sender: m.sender,
                text: m.text,
                client_id: m.client_id,
                sent_at: m.sent_at,
                masked: m.moderation.masked,
                attachments: m.attachments,
            })));
        }

        // 5. Memberships: drop every one that changed, then insert the final joins.
        let (dr, du): (Vec<i64>, Vec<i64>) = changes
            .iter()
            .filter(|(_, c)| c.was)
            .map(|(k, _)| *k)
            .unzip();
        if !dr.is_empty() {
            sqlx::query(
                "DELETE FROM members m USING unnest($1::bigint[], $2::bigint[]) AS k(r, u) \
                 WHERE m.room_id = k.r AND m.user_id = k.u",
            )
            .bind(&dr)
            .bind(&du)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        }
        let mut ir = Vec::new();
        let mut iu = Vec::new();
        let mut iseq = Vec::new();
        let mut iat = Vec::new();
        for ((r, u), c) in &changes {
            if let (true, Some((seq, at))) = (c.now, c.join) {
                ir.push(*r);
                iu.push(*u);
                iseq.push(seq);
                iat.push(at);
            }
        }
        if !ir.is_empty() {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, joined_at, join_seq, read_seq) \
                 SELECT r, u, t, s, s FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS k(r, u, s, t)",
            )
            .bind(&ir)
            .bind(&iu)
            .bind(&iseq)
            .bind(&iat)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        }

        // 6. Messages, one statement; ids come back in insertion order.
        if !cols.room.is_empty() {
            let kinds: Vec<String> = cols.kind.iter().map(|k| k.to_string()).collect();
            let ids: Vec<(i64, i64, i64)> = sqlx::query_as(
                "INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, \
                                       log_id, log_offset, sender_guest, masked, search_text) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], \
                                      $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], \
                                      $11::boolean[], $12::boolean[], $13::text[]) \
                 RETURNING id, room_id, seq",
            )
            .bind(&cols.room)
            .bind(&cols.seq)
            .bind(&kinds)
            .bind(&cols.sender)
            .bind(&cols.sender_name)
            .bind(&cols.text)
            .bind(&cols.client_id)
            .bind(&cols.sent_at)
            .bind(&cols.log_id)
            .bind(&cols.log_offset)
            .bind(&cols.sender_guest)
            .bind(&cols.masked)
            .bind(&cols.search_text)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?;
            let by_seq: HashMap<(i64, i64), i64> =
                ids.into_iter().map(|(id, r, s)| ((r, s), id)).collect();
            // Their attachments, for the whole batch in one statement.
            let mut attachments = AttachmentCols::default();
            for i in new_at {
                if let Ok(Appended::New(m)) = &mut out[i] {
                    m.id = by_seq[&(m.room_id, m.seq)];
                    attachments.push(m);
                }
            }
            attachments.insert(&mut **tx).await?;
            // Flagged messages join the review queue in the same transaction.
            if !flags.is_empty() {
                let mut fr = Vec::new();
                let mut fm = Vec::new();
                let mut fs = Vec::new();
                let mut fc = Vec::new();
                let mut fscore = Vec::new();
                let mut fat = Vec::new();
                for (i, categories, score) in &flags {
                    if let Ok(Appended::New(m)) = &out[*i] {
                        fr.push(m.room_id);
                        fm.push(m.id);
                        fs.push(m.sender.id);
                        fc.push(categories.clone());
                        fscore.push(f64::from(*score) / 1000.0);
                        fat.push(m.sent_at);
                    }
                }
                sqlx::query(
                    "INSERT INTO moderation_queue (kind, room_id, message_id, subject_id, reason, score, created_at) \
                     SELECT 'flag', r, m, s, c, sc, t FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], \
                         $4::text[], $5::float8[], $6::bigint[]) AS k(r, m, s, c, sc, t) ORDER BY m",
                )
                .bind(&fr)
                .bind(&fm)
                .bind(&fs)
                .bind(&fc)
                .bind(&fscore)
                .bind(&fat)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            }
            // Duplicates inside the batch copied the first before it had an id.
            for o in out.iter_mut() {
                if let Ok(Appended::Duplicate(m)) = o {
                    if m.id == 0 {
                        m.id = by_seq[&(m.room_id, m.seq)];
                    }
                }
            }
        }

        // 7. Rooms' counters.
        let mut ur = Vec::new();
        let mut us = Vec::new();
        let mut ua = Vec::new();
        let mut ud = Vec::new();
        for (id, r) in &rooms {
            if r.touched {
                ur.push(*id);
                us.push(r.last_seq);
                ua.push(r.last_at);
                ud.push(r.members_delta);
            }
        }
        if !ur.is_empty() {
            sqlx::query(
                "UPDATE rooms SET last_seq = k.s, last_message_at = k.a, member_count = member_count + k.d \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS k(r, s, a, d) \
                 WHERE rooms.id = k.r",
            )
            .bind(&ur)
            .bind(&us)
            .bind(&ua)
            .bind(&ud)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        }
        Ok(out)
    }
}
