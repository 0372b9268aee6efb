//! When to push (contract §8), with time passed in (ms, wall clock so nodes
//! agree): the pure core of push notifications, no I/O.
//!
//! A user is **active** while one of their sessions holds a focus lease (its
//! client said `focused: true`; renewed while it stays so, so a node that dies
//! cannot keep its users active for ever), or for `idle` after their last
//! activity (a blur, a message sent, a read-cursor move). A message for a user
//! who could be pushed becomes a [`Pending`] notification of its room, due
//! `delay` later (a burst collapses into it: one push per room, the newest
//! message's text); a room pushed less than `repeat` ago waits out the rest.
//! When it falls due the user must be away — otherwise it waits until they
//! have been inactive for `idle`. A read at or past it cancels it; one older
//! than `max_age` is dropped (a push about an hour-old message is noise).

use std::collections::HashMap;

use crate::model::{RoomId, UserId};

/// The planner's timings, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Inactive this long = away (contract: 60 s).
    pub idle: i64,
    /// A burst window: a room's first message waits this long for more.
    pub delay: i64,
    /// Least time between two pushes of one room to one user.
    pub repeat: i64,
    /// A focus report is believed this long unless renewed.
    pub lease: i64,
    /// A notification not sent by this age of its first message is dropped.
    pub max_age: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            idle: 60_000,
            delay: 1_500,
            repeat: 10_000,
            lease: 150_000,
            max_age: 15 * 60_000,
        }
    }
}

/// One room's notification, not yet sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The newest message it is about.
    pub seq: i64,
    pub title: String,
    pub body: String,
    /// High urgency: a direct or random chat, or a mention.
    pub high: bool,
    /// Messages collapsed into it.
    pub count: u32,
    /// When its newest message was committed (latency is measured from it).
    pub sent_at: i64,
    first_at: i64,
    due: i64,
}

/// A notification to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub user: UserId,
    pub room: RoomId,
    pub pending: Pending,
}

/// A new message a user could be told of.
#[derive(Debug, Clone)]
pub struct Notice {
    pub room: RoomId,
    pub seq: i64,
    pub title: String,
    pub body: String,
    pub high: bool,
    pub sent_at: i64,
}

#[derive(Debug, Default)]
struct UserState {
    /// Session → when its focus lease ends.
    focused: HashMap<u64, i64>,
    last_active: Option<i64>,
    pending: HashMap<RoomId, Pending>,
    last_sent: HashMap<RoomId, i64>,
}

#[derive(Debug)]
pub struct Planner {
    t: Timing,
    users: HashMap<UserId, UserState>,
}

impl Planner {
    pub fn new(t: Timing) -> Self {
        Planner {
            t,
            users: HashMap::new(),
        }
    }

    pub fn timing(&self) -> Timing {
        self.t
    }

    /// `user` was active at `at`: in `session` (if any), which is now focused
    /// or not (`None`: unchanged — a message sent, a read).
    pub fn activity(&mut self, user: UserId, session: Option<u64>, focused: Option<bool>, at: i64) {
        let u = self.users.entry(user).or_default();
        u.last_active = Some(u.last_active.map_or(at, |l| l.max(at)));
        match (session, focused) {
            (Some(s), Some(true)) => {
                u.focused.insert(s, at + self.t.lease);
            }
            (Some(s), Some(false)) => {
                u.focused.remove(&s);
            }
            (Some(s), None) => {
                if let Some(until) = u.focused.get_mut(&s) {
                    *until = (*until).max(at + self.t.lease);
                }
            }
            (None, _) => {}
        }
    }

    /// `user` read `room` up to `seq` at `at`: activity, and a pending
    /// notification about nothing newer is cancelled.
    pub fn read(&mut self, user: UserId, room: RoomId, seq: i64, at: i64) {
        self.activity(user, None, None, at);
        if let Some(u) = self.users.get_mut(&user) {
            if u.pending.get(&room).is_some_and(|p| p.seq <= seq) {
                u.pending.remove(&room);
            }
        }
    }

