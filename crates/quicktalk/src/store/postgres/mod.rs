//! PostgreSQL backend (sqlx), for running several nodes on one database.
//!
//! Unlike the SQLite writer, this store keeps no cache that another node could
//! invalidate: each [`Store::append`] batch is one transaction that locks the
//! batch's rooms (`SELECT … FOR UPDATE`), reads their `last_seq`, memberships and
//! earlier `client_id`s in three set-based queries, decides every item in memory
//! in order, and writes with multi-row `unnest` inserts. So whichever node
//! sequences a room (after a rebalance or a crash, too) continues from what is
//! committed, and two writers of one room serialize on its row lock;
//! `UNIQUE (room_id, seq)` is the last guard. A commit returns only once
//! PostgreSQL made it durable (`synchronous_commit` on, the default).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{NewReport, NewRoom, NewUser, RoomWithUnread, Store, StoreError, StoreResult};
use crate::model::{
    now_ms, AppendRejected, Appended, HistoryQuery, Message, MessageKind, NewMessage, Room, RoomId,
    RoomKind, User, UserId, UserRef, Visibility,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres/migrations");

pub struct PostgresStore {
    pool: PgPool,
}

/// One record of the pipeline's log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub message: NewMessage,
}

/// What [`PostgresStore::append_logged`] did with a record.
#[derive(Debug, Clone)]
pub enum Logged {
    /// Applied now, like [`Store::append`].
    Applied(Result<Appended, AppendRejected>),
    /// Applied before; the message it stored, if it stored one.
    Replayed(Option<Message>),
}

const USER_COLS: &str = "id, username, display_name, guest";
const ROOM_COLS: &str =
    "r.id, r.name, r.visibility, r.kind, r.member_count, r.last_seq, r.created_at, r.last_message_at";
const MESSAGE_COLS: &str =
    "id, room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at";
