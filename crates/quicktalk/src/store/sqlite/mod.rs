//! SQLite backend: the embedded default (`sqlite://PATH`, under the data dir).
//!
//! One dedicated writer thread owns the only write connection, so every write is
//! serialized without lock contention and a whole [`Store::append`] batch is one
//! transaction (WAL, `synchronous=FULL` by default: one fsync per batch). Reads use
//! a small pool of read-only connections on the blocking thread pool; WAL lets them
//! run while the writer commits. The writer caches each room's `last_seq`: it is the
//! only process writing this file (the cache is bounded: see `writer`). The
//! writer's queue is bounded too: callers beyond it wait (back-pressure). WAL checkpoints run on their own thread and
//! connection (PASSIVE, never blocking the writer), so their fsyncs stay off the
//! commit path.

mod media;
mod moderation;
mod people;
mod push;
mod search;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::oneshot;

use super::media::Upload;
use super::moderation::{Ban, Deleted, QueueItem, QueueQuery, Resolved};
use super::people::{Answered, FriendAnswer, FriendAsk, FriendRequest, ProfilePatch};
use super::push::{NotifyLevel, PushSubscription, PushTarget};
use super::search::{SearchPage, SearchQuery};
use super::{
    NewMessageReport, NewReport, NewRoom, NewUser, RoomListQuery, RoomWithUnread, Store,
    StoreError, StoreResult,
};
use crate::model::{
    AppendRejected, Appended, HistoryQuery, Media, Message, MessageId, MessageKind, NewMessage,
    Role, Room, RoomId, RoomKind, RoomPolicy, User, UserId, UserRef, Visibility,
};
use writer::Writer;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_reports.sql"),
    include_str!("migrations/0003_room_closed.sql"),
    include_str!("migrations/0004_names.sql"),
    include_str!("migrations/0005_reports_by_reported.sql"),
    include_str!("migrations/0006_moderation.sql"),
    include_str!("migrations/0007_message_reports.sql"),
    include_str!("migrations/0008_media.sql"),
    include_str!("migrations/0009_people.sql"),
    include_str!("migrations/0010_push.sql"),
    include_str!("migrations/0011_search.sql"),
];
/// The migration (1-based) that creates `name_skeletons`: existing registered
/// users' skeletons are computed right after it, in its transaction.
const NAME_SKELETONS_MIGRATION: usize = 4;
/// The migration that creates the search index: existing messages are indexed
/// right after it, in its transaction.
const SEARCH_MIGRATION: usize = 11;
const MAX_IDLE_READERS: usize = 8;

/// How hard SQLite syncs a commit. `Full` survives power loss; `Normal` survives a
/// process crash only (in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Normal,
}

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

/// Writes queued for the writer thread at most; a caller beyond it waits for
/// room (back-pressure) instead of growing the queue.
const WRITE_QUEUE: usize = 1024;