    /// `user` posted in `room`: they have seen it.
    pub fn posted(&mut self, user: UserId, room: RoomId, at: i64) {
        self.activity(user, None, None, at);
        if let Some(u) = self.users.get_mut(&user) {
            u.pending.remove(&room);
        }
    }

    /// A message `user` may hear of (their level allows it, someone else
    /// sent it); when it starts a new pending notification, the time it is due.
    pub fn message(&mut self, user: UserId, n: Notice, now: i64) -> Option<i64> {
        let t = self.t;
        let u = self.users.entry(user).or_default();
        match u.pending.get_mut(&n.room) {
            Some(p) if n.seq > p.seq => {
                p.seq = n.seq;
                p.title = n.title;
                p.body = n.body;
                p.high |= n.high;
                p.count += 1;
                p.sent_at = n.sent_at;
                None
            }
            Some(_) => None,
            None => {
                let after_last = u.last_sent.get(&n.room).map_or(i64::MIN, |s| s + t.repeat);
                let due = (now + t.delay).max(after_last);
                u.pending.insert(
                    n.room,
                    Pending {
                        seq: n.seq,
                        title: n.title,
                        body: n.body,
                        high: n.high,
                        count: 1,
                        sent_at: n.sent_at,
                        first_at: now,
                        due,
                    },
                );
                Some(due)
            }
        }
    }

    /// When the next pending notification is due, if any waits.
    pub fn next_due(&self) -> Option<i64> {
        self.users
            .values()
            .flat_map(|u| u.pending.values().map(|p| p.due))
            .min()
    }

    fn active(t: &Timing, u: &UserState, now: i64) -> Option<i64> {
        let focus = u.focused.values().any(|&until| until > now);
        if focus {
            // Check again soon: the lease, or a blur, ends it.
            return Some(now + t.idle.min(5_000));
        }
        match u.last_active {
            Some(l) if now < l + t.idle => Some(l + t.idle),
            _ => None,
        }
    }

    /// The notifications due at `now`; the rest wait. Also forgets what no
    /// longer matters (expired leases, idle users with nothing pending).
    pub fn due(&mut self, now: i64) -> Vec<Due> {
        let t = self.t;
        let mut out = Vec::new();
        self.users.retain(|&user, u| {
            u.focused.retain(|_, until| *until > now);
            let active_until = Self::active(&t, u, now);
            let mut sent = Vec::new();
            u.pending.retain(|&room, p| {
                if p.due > now {
                    return true;
                }
                if now - p.first_at > t.max_age {
                    return false;
                }
                if let Some(again) = active_until {
                    p.due = again;
                    return true;
                }
                sent.push(room);
                out.push(Due {
                    user,
                    room,
                    pending: p.clone(),
                });
                false
            });
            for room in sent {
                u.last_sent.insert(room, now);
            }
            u.last_sent.retain(|_, at| now < *at + t.repeat);
            !(u.pending.is_empty()
                && u.focused.is_empty()
                && u.last_sent.is_empty()
                && active_until.is_none())
        });
        out
    }

    /// Users tracked (for tests and bounds).
    pub fn tracked(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        idle: 60_000,
        delay: 1_000,
        repeat: 10_000,
        lease: 150_000,
        max_age: 900_000,
    };

    fn notice(room: RoomId, seq: i64, body: &str) -> Notice {
        Notice {
            room,
            seq,
            title: "Alice".into(),
            body: body.into(),
            high: false,
            sent_at: 0,
        }
    }

    fn sent(p: &mut Planner, now: i64) -> Vec<(UserId, RoomId, i64, u32)> {
        p.due(now)
            .into_iter()
            .map(|d| (d.user, d.room, d.pending.seq, d.pending.count))
            .collect()
    }

    #[test]
    fn an_away_user_gets_one_push_per_room_burst() {
        let mut p = Planner::new(T);
        for (i, at) in [0, 200, 400].into_iter().enumerate() {
            p.message(7, notice(1, i as i64 + 1, "hi"), at);
        }
        assert!(sent(&mut p, 999).is_empty(), "the burst window is open");
        assert_eq!(sent(&mut p, 1_000), vec![(7, 1, 3, 3)]);
        assert!(sent(&mut p, 2_000).is_empty());
        // The conversation goes on: the next push waits for `repeat`.
        p.message(7, notice(1, 4, "again"), 3_000);
        assert!(sent(&mut p, 9_999).is_empty());
        assert_eq!(sent(&mut p, 11_000), vec![(7, 1, 4, 1)]);
        // Another room is its own burst.
        p.message(7, notice(2, 1, "x"), 11_000);
        assert_eq!(sent(&mut p, 12_000), vec![(7, 2, 1, 1)]);
    }

