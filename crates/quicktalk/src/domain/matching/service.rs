//! The matching service the adapters call. A user in a moderation cool-down
//! (repeated blocked messages, [`crate::domain::moderation::Escalation`]) may
//! not enter the queue (`match.connect`, `match.next`): `cooldown`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::engine::{MatchEngine, Outcome};
use super::matcher::{Prefs, State};
use crate::bus::{Bus, BusEvent};
use crate::domain::moderation::{self, Escalation};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{HistoryQuery, MessageKind, RoomId, RoomKind, User, UserId};
use crate::store::{NewReport, Store};

pub const MAX_INTERESTS: usize = 10;
pub const MAX_INTEREST_CHARS: usize = 32;

/// The body of `match.connect` (unknown fields are ignored).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PrefsInput {
    pub interests: Option<Vec<String>>,
    pub lang: Option<String>,
}

impl PrefsInput {
    /// Lower-cases, trims, de-duplicates and checks the limits.
    pub fn validate(self) -> AppResult<Prefs> {
        let raw = self.interests.unwrap_or_default();
        if raw.len() > MAX_INTERESTS {
            return Err(AppError::invalid(
                "invalid_interests",
                format!("at most {MAX_INTERESTS} interests"),
            ));
        }
        let mut interests = Vec::with_capacity(raw.len());
        for i in raw {
            let i = i.trim().to_lowercase();
            let n = i.chars().count();
            if n == 0 || n > MAX_INTEREST_CHARS || i.chars().any(char::is_control) {
                return Err(AppError::invalid(
                    "invalid_interests",
                    format!("each interest must be 1-{MAX_INTEREST_CHARS} characters"),
                ));
            }
            interests.push(i);
        }
        interests.sort();
        interests.dedup();
        let lang = match self.lang.map(|l| l.trim().to_lowercase()) {
            None => None,
            Some(l) if l.is_empty() => None,
            Some(l)
                if l.len() <= 16 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Some(l)
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_lang",
                    "lang must be a language tag like \"ko\" or \"en-US\"",
                ))
            }
        };
        Ok(Prefs { interests, lang })
    }
}

pub struct MatchService {
    engine: Arc<dyn MatchEngine>,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    next_every: Duration,
    last_next: Mutex<HashMap<UserId, Instant>>,
    sockets: Mutex<HashMap<UserId, usize>>,
    escalation: Arc<Escalation>,
}

/// A user's matching state as JSON: `{"state":"idle"|"waiting"|"matched", …}`.
pub fn state_json(s: &State) -> Value {
    match s {
        State::Idle => json!({"state": "idle"}),
        State::Waiting => json!({"state": "waiting"}),
        State::Matched { partner, room } => {
            json!({"state": "matched", "room_id": room, "partner": partner})
        }
    }
}

impl MatchService {
    pub fn new(
        engine: Arc<dyn MatchEngine>,
        bus: Arc<dyn Bus>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        next_every: Duration,
        escalation: Arc<Escalation>,
    ) -> Self {
        MatchService {
            engine,
            bus,
            store,
            metrics,
            next_every,
            last_next: Mutex::default(),
            sockets: Mutex::default(),
            escalation,
        }
    }

    pub async fn connect(&self, user: &User, input: PrefsInput) -> AppResult<State> {
        let prefs = input.validate()?;
        self.escalation.check_cooldown(user.id).await?;
        let out = self.engine.connect(&user.as_ref(), prefs).await?;
        self.publish(out).await;
        Ok(self.state_of(user.id).await)
    }

    /// The user's state as they may see it: a pair whose room is still being
    /// created is not announced yet, so it shows as waiting.
    async fn state_of(&self, user: UserId) -> State {
        match self.engine.state(user).await {
            State::Matched { room: None, .. } => State::Waiting,
            s => s,
        }
    }