/// [`MESSAGE_COLS`] of a `messages m` in a join.
const M_MESSAGE_COLS: &str =
    "m.id, m.room_id, m.seq, m.kind, m.sender_id, m.sender_name, m.text, m.client_id, m.sent_at";

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        Self::open_with(opts, max_connections).await
    }

    /// Like [`open`](Self::open), inside `schema` (created if missing): lets tests
    /// share one database without seeing each other.
    pub async fn open_in_schema(url: &str, schema: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad schema name {schema:?}"
        );
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        Self::open_with(opts.options([("search_path", schema)]), 8).await
    }

    async fn open_with(opts: PgConnectOptions, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .context("connecting to PostgreSQL")?;
        // sqlx takes an advisory lock: nodes starting together migrate once.
        MIGRATOR
            .run(&pool)
            .await
            .context("migrating the PostgreSQL schema")?;
        Ok(PostgresStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The next offset to apply, per partition of `topic`'s log.
    pub async fn next_offsets(&self, topic: &str) -> StoreResult<HashMap<i32, i64>> {
        Ok(
            sqlx::query_as("SELECT partition, next_offset FROM pipeline_offsets WHERE topic = $1")
                .bind(topic)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .into_iter()
                .collect(),
        )
    }

    /// Applies records of a log (the multi-node pipeline's topic) exactly once:
    /// in one transaction, records below their partition's applied offset are
    /// skipped (reported as [`Logged::Replayed`] with the message they stored, if
    /// any), the rest are appended like [`Store::append`], and the partitions'
    /// offsets move past the batch. The partition rows are locked, so a former and
    /// a new owner of a partition (around a rebalance) cannot both apply a record.
    pub async fn append_logged(
        &self,
        topic: &str,
        records: Vec<LogRecord>,
    ) -> StoreResult<Vec<Logged>> {
        let mut parts: Vec<i32> = records.iter().map(|r| r.partition).collect();
        parts.sort_unstable();
        parts.dedup();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO pipeline_offsets (topic, partition, next_offset) \
             SELECT $1, p, 0 FROM unnest($2::integer[]) AS p ON CONFLICT DO NOTHING",
        )
        .bind(topic)
        .bind(&parts)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let applied: HashMap<i32, i64> = sqlx::query_as(
            "SELECT partition, next_offset FROM pipeline_offsets \
             WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
        )
        .bind(topic)
        .bind(&parts)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        let mut fresh = Vec::new();
        let mut fresh_pos = Vec::new();
        let mut fresh_at = Vec::new();
        let mut replayed: Vec<(usize, i32, i64)> = Vec::new();
        let mut next: HashMap<i32, i64> = applied.clone();
        let n = records.len();
        for (i, r) in records.into_iter().enumerate() {
            let done = applied.get(&r.partition).copied().unwrap_or(0);
            if r.offset < done {
                replayed.push((i, r.partition, r.offset));
                continue;
            }
            let e = next.entry(r.partition).or_insert(0);
            *e = (*e).max(r.offset + 1);
            fresh_at.push(i);
            fresh_pos.push(Some((r.partition, r.offset)));
            fresh.push(r.message);
        }
        let mut out: Vec<Option<Logged>> = (0..n).map(|_| None).collect();
        if !fresh.is_empty() {
            let results = Self::append_tx(&mut tx, fresh, fresh_pos).await?;
            for (i, r) in fresh_at.into_iter().zip(results) {
                out[i] = Some(Logged::Applied(r));
            }
        }
        if !replayed.is_empty() {
            let (rp, ro): (Vec<i32>, Vec<i64>) = replayed.iter().map(|(_, p, o)| (*p, *o)).unzip();
            let sql = format!(
                "SELECT {M_MESSAGE_COLS}, m.log_partition, m.log_offset FROM messages m \
                 JOIN unnest($1::integer[], $2::bigint[]) AS k(p, o) \
                 ON m.log_partition = k.p AND m.log_offset = k.o"
            );
            let mut stored: HashMap<(i32, i64), Message> = HashMap::new();
            for row in sqlx::query(&sql)
                .bind(&rp)
                .bind(&ro)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
            {
                let p: i32 = row.try_get(9).map_err(db)?;
                let o: i64 = row.try_get(10).map_err(db)?;
                stored.insert((p, o), message_row(&row)?);
            }
            for (i, p, o) in replayed {
                out[i] = Some(Logged::Replayed(stored.remove(&(p, o))));
            }
        }
        let (np, no): (Vec<i32>, Vec<i64>) = next.into_iter().unzip();
        sqlx::query(
            "UPDATE pipeline_offsets SET next_offset = k.o \
             FROM unnest($2::integer[], $3::bigint[]) AS k(p, o) \
             WHERE topic = $1 AND partition = k.p AND next_offset < k.o",
        )
        .bind(topic)
        .bind(&np)
        .bind(&no)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(out
            .into_iter()
            .map(|o| o.expect("every record decided"))
            .collect())
    }

    /// The secret `name`, set to `candidate` by whichever node asks first: every
    /// node of a cluster then signs and checks tokens with the same key.
    pub async fn shared_secret(&self, name: &str, candidate: &[u8]) -> anyhow::Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("PostgreSQL"))
}

fn bad(what: &str, v: &str) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("unknown {what} {v:?} in the database"))
}

fn user_row(r: &PgRow) -> StoreResult<User> {
    Ok(User {
        id: r.try_get(0).map_err(db)?,
        username: r.try_get(1).map_err(db)?,
        display_name: r.try_get(2).map_err(db)?,
        guest: r.try_get(3).map_err(db)?,
    })
}

fn room_row(r: &PgRow) -> StoreResult<Room> {
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
    })
}

fn message_row(r: &PgRow) -> StoreResult<Message> {
    let kind: String = r.try_get(3).map_err(db)?;
    Ok(Message {
        id: r.try_get(0).map_err(db)?,
        room_id: r.try_get(1).map_err(db)?,
        seq: r.try_get(2).map_err(db)?,
        kind: MessageKind::parse(&kind).ok_or_else(|| bad("message kind", &kind))?,
        sender: UserRef {
            id: r.try_get(4).map_err(db)?,
            name: r.try_get(5).map_err(db)?,
        },
        text: r.try_get(6).map_err(db)?,
        client_id: r.try_get(7).map_err(db)?,
        sent_at: r.try_get(8).map_err(db)?,
    })
}

