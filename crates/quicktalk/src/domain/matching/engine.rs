//! Where matching state lives. [`MatchEngine`] is the seam for a multi-node
//! engine; [`LocalMatchEngine`] keeps the [`Matcher`] in this process, behind one
//! lock, and creates each pair's room in the store before anyone hears of it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::matcher::{AlreadyMatched, EndReason, Event, Matcher, MatcherConfig, Ms, Prefs, State};
use crate::error::{AppError, AppResult};
use crate::model::{RoomId, RoomKind, UserId, UserRef, Visibility};
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
    matcher: Mutex<Matcher>,
    store: Arc<dyn Store>,
    epoch: Instant,
}

impl LocalMatchEngine {
    /// Starts with every reported pair blocked.
    pub async fn new(cfg: MatcherConfig, store: Arc<dyn Store>) -> AppResult<Self> {
        let mut matcher = Matcher::new(cfg);
        for (a, b) in store.blocked_pairs().await? {
            matcher.block(a, b);
        }
        Ok(LocalMatchEngine {
            matcher: Mutex::new(matcher),
            store,
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> Ms {
        self.epoch.elapsed().as_millis() as Ms
    }
}

/// Turns matcher events into outcomes, creating a room for every new pair (both
/// joined in one transaction before anyone hears of it). Shared by every engine.
pub async fn resolve(
    store: &dyn Store,
    m: &mut Matcher,
    events: Vec<Event>,
    now: Ms,
) -> AppResult<Vec<Outcome>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(match e {
            Event::Waiting { user } => Outcome::Waiting(user),
            Event::Idle { user } => Outcome::Idle(user),
            Event::Ended { user, room, reason } => Outcome::Ended { user, room, reason },
            Event::Paired {
                a,
                b,
                waited_a,
                waited_b,
            } => {
                let created = store
                    .create_room_with(
                        NewRoom {
                            name: format!("{} · {}", a.name, b.name),
                            visibility: Visibility::Private,
                            kind: RoomKind::Random,
                            created_by: a.id,
                        },
                        vec![a.clone(), b.clone()],
                    )
                    .await;
                match created {
                    Ok((room, _)) => {
                        m.set_room(a.id, b.id, room.id);
                        Outcome::Found {
                            a,
                            b,
                            room: room.id,
                            waited_ms: [waited_a, waited_b],
                        }
                    }
                    Err(e) => {
                        // Undo the pair so nobody is stuck in a match without a room.
                        m.disconnect(a.id, now);
                        return Err(e.into());
                    }
                }
            }
        });
    }
    Ok(out)
}

#[async_trait]
impl MatchEngine for LocalMatchEngine {
    async fn connect(&self, user: &UserRef, prefs: Prefs) -> AppResult<Vec<Outcome>> {
        let mut m = self.matcher.lock().await;
        let now = self.now();
        let events = m
            .connect(user.clone(), prefs, now)
            .map_err(|AlreadyMatched| {
                AppError::conflict(
                    "already_matched",
                    "you are already in a match; use next or disconnect",
                )
            })?;
        resolve(&*self.store, &mut m, events, self.now()).await
    }

    async fn next(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        let mut m = self.matcher.lock().await;
        let events = m.next(user, self.now());
        resolve(&*self.store, &mut m, events, self.now()).await
    }

    async fn disconnect(&self, user: &UserRef) -> AppResult<Vec<Outcome>> {
        let mut m = self.matcher.lock().await;
        let events = m.disconnect(user.id, self.now());
        resolve(&*self.store, &mut m, events, self.now()).await
    }

    async fn offline(&self, user: UserId) {
        let now = self.now();
        self.matcher.lock().await.offline(user, now);
    }

    async fn online(&self, user: UserId) {
        self.matcher.lock().await.online(user);
    }

    async fn tick(&self) -> AppResult<Vec<Outcome>> {
        let mut m = self.matcher.lock().await;
        let events = m.tick(self.now());
        resolve(&*self.store, &mut m, events, self.now()).await
    }

    async fn state(&self, user: UserId) -> State {
        self.matcher.lock().await.state(user)
    }

    async fn block(&self, a: UserId, b: UserId) {
        self.matcher.lock().await.block(a, b);
    }

    async fn queue_len(&self) -> usize {
        self.matcher.lock().await.queue_len()
    }
}