pub struct SqliteStore {
    jobs: tokio::sync::mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    stop_checkpoints: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(5000);

fn spawn_checkpointer(
    path: PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    let conn = Connection::open(&path)?;
    conn.busy_timeout(std::time::Duration::from_millis(100))?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub fn open(path: &Path, sync: Synchronous) -> anyhow::Result<Self> {
        Self::open_with_queue(path, sync, WRITE_QUEUE)
    }

    fn open_with_queue(path: &Path, sync: Synchronous, queue: usize) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints are the checkpointer thread's job, not the committing writer's;
        // after one, a WAL grown by a burst is cut back to this size.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        let stop_checkpoints = Arc::new(std::sync::atomic::AtomicBool::new(false));
        spawn_checkpointer(path.to_owned(), stop_checkpoints.clone())?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(queue);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut w = Writer::new(conn);
                while let Some(job) = rx.blocking_recv() {
                    job(&mut w);
                }
            })
            .context("spawning the SQLite writer thread")?;
        Ok(SqliteStore {
            jobs: tx,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: path.to_owned(),
            stop_checkpoints,
        })
    }

    /// Runs `f` on the writer thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |w| {
                let _ = tx.send(f(w));
            }))
            .await
            .map_err(|_| anyhow::anyhow!("SQLite writer thread is gone"))?;
        let r = rx
            .await
            .map_err(|_| anyhow::anyhow!("SQLite writer dropped a job"))?;
        r.map_err(map_err)
    }

    /// Runs `f` on a pooled read-only connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> StoreResult<T> {
            let pooled = readers.lock().pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&path).map_err(map_err)?,
            };
            let r = f(&conn).map_err(map_err);
            let mut pool = readers.lock();
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Backend(anyhow::anyhow!("read task failed: {e}")))?
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn map_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("SQLite"))
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("running migration {}", i + 1))?;
        if i + 1 == NAME_SKELETONS_MIGRATION {
            backfill_skeletons(&tx).context("recording the skeletons of existing names")?;
        }
        if i + 1 == SEARCH_MIGRATION {
            search::backfill(&tx).context("indexing existing messages for search")?;
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Records the skeletons of every registered user's names; when two users'
/// names collide, the older user keeps the skeleton.
fn backfill_skeletons(c: &Connection) -> rusqlite::Result<()> {
    let users: Vec<(UserId, NewUser)> = c
        .prepare("SELECT id, username, display_name FROM users WHERE guest = 0 ORDER BY id")?
        .query_map([], |r| {
            let user = NewUser {
                username: r.get(1)?,
                password_hash: None,
                display_name: r.get(2)?,
                guest: false,
            };
            Ok((r.get(0)?, user))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert =
        c.prepare("INSERT OR IGNORE INTO name_skeletons (skeleton, user_id) VALUES (?1, ?2)")?;
    for (id, u) in &users {
        for sk in super::user_skeletons(u) {
            insert.execute(params![sk, id])?;
        }
    }
    Ok(())
}

const USER_COLS: &str = "id, username, display_name, guest, role, banned_until, status_message, avatar, dm_policy, token_epoch";
/// [`USER_COLS`] of a `users u` in a join.
const U_USER_COLS: &str =
    "u.id, u.username, u.display_name, u.guest, u.role, u.banned_until, u.status_message, u.avatar, \
     u.dm_policy, u.token_epoch";
/// How many columns [`USER_COLS`] has: a query's next column is at this index.
const USER_COL_COUNT: usize = 10;
const ROOM_COLS: &str =
    "r.id, r.name, r.visibility, r.kind, r.member_count, r.last_seq, r.created_at, r.last_message_at, \
     r.closed_at, r.moderation, r.created_by";
const MESSAGE_COLS: &str =
    "id, room_id, seq, kind, sender_id, sender_name, text, client_id, sent_at, sender_guest, masked";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        guest: r.get(3)?,
        role: {
            let role: String = r.get(4)?;
            Role::parse(&role).ok_or_else(|| bad_enum(4, &role))?
        },
        banned_until: r.get(5)?,
        status_message: r.get(6)?,
        avatar: r.get(7)?,
        dm_policy: {
            let p: String = r.get(8)?;
            crate::model::DmPolicy::parse(&p).ok_or_else(|| bad_enum(8, &p))?
        },
        token_epoch: r.get(9)?,
    })
}

fn bad_enum(col: usize, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unknown value {v:?}").into(),
    )
}

fn room_row(r: &Row<'_>) -> rusqlite::Result<Room> {
    let vis: String = r.get(2)?;
    let kind: String = r.get(3)?;
    Ok(Room {
        id: r.get(0)?,
        name: r.get(1)?,
        visibility: Visibility::parse(&vis).ok_or_else(|| bad_enum(2, &vis))?,
        kind: RoomKind::parse(&kind).ok_or_else(|| bad_enum(3, &kind))?,
        member_count: r.get(4)?,
        last_seq: r.get(5)?,
        created_at: r.get(6)?,
        last_message_at: r.get(7)?,
        closed_at: r.get(8)?,
        moderation: {
            let m: String = r.get(9)?;
            RoomPolicy::parse(&m).ok_or_else(|| bad_enum(9, &m))?
        },
        created_by: r.get(10)?,
    })
}

