//! SUBSCRIBE / UNSUBSCRIBE, including `since-seq` history replay.

use std::sync::Arc;

use bytes::Bytes;
use quicktalk_stomp::{Frame, Version};

use super::{required, Flow, Handled, ProtocolError, Session, Sub, MAX_SUBSCRIPTIONS};
use crate::error::AppError;
use crate::fanout::{room_destination, Outbound, RoomSubscription};
use crate::model::{HistoryQuery, RoomId, User};
use crate::realtime::destination::{self, SubscribeTo};
use crate::realtime::replier::Replier;
use crate::state::AppState;

const REPLAY_PAGE: usize = 500;

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
                self.subs.insert(id, Sub::Room(s.clone()));
                // The presence snapshot goes to the new subscriber right away.
                let presence = hub.presence_event(room);
                self.replier.outlet.push(Outbound::Event {
                    sub: sub_id,
                    event: presence,
                });
                match since {
                    None => self.replier.receipt(receipt.as_deref()),
                    Some(since) => {
                        tokio::spawn(replay(
                            self.state.clone(),
                            self.replier.clone(),
                            s,
                            room,
                            since,
                            receipt,
                        ));
                    }
                }
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
        match self.subs.remove(id) {
            Some(Sub::Room(s)) => self.state.hub.unsubscribe_room(&s),
            Some(Sub::Events(s)) => self.state.hub.unsubscribe_user(&s),
            Some(Sub::Errors) => self.replier.set_errors_sub(None),
            None => {}
        }
        self.replier.receipt(frame.header("receipt"));
        Ok(Flow::Continue)
    }
}

/// Sends every stored message with `seq > since`, then hands the subscription over
/// to live delivery (which buffered meanwhile), then the SUBSCRIBE's RECEIPT.
async fn replay(
    state: Arc<AppState>,
    replier: Replier,
    sub: Arc<RoomSubscription>,
    room: RoomId,
    since: i64,
    receipt: Option<String>,
) {
    let destination: Arc<str> = room_destination(room).into();
    // A client cannot have seen more than the room holds: clamp, so that live
    // messages above the real end are not mistaken for ones already delivered.
    let last_seq = match state.rooms.store().room(room).await {
        Ok(Some(r)) => r.last_seq,
        Ok(None) => 0,
        Err(e) => {
            tracing::error!(error = %e, room, "history replay failed");
            replier.outlet.kill("server error during history replay");
            return;
        }
    };
    let mut after = since.min(last_seq);
    loop {
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
        for m in page {
            after = m.seq;
            let event = Arc::new(crate::fanout::Event {
                seq: Some(m.seq),
                destination: destination.clone(),
                message_id: format!("m{}", m.id).into(),
                body: Bytes::from(m.to_json_bytes()),
            });
            let item = Outbound::Event {
                sub: sub.sub_id().clone(),
                event,
            };
            if !replier.outlet.push_bulk(item).await {
                return;
            }
        }
        if !more {
            break;
        }
    }
    sub.finish_replay(after);
    replier.receipt(receipt.as_deref());
}
