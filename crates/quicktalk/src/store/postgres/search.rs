//! History search on PostgreSQL (contract §9): the `pg_trgm` GIN index over
//! `COALESCE(search_text, text)` answers folded queries with a run of three
//! or more word characters (what `pg_trgm` makes trigrams of). Shorter ones —
//! and every query when the database's ctype gives Hangul no trigrams — read
//! the rooms of the scope newest first *together* (each by `(room_id, seq)`,
//! in chunks fetched for many rooms per round trip, the database sending the
//! text only of rows that contain the query, merged by id in Rust) until the
//! page is full or the scope is read: no time window. Matching is always the
//! folded substring, so both paths agree with SQLite.

use std::collections::HashSet;

use sqlx::{PgPool, Row};

use super::rows::{message_row, M_MESSAGE_COLS};
use super::{db, media};
use crate::model::{MessageId, MessageKind, RoomId, UserId};
use crate::store::room_scan::{Chunk, RoomScan, ScanRow};
use crate::store::search::{stored_fold, SearchHit, SearchPage, SearchQuery, SearchScope};
use crate::store::StoreResult;

/// Messages folded per round trip by the backfill.
const BACKFILL_BATCH: i64 = 5000;

/// Whether `pg_trgm` makes trigrams of Hangul under this database's ctype (it
/// does not under ctype `C`: Hangul is not a word character there). Logged
/// loudly when not: search still works, by scanning rooms.
pub(super) async fn check_trigrams(pool: &PgPool) -> anyhow::Result<bool> {
    let schema: String = sqlx::query_scalar(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'pg_trgm'",
    )
    .fetch_one(pool)
    .await?;
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    let n: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT array_length({quoted}.show_trgm('한국어'), 1)"
    ))
    .fetch_one(pool)
    .await?;
    let ok = n.unwrap_or(0) > 0;
    if !ok {
        let ctype: String = sqlx::query_scalar(
            "SELECT datctype FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(pool)
        .await?;
        tracing::error!(
            ctype,
            "PostgreSQL: pg_trgm makes no trigrams of Hangul under this database's ctype, so \
             the search index cannot serve Korean and every search scans the caller's rooms \
             (correct but slow). Create the database with a UTF-8 ctype (e.g. \
             `CREATE DATABASE … LC_CTYPE 'C.UTF-8'` or 'ko_KR.UTF-8')."
        );
    }
    Ok(ok)
}

/// Writes the fold of messages stored before the search migration, newest
/// first, in batches; nodes running it together write the same values.
pub(super) async fn backfill(pool: PgPool) {
    loop {
        match backfill_batch(&pool).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "search backfill failed; it resumes at the next start");
                return;
            }
        }
    }
}

/// One batch; returns the `upto` it started from (0: nothing left).
async fn backfill_batch(pool: &PgPool) -> anyhow::Result<i64> {
    let upto: i64 = sqlx::query_scalar("SELECT upto FROM search_backfill")
        .fetch_optional(pool)
        .await?
        .unwrap_or(0);
    if upto <= 0 {
        return Ok(0);
    }
    let low = upto - BACKFILL_BATCH;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, text FROM messages WHERE id > $1 AND id <= $2 AND kind = 'text'",
    )
    .bind(low)
    .bind(upto)
    .fetch_all(pool)
    .await?;
    let (mut ids, mut folds) = (Vec::new(), Vec::new());
    for (id, text) in rows {
        if let Some(f) = stored_fold(&text) {
            ids.push(id);
            folds.push(f);
        }
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE messages m SET search_text = f.t FROM unnest($1::bigint[], $2::text[]) AS f(id, t) \
         WHERE m.id = f.id AND m.kind = 'text'",
    )
    .bind(&ids)
    .bind(&folds)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE search_backfill SET upto = LEAST(upto, $1)")
        .bind(low.max(0))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if low > 0 && (upto / BACKFILL_BATCH) % 100 == 0 {
        tracing::info!(
            left_below_id = low,
            "search backfill: folding older messages"
        );
    }
    Ok(upto)
}

