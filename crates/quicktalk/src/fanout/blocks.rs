//! Who blocks whom among the users connected to this node (contract §7), so
//! fan-out can hide a blocked user from their blocker: messages become
//! `kind:"hidden"` placeholders (same `seq`), typing is dropped, presence
//! leaves them out. Only connected blockers are kept; a blocker's list is
//! loaded when their first connection registers and replaced whole by every
//! [`crate::bus::BusEvent::BlockChanged`] (from any node).
//!
//! Cost when nobody here blocks the sender: one relaxed atomic load per
//! event ([`BlockTable::anyone_blocked`]); the table's lock and the
//! per-subscriber checks are taken only for a sender somebody here blocks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::model::UserId;

#[derive(Default)]
pub(super) struct Blocks {
    /// connected blocker -> whom they block (never empty)
    by_blocker: HashMap<UserId, Arc<HashSet<UserId>>>,
    /// blocked -> how many connected blockers block them
    blocked: HashMap<UserId, usize>,
    /// Bumped by every change event: a list read from the store before one is
    /// stale and must be read again.
    generation: u64,
}

impl Blocks {
    /// Whether `viewer` blocks `sender`.
    pub(super) fn hides(&self, viewer: UserId, sender: UserId) -> bool {
        self.by_blocker
            .get(&viewer)
            .is_some_and(|set| set.contains(&sender))
    }

    /// Whether some connected user blocks `sender`.
    pub(super) fn is_blocked(&self, sender: UserId) -> bool {
        self.blocked.contains_key(&sender)
    }

    /// `blocker`'s list, if they block anyone.
    pub(super) fn of(&self, blocker: UserId) -> Option<Arc<HashSet<UserId>>> {
        self.by_blocker.get(&blocker).cloned()
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn bump(&mut self) {
        self.generation += 1;
    }

    /// Replaces `blocker`'s list.
    pub(super) fn set(&mut self, blocker: UserId, list: &[UserId]) {
        self.remove(blocker);
        let set: HashSet<UserId> = list.iter().copied().filter(|u| *u != blocker).collect();
        if set.is_empty() {
            return;
        }
        for u in &set {
            *self.blocked.entry(*u).or_default() += 1;
        }
        self.by_blocker.insert(blocker, Arc::new(set));
    }

    /// Forgets `blocker`'s list (their last connection here closed).
    pub(super) fn remove(&mut self, blocker: UserId) {
        let Some(old) = self.by_blocker.remove(&blocker) else {
            return;
        };
        for u in old.iter() {
            if let Some(n) = self.blocked.get_mut(u) {
                *n -= 1;
                if *n == 0 {
                    self.blocked.remove(u);
                }
            }
        }
    }

    pub(super) fn blocked_len(&self) -> usize {
        self.blocked.len()
    }
}

/// The table behind its lock, with a lock-free "is anybody blocked here" check.
#[derive(Default)]
pub(super) struct BlockTable {
    table: parking_lot::RwLock<Blocks>,
    /// `blocked.len()`, kept beside the lock for the fast path.
    blocked: AtomicUsize,
}

impl BlockTable {
    /// Cheap: whether any connected user here blocks anyone at all.
    pub(super) fn anyone_blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed) > 0
    }

    pub(super) fn read(&self) -> parking_lot::RwLockReadGuard<'_, Blocks> {
        self.table.read()
    }

    /// Changes the table under its write lock and refreshes the fast-path count.
    pub(super) fn update<T>(&self, f: impl FnOnce(&mut Blocks) -> T) -> T {
        let mut t = self.table.write();
        let out = f(&mut t);
        self.blocked.store(t.blocked_len(), Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_lists_and_removal() {
        let t = BlockTable::default();
        assert!(!t.anyone_blocked());
        t.update(|b| b.set(1, &[2, 3, 1]));
        t.update(|b| b.set(4, &[2]));
        assert!(t.anyone_blocked());
        {
            let b = t.read();
            assert!(b.hides(1, 2) && b.hides(1, 3) && b.hides(4, 2));
            assert!(!b.hides(1, 1), "nobody blocks themselves");
            assert!(!b.hides(2, 1) && !b.hides(4, 3));
            assert!(b.is_blocked(2) && b.is_blocked(3) && !b.is_blocked(1));
        }
        t.update(|b| b.set(1, &[2]));
        assert!(!t.read().is_blocked(3));
        t.update(|b| b.remove(4));
        assert!(t.read().is_blocked(2), "1 still blocks 2");
        t.update(|b| b.set(1, &[]));
        assert!(!t.anyone_blocked());
        assert!(t.read().of(1).is_none());
    }
}