const UNREAD_SQL: &str = "SELECT COUNT(*) FROM messages WHERE room_id = $1 AND seq > $2 \
                          AND sender_id <> $3 AND kind IN ('text', 'system')";

/// Rows to write, column by column (for `unnest`).
#[derive(Default)]
struct MessageCols {
    room: Vec<i64>,
    seq: Vec<i64>,
    kind: Vec<&'static str>,
    sender: Vec<i64>,
    sender_name: Vec<String>,
    text: Vec<String>,
    client_id: Vec<Option<String>>,
    sent_at: Vec<i64>,
    log_partition: Vec<Option<i32>>,
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
    last_at: Option<i64>,
    members_delta: i64,
    touched: bool,
}

impl PostgresStore {
    /// `pos[i]` is item `i`'s place in the log (partition, offset), if it has one.
    async fn append_tx(
        tx: &mut Transaction<'_, Postgres>,
        batch: Vec<NewMessage>,
        pos: Vec<Option<(i32, i64)>>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        // 1. Lock the rooms (in id order: no deadlock between two batches).
        let mut room_ids: Vec<i64> = batch.iter().map(|m| m.room_id).collect();
        room_ids.sort_unstable();
        room_ids.dedup();
        let mut rooms: HashMap<RoomId, RoomState> = HashMap::new();
        for r in
            sqlx::query("SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&room_ids)
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?
        {
            rooms.insert(
                r.get(0),
                RoomState {
                    last_seq: r.get(1),
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
                let m = message_row(&r)?;
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
                        if let Some(&i) = batch_cids.get(&ck) {
                            let Ok(Appended::New(first)) = &out[i] else {
                                unreachable!("batch_cids points at new messages")
                            };
                            out.push(Ok(Appended::Duplicate(first.clone())));
                            continue;
                        }
                        batch_cids.insert(ck, out.len());
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
            cols.text.push(m.text.clone());
            cols.client_id.push(m.client_id.clone());
            cols.sent_at.push(m.sent_at);
            cols.log_partition.push(p.map(|p| p.0));
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
                                       log_partition, log_offset) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], \
                                      $6::text[], $7::text[], $8::bigint[], $9::integer[], $10::bigint[]) \
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
            .bind(&cols.log_partition)
            .bind(&cols.log_offset)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?;
            let by_seq: HashMap<(i64, i64), i64> =
                ids.into_iter().map(|(id, r, s)| ((r, s), id)).collect();
            for i in new_at {
                if let Ok(Appended::New(m)) = &mut out[i] {
                    m.id = by_seq[&(m.room_id, m.seq)];
                }
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

async fn unread_count(
    pool: &PgPool,
    room: RoomId,
    user: UserId,
    read_seq: i64,
) -> StoreResult<i64> {
    sqlx::query_scalar(UNREAD_SQL)
        .bind(room)
        .bind(read_seq)
        .bind(user)
        .fetch_one(pool)
        .await
        .map_err(db)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        let res = sqlx::query(
            "INSERT INTO users (username, password_hash, display_name, guest, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.display_name)
        .bind(u.guest)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await;
        match res {
            Ok(r) => Ok(User {
                id: r.get(0),
                username: u.username,
                display_name: u.display_name,
                guest: u.guest,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UsernameTaken)
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, password_hash FROM users \
             WHERE lower(username) = lower($1) AND password_hash IS NOT NULL"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(r) => Ok(Some((user_row(&r)?, r.try_get(4).map_err(db)?))),
            None => Ok(None),
        }
    }

    async fn create_room(&self, n: NewRoom) -> StoreResult<Room> {
        self.create_room_with(n, Vec::new())
            .await
            .map(|(room, _)| room)
    }

    async fn create_room_with(
        &self,
        n: NewRoom,
        members: Vec<UserRef>,
    ) -> StoreResult<(Room, Vec<Message>)> {
        let now = now_ms();
        let count = members.len() as i64;
        let last_at = (count > 0).then_some(now);
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name, visibility, kind, created_by, created_at, member_count, last_seq, last_message_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
        )
        .bind(&n.name)
        .bind(n.visibility.as_str())
        .bind(n.kind.as_str())
        .bind(n.created_by)
        .bind(now)
        .bind(count)
        .bind(last_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let mut joins = Vec::with_capacity(members.len());
        for (i, user) in members.into_iter().enumerate() {
            let seq = i as i64 + 1;
            sqlx::query(
                "INSERT INTO members (room_id, user_id, joined_at, join_seq, read_seq) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(user.id)
            .bind(now)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            let mid: i64 = sqlx::query_scalar(
                "INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at) \
                 VALUES ($1, $2, 'join', $3, $4, '', NULL, $5) RETURNING id",
            )
            .bind(id)
            .bind(seq)
            .bind(user.id)
            .bind(&user.name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            joins.push(Message {
                id: mid,
                room_id: id,
                seq,
                kind: MessageKind::Join,
                sender: user,
                text: String::new(),
                client_id: None,
                sent_at: now,
            });
        }
        tx.commit().await.map_err(db)?;
        let room = Room {
            id,
            name: n.name,
            visibility: n.visibility,
            kind: n.kind,
            member_count: count,
            last_seq: count,
            created_at: now,
            last_message_at: last_at,
        };
        Ok((room, joins))
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(room_row)
            .transpose()
    }

    async fn rooms_for(&self, user: UserId, limit: usize) -> StoreResult<Vec<RoomWithUnread>> {
        // The unread count in the same query: one round trip for the listing.
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS}, m.read_seq, \
               CASE WHEN m.user_id IS NULL THEN NULL ELSE ( \
                 SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.read_seq \
                   AND x.sender_id <> $1 AND x.kind IN ('text', 'system')) END \
             FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $1 \
             WHERE (r.visibility = 'public' AND r.kind = 'group') OR m.user_id IS NOT NULL \
             ORDER BY COALESCE(r.last_message_at, r.created_at) DESC, r.id DESC LIMIT $2"
        ))
        .bind(user)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(RoomWithUnread {
                    room: room_row(r)?,
                    unread: r.try_get::<Option<i64>, _>(9).map_err(db)?,
                })
            })
            .collect()
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?
                .is_some(),
        )
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<(UserId, String)>> {
        sqlx::query_as(
            "SELECT u.id, u.display_name FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 ORDER BY m.join_seq",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Option<i64>> {
        let read_seq: Option<i64> =
            sqlx::query_scalar("SELECT read_seq FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        match read_seq {
            Some(s) => Ok(Some(unread_count(&self.pool, room, user, s).await?)),
            None => Ok(None),
        }
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<Option<i64>> {
        let read_seq: Option<i64> = sqlx::query_scalar(
            "UPDATE members SET read_seq = GREATEST(read_seq, LEAST($3, (SELECT last_seq FROM rooms WHERE id = $1))) \
             WHERE room_id = $1 AND user_id = $2 RETURNING read_seq",
        )
        .bind(room)
        .bind(user)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match read_seq {
            Some(s) => Ok(Some(unread_count(&self.pool, room, user, s).await?)),
            None => Ok(None),
        }
    }

    async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let pos = vec![None; batch.len()];
        let out = Self::append_tx(&mut tx, batch, pos).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn add_report(&self, r: NewReport) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO reports (room_id, reporter_id, reported_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.room_id)
        .bind(r.reporter)
        .bind(r.reported)
        .bind(&r.reason)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn blocked_pairs(&self) -> StoreResult<Vec<(UserId, UserId)>> {
        sqlx::query_as("SELECT DISTINCT reporter_id, reported_id FROM reports")
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn messages(&self, room: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)> {
        let ascending = q.after_seq.is_some();
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE room_id = $1 AND seq > $2 AND seq < $3 \
             ORDER BY seq {} LIMIT $4",
            if ascending { "ASC" } else { "DESC" }
        );
        let rows = sqlx::query(&sql)
            .bind(room)
            .bind(q.after_seq.unwrap_or(0))
            .bind(q.before_seq.unwrap_or(i64::MAX))
            .bind(q.limit as i64 + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut msgs = rows
            .iter()
            .map(message_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let has_more = msgs.len() > q.limit;
        msgs.truncate(q.limit);
        if !ascending {
            msgs.reverse();
        }
        Ok((msgs, has_more))
    }
}