    pub async fn next(&self, user: &User) -> AppResult<State> {
        {
            let mut last = self.last_next.lock();
            let now = Instant::now();
            if let Some(t) = last.get(&user.id) {
                if now.duration_since(*t) < self.next_every {
                    return Err(AppError::RateLimited {
                        message: format!(
                            "match.next at most once per {} ms",
                            self.next_every.as_millis()
                        )
                        .into(),
                        retry_after: self.next_every - now.duration_since(*t),
                    });
                }
            }
            last.insert(user.id, now);
        }
        // `next` queues again: not during a cool-down (`disconnect` still leaves).
        self.escalation.check_cooldown(user.id).await?;
        let out = self.engine.next(&user.as_ref()).await?;
        self.publish(out).await;
        Ok(self.state_of(user.id).await)
    }

    pub async fn disconnect(&self, user: &User) -> AppResult<State> {
        let out = self.engine.disconnect(&user.as_ref()).await?;
        self.publish(out).await;
        Ok(State::Idle)
    }

    pub async fn state(&self, user: &User) -> State {
        self.state_of(user.id).await
    }

    /// Reports the partner of a random room; the two are never matched again, and
    /// the chat ends: a match still running in that room ends and the room closes
    /// (both keep reading its history). The partner is whoever was paired with the
    /// reporter in that room, even if they have left it since. The reason is
    /// stored masked; returns the moderation queue id of the report.
    pub async fn report(&self, user: &User, room_id: RoomId, reason: &str) -> AppResult<i64> {
        let reason = crate::domain::validate::reason(reason)?;
        let room = self
            .store
            .room(room_id)
            .await?
            .ok_or(AppError::NotFound("room"))?;
        if !self.store.is_member(room_id, user.id).await? {
            return Err(AppError::forbidden("you are not a member of this room"));
        }
        if room.kind != RoomKind::Random {
            return Err(AppError::invalid(
                "not_random_room",
                "only random-chat rooms can be reported here",
            ));
        }
        let pair = self.pair_of(room_id).await?;
        let Some(partner) = pair.into_iter().find(|id| *id != user.id) else {
            return Err(AppError::invalid("no_partner", "nobody else in this room"));
        };
        let id = self
            .store
            .add_report(NewReport {
                room_id,
                reporter: user.id,
                reported: partner,
                reason: moderation::mask_reason(&reason),
            })
            .await?;
        self.engine.block(user.id, partner).await;
        self.end_match_in(user, room_id).await?;
        self.store.close_room(room_id).await?;
        tracing::info!(
            reporter = user.id,
            reported = partner,
            room_id,
            "random chat report"
        );
        Ok(id)
    }

    /// `user` left random room `room_id` (e.g. `POST /rooms/{id}/leave`): a match
    /// running there ends, as with `match.disconnect`.
    pub async fn room_left(&self, user: &User, room_id: RoomId) -> AppResult<()> {
        self.end_match_in(user, room_id).await
    }

    async fn end_match_in(&self, user: &User, room_id: RoomId) -> AppResult<()> {
        if let State::Matched { room: Some(r), .. } = self.engine.state(user.id).await {
            if r == room_id {
                let out = self.engine.disconnect(&user.as_ref()).await?;
                self.publish(out).await;
            }
        }
        Ok(())
    }

    /// The two users a random room was made for: the senders of its first joins
    /// (the room is created with both joined, `seq` 1 and 2).
    async fn pair_of(&self, room_id: RoomId) -> AppResult<Vec<UserId>> {
        let (first, _) = self
            .store
            .messages(
                room_id,
                HistoryQuery {
                    before_seq: None,
                    after_seq: Some(0),
                    limit: 2,
                },
            )
            .await?;
        Ok(first
            .iter()
            .filter(|m| m.kind == MessageKind::Join)
            .map(|m| m.sender.id)
            .collect())
    }

    /// A STOMP connection of `user` was established.
    pub async fn socket_opened(&self, user: UserId) {
        *self.sockets.lock().entry(user).or_default() += 1;
        self.engine.online(user).await;
    }