    #[test]
    fn a_focused_user_gets_nothing_and_a_blur_starts_the_idle_clock() {
        let mut p = Planner::new(T);
        p.activity(7, Some(1), Some(true), 0);
        p.message(7, notice(1, 1, "hi"), 1_000);
        for now in (2_000..300_000).step_by(5_000) {
            p.activity(7, Some(1), Some(true), now); // renewals
            assert!(sent(&mut p, now).is_empty(), "at {now}");
        }
        // Focused since 1 000 for longer than max_age: the notice is stale.
        let mut p = Planner::new(T);
        p.activity(7, Some(1), Some(true), 0);
        p.message(7, notice(1, 1, "hi"), 1_000);
        p.activity(7, Some(1), Some(false), 10_000);
        assert!(sent(&mut p, 69_999).is_empty());
        assert_eq!(sent(&mut p, 70_000), vec![(7, 1, 1, 1)]);
    }

    #[test]
    fn a_read_past_the_message_cancels_it() {
        let mut p = Planner::new(T);
        p.activity(7, Some(1), Some(false), 0);
        p.message(7, notice(1, 5, "hi"), 1_000);
        p.read(7, 1, 4, 2_000);
        p.message(7, notice(2, 9, "other"), 2_000);
        p.read(7, 2, 9, 3_000);
        // Room 1 still has seq 5 unread: pushed once the user is away again.
        assert!(sent(&mut p, 62_999).is_empty());
        assert_eq!(sent(&mut p, 63_000), vec![(7, 1, 5, 1)]);
        // Posting in a room is having seen it.
        p.message(7, notice(3, 1, "x"), 70_000);
        p.posted(7, 3, 70_500);
        assert!(sent(&mut p, 200_000).is_empty());
    }

    #[test]
    fn a_dead_nodes_focus_lease_runs_out() {
        let mut p = Planner::new(T);
        p.activity(7, Some(1), Some(true), 0);
        p.message(7, notice(1, 1, "hi"), 1_000);
        // No renewal, no blur: active until the lease (150 s) ends, plus idle?
        // No: the lease's end is not activity; away once it ends and idle has
        // passed since the last report (0).
        assert!(sent(&mut p, 149_000).is_empty());
        assert_eq!(sent(&mut p, 155_000), vec![(7, 1, 1, 1)]);
    }

    #[test]
    fn a_stale_notice_is_dropped_and_idle_users_are_forgotten() {
        let mut p = Planner::new(T);
        p.activity(7, None, None, 0);
        p.message(7, notice(1, 1, "hi"), 0);
        p.activity(7, None, None, 899_000); // active until max_age passes
        for now in (0..959_000).step_by(10_000) {
            p.activity(7, None, None, now);
            assert!(sent(&mut p, now).is_empty());
        }
        assert!(sent(&mut p, 1_100_000).is_empty(), "dropped, not sent late");
        assert_eq!(p.tracked(), 0);
        p.activity(8, Some(3), Some(false), 0);
        assert_eq!(p.tracked(), 1);
        p.due(60_000);
        assert_eq!(p.tracked(), 0);
    }

    #[test]
    fn two_sessions_one_still_focused_keep_the_user_active() {
        let mut p = Planner::new(T);
        p.activity(7, Some(1), Some(true), 0);
        p.activity(7, Some(2), Some(true), 0);
        p.activity(7, Some(2), Some(false), 1_000);
        p.message(7, notice(1, 1, "hi"), 2_000);
        assert!(sent(&mut p, 100_000).is_empty());
        p.activity(7, Some(1), Some(false), 100_000);
        assert_eq!(sent(&mut p, 160_000), vec![(7, 1, 1, 1)]);
    }
}
