//! Delivery of due notifications: for each, the user's subscriptions are
//! read and one push request per browser is sent, at most [`IN_FLIGHT`] at
//! once. A push service's answer decides what follows: 404/410 removes the
//! subscription (and tells every node's planner); 429 and 5xx are retried with
//! back-off — never sooner than its `Retry-After`, which also holds back every
//! other request to that push service meanwhile; other refusals are counted
//! and dropped. Nothing here blocks the message path: the queue in front is
//! bounded and full means dropped (counted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::planner::Due;
use crate::bus::{Bus, BusEvent};
use crate::metrics::Metrics;
use crate::model::{now_ms, RoomId, UserId};
use crate::push::deliver::{origin, Delivered, Deliverer, PushRequest, Urgency};
use crate::store::push::PushSubscription;
use crate::store::Store;

/// Push requests in flight at once.
const IN_FLIGHT: usize = 32;
/// Attempts per request (the first and the retries).
const ATTEMPTS: u32 = 4;
/// The first retry's wait; each next one waits four times longer.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A push service is kept waiting at most this long by its `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// One notification for one user, to every browser they subscribed.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub user: UserId,
    pub room: RoomId,
    pub seq: i64,
    pub title: String,
    pub body: String,
    pub high: bool,
    /// The newest message's commit time (ms): latency is measured from it.
    pub sent_at: i64,
}

impl From<Due> for Outgoing {
    fn from(d: Due) -> Self {
        Outgoing {
            user: d.user,
            room: d.room,
            seq: d.pending.seq,
            title: d.pending.title,
            body: d.pending.body,
            high: d.pending.high,
            sent_at: d.pending.sent_at,
        }
    }
}

impl Outgoing {
    /// The decrypted payload (contract §8).
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "room_id": self.room,
            "seq": self.seq,
            "title": self.title,
            "body": self.body,
        }))
        .expect("JSON")
    }

    /// One collapsing notification per room (RFC 8030 §5.4).
    pub fn topic(&self) -> String {
        format!("room-{}", self.room)
    }
}

pub struct Delivery {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub deliverer: Deliverer,
    pub metrics: Arc<Metrics>,
    /// How long a push service keeps an undelivered notification.
    pub ttl: Duration,
    /// Push service origin → no request before this.
    paused: Mutex<HashMap<String, Instant>>,
    slots: Semaphore,
}

impl Delivery {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        deliverer: Deliverer,
        metrics: Arc<Metrics>,
        ttl: Duration,
    ) -> Arc<Self> {
        Arc::new(Delivery {
            store,
            bus,
            deliverer,
            metrics,
            ttl,
            paused: Mutex::new(HashMap::new()),
            slots: Semaphore::new(IN_FLIGHT),
        })
    }

    pub async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Outgoing>, stop: CancellationToken) {
        loop {
            let job = tokio::select! {
                _ = stop.cancelled() => break,
                j = rx.recv() => match j { Some(j) => j, None => break },
            };
            self.metrics.push_queue_depth.dec();
            let subs = match self.store.push_subscriptions(job.user).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, user = job.user, "reading push subscriptions");
                    self.metrics.push_failed.with_label_values(&["error"]).inc();
                    continue;
                }
            };
            let job = Arc::new(job);
            for sub in subs {
                let me = self.clone();
                let job = job.clone();
                let stop = stop.clone();
                tokio::spawn(async move { me.send_one(&job, sub, stop).await });
            }
        }
    }

    async fn send_one(&self, job: &Outgoing, sub: PushSubscription, stop: CancellationToken) {
        let payload = job.payload();
        let topic = job.topic();
        let origin = origin(&sub.endpoint);
        let deadline = Instant::now() + self.ttl;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let pause = self.paused.lock().get(&origin).copied();
            if let Some(until) = pause {
                if until > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }
            let outcome = {
                let _slot = self.slots.acquire().await.expect("never closed");
                self.deliverer
                    .send(&PushRequest {
                        endpoint: &sub.endpoint,
                        p256dh: &sub.p256dh,
                        auth: &sub.auth,
                        payload: &payload,
                        ttl: deadline.saturating_duration_since(Instant::now()),
                        urgency: if job.high {
                            Urgency::High
                        } else {
                            Urgency::Normal
                        },
                        topic: Some(&topic),
                    })
                    .await
            };
            match outcome {
                Delivered::Accepted => {
                    self.metrics.push_sent.inc();
                    let ms = (now_ms() - job.sent_at).max(0);
                    self.metrics
                        .push_latency_seconds
                        .observe(ms as f64 / 1000.0);
                    return;
                }
                Delivered::Gone => {
                    self.metrics.push_expired.inc();
                    match self
                        .store
                        .remove_push_subscription(&sub.endpoint, None)
                        .await
                    {
                        Ok(_) => self.bus.publish(BusEvent::PushChanged {
                            user_id: sub.user_id,
                        }),
                        Err(e) => tracing::warn!(error = %e, "removing a gone push subscription"),
                    }
                    return;
                }
                Delivered::Rejected(why) => {
                    tracing::info!(reason = %why, user = sub.user_id, "push refused");
                    self.metrics
                        .push_failed
                        .with_label_values(&["rejected"])
                        .inc();
                    return;
                }
                Delivered::Retry { after } => {
                    let wait = match after {
                        Some(a) => {
                            let a = a.min(MAX_RETRY_AFTER);
                            self.paused
                                .lock()
                                .insert(origin.clone(), Instant::now() + a);
                            a.max(backoff)
                        }
                        None => backoff,
                    };
                    backoff *= 4;
                    if attempt == ATTEMPTS || Instant::now() + wait >= deadline {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
        self.metrics
            .push_failed
            .with_label_values(&["gave_up"])
            .inc();
    }
}