    /// A STOMP connection of `user` closed; the last one makes them offline.
    pub async fn socket_closed(&self, user: UserId) {
        let last = {
            let mut sockets = self.sockets.lock();
            match sockets.get_mut(&user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    sockets.remove(&user);
                    true
                }
                None => false,
            }
        };
        if last {
            self.engine.offline(user).await;
            self.update_queue_metric().await;
        }
    }

    /// Tells `user` where they stand (after subscribing to their events, e.g. on a
    /// reconnect): `match.waiting` or `match.found` again; nothing when idle.
    pub async fn sync(&self, user: UserId) {
        match self.state_of(user).await {
            State::Idle => {}
            State::Waiting => self.send(user, json!({"type": "match.waiting"})),
            State::Matched { partner, room } => self.send(
                user,
                json!({"type": "match.found", "room_id": room, "partner": partner}),
            ),
        }
    }

    pub async fn tick(&self) {
        match self.engine.tick().await {
            Ok(out) => self.publish(out).await,
            Err(e) => tracing::error!(error = %e, "matching tick failed"),
        }
        let every = self.next_every;
        self.last_next.lock().retain(|_, t| t.elapsed() < every);
    }

    pub fn spawn_ticker(self: &Arc<Self>, every: Duration, stop: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.tick().await,
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    fn send(&self, user: UserId, body: Value) {
        self.bus.publish(BusEvent::User {
            user_id: user,
            body: Bytes::from(body.to_string()),
        });
    }

    async fn update_queue_metric(&self) {
        self.metrics
            .match_queue_length
            .set(self.engine.queue_len().await as i64);
    }

    async fn publish(&self, out: Vec<Outcome>) {
        // An ended match's room takes no more messages, closed before either side
        // hears `match.ended`.
        let mut closed = Vec::new();
        for o in &out {
            if let Outcome::Ended { room: Some(r), .. } = o {
                if !closed.contains(r) {
                    closed.push(*r);
                    if let Err(e) = self.store.close_room(*r).await {
                        tracing::error!(error = %e, room_id = r, "closing an ended random chat");
                    }
                }
            }
        }
        for o in out {
            match o {
                Outcome::Waiting(u) => self.send(u, json!({"type": "match.waiting"})),
                Outcome::Idle(u) => self.send(u, json!({"type": "match.idle"})),
                Outcome::Ended { user, room, reason } => self.send(
                    user,
                    json!({"type": "match.ended", "room_id": room, "reason": reason.as_str()}),
                ),
                Outcome::Found {
                    a,
                    b,
                    room,
                    waited_ms,
                } => {
                    self.metrics.matches.inc();
                    for w in waited_ms {
                        self.metrics.match_wait_seconds.observe(w as f64 / 1000.0);
                    }
                    self.send(
                        a.id,
                        json!({"type": "match.found", "room_id": room, "partner": b}),
                    );
                    self.send(
                        b.id,
                        json!({"type": "match.found", "room_id": room, "partner": a}),
                    );
                }
            }
        }
        self.update_queue_metric().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefs_are_normalised_and_limited() {
        let p = PrefsInput {
            interests: Some(vec![" Music ".into(), "music".into(), "게임".into()]),
            lang: Some("KO".into()),
        }
        .validate()
        .unwrap();
        assert_eq!(p.interests, vec!["music", "게임"]);
        assert_eq!(p.lang.as_deref(), Some("ko"));
        let too_many = PrefsInput {
            interests: Some((0..11).map(|i| i.to_string()).collect()),
            lang: None,
        };
        assert_eq!(too_many.validate().unwrap_err().code(), "invalid_interests");
        let too_long = PrefsInput {
            interests: Some(vec!["x".repeat(33)]),
            lang: None,
        };
        assert_eq!(too_long.validate().unwrap_err().code(), "invalid_interests");
        let bad_lang = PrefsInput {
            interests: None,
            lang: Some("k o".into()),
        };
        assert_eq!(bad_lang.validate().unwrap_err().code(), "invalid_lang");
    }
}
