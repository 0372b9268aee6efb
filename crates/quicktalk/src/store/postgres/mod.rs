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
//!
//! Files: `append` (the batch transaction), `log` (the pipeline log's exactly-once
//! application), `media` (files' records, attachments, uploads), `search`
//! (history search), `store` (the [`Store`](super::Store) trait), `rows` (columns and
//! row mapping), `secrets` (values shared by every node), `schema` (a private
//! schema per test or bench run).

mod append;
mod log;
mod media;
mod moderation;
mod people;
mod push;
mod rows;
mod schema;
mod search;
mod secrets;
mod store;

pub use log::{Lease, LogPosition, LogRecord, Logged};

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres/migrations");

pub struct PostgresStore {
    pool: PgPool,
    /// Whether `pg_trgm` indexes Hangul here ([`search::check_trigrams`]).
    trigrams: bool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        Self::open_with(session_limits(opts), max_connections).await
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
        backfill_skeletons(&pool)
            .await
            .context("recording the skeletons of existing names")?;
        let trigrams = search::check_trigrams(&pool)
            .await
            .context("checking pg_trgm for search")?;
        tokio::spawn(search::backfill(pool.clone()));
        Ok(PostgresStore { pool, trigrams })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether search uses the `pg_trgm` index for Hangul here (not under
    /// ctype `C`; then every search scans the caller's rooms).
    pub fn search_indexes_hangul(&self) -> bool {
        self.trigrams
    }
}

/// Records the skeletons of registered users' names once, after the migration
/// that made `name_skeletons` (SQL cannot compute them): when the table is empty
/// but registered users exist. When two users' names collide, the older user
/// keeps the skeleton; nodes starting together insert the same rows.
async fn backfill_skeletons(pool: &PgPool) -> anyhow::Result<()> {
    let needed: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM name_skeletons) \
           AND EXISTS (SELECT 1 FROM users WHERE NOT guest)",
    )
    .fetch_one(pool)
    .await?;
    if !needed {
        return Ok(());
    }
    let users: Vec<(i64, Option<String>, String)> =
        sqlx::query_as("SELECT id, username, display_name FROM users WHERE NOT guest ORDER BY id")
            .fetch_all(pool)
            .await?;
    let (mut skeletons, mut ids) = (Vec::new(), Vec::new());
    for (id, username, display_name) in users {
        let u = super::NewUser {
            username,
            password_hash: None,
            display_name,
            guest: false,
        };
        for sk in super::user_skeletons(&u) {
            skeletons.push(sk);
            ids.push(id);
        }
    }
    // In id order, so the older user's row is the one that stays.
    sqlx::query(
        "INSERT INTO name_skeletons (skeleton, user_id) \
         SELECT s, u FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(s, u, n) ORDER BY n \
         ON CONFLICT (skeleton) DO NOTHING",
    )
    .bind(&skeletons)
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// Server-side limits on every session, so a node that hangs or is cut off
/// cannot hold locks for long: TCP keepalives and a user timeout (PostgreSQL
/// drops a peer that stopped answering within about 20 s instead of the kernel's
/// two hours), and a transaction left idle for 6 s is aborted (its row locks
/// freed; the store's transactions never wait on anything but the database).
pub fn session_limits(opts: PgConnectOptions) -> PgConnectOptions {
    opts.options([
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "20000"),
        ("idle_in_transaction_session_timeout", "6000"),
    ])
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("PostgreSQL"))
}

fn bad(what: &str, v: &str) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("unknown {what} {v:?} in the database"))
}