/// `text` as a `LIKE` pattern matching it anywhere.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Whether `pg_trgm` can extract a trigram from the query: a run of three
/// word characters.
fn has_trigram(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_alphanumeric() { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

pub(super) async fn search(
    pool: &PgPool,
    trigrams: bool,
    q: &SearchQuery,
) -> StoreResult<SearchPage> {
    let want = q.limit + 1;
    let before = q.before.unwrap_or(MessageId::MAX);
    let ids = if trigrams && q.uses_trigrams() && has_trigram(&q.text) {
        indexed_ids(pool, q, before, want).await?
    } else {
        scan(pool, q).await?
    };
    page(pool, ids, q.limit).await
}

/// Up to `limit + 1` matching ids, newest first, by the merged scan of the
/// scope's rooms ([`RoomScan`]), each read by `(room_id, seq)`; the chunks it
/// asks for at once are fetched in one round trip.
async fn scan(pool: &PgPool, q: &SearchQuery) -> StoreResult<Vec<MessageId>> {
    let rooms: Vec<RoomId> = match q.scope {
        SearchScope::Room(r) => vec![r],
        SearchScope::Member => sqlx::query_scalar("SELECT room_id FROM members WHERE user_id = $1")
            .bind(q.user)
            .fetch_all(pool)
            .await
            .map_err(db)?,
    };
    let blocked: HashSet<UserId> =
        sqlx::query_scalar::<_, UserId>("SELECT blocked FROM blocks WHERE blocker = $1")
            .bind(q.user)
            .fetch_all(pool)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    let before = q.before.unwrap_or(MessageId::MAX);
    let mut scan = RoomScan::new(rooms, blocked, q);
    loop {
        let chunks = scan.wanted();
        if !chunks.is_empty() {
            for (slot, rows) in fetch(pool, &chunks, before, &q.text).await? {
                scan.fill(slot, rows);
            }
        }
        if let Some(ids) = scan.advance() {
            return Ok(ids);
        }
    }
}

/// Reads `chunks` in one round trip: every row's id, seq and sender, and its
/// text only when it contains `needle` (a prefilter done by the database; the
/// match is checked again in Rust). Each chunk's rows, newest first.
async fn fetch(
    pool: &PgPool,
    chunks: &[Chunk],
    before: MessageId,
    needle: &str,
) -> StoreResult<Vec<(usize, Vec<ScanRow>)>> {
    let rooms: Vec<RoomId> = chunks.iter().map(|c| c.room).collect();
    let below: Vec<i64> = chunks.iter().map(|c| c.below_seq).collect();
    let limits: Vec<i64> = chunks.iter().map(|c| c.limit).collect();
    let nth: Vec<i32> = (0..chunks.len() as i32).collect();
    let rows = sqlx::query(
        "SELECT c.nth, m.id, m.seq, m.sender_id, \
                CASE WHEN strpos(COALESCE(m.search_text, m.text), $6) > 0 \
                     THEN COALESCE(m.search_text, m.text) END \
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[]) AS c(room_id, below_seq, lim, nth) \
         CROSS JOIN LATERAL ( \
           SELECT id, seq, sender_id, search_text, text FROM messages m \
           WHERE m.room_id = c.room_id AND m.seq < c.below_seq AND m.id < $5 AND m.kind = 'text' \
           ORDER BY m.seq DESC LIMIT c.lim) m \
         ORDER BY c.nth, m.seq DESC",
    )
    .bind(&rooms)
    .bind(&below)
    .bind(&limits)
    .bind(&nth)
    .bind(before)
    .bind(needle)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out: Vec<(usize, Vec<ScanRow>)> = chunks.iter().map(|c| (c.slot, Vec::new())).collect();
    for r in rows {
        let n = r.try_get::<i32, _>(0).map_err(db)? as usize;
        out[n].1.push(ScanRow {
            id: r.try_get(1).map_err(db)?,
            seq: r.try_get(2).map_err(db)?,
            sender: r.try_get(3).map_err(db)?,
            text: r.try_get(4).map_err(db)?,
        });
    }
    Ok(out)
}

/// Up to `n` matching ids below `below`, newest first, from the trigram index
/// (`LIKE` on the folded text is the exact substring test).
async fn indexed_ids(
    pool: &PgPool,
    q: &SearchQuery,
    below: MessageId,
    n: usize,
) -> StoreResult<Vec<MessageId>> {
    let (scope_in, room) = match q.scope {
        SearchScope::Member => ("SELECT room_id FROM members WHERE user_id = $3", None),
        SearchScope::Room(r) => ("SELECT $5::bigint AS room_id", Some(r)),
    };
    let sql = format!(
        "SELECT m.id FROM messages m \
         WHERE m.kind = 'text' AND COALESCE(m.search_text, m.text) LIKE $1 AND m.id < $2 \
           AND m.room_id IN ({scope_in}) \
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = $3 AND b.blocked = m.sender_id) \
         ORDER BY m.id + 0 DESC LIMIT $4"
    );
    // `m.id + 0`: the order must not come from the primary key, or the planner
    // may walk every message newest first filtering by `LIKE` (it expects the
    // page to fill fast) instead of asking the trigram index.
    let mut query = sqlx::query_scalar(&sql)
        .bind(like_pattern(&q.text))
        .bind(below)
        .bind(q.user)
        .bind(n as i64);
    if let Some(room) = room {
        query = query.bind(room);
    }
    query.fetch_all(pool).await.map_err(db)
}

/// The hits of `ids` (newest first), at most `limit`, with room names and
/// attachments; `more` when `ids` holds one beyond the page.
async fn page(pool: &PgPool, ids: Vec<MessageId>, limit: usize) -> StoreResult<SearchPage> {
    let more = ids.len() > limit;
    let ids: Vec<MessageId> = ids.into_iter().take(limit).collect();
    let rows = sqlx::query(&format!(
        "SELECT {M_MESSAGE_COLS}, r.name FROM messages m JOIN rooms r ON r.id = m.room_id \
         WHERE m.id = ANY($1) AND m.kind = 'text' ORDER BY m.id DESC"
    ))
    .bind(&ids)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut messages = Vec::with_capacity(rows.len());
    let mut names = Vec::with_capacity(rows.len());
    for r in &rows {
        let m = message_row(r)?;
        debug_assert_eq!(m.kind, MessageKind::Text);
        messages.push(m);
        names.push(r.try_get::<String, _>(11).map_err(db)?);
    }
    media::attach(pool, &mut messages).await?;
    let hits = messages
        .into_iter()
        .zip(names)
        .map(|(message, room_name)| SearchHit { message, room_name })
        .collect();
    Ok(SearchPage { hits, more })
}
