//! Random matching shared by every node: the pure [`Matcher`]'s state lives in
//! one PostgreSQL row; each operation locks it (`SELECT … FOR UPDATE`), applies
//! the change with this node's clock (wall time, the same on every node) and
//! writes it back in the same transaction. Two guests on different nodes are in
//! one queue; pairs get their room exactly as on a single node. Each operation
//! reads and writes the whole state, which suits queues of thousands, not
//! millions. `match_users` lists who is in it, so a socket opening or closing for
//! anyone else neither locks nor rewrites the state.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use crate::domain::matching::engine::{already_matched, resolve, MatchEngine, Outcome};
use crate::domain::matching::matcher::{Matcher, MatcherConfig, Ms, Prefs, State, MAX_AVOID};
use crate::error::{AppError, AppResult};
use crate::model::{now_ms, UserId, UserRef};
use crate::store::postgres::PostgresStore;
use crate::store::Store;

pub struct SharedMatchEngine {
    store: Arc<PostgresStore>,
    cfg: MatcherConfig,
    /// Queue length as of this node's last operation (every tick refreshes it),
    /// for the metric: no extra locked read per tick.
    queue_len: AtomicUsize,
}

fn db(e: sqlx::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("shared matcher"))
}

impl SharedMatchEngine {
    /// The first node creates the state.
    pub async fn new(cfg: MatcherConfig, store: Arc<PostgresStore>) -> AppResult<Self> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT id FROM match_state WHERE id = 1")
            .fetch_optional(store.pool())
            .await
            .map_err(db)?;
        if exists.is_none() {
            let state = serde_json::to_string(&Matcher::new(cfg))
                .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding matcher state: {e}")))?;
            sqlx::query(
                "INSERT INTO match_state (id, state) VALUES (1, $1) ON CONFLICT DO NOTHING",
            )
            .bind(state)
            .execute(store.pool())
            .await
            .map_err(db)?;
        }
        let engine = SharedMatchEngine {
            store,
            cfg,
            queue_len: AtomicUsize::new(0),
        };
        engine.sync_users().await?;
        Ok(engine)
    }

    fn decode(&self, state: &str) -> AppResult<Matcher> {
        let mut m: Matcher = serde_json::from_str(state)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("decoding matcher state: {e}")))?;
        m.set_config(self.cfg);
        Ok(m)
    }

    /// The state as committed, without taking the lock (for reads).
    async fn read(&self) -> AppResult<Matcher> {
        let state: String = sqlx::query_scalar("SELECT state FROM match_state WHERE id = 1")
            .fetch_one(self.store.pool())
            .await
            .map_err(db)?;
        self.decode(&state)
    }

    /// Whether `user` is in the matcher (waiting or matched): one indexed read,
    /// no lock. Sockets of users who never queued leave the matcher alone.
    async fn holds(&self, user: UserId) -> bool {
        let found: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT user_id FROM match_users WHERE user_id = $1")
                .bind(user)
                .fetch_optional(self.store.pool())
                .await;
        match found {
            Ok(f) => f.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, user, "reading the shared matcher's users");
                true
            }
        }
    }

    /// Brings `match_users` in step with the state (after an upgrade from a
    /// version without it).
    async fn sync_users(&self) -> AppResult<()> {
        let m = self.read().await?;
        let users: Vec<i64> = m.users().collect();
        sqlx::query("INSERT INTO match_users SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING")
            .bind(&users)
            .execute(self.store.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Writes `m` back unless its encoding is unchanged. That skips the write for
    /// the common idle tick; a state holding hash maps may still encode in another
    /// order and be written although equal, which is harmless.
    async fn save(
        &self,
        mut tx: Transaction<'static, Postgres>,
        before: &str,
        m: &Matcher,
    ) -> AppResult<()> {
        self.queue_len.store(m.queue_len(), Ordering::Relaxed);
        let state = serde_json::to_string(m)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("encoding matcher state: {e}")))?;
        if state != before {
            let was: HashSet<UserId> = self.decode(before)?.users().collect();
            let now: HashSet<UserId> = m.users().collect();
            let gone: Vec<i64> = was.difference(&now).copied().collect();
            let came: Vec<i64> = now.difference(&was).copied().collect();
            if !gone.is_empty() {
                sqlx::query("DELETE FROM match_users WHERE user_id = ANY($1)")
                    .bind(&gone)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if !came.is_empty() {
                sqlx::query(
                    "INSERT INTO match_users SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
                )
                .bind(&came)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            sqlx::query("UPDATE match_state SET state = $1 WHERE id = 1")
                .bind(state)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// One operation under the lock; `op` returns the matcher's events.
    async fn apply(
        &self,
        op: impl FnOnce(&mut Matcher, Ms) -> AppResult<Vec<crate::domain::matching::matcher::Event>>,
    ) -> AppResult<Vec<Outcome>> {
        let mut tx = self.store.pool().begin().await.map_err(db)?;
        let before: String =
            sqlx::query_scalar("SELECT state FROM match_state WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let mut m = self.decode(&before)?;
        let now = now_ms() as Ms;
        let events = op(&mut m, now)?;
        let out = resolve(&*self.store as &dyn Store, &mut m, events, now).await;
        // Saved even after a failed room creation: `resolve` undid that pair.
        self.save(tx, &before, &m).await?;
        out
    }
}

#[async_trait]
impl MatchEngine for SharedMatchEngine {
    async fn connect(&self, user: &UserRef, prefs: Prefs) -> AppResult<Vec<Outcome>> {
        // Read before the row lock: it is not held across this query.
        let avoid = self.store.match_avoid(user.id, MAX_AVOID).await?;
        self.apply(|m, now| {
            m.connect_avoiding(user.clone(), prefs, avoid, now)
                .map_err(already_matched)
        })
        .await
    }

    async fn next(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        self.apply(|m, now| Ok(m.next(user, now))).await
    }

    async fn disconnect(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        self.apply(|m, now| Ok(m.disconnect(user.id, now))).await
    }

    async fn offline(&self, user: UserId) {
        if !self.holds(user).await {
            return;
        }
        let r = self
            .apply(|m, now| {
                m.offline(user, now);
                Ok(Vec::new())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, user, "marking a matcher user offline");
        }
    }

    async fn online(&self, user: UserId) {
        if !self.holds(user).await {
            return;
        }
        let r = self
            .apply(|m, _| {
                m.online(user);
                Ok(Vec::new())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, user, "marking a matcher user online");
        }
    }

    async fn tick(&self) -> AppResult<Vec<Outcome>> {
        self.apply(|m, now| Ok(m.tick(now))).await
    }

    async fn state(&self, user: UserId) -> State {
        match self.read().await {
            Ok(m) => m.state(user),
            Err(e) => {
                tracing::warn!(error = %e, "reading the shared matcher");
                State::Idle
            }
        }
    }

    async fn block(&self, a: UserId, b: UserId) {
        // The store holds the report; the state needs it only for users in it.
        if !self.holds(a).await && !self.holds(b).await {
            return;
        }
        let r = self
            .apply(|m, _| {
                m.block(a, b);
                Ok(Vec::new())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "blocking a pair in the shared matcher");
        }
    }

    async fn queue_len(&self) -> usize {
        self.queue_len.load(Ordering::Relaxed)
    }
}
