//! History search on SQLite (contract §9): the FTS5 trigram index
//! `message_search` (rowid = message id, body = the folded text) for folded
//! queries of three or more characters; a scan of the caller's rooms, newest
//! first, for shorter ones. Both end in the same page of full messages.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::{media, message_row};
use crate::model::{MessageId, MessageKind, RoomId, UserId};
use crate::store::room_scan::{RoomScan, ScanRow};
use crate::store::search::{fold, matches, SearchHit, SearchPage, SearchQuery, SearchScope};

/// Indexes a newly stored message (only `text` messages are searchable).
pub(super) fn index(
    c: &Connection,
    id: MessageId,
    kind: MessageKind,
    text: &str,
) -> rusqlite::Result<()> {
    if kind != MessageKind::Text {
        return Ok(());
    }
    c.prepare_cached("INSERT INTO message_search (rowid, body) VALUES (?1, ?2)")?
        .execute(params![id, fold(text).as_ref()])?;
    Ok(())
}

/// Drops a message from the index (before it becomes a tombstone): the
/// contentless table's `delete` command, given the text that was indexed.
pub(super) fn unindex(c: &Connection, id: MessageId, text: &str) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', ?1, ?2)",
    )?
    .execute(params![id, fold(text).as_ref()])?;
    Ok(())
}

/// Indexes every stored `text` message (the migration that creates the index).
pub(super) fn backfill(c: &Connection) -> rusqlite::Result<()> {
    let mut read = c.prepare("SELECT id, text FROM messages WHERE kind = 'text'")?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let id: MessageId = r.get(0)?;
        let text: String = r.get(1)?;
        index(c, id, MessageKind::Text, &text)?;
    }
    Ok(())
}

/// One page of `q`, read in one snapshot.
pub(super) fn search(c: &Connection, q: &SearchQuery) -> rusqlite::Result<SearchPage> {
    let tx = c.unchecked_transaction()?;
    let ids = if q.uses_trigrams() {
        trigram_ids(&tx, q)?
    } else {
        scan_ids(&tx, q)?
    };
    let more = ids.len() > q.limit;
    let mut hits = Vec::with_capacity(q.limit.min(ids.len()));
    let mut messages = Vec::with_capacity(hits.capacity());
    let mut names = Vec::with_capacity(hits.capacity());
    for id in ids.into_iter().take(q.limit) {
        let found = tx
            .prepare_cached(
                "SELECT m.id, m.room_id, m.seq, m.kind, m.sender_id, m.sender_name, m.text, \
                        m.client_id, m.sent_at, m.sender_guest, m.masked, r.name \
                 FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.id = ?1",
            )?
            .query_row([id], |r| Ok((message_row(r)?, r.get::<_, String>(11)?)))
            .optional()?;
        if let Some((m, name)) = found {
            messages.push(m);
            names.push(name);
        }
    }
    media::attach(&tx, &mut messages)?;
    for (message, room_name) in messages.into_iter().zip(names) {
        hits.push(SearchHit { message, room_name });
    }
    tx.commit()?;
    Ok(SearchPage { hits, more })
}

/// Most trigrams a query asks the index for: enough to make the candidates
/// few; every candidate is checked against the whole query anyway.
const MAX_QUERY_TRIGRAMS: usize = 12;

/// The FTS5 query for a folded query of three or more characters: its
/// distinct trigrams (spread over it when there are many), all required. The
/// index has no positions, so this finds a superset of the substring matches.
fn trigram_query(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    let mut seen = HashSet::new();
    grams.retain(|g| seen.insert(g.clone()));
    if grams.len() > MAX_QUERY_TRIGRAMS {
        let step = grams.len() as f64 / MAX_QUERY_TRIGRAMS as f64;
        grams = (0..MAX_QUERY_TRIGRAMS)
            .map(|i| grams[(i as f64 * step) as usize].clone())
            .collect();
    }
    grams
        .iter()
        .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Up to `limit + 1` matching ids, newest first, from the trigram index: the
/// index walks its candidates by descending rowid, each is checked against
/// the scope and the caller's blocks in SQL and against the query in Rust,
/// and the walk stops once the page is full.
fn trigram_ids(c: &Connection, q: &SearchQuery) -> rusqlite::Result<Vec<MessageId>> {
    let scope = match q.scope {
        SearchScope::Member => {
            "EXISTS (SELECT 1 FROM members mb WHERE mb.room_id = m.room_id AND mb.user_id = ?3)"
        }
        SearchScope::Room(_) => "m.room_id = ?4",
    };
    let sql = format!(
        "SELECT m.id, m.text FROM message_search s CROSS JOIN messages m ON m.id = s.rowid \
         WHERE message_search MATCH ?1 AND s.rowid < ?2 AND m.kind = 'text' AND {scope} \
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = ?3 AND b.blocked = m.sender_id) \
         ORDER BY s.rowid DESC"
    );
    let before = q.before.unwrap_or(MessageId::MAX);
    let fts = trigram_query(&q.text);
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = match q.scope {
        SearchScope::Member => stmt.query(params![fts, before, q.user])?,
        SearchScope::Room(room) => stmt.query(params![fts, before, q.user, room])?,
    };
    let want = q.limit + 1;
    let mut ids = Vec::with_capacity(want);
    while let Some(r) = rows.next()? {
        let text = r.get_ref(1)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?;
        if matches(text, &q.text) {
            ids.push(r.get(0)?);
            if ids.len() == want {
                break;
            }
        }
    }
    Ok(ids)
}

/// Up to `limit + 1` matching ids, newest first, by the merged scan of the
/// scope's rooms ([`RoomScan`]), each read by its `(room_id, seq)` index.
fn scan_ids(c: &Connection, q: &SearchQuery) -> rusqlite::Result<Vec<MessageId>> {
    let rooms: Vec<RoomId> = match q.scope {
        SearchScope::Room(r) => vec![r],
        SearchScope::Member => c
            .prepare_cached("SELECT room_id FROM members WHERE user_id = ?1")?
            .query_map([q.user], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    let blocked: HashSet<UserId> = c
        .prepare_cached("SELECT blocked FROM blocks WHERE blocker = ?1")?
        .query_map([q.user], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let before = q.before.unwrap_or(MessageId::MAX);
    let mut stmt = c.prepare_cached(
        "SELECT id, seq, sender_id, text FROM messages \
         WHERE room_id = ?1 AND id < ?2 AND seq < ?3 AND kind = 'text' \
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let mut scan = RoomScan::new(rooms, blocked, q);
    loop {
        for chunk in scan.wanted() {
            let rows = stmt
                .query_map(
                    params![chunk.room, before, chunk.below_seq, chunk.limit],
                    |r| {
                        Ok(ScanRow {
                            id: r.get(0)?,
                            seq: r.get(1)?,
                            sender: r.get(2)?,
                            text: Some(r.get(3)?),
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            scan.fill(chunk.slot, rows);
        }
        if let Some(ids) = scan.advance() {
            return Ok(ids);
        }
    }
}