pub(crate) fn message_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let kind: String = r.get(3)?;
    Ok(Message {
        id: r.get(0)?,
        room_id: r.get(1)?,
        seq: r.get(2)?,
        kind: MessageKind::parse(&kind).ok_or_else(|| bad_enum(3, &kind))?,
        sender: UserRef {
            id: r.get(4)?,
            name: r.get(5)?,
            guest: r.get(9)?,
        },
        text: r.get(6)?,
        client_id: r.get(7)?,
        sent_at: r.get(8)?,
        masked: r.get(10)?,
        // Loaded by `media::attach`, for a whole page at once.
        attachments: Vec::new(),
    })
}

fn unread_count(
    c: &Connection,
    room: RoomId,
    user: UserId,
    read_seq: i64,
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "SELECT COUNT(*) FROM messages WHERE room_id = ?1 AND seq > ?2 AND sender_id <> ?3 \
         AND kind IN ('text', 'system')",
    )?
    .query_row(params![room, read_seq, user], |r| r.get(0))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        self.write(move |w| {
            let skeletons = super::user_skeletons(&u);
            let now = crate::model::now_ms();
            let tx = w.conn.transaction()?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO users (username, password_hash, display_name, guest, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    u.username,
                    u.password_hash,
                    u.display_name,
                    u.guest,
                    now
                ]);
            match inserted {
                Err(e) if is_unique(&e) => return Ok(Err(StoreError::UsernameTaken)),
                other => other?,
            };
            let id = tx.last_insert_rowid();
            for sk in skeletons {
                let taken = tx
                    .prepare_cached(
                        "INSERT INTO name_skeletons (skeleton, user_id) VALUES (?1, ?2)",
                    )?
                    .execute(params![sk, id]);
                match taken {
                    Err(e) if is_unique(&e) => return Ok(Err(StoreError::NameTaken)),
                    other => other?,
                };
            }
            tx.commit()?;
            Ok(Ok(User {
                id,
                username: u.username,
                display_name: u.display_name,
                guest: u.guest,
                role: Role::User,
                banned_until: None,
                status_message: None,
                avatar: None,
                dm_policy: Default::default(),
                token_epoch: 0,
            }))
        })
        .await?
    }

    async fn name_owner(&self, skeleton: &str) -> StoreResult<Option<UserId>> {
        let skeleton = skeleton.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT user_id FROM name_skeletons WHERE skeleton = ?1")?
                .query_row([skeleton], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
                .query_row([id], user_row)
                .optional()
        })
        .await
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let username = username.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1 AND password_hash IS NOT NULL"
            ))?
            .query_row([username], |r| Ok((user_row(r)?, r.get(USER_COL_COUNT)?)))
            .optional()
        })
        .await
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
        self.write(move |w| w.create_room(n, members)).await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?1"))?
                .query_row([id], room_row)
                .optional()
        })
        .await
    }

    async fn list_rooms(
        &self,
        user: UserId,
        q: &RoomListQuery,
    ) -> StoreResult<(Vec<RoomWithUnread>, bool)> {
        let sql = format!(
            "SELECT {ROOM_COLS}, m.read_seq FROM rooms r \
             LEFT JOIN members m ON m.room_id = r.id AND m.user_id = ?1 \
             WHERE ((r.visibility = 'public' AND r.kind = 'group') OR m.user_id IS NOT NULL){} \
               AND (?3 IS NULL OR (COALESCE(r.last_message_at, r.created_at), r.id) < (?3, ?4)) \
             ORDER BY COALESCE(r.last_message_at, r.created_at) DESC, r.id DESC LIMIT ?2",
            q.filter_sql()
        );
        let limit = q.limit;
        let (before_at, before_id) = q.before.unzip();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![user, limit as i64 + 1, before_at, before_id], |r| {
                    Ok((room_row(r)?, r.get::<_, Option<i64>>(11)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let more = rows.len() > limit;
            let rooms = rows
                .into_iter()
                .take(limit)
                .map(|(room, read_seq)| {
                    let unread = match read_seq {
                        Some(s) => Some(unread_count(c, room.id, user, s)?),
                        None => None,
                    };
                    Ok(RoomWithUnread { room, unread })
                })
                .collect::<rusqlite::Result<_>>()?;
            Ok((rooms, more))
        })
        .await
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2")?
                .exists(params![room, user])
        })
        .await
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<User>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {U_USER_COLS} FROM members m \
                 JOIN users u ON u.id = m.user_id WHERE m.room_id = ?1 ORDER BY m.join_seq"
            ))?
            .query_map([room], user_row)?
            .collect()
        })
        .await
    }

    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Option<i64>> {
        self.read(move |c| {
            let read_seq: Option<i64> = c
                .prepare_cached("SELECT read_seq FROM members WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![room, user], |r| r.get(0))
                .optional()?;
            read_seq.map(|s| unread_count(c, room, user, s)).transpose()
        })
        .await
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<Option<i64>> {
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached(
                    "UPDATE members SET read_seq = MAX(read_seq, MIN(?3, (SELECT last_seq FROM rooms WHERE id = ?1))) \
                     WHERE room_id = ?1 AND user_id = ?2",
                )?
                .execute(params![room, user, seq])?;
            if n == 0 {
                return Ok(None);
            }
            let read_seq: i64 = w
                .conn
                .prepare_cached("SELECT read_seq FROM members WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![room, user], |r| r.get(0))?;
            Ok(Some(unread_count(&w.conn, room, user, read_seq)?))
        })
        .await
    }

    async fn append(
        &self,
        batch: Vec<NewMessage>,
    ) -> StoreResult<Vec<Result<Appended, AppendRejected>>> {
        self.write(move |w| w.append(batch)).await
    }

    async fn close_room(&self, room: RoomId) -> StoreResult<bool> {
        self.write(move |w| w.close_room(room)).await
    }

    async fn close_open_rooms(&self, kind: RoomKind) -> StoreResult<u64> {
        self.write(move |w| w.close_open_rooms(kind)).await
    }

    async fn add_report(&self, r: NewReport) -> StoreResult<i64> {
        self.write(move |w| {
            let now = crate::model::now_ms();
            let tx = w.conn.transaction()?;
            tx.prepare_cached(
                "INSERT INTO reports (room_id, reporter_id, reported_id, reason, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.room_id, r.reporter, r.reported, r.reason, now])?;
            // The report is also an item of the moderators' review queue.
            tx.prepare_cached(
                "INSERT INTO moderation_queue (kind, room_id, subject_id, reporter_id, reason, created_at) \
                 VALUES ('report', ?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.room_id, r.reported, r.reporter, r.reason, now])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn match_avoid(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT other FROM ( \
                   SELECT reported_id AS other, created_at AS at, id FROM reports WHERE reporter_id = ?1 \
                   UNION ALL \
                   SELECT reporter_id, created_at, id FROM reports WHERE reported_id = ?1 \
                   UNION ALL \
                   SELECT blocked, created_at, 0 FROM blocks WHERE blocker = ?1 \
                   UNION ALL \
                   SELECT blocker, created_at, 0 FROM blocks WHERE blocked = ?1) \
                 GROUP BY other ORDER BY MAX(at) DESC, MAX(id) DESC LIMIT ?2",
            )?
            .query_map(params![user, limit as i64], |r| r.get(0))?
            .collect()
        })
        .await
    }

    async fn messages(&self, room: RoomId, q: HistoryQuery) -> StoreResult<(Vec<Message>, bool)> {
        self.read(move |c| {
            // One snapshot for the page and its attachments (a tombstone made
            // meanwhile is seen whole or not at all).
            let c = &c.unchecked_transaction()?;
            let after = q.after_seq.unwrap_or(0);
            let before = q.before_seq.unwrap_or(i64::MAX);
            let ascending = q.after_seq.is_some();
            let sql = format!(
                "SELECT {MESSAGE_COLS} FROM messages WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 \
                 ORDER BY seq {} LIMIT ?4",
                if ascending { "ASC" } else { "DESC" }
            );
            let mut rows: Vec<Message> = c
                .prepare_cached(&sql)?
                .query_map(
                    params![room, after, before, q.limit as i64 + 1],
                    message_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let has_more = rows.len() > q.limit;
            rows.truncate(q.limit);
            if !ascending {
                rows.reverse();
            }
            media::attach(c, &mut rows)?;
            Ok((rows, has_more))
        })
        .await
    }

    // ---- Moderation: roles, the review queue, bans, deleting messages ----

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let found = moderation::message(&tx, id)?;
            tx.commit()?;
            Ok(found)
        })
        .await
    }

    async fn set_role(&self, username: &str, role: Role) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.write(move |w| moderation::set_role(&w.conn, &username, role))
            .await
    }

    async fn moderation_queue(&self, q: QueueQuery) -> StoreResult<(Vec<QueueItem>, bool)> {
        self.read(move |c| moderation::queue(c, q)).await
    }

    async fn queue_item(&self, id: i64) -> StoreResult<Option<QueueItem>> {
        self.read(move |c| moderation::queue_item(c, id)).await
    }

    async fn resolve_queue_item(
        &self,
        id: i64,
        by: Option<UserId>,
        note: Option<String>,
        at: i64,
    ) -> StoreResult<Resolved> {
        self.write(move |w| moderation::resolve(&w.conn, id, by, note, at))
            .await
    }

    async fn set_ban(&self, user: UserId, until: i64, reason: &str) -> StoreResult<Option<User>> {
        let reason = reason.to_owned();
        self.write(move |w| moderation::set_ban(&w.conn, user, Some(until), Some(reason.as_str())))
            .await
    }

    async fn clear_ban(&self, user: UserId) -> StoreResult<Option<User>> {
        self.write(move |w| moderation::set_ban(&w.conn, user, None, None))
            .await
    }

    async fn ban(&self, user: UserId) -> StoreResult<Option<Ban>> {
        self.read(move |c| moderation::ban(c, user)).await
    }

    async fn bans(&self, now: i64, limit: usize) -> StoreResult<Vec<Ban>> {
        self.read(move |c| moderation::bans(c, now, limit)).await
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<Deleted> {
        self.write(move |w| moderation::delete_message(&mut w.conn, id))
            .await
    }
    async fn set_room_moderation(&self, room: RoomId, policy: RoomPolicy) -> StoreResult<bool> {
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached("UPDATE rooms SET moderation = ?2 WHERE id = ?1")?
                .execute(params![room, policy.as_str()])?;
            Ok(n > 0)
        })
        .await
    }

    async fn report_message(&self, r: NewMessageReport) -> StoreResult<i64> {
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            tx.prepare_cached(
                "INSERT INTO moderation_queue \
                   (kind, room_id, message_id, subject_id, reporter_id, reason, created_at) \
                 VALUES ('report', ?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (message_id, reporter_id) WHERE kind = 'report' AND message_id IS NOT NULL \
                 DO NOTHING",
            )?
            .execute(params![
                r.room_id,
                r.message_id,
                r.subject,
                r.reporter,
                r.reason,
                crate::model::now_ms()
            ])?;
            let id: i64 = tx
                .prepare_cached(
                    "SELECT id FROM moderation_queue \
                     WHERE kind = 'report' AND message_id = ?1 AND reporter_id = ?2",
                )?
                .query_row(params![r.message_id, r.reporter], |row| row.get(0))?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn add_strike(&self, user: UserId, at: i64) -> StoreResult<()> {
        self.write(move |w| {
            w.conn
                .prepare_cached("INSERT INTO moderation_strikes (user_id, at) VALUES (?1, ?2)")?
                .execute(params![user, at])?;
            Ok(())
        })
        .await
    }

    async fn strikes_since(&self, user: UserId, since: i64) -> StoreResult<u32> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM moderation_strikes WHERE user_id = ?1 AND at >= ?2",
            )?
            .query_row(params![user, since], |r| r.get(0))
        })
        .await
    }

    async fn last_strikes(&self, user: UserId, limit: u32) -> StoreResult<Vec<i64>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT at FROM moderation_strikes WHERE user_id = ?1 ORDER BY at DESC LIMIT ?2",
            )?
            .query_map(params![user, limit], |r| r.get(0))?
            .collect()
        })
        .await
    }

    // ---- Media: files' records, attachments (in `append`/history), uploads ----

    async fn create_media(&self, m: Media) -> StoreResult<()> {
        self.write(move |w| media::create_media(&w.conn, &m)).await
    }

    async fn media(&self, id: &str) -> StoreResult<Option<Media>> {
        let id = id.to_owned();
        self.read(move |c| media::media(c, &id)).await
    }

    async fn media_usage(&self, owner: UserId) -> StoreResult<u64> {
        self.read(move |c| media::usage(c, owner)).await
    }

    async fn can_read_media(&self, id: &str, user: UserId) -> StoreResult<bool> {
        let id = id.to_owned();
        self.read(move |c| media::can_read(c, &id, user)).await
    }

    async fn unattached_media(&self, before: i64, limit: usize) -> StoreResult<Vec<Media>> {
        self.read(move |c| media::unattached(c, before, limit))
            .await
    }

    async fn delete_unattached_media(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |w| media::delete_unattached(&w.conn, &id))
            .await
    }

    async fn create_upload(&self, u: Upload) -> StoreResult<()> {
        self.write(move |w| media::create_upload(&mut w.conn, &u))
            .await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<Upload>> {
        let id = id.to_owned();
        self.read(move |c| media::upload(c, &id)).await
    }

    async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        to: u64,
        part: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let (id, part) = (id.to_owned(), part.to_owned());
        self.write(move |w| media::advance_upload(&mut w.conn, &id, from, to, &part, at))
            .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |w| media::delete_upload(&w.conn, &id))
            .await
    }

    async fn stale_uploads(&self, before: i64, limit: usize) -> StoreResult<Vec<Upload>> {
        self.read(move |c| media::stale_uploads(c, before, limit))
            .await
    }

    // ---- People: profiles, upgrade, friends, blocks, direct rooms (`people`) ----

    async fn update_profile(
        &self,
        user: UserId,
        patch: ProfilePatch,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        self.write(move |w| people::update_profile(&mut w.conn, user, patch))
            .await?
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.read(move |c| people::user_by_username(c, &username))
            .await
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let ids = ids.to_vec();
        self.read(move |c| people::users(c, &ids)).await
    }

    async fn upgrade_guest(
        &self,
        user: UserId,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<Option<User>> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        self.write(move |w| people::upgrade_guest(&mut w.conn, user, &username, &hash))
            .await?
    }

    async fn friend_request(&self, from: UserId, to: UserId, at: i64) -> StoreResult<FriendAsk> {
        self.write(move |w| people::friend_request(&mut w.conn, from, to, at))
            .await?
    }

    async fn friend_requests(&self, user: UserId) -> StoreResult<Vec<FriendRequest>> {
        self.read(move |c| people::friend_requests(c, user)).await
    }

    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        answer: FriendAnswer,
        at: i64,
    ) -> StoreResult<Answered> {
        self.write(move |w| people::answer_friend_request(&mut w.conn, id, by, answer, at))
            .await
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.read(move |c| people::friends(c, user)).await
    }

    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.read(move |c| people::are_friends(c, a, b)).await
    }

    async fn remove_friend(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.write(move |w| people::remove_friend(&w.conn, a, b))
            .await
    }

    async fn block_user(&self, blocker: UserId, blocked: UserId, at: i64) -> StoreResult<bool> {
        self.write(move |w| people::block_user(&mut w.conn, blocker, blocked, at))
            .await
    }

    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        self.write(move |w| people::unblock_user(&w.conn, blocker, blocked))
            .await
    }

    async fn blocked_by(&self, blocker: UserId) -> StoreResult<Vec<UserId>> {
        self.read(move |c| people::blocked_by(c, blocker)).await
    }

    async fn blocked_between(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        self.read(move |c| people::blocked_between(c, a, b)).await
    }

    async fn direct_room(
        &self,
        room: NewRoom,
        a: UserRef,
        b: UserRef,
    ) -> StoreResult<(Room, bool, Vec<Message>)> {
        self.write(move |w| people::direct_room(w, room, a, b))
            .await?
    }

    async fn direct_pair(&self, room: RoomId) -> StoreResult<Option<(UserId, UserId)>> {
        self.read(move |c| people::direct_pair(c, room)).await
    }

    async fn add_push_subscription(&self, sub: PushSubscription, keep: usize) -> StoreResult<()> {
        self.write(move |w| push::add_subscription(&mut w.conn, sub, keep))
            .await
    }

    async fn remove_push_subscription(
        &self,
        endpoint: &str,
        user: Option<UserId>,
    ) -> StoreResult<bool> {
        let endpoint = endpoint.to_owned();
        self.write(move |w| push::remove_subscription(&w.conn, &endpoint, user))
            .await
    }

    async fn push_subscriptions(&self, user: UserId) -> StoreResult<Vec<PushSubscription>> {
        self.read(move |c| push::subscriptions(c, user)).await
    }

    async fn set_notification_level(
        &self,
        user: UserId,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()> {
        self.write(move |w| push::set_level(&w.conn, user, room, level))
            .await
    }

    async fn notification_level(
        &self,
        user: UserId,
        room: RoomId,
    ) -> StoreResult<Option<NotifyLevel>> {
        self.read(move |c| push::get_level(c, user, room)).await
    }

    async fn push_targets(&self, room: RoomId) -> StoreResult<Vec<PushTarget>> {
        self.read(move |c| push::targets(c, room)).await
    }

    async fn search(&self, q: SearchQuery) -> StoreResult<SearchPage> {
        self.read(move |c| search::search(c, &q)).await
    }
}

