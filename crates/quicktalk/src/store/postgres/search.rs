//! History search on PostgreSQL (contract §9): the `pg_trgm` GIN index over
//! `COALESCE(search_text, text)` answers folded queries with a run of three
//! or more word characters (what `pg_trgm` makes trigrams of); shorter ones —
//! and every query when the database's ctype gives Hangul no trigrams — read
//! each room of the scope from its newest message down, stopping in each once
//! it has a page's worth. Matching itself is always on the folded text, so
//! the index only narrows candidates and both paths agree with SQLite.

use sqlx::{PgPool, Row};

use super::rows::{message_row, M_MESSAGE_COLS};
use super::{db, media};
use crate::model::{MessageId, MessageKind};
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
    let (scope_in, room) = match q.scope {
        SearchScope::Member => ("SELECT room_id FROM members WHERE user_id = $3", None),
        SearchScope::Room(r) => ("SELECT $5::bigint AS room_id", Some(r)),
    };
    let not_blocked =
        "NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = $3 AND b.blocked = m.sender_id)";
    let indexed = trigrams && q.uses_trigrams() && has_trigram(&q.text);
    let (sql, needle) = if indexed {
        (
            format!(
                "SELECT {M_MESSAGE_COLS}, r.name FROM messages m JOIN rooms r ON r.id = m.room_id \
                 WHERE m.kind = 'text' AND COALESCE(m.search_text, m.text) LIKE $1 AND m.id < $2 \
                   AND m.room_id IN ({scope_in}) AND {not_blocked} \
                 ORDER BY m.id DESC LIMIT $4"
            ),
            like_pattern(&q.text),
        )
    } else {
        (
            format!(
                "SELECT h.*, r.name FROM ({scope_in}) sc CROSS JOIN LATERAL ( \
                   SELECT {M_MESSAGE_COLS} FROM messages m \
                   WHERE m.room_id = sc.room_id AND m.kind = 'text' AND m.id < $2 \
                     AND strpos(COALESCE(m.search_text, m.text), $1) > 0 AND {not_blocked} \
                   ORDER BY m.seq DESC LIMIT $4) h \
                 JOIN rooms r ON r.id = h.room_id \
                 ORDER BY h.id DESC LIMIT $4"
            ),
            q.text.clone(),
        )
    };
    let mut query = sqlx::query(&sql)
        .bind(needle)
        .bind(q.before.unwrap_or(MessageId::MAX))
        .bind(q.user)
        .bind(q.limit as i64 + 1);
    if let Some(room) = room {
        query = query.bind(room);
    }
    let rows = query.fetch_all(pool).await.map_err(db)?;
    let more = rows.len() > q.limit;
    let mut messages = Vec::with_capacity(rows.len().min(q.limit));
    let mut names = Vec::with_capacity(messages.capacity());
    for r in rows.iter().take(q.limit) {
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
