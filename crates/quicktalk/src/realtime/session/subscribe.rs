//! SUBSCRIBE / UNSUBSCRIBE, including `since-seq` history replay.
//!
//! A replay runs as its own task, at most [`REPLAYS_RUNNING`] per connection at
//! once (at most [`MAX_REPLAYS`] pending); UNSUBSCRIBE and the connection's end
//! cancel it, and nothing it read is queued after the UNSUBSCRIBE.

use std::sync::Arc;

use bytes::Bytes;
use quicktalk_stomp::{Frame, Version};

use tokio_util::sync::CancellationToken;

use super::{
    required, Flow, Handled, ProtocolError, Session, Sub, MAX_REPLAYS, MAX_SUBSCRIPTIONS,
    REPLAYS_RUNNING,
};
use crate::error::AppError;
use crate::fanout::{room_destination, Outbound, RoomSubscription};
use crate::model::{HistoryQuery, RoomId, User};
use crate::realtime::destination::{self, SubscribeTo};
use crate::realtime::replier::Replier;
use crate::state::AppState;

/// Stored messages read (and held) at once by one replay.
const REPLAY_PAGE: usize = 100;

impl Session {
    pub(super) async fn subscribe(&mut self, user: &User, frame: Frame) -> Handled {
        let dest = required(&frame, "destination")?.to_owned();
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id.to_owned(),
            // STOMP 1.0 makes `id` optional; the destination then names the subscription.
            (None, Version::V1_0) => dest.clone(),
            (None, _) => return Err(ProtocolError::new("missing header: id", &frame)),
        };
        let receipt = frame.header("receipt").map(str::to_owned);
        let reject = |e: AppError| {
            self.replier.app_error(&e, &dest, receipt.as_deref());
            Ok(Flow::Continue)
        };
        if self.subs.contains_key(&id) {
            return reject(AppError::conflict(
                "duplicate_subscription",
                "a subscription with this id already exists",
            ));
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return reject(AppError::invalid(
                "too_many_subscriptions",
                format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
            ));
        }
        let since = match frame.header("since-seq").map(str::parse::<i64>) {
            None => None,
            Some(Ok(n)) if n >= 0 => Some(n),
            Some(_) => {
                return reject(AppError::invalid(
                    "invalid_since_seq",
                    "since-seq must be a non-negative integer",
                ))
            }
        };
        let sub_id: Arc<str> = id.as_str().into();
        let hub = &self.state.hub;
        match destination::subscribe(&dest) {
            None => reject(AppError::invalid(
                "unknown_destination",
                format!("cannot subscribe to {dest}"),
            )),
            Some(SubscribeTo::UserEvents) => {
                let s = hub.subscribe_user(user.id, sub_id, self.replier.outlet.clone());
                self.subs.insert(id, Sub::Events(s));
                self.replier.receipt(receipt.as_deref());
                // A reconnecting user learns where they stand (a kept match resumes).
                self.state.matching.sync(user.id).await;
                Ok(Flow::Continue)
            }
            Some(SubscribeTo::UserErrors) => {
                self.replier.set_errors_sub(Some(sub_id));
                self.subs.insert(id, Sub::Errors);
                self.replier.receipt(receipt.as_deref());
                Ok(Flow::Continue)
            }
            Some(SubscribeTo::Room(room)) => {
                if let Err(e) = self.state.rooms.check_readable(user, room).await {
                    return reject(e);
                }
                let s = hub.subscribe_room(
                    room,
                    user.as_ref(),
                    sub_id.clone(),
                    self.replier.outlet.clone(),
                    since.is_some(),
                );
                // Checked again now that the subscription is registered: a leave
                // applied between the first check and the registration dropped
                // nothing (there was nothing yet), and would leave a live
                // subscription to a room the user can no longer read. A leave
                // applied after this check finds the subscription and drops it.
                if let Err(e) = self.state.rooms.check_readable(user, room).await {
                    hub.unsubscribe_room(&s);
                    return reject(e);
                }
                // What to replay, read now that live events are buffered: a message
                // stored after this read arrives live. Nothing newer than `since`
                // (the common reconnect) goes live at once, without a replay slot.
                let replay_from = match since {
                    None => None,
                    Some(since) => match self.state.rooms.store().room(room).await {
                        // A client cannot have seen more than the room holds: clamp,
                        // so live messages above the real end are not mistaken for
                        // ones already delivered.
                        Ok(r) => {
                            let last_seq = r.map_or(0, |r| r.last_seq);
                            if since >= last_seq {
                                s.finish_replay(last_seq);
                                self.state
                                    .metrics
                                    .replays
                                    .with_label_values(&["current"])
                                    .inc();
                                None
                            } else if self.pending_replays() >= MAX_REPLAYS {
                                hub.unsubscribe_room(&s);
                                return reject(AppError::invalid(
                                    "too_many_replays",
                                    format!(
                                        "at most {MAX_REPLAYS} since-seq replays at once per \
                                         connection; retry this one later"
                                    ),
                                ));
                            } else {
                                self.state
                                    .metrics
                                    .replays
                                    .with_label_values(&["replayed"])
                                    .inc();
                                Some(since)
                            }
                        }
                        Err(e) => {
                            hub.unsubscribe_room(&s);
                            return reject(e.into());
                        }
                    },
                };
                // The presence snapshot goes to the new subscriber right away.
                let presence = hub.presence_event_for(room, user.id);
                self.replier.outlet.push(Outbound::Event {
                    sub: sub_id,
                    event: presence,
                });
                let replay = replay_from.map(|since| {
                    let slots = self
                        .replay_slots
                        .get_or_insert_with(|| {
                            Arc::new(tokio::sync::Semaphore::new(REPLAYS_RUNNING))
                        })
                        .clone();
                    let token = CancellationToken::new();
                    let done = token.clone().drop_guard();
                    let cancelled = token.clone();
                    let (state, replier, s) = (self.state.clone(), self.replier.clone(), s.clone());
                    let receipt = receipt.clone();
                    tokio::spawn(async move {
                        let _done = done;
                        tokio::select! {
                            _ = cancelled.cancelled() => {}
                            _ = async {
                                let Ok(_slot) = slots.acquire_owned().await else { return };
                                let _running = Running::new(&state.metrics.replays_running);
                                replay(&state, &replier, &s, room, since, receipt.as_deref()).await;
                            } => {}
                        }
                    });
                    token
                });
                if replay.is_none() {
                    self.replier.receipt(receipt.as_deref());
                }
                self.subs.insert(id, Sub::Room(s, replay));
                Ok(Flow::Continue)
            }
        }
    }

    pub(super) fn unsubscribe(&mut self, frame: Frame) -> Handled {
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(&frame, "destination")?,
            (None, _) => return Err(ProtocolError::new("missing header: id", &frame)),
        };
        if let Some(sub) = self.subs.remove(id) {
            self.end_sub(sub);
        }
        self.replier.receipt(frame.header("receipt"));
        Ok(Flow::Continue)
    }
}