fn is_unique(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 4 on a database with users and messages: registered users'
    /// names become skeleton rows (the older user keeps a shared one), guests
    /// get none, and earlier messages of guests are marked.
    #[test]
    fn the_names_migration_fills_in_skeletons_and_guest_senders() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..NAME_SKELETONS_MIGRATION - 1] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", NAME_SKELETONS_MIGRATION - 1)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, display_name, guest, created_at) VALUES \
               (1, 'alice', 'Alice', 0, 0), (2, 'a1ice', 'Someone', 0, 0), (3, NULL, 'Bob', 1, 0); \
             INSERT INTO rooms (id, name, visibility, kind, created_by, created_at) \
               VALUES (1, 'r', 'public', 'group', 1, 0); \
             INSERT INTO messages (room_id, seq, kind, sender_id, sender_name, text, sent_at) VALUES \
               (1, 1, 'text', 1, 'Alice', 'a', 0), (1, 2, 'text', 3, 'Bob', 'b', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, i64)> = conn
            .prepare("SELECT skeleton, user_id FROM name_skeletons ORDER BY skeleton")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let sk = crate::confusables::skeleton;
        let mut want = vec![(sk("alice"), 1), (sk("someone"), 2)];
        want.sort();
        assert_eq!(rows, want);
        let guests: Vec<bool> = conn
            .prepare("SELECT sender_guest FROM messages ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(guests, [false, true]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_queue_is_bounded_and_applies_back_pressure() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open_with_queue(&dir.path().join("q.db"), Synchronous::Normal, 4).unwrap(),
        );
        // Hold the writer thread until released, and start the callers only once
        // the writer is inside that job (else one of them could run first).
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = std::sync::mpsc::channel::<()>();
        let s = store.clone();
        let blocker = tokio::spawn(async move {
            s.write(move |_| {
                let _ = entered.send(());
                let _ = held.recv();
                Ok(())
            })
            .await
        });
        tokio::task::spawn_blocking(move || inside.recv())
            .await
            .unwrap()
            .expect("the writer runs the blocking job");
        let mut writers = Vec::new();
        for i in 0..50 {
            let s = store.clone();
            writers.push(tokio::spawn(async move {
                s.write(move |w| {
                    w.conn
                        .execute("PRAGMA user_version", [])
                        .map(|_| i)
                        .or(Ok(i))
                })
                .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let queued = store.jobs.max_capacity() - store.jobs.capacity();
        assert!(queued <= 4, "{queued} jobs queued behind a busy writer");
        assert!(writers.iter().all(|w| !w.is_finished()), "callers wait");
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for w in writers {
            w.await.unwrap().unwrap();
        }
    }
}
