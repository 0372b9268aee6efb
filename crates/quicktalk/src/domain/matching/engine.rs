//! Where matching state lives. [`MatchEngine`] is the seam for a multi-node
//! engine; [`LocalMatchEngine`] keeps the [`Matcher`] in this process, behind one
//! lock that is never held across I/O, and creates each pair's room in the store
//! before anyone hears of it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::matcher::{
    AlreadyMatched, EndReason, Event, Matcher, MatcherConfig, Ms, Prefs, State, MAX_AVOID,
};
use crate::error::{AppError, AppResult};
use crate::model::{Room, RoomId, RoomKind, RoomPolicy, UserId, UserRef, Visibility};
use crate::store::{NewRoom, Store};

/// A matching outcome, rooms already created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Waiting(UserId),
    Found {
        a: UserRef,
        b: UserRef,
        room: RoomId,
        waited_ms: [Ms; 2],
    },
    Ended {
        user: UserId,
        room: Option<RoomId>,
        reason: EndReason,
    },
    Idle(UserId),
}

#[async_trait]
pub trait MatchEngine: Send + Sync + 'static {
    async fn connect(&self, user: &UserRef, prefs: Prefs) -> AppResult<Vec<Outcome>>;
    async fn next(&self, user: &UserRef) -> AppResult<Vec<Outcome>>;
    async fn disconnect(&self, user: &UserRef) -> AppResult<Vec<Outcome>>;
    /// The user's last socket closed.
    async fn offline(&self, user: UserId);
    /// The user has a socket again; a match kept for them resumes.
    async fn online(&self, user: UserId);
    /// Time-driven work (grace periods, preference windows).
    async fn tick(&self) -> AppResult<Vec<Outcome>>;
    async fn state(&self, user: UserId) -> State;
    async fn block(&self, a: UserId, b: UserId);
    async fn queue_len(&self) -> usize;
}

pub struct LocalMatchEngine {
    /// Never held across an `.await`: room creation happens outside it.
    matcher: Mutex<Matcher>,
    store: Arc<dyn Store>,
    epoch: Instant,
}

impl LocalMatchEngine {
    /// Starts empty: a match lives only in this process, so the random chats
    /// still open from an earlier run have no match any more and are closed.
    pub async fn new(cfg: MatcherConfig, store: Arc<dyn Store>) -> AppResult<Self> {
        let closed = store.close_open_rooms(RoomKind::Random).await?;
        if closed > 0 {
            tracing::info!(closed, "closed the random chats of an earlier run");
        }
        Ok(LocalMatchEngine {
            matcher: Mutex::new(Matcher::new(cfg)),
            store,
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> Ms {
        self.epoch.elapsed().as_millis() as Ms
    }

    /// Applies `op` under the lock, then creates the rooms of new pairs without it:
    /// a pair stays reserved (matched, no room yet, shown to them as waiting) while
    /// its room is created, and is announced only if it still holds afterwards.
    async fn run(
        &self,
        op: impl FnOnce(&mut Matcher, Ms) -> AppResult<Vec<Event>>,
    ) -> AppResult<Vec<Outcome>> {
        let events = {
            let mut m = self.matcher.lock();
            let now = self.now();
            op(&mut m, now)?
        };
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let Event::Paired {
                a,
                b,
                waited_a,
                waited_b,
            } = e
            else {
                out.push(passthrough(e));
                continue;
            };
            let created = create_pair_room(&*self.store, &a, &b).await;
            let kept = {
                let mut m = self.matcher.lock();
                match &created {
                    Ok(room) => m.set_room(a.id, b.id, room.id),
                    Err(_) => {
                        // Undo the pair so nobody is stuck in a match without a room.
                        if m.is_reserved(a.id, b.id) {
                            let now = self.now();
                            m.disconnect(a.id, now);
                        }
                        false
                    }
                }
            };
            let room = created?;
            if kept {
                out.push(Outcome::Found {
                    a,
                    b,
                    room: room.id,
                    waited_ms: [waited_a, waited_b],
                });
            } else {
                // The pair ended while its room was being made: nobody heard of it.
                self.store.close_room(room.id).await?;
            }
        }
        Ok(out)
    }
}

fn passthrough(e: Event) -> Outcome {
    match e {
        Event::Waiting { user } => Outcome::Waiting(user),
        Event::Idle { user } => Outcome::Idle(user),
        Event::Ended { user, room, reason } => Outcome::Ended { user, room, reason },
        Event::Paired { .. } => unreachable!("pairs are resolved by the engine"),
    }
}

/// Creates a pair's private random room with both joined (one transaction).
async fn create_pair_room(store: &dyn Store, a: &UserRef, b: &UserRef) -> AppResult<Room> {
    let (room, _) = store
        .create_room_with(
            NewRoom {
                name: format!("{} · {}", a.name, b.name),
                visibility: Visibility::Private,
                kind: RoomKind::Random,
                created_by: a.id,
                moderation: RoomPolicy::Strict,
            },
            vec![a.clone(), b.clone()],
        )
        .await?;
    Ok(room)
}

/// Turns matcher events into outcomes, creating a room for every new pair (both
/// joined in one transaction before anyone hears of it), with the matcher held
/// throughout (the shared engine, under its row lock).
pub async fn resolve(
    store: &dyn Store,
    m: &mut Matcher,
    events: Vec<Event>,
    now: Ms,
) -> AppResult<Vec<Outcome>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let Event::Paired {
            a,
            b,
            waited_a,
            waited_b,
        } = e
        else {
            out.push(passthrough(e));
            continue;
        };
        match create_pair_room(store, &a, &b).await {
            Ok(room) => {
                m.set_room(a.id, b.id, room.id);
                out.push(Outcome::Found {
                    a,
                    b,
                    room: room.id,
                    waited_ms: [waited_a, waited_b],
                });
            }
            Err(e) => {
                m.disconnect(a.id, now);
                return Err(e);
            }
        }
    }
    Ok(out)
}

pub(crate) fn already_matched(_: AlreadyMatched) -> AppError {
    AppError::conflict(
        "already_matched",
        "you are already in a match; use next or disconnect",
    )
}

#[async_trait]
impl MatchEngine for LocalMatchEngine {
    async fn connect(&self, user: &UserRef, prefs: Prefs) -> AppResult<Vec<Outcome>> {
        let avoid = self.store.match_avoid(user.id, MAX_AVOID).await?;
        self.run(|m, now| {
            m.connect_avoiding(user.clone(), prefs, avoid, now)
                .map_err(already_matched)
        })
        .await
    }

    async fn next(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        self.run(|m, now| Ok(m.next(user, now))).await
    }

    async fn disconnect(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        self.run(|m, now| Ok(m.disconnect(user.id, now))).await
    }

    async fn offline(&self, user: UserId) {
        let now = self.now();
        self.matcher.lock().offline(user, now);
    }

    async fn online(&self, user: UserId) {
        self.matcher.lock().online(user);
    }

    async fn tick(&self) -> AppResult<Vec<Outcome>> {
        self.run(|m, now| Ok(m.tick(now))).await
    }

    async fn state(&self, user: UserId) -> State {
        self.matcher.lock().state(user)
    }

    async fn block(&self, a: UserId, b: UserId) {
        self.matcher.lock().block(a, b);
    }

    async fn queue_len(&self) -> usize {
        self.matcher.lock().queue_len()
    }
}

#[cfg(test)]
mod tests;
