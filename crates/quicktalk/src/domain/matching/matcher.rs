//! The matching core: a pure state machine (no I/O, no clock: time is passed in as
//! milliseconds), so it can be property-tested with virtual time.
//!
//! Rules:
//! - FIFO by waiting time. A *preferred* partner (overlapping interests, same
//!   language when both gave one) is taken first; once both sides are *flexible*
//!   (no preferences, or waited at least `window`), anyone eligible will do.
//! - Never: the same user twice in the queue, in two matches, with themselves,
//!   with someone either of them avoids (reported, or was reported by: the
//!   engine loads that list from the store when a user enters), or with someone
//!   they were matched with in the last `memory` ms.
//! - The state holds only users who are waiting or matched (and their recent
//!   partners, swept after `memory`): its size follows the queue, not history.
//! - A dropped user keeps the match for `grace` ms; coming back resumes it.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{RoomId, UserId, UserRef};

pub type Ms = u64;

/// Matching preferences: lower-cased, de-duplicated, sorted interests and a language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefs {
    pub interests: Vec<String>,
    pub lang: Option<String>,
}

impl Prefs {
    pub fn is_empty(&self) -> bool {
        self.interests.is_empty() && self.lang.is_none()
    }

    /// Same language (when both gave one) and overlapping interests (when either
    /// gave some).
    pub fn preferred_with(&self, other: &Prefs) -> bool {
        let lang_ok = match (&self.lang, &other.lang) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let interests_ok = (self.interests.is_empty() && other.interests.is_empty())
            || self.interests.iter().any(|i| other.interests.contains(i));
        lang_ok && interests_ok
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MatcherConfig {
    /// How long preferences are honoured before anyone will do.
    pub window: Ms,
    /// How long a dropped user's match is kept for them.
    pub grace: Ms,
    /// How long a past partner is not matched again.
    pub memory: Ms,
    /// How many past partners are remembered per user.
    pub memory_len: usize,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        MatcherConfig {
            window: 3_000,
            grace: 10_000,
            memory: 10 * 60_000,
            memory_len: 16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    PartnerLeft,
    PartnerDisconnected,
    YouLeft,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::PartnerLeft => "partner_left",
            EndReason::PartnerDisconnected => "partner_disconnected",
            EndReason::YouLeft => "you_left",
        }
    }
}

/// What happened, for the caller to act on (create rooms, notify users).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `user` is (still) in the queue.
    Waiting { user: UserId },
    /// A new pair: the caller creates the room and calls [`Matcher::set_room`].
    Paired {
        a: UserRef,
        b: UserRef,
        waited_a: Ms,
        waited_b: Ms,
    },
    /// `user`'s match ended.
    Ended {
        user: UserId,
        room: Option<RoomId>,
        reason: EndReason,
    },
    /// Nothing to do: `user` was neither queued nor matched.
    Idle { user: UserId },
}