/// Counts a running replay in a gauge, however it ends (cancelled included).
struct Running<'a>(&'a prometheus::IntGauge);

impl<'a> Running<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Running(gauge)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Sends every stored message with `seq > since`, then hands the subscription over
/// to live delivery (which buffered meanwhile), then the SUBSCRIBE's RECEIPT. Holds
/// one page at a time and reads the next only when the client's queue has room;
/// stops as soon as the subscription is closed. `since` is below the room's
/// `last_seq` as read after the subscription was registered.
async fn replay(
    state: &AppState,
    replier: &Replier,
    sub: &RoomSubscription,
    room: RoomId,
    since: i64,
    receipt: Option<&str>,
) {
    let destination: Arc<str> = room_destination(room).into();
    let max_wait = std::time::Duration::from_millis(state.config.write_timeout_ms);
    let mut after = since;
    loop {
        if sub.is_closed() || !replier.outlet.wait_bulk_room(max_wait).await {
            return;
        }
        let q = HistoryQuery {
            before_seq: None,
            after_seq: Some(after),
            limit: REPLAY_PAGE,
        };
        let (page, more) = match state.rooms.store().messages(room, q).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, room, "history replay failed");
                replier.outlet.kill("server error during history replay");
                return;
            }
        };
        // Whom the subscriber blocks, as of this page (contract §7): their
        // messages are replayed as placeholders, as live.
        let hides = state.hub.blocks_of(sub.user.id);
        for mut m in page {
            after = m.seq;
            if hides.as_ref().is_some_and(|h| h.contains(&m.sender.id)) {
                m = m.hidden();
            }
            let event = Arc::new(crate::fanout::Event {
                seq: Some(m.seq),
                destination: destination.clone(),
                message_id: format!("m{}", m.id).into(),
                body: Bytes::from(m.to_json_bytes()),
            });
            if !replier.outlet.wait_bulk_room(max_wait).await || !sub.push_replayed(event) {
                return;
            }
        }
        if !more {
            break;
        }
    }
    sub.finish_replay(after);
    if !sub.is_closed() {
        replier.receipt(receipt);
    }
}
