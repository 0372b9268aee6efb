//! The short-query search scan both backends drive (contract §9): the rooms of
//! a scope read newest first *together* — each room from its newest message
//! down, in chunks that grow, the rooms' heads merged by id — so the scan
//! stops as soon as a page is full wherever the hits are. No time window: an
//! old hit is found however far back it is. This module holds the merge; the
//! backends only fetch the chunks it asks for.

use std::collections::{BinaryHeap, HashSet, VecDeque};

use super::search::{matches, SearchQuery};
use crate::model::{MessageId, RoomId, UserId};

/// Rows read from a room at first, doubling up to [`MAX_CHUNK`]: a common word
/// fills the page from the first chunks, a rare one reads on in few queries.
const FIRST_CHUNK: i64 = 16;
const MAX_CHUNK: i64 = 1024;
/// A room whose buffer runs this low is read along with the one that ran dry
/// (one round trip for several rooms where the backend can batch).
const REFILL_BELOW: usize = 4;

/// A message of a room, as a chunk returns it (newest first).
pub struct ScanRow {
    pub id: MessageId,
    pub seq: i64,
    pub sender: UserId,
    /// The text, or `None` when the backend already knows it cannot match.
    pub text: Option<String>,
}

/// A chunk to read: room `room`'s text messages with `seq < below_seq`, newest
/// first, at most `limit`; hand the rows to [`RoomScan::fill`] with `slot`.
pub struct Chunk {
    pub slot: usize,
    pub room: RoomId,
    pub below_seq: i64,
    pub limit: i64,
}

struct Cursor {
    room: RoomId,
    buffer: VecDeque<ScanRow>,
    below_seq: i64,
    chunk: i64,
    done: bool,
}

/// The merge of one scan. Drive it: read every [`RoomScan::wanted`] chunk,
/// [`RoomScan::fill`] it, then [`RoomScan::advance`]; repeat until `advance`
/// returns the ids.
pub struct RoomScan {
    cursors: Vec<Cursor>,
    heads: BinaryHeap<(MessageId, usize)>,
    blocked: HashSet<UserId>,
    query: String,
    want: usize,
    ids: Vec<MessageId>,
    /// Rooms to read before the merge can go on (all of them at first).
    pending: Vec<usize>,
}

impl RoomScan {
    /// A scan of `rooms` for `q`, leaving out senders in `blocked`.
    pub fn new(rooms: Vec<RoomId>, blocked: HashSet<UserId>, q: &SearchQuery) -> RoomScan {
        let cursors: Vec<Cursor> = rooms
            .into_iter()
            .map(|room| Cursor {
                room,
                buffer: VecDeque::new(),
                below_seq: i64::MAX,
                chunk: FIRST_CHUNK,
                done: false,
            })
            .collect();
        RoomScan {
            pending: (0..cursors.len()).collect(),
            heads: BinaryHeap::with_capacity(cursors.len()),
            cursors,
            blocked,
            query: q.text.clone(),
            want: q.limit + 1,
            ids: Vec::new(),
        }
    }

    /// The chunks to read now (none: call [`RoomScan::advance`]).
    pub fn wanted(&mut self) -> Vec<Chunk> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|slot| {
                let c = &self.cursors[slot];
                Chunk {
                    slot,
                    room: c.room,
                    below_seq: c.below_seq,
                    limit: c.chunk,
                }
            })
            .collect()
    }

    /// The rows read for chunk `slot`, newest first.
    pub fn fill(&mut self, slot: usize, rows: Vec<ScanRow>) {
        let c = &mut self.cursors[slot];
        let had_head = !c.buffer.is_empty();
        c.done = (rows.len() as i64) < c.chunk;
        c.chunk = (c.chunk * 2).min(MAX_CHUNK);
        if let Some(last) = rows.last() {
            c.below_seq = last.seq;
        }
        c.buffer.extend(rows);
        if !had_head {
            if let Some(head) = c.buffer.front() {
                self.heads.push((head.id, slot));
            }
        }
    }

    /// Merges until a room must be read first (`None`: read what
    /// [`RoomScan::wanted`] says) or the scan is over: up to `limit + 1`
    /// matching ids, newest first.
    pub fn advance(&mut self) -> Option<Vec<MessageId>> {
        while let Some((id, i)) = self.heads.pop() {
            let row = self.cursors[i]
                .buffer
                .pop_front()
                .expect("a head is buffered");
            let hit = row
                .text
                .is_some_and(|t| !self.blocked.contains(&row.sender) && matches(&t, &self.query));
            if hit {
                self.ids.push(id);
                if self.ids.len() == self.want {
                    return Some(std::mem::take(&mut self.ids));
                }
            }
            match self.cursors[i].buffer.front() {
                Some(next) => self.heads.push((next.id, i)),
                None if !self.cursors[i].done => {
                    self.pending = (0..self.cursors.len())
                        .filter(|&j| {
                            j == i
                                || (!self.cursors[j].done
                                    && self.cursors[j].buffer.len() < REFILL_BELOW)
                        })
                        .collect();
                    return None;
                }
                None => {}
            }
        }
        Some(std::mem::take(&mut self.ids))
    }
}