/// A user's state as shown to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Waiting,
    Matched {
        partner: UserRef,
        room: Option<RoomId>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct AlreadyMatched;

/// At most this many users avoided per user (the engine loads the newest).
pub const MAX_AVOID: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Entry {
    Waiting {
        name: String,
        /// Absent in matcher state saved before it existed.
        #[serde(default)]
        guest: bool,
        since: Ms,
        prefs: Prefs,
        /// Users never to be paired with (sorted).
        #[serde(default)]
        avoid: Vec<UserId>,
    },
    Matched {
        name: String,
        #[serde(default)]
        guest: bool,
        partner: UserId,
        room: Option<RoomId>,
        prefs: Prefs,
        dropped_at: Option<Ms>,
        #[serde(default)]
        avoid: Vec<UserId>,
    },
}

impl Entry {
    fn user_ref(&self, id: UserId) -> UserRef {
        match self {
            Entry::Waiting { name, guest, .. } | Entry::Matched { name, guest, .. } => UserRef {
                id,
                name: name.clone(),
                guest: *guest,
            },
        }
    }

    fn avoid_mut(&mut self) -> &mut Vec<UserId> {
        match self {
            Entry::Waiting { avoid, .. } | Entry::Matched { avoid, .. } => avoid,
        }
    }

    fn avoids(&self, other: UserId) -> bool {
        match self {
            Entry::Waiting { avoid, .. } | Entry::Matched { avoid, .. } => {
                avoid.binary_search(&other).is_ok()
            }
        }
    }
}

/// Sorted, de-duplicated, at most [`MAX_AVOID`] long.
fn avoid_list(mut avoid: Vec<UserId>) -> Vec<UserId> {
    avoid.truncate(MAX_AVOID);
    avoid.sort_unstable();
    avoid.dedup();
    avoid
}

/// Serializable, so several nodes can share one matcher through a database row
/// (the configuration is each node's own and is not part of it).
#[derive(Default, Serialize, Deserialize)]
pub struct Matcher {
    #[serde(skip)]
    cfg: MatcherConfig,
    entries: HashMap<UserId, Entry>,
    /// Waiting users, oldest first.
    queue: VecDeque<UserId>,
    recent: HashMap<UserId, VecDeque<(UserId, Ms)>>,
    /// When `recent` was last swept of expired entries.
    swept_at: Ms,
}

impl Matcher {
    pub fn new(cfg: MatcherConfig) -> Self {
        Matcher {
            cfg,
            ..Matcher::default()
        }
    }

    /// Applies this node's configuration (after loading a shared state).
    pub fn set_config(&mut self, cfg: MatcherConfig) {
        self.cfg = cfg;
    }

    pub fn config(&self) -> MatcherConfig {
        self.cfg
    }

    /// Every user waiting or matched.
    pub fn users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.entries.keys().copied()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn state(&self, user: UserId) -> State {
        match self.entries.get(&user) {
            None => State::Idle,
            Some(Entry::Waiting { .. }) => State::Waiting,
            Some(Entry::Matched { partner, room, .. }) => State::Matched {
                partner: self.entries[partner].user_ref(*partner),
                room: *room,
            },
        }
    }

    /// Never match these two again, from now on (for users present now; the
    /// engine records it in the store, from which later entries load `avoid`).
    pub fn block(&mut self, a: UserId, b: UserId) {
        for (u, other) in [(a, b), (b, a)] {
            if let Some(e) = self.entries.get_mut(&u) {
                let avoid = e.avoid_mut();
                if let Err(at) = avoid.binary_search(&other) {
                    if avoid.len() < MAX_AVOID {
                        avoid.insert(at, other);
                    }
                }
            }
        }
    }

    /// [`Matcher::connect_avoiding`] with nobody to avoid.
    #[cfg(test)]
    pub fn connect(
        &mut self,
        user: UserRef,
        prefs: Prefs,
        now: Ms,
    ) -> Result<Vec<Event>, AlreadyMatched> {
        self.connect_avoiding(user, prefs, Vec::new(), now)
    }

    /// Enters the queue, never to be paired with anyone in `avoid` (at most
    /// [`MAX_AVOID`] are kept). Already waiting: a no-op (keeps the place, takes
    /// the new preferences and list). Matched: an error.
    pub fn connect_avoiding(
        &mut self,
        user: UserRef,
        prefs: Prefs,
        avoid: Vec<UserId>,
        now: Ms,
    ) -> Result<Vec<Event>, AlreadyMatched> {
        let avoid = avoid_list(avoid);
        match self.entries.get_mut(&user.id) {
            Some(Entry::Matched { .. }) => Err(AlreadyMatched),
            Some(Entry::Waiting {
                prefs: p, avoid: a, ..
            }) => {
                *p = prefs;
                *a = avoid;
                let mut out = vec![Event::Waiting { user: user.id }];
                out.extend(self.try_pair(user.id, now));
                Ok(out)
            }
            None => Ok(self.enqueue(user, prefs, avoid, now)),
        }
    }

    /// Leaves the current match (if any) and queues again with the same preferences.
    pub fn next(&mut self, user: &UserRef, now: Ms) -> Vec<Event> {
        match self.entries.get(&user.id) {
            Some(Entry::Matched { prefs, avoid, .. }) => {
                let (prefs, avoid) = (prefs.clone(), avoid.clone());
                let mut out = self.end(user.id, EndReason::YouLeft, EndReason::PartnerLeft, now);
                out.extend(self.enqueue(user.clone(), prefs, avoid, now));
                out
            }
            Some(Entry::Waiting { .. }) => vec![Event::Waiting { user: user.id }],
            None => vec![Event::Idle { user: user.id }],
        }
    }

    /// Leaves the queue and/or the current match.
    pub fn disconnect(&mut self, user: UserId, now: Ms) -> Vec<Event> {
        match self.entries.get(&user) {
            Some(Entry::Matched { .. }) => {
                self.end(user, EndReason::YouLeft, EndReason::PartnerLeft, now)
            }
            Some(Entry::Waiting { .. }) => {
                self.dequeue(user);
                vec![Event::Idle { user }]
            }
            None => vec![Event::Idle { user }],
        }
    }

    /// The user's last socket closed: leave the queue; keep a match for `grace`.
    pub fn offline(&mut self, user: UserId, now: Ms) {
        match self.entries.get_mut(&user) {
            Some(Entry::Waiting { .. }) => self.dequeue(user),
            Some(Entry::Matched { dropped_at, .. }) => {
                dropped_at.get_or_insert(now);
            }
            None => {}
        }
    }

    /// The user is back: a match kept for them resumes. Returns whether it did.
    pub fn online(&mut self, user: UserId) -> bool {
        match self.entries.get_mut(&user) {
            Some(Entry::Matched { dropped_at, .. }) => dropped_at.take().is_some(),
            _ => false,
        }
    }

    /// Are `a` and `b` matched with each other, waiting for their room?
    pub fn is_reserved(&self, a: UserId, b: UserId) -> bool {
        [(a, b), (b, a)].iter().all(|(u, p)| {
            matches!(
                self.entries.get(u),
                Some(Entry::Matched { partner, room: None, .. }) if partner == p
            )
        })
    }

    /// Gives the pair `a`–`b` its room. Returns `false` (and changes nothing) when
    /// the two are no longer a pair waiting for a room (one left meanwhile).
    pub fn set_room(&mut self, a: UserId, b: UserId, room_id: RoomId) -> bool {
        if !self.is_reserved(a, b) {
            return false;
        }
        for u in [a, b] {
            if let Some(Entry::Matched { room, .. }) = self.entries.get_mut(&u) {
                *room = Some(room_id);
            }
        }
        true
    }

    /// Time-driven work: ends matches whose grace ran out, and pairs users whose
    /// preference window has passed.
    pub fn tick(&mut self, now: Ms) -> Vec<Event> {
        let mut out = Vec::new();
        let expired: Vec<UserId> = self
            .entries
            .iter()
            .filter_map(|(u, e)| match e {
                Entry::Matched {
                    dropped_at: Some(t),
                    ..
                } if now >= t + self.cfg.grace => Some(*u),
                _ => None,
            })
            .collect();
        for u in expired {
            if matches!(self.entries.get(&u), Some(Entry::Matched { .. })) {
                out.extend(self.end(u, EndReason::YouLeft, EndReason::PartnerDisconnected, now));
            }
        }
        // Forget partners past the memory now and then, so users who never come
        // back do not stay in memory.
        if now >= self.swept_at + self.cfg.memory.min(60_000) {
            let memory = self.cfg.memory;
            self.recent.retain(|_, r| {
                r.retain(|(_, at)| now < at + memory);
                !r.is_empty()
            });
            self.swept_at = now;
        }
        let waiting: Vec<UserId> = self.queue.iter().copied().collect();
        for u in waiting {
            if matches!(self.entries.get(&u), Some(Entry::Waiting { .. })) {
                out.extend(self.try_pair(u, now));
            }
        }
        out
    }

    fn enqueue(&mut self, user: UserRef, prefs: Prefs, avoid: Vec<UserId>, now: Ms) -> Vec<Event> {
        self.entries.insert(
            user.id,
            Entry::Waiting {
                name: user.name,
                guest: user.guest,
                since: now,
                prefs,
                avoid,
            },
        );
        self.queue.push_back(user.id);
        let mut out = vec![Event::Waiting { user: user.id }];
        out.extend(self.try_pair(user.id, now));
        out
    }

    fn dequeue(&mut self, user: UserId) {
        self.entries.remove(&user);
        self.queue.retain(|u| *u != user);
    }

    fn waiting(&self, u: UserId) -> Option<(Ms, &Prefs)> {
        match self.entries.get(&u) {
            Some(Entry::Waiting { since, prefs, .. }) => Some((*since, prefs)),
            _ => None,
        }
    }

    fn flexible(&self, since: Ms, prefs: &Prefs, now: Ms) -> bool {
        prefs.is_empty() || now >= since + self.cfg.window
    }

    fn recently_matched(&self, a: UserId, b: UserId, now: Ms) -> bool {
        self.recent.get(&a).is_some_and(|r| {
            r.iter()
                .any(|(p, at)| *p == b && now < at + self.cfg.memory)
        })
    }

    fn avoids(&self, a: UserId, b: UserId) -> bool {
        self.entries.get(&a).is_some_and(|e| e.avoids(b))
    }

    /// May `a` and `b` ever be paired now (ignoring preferences)?
    pub fn eligible(&self, a: UserId, b: UserId, now: Ms) -> bool {
        a != b
            && !self.avoids(a, b)
            && !self.avoids(b, a)
            && !self.recently_matched(a, b, now)
            && !self.recently_matched(b, a, now)
    }

    /// Would `a` and `b` (both waiting) be paired at `now`?
    pub fn compatible(&self, a: UserId, b: UserId, now: Ms) -> bool {
        let (Some((sa, pa)), Some((sb, pb))) = (self.waiting(a), self.waiting(b)) else {
            return false;
        };
        self.eligible(a, b, now)
            && (pa.preferred_with(pb) || (self.flexible(sa, pa, now) && self.flexible(sb, pb, now)))
    }

    /// Users currently waiting, oldest first.
    pub fn waiting_users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.queue.iter().copied()
    }

    /// Pairs `u` with the longest-waiting preferred partner, else with the
    /// longest-waiting one when both are flexible.
    fn try_pair(&mut self, u: UserId, now: Ms) -> Option<Event> {
        let (su, pu) = self.waiting(u)?;
        let flex_u = self.flexible(su, pu, now);
        let mut fallback = None;
        for &c in &self.queue {
            if c == u || !self.eligible(u, c, now) {
                continue;
            }
            let Some((sc, pc)) = self.waiting(c) else {
                continue;
            };
            if pu.preferred_with(pc) {
                fallback = Some(c);
                break;
            }
            if fallback.is_none() && flex_u && self.flexible(sc, pc, now) {
                fallback = Some(c);
            }
        }
        let c = fallback?;
        Some(self.pair(u, c, now))
    }

    fn pair(&mut self, a: UserId, b: UserId, now: Ms) -> Event {
        self.queue.retain(|u| *u != a && *u != b);
        let mut refs = Vec::with_capacity(2);
        for (u, p) in [(a, b), (b, a)] {
            let Some(Entry::Waiting {
                name,
                guest,
                since,
                prefs,
                avoid,
            }) = self.entries.remove(&u)
            else {
                unreachable!("pairing a user who is not waiting")
            };
            refs.push((
                UserRef {
                    id: u,
                    name: name.clone(),
                    guest,
                },
                now.saturating_sub(since),
            ));
            self.entries.insert(
                u,
                Entry::Matched {
                    name,
                    guest,
                    partner: p,
                    room: None,
                    prefs,
                    dropped_at: None,
                    avoid,
                },
            );
        }
        let (rb, wb) = refs.pop().expect("two");
        let (ra, wa) = refs.pop().expect("two");
        Event::Paired {
            a: ra,
            b: rb,
            waited_a: wa,
            waited_b: wb,
        }
    }

    /// Ends `user`'s match: `user` hears `for_user`, the partner `for_partner`;
    /// both become idle and remember each other.
    fn end(
        &mut self,
        user: UserId,
        for_user: EndReason,
        for_partner: EndReason,
        now: Ms,
    ) -> Vec<Event> {
        let Some(Entry::Matched { partner, room, .. }) = self.entries.remove(&user) else {
            return Vec::new();
        };
        self.entries.remove(&partner);
        for (a, b) in [(user, partner), (partner, user)] {
            let r = self.recent.entry(a).or_default();
            r.retain(|(_, at)| now < at + self.cfg.memory);
            r.push_back((b, now));
            while r.len() > self.cfg.memory_len {
                r.pop_front();
            }
        }
        vec![
            Event::Ended {
                user,
                room,
                reason: for_user,
            },
            Event::Ended {
                user: partner,
                room,
                reason: for_partner,
            },
        ]
    }

    /// Checks the structural invariants (for tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut seen = std::collections::HashSet::new();
        for u in &self.queue {
            assert!(seen.insert(*u), "user {u} queued twice");
            assert!(
                matches!(self.entries.get(u), Some(Entry::Waiting { .. })),
                "queued user {u} is not waiting"
            );
        }
        for (u, e) in &self.entries {
            match e {
                Entry::Waiting { .. } => assert!(seen.contains(u), "waiting user {u} not queued"),
                Entry::Matched { partner, room, .. } => {
                    assert_ne!(u, partner, "matched with themselves");
                    match self.entries.get(partner) {
                        Some(Entry::Matched {
                            partner: back,
                            room: r2,
                            ..
                        }) => {
                            assert_eq!(back, u, "asymmetric match");
                            assert_eq!(room, r2, "pair in two rooms");
                        }
                        _ => panic!("partner of {u} is not matched"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
