//! Push notifications (contract §8): who gets a Web Push, for what, and when.
//!
//! - [`Push`] is what adapters call: the VAPID public key, subscriptions
//!   (checked: a known push service's `https://` endpoint, a P-256 key and a
//!   16-byte secret; at most [`KEEP_SUBSCRIPTIONS`] per user, the oldest go),
//!   per-room levels, and activity — focus reports from `/app/activity`,
//!   messages sent, read-cursor moves — which it publishes as
//!   [`BusEvent::Activity`] so every node's planner hears of it (focus while
//!   it lasts is re-announced every [`RENEW`], so a crashed node's sessions
//!   stop counting).
//! - [`notifier::Notifier`]: the pipelines offer each committed message.
//! - [`worker`]: the planner's task — targets, levels, mentions, blocks, the
//!   [`planner::Planner`]'s timing — feeding [`delivery`], which sends.
//!
//! In multi-node mode a message is pushed by the node that sequenced it, so
//! each notification is sent once; activity reaches every node by the bus.

pub mod delivery;
pub mod notifier;
pub mod planner;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::fanout::Hub;
use crate::limits::{Key, Limit, Limits};
use crate::metrics::Metrics;
use crate::model::{now_ms, RoomId, User, UserId};
use crate::push::deliver::{check_endpoint, decode_keys, Deliverer, EndpointRules};
use crate::push::vapid::VapidKey;
use crate::store::push::{default_level, NotifyLevel, PushSubscription};
use crate::store::Store;

/// Subscriptions (browsers) one user may have; a new one past this replaces
/// their oldest.
pub const KEEP_SUBSCRIPTIONS: usize = 10;
/// Sending messages re-announces a user's activity at most this often (per node).
const TOUCH_EVERY: i64 = 10_000;
/// A focused session's focus is re-announced this often (the planner's lease
/// is longer: [`planner::Timing::lease`]).
pub const RENEW: Duration = Duration::from_secs(60);
/// Queue lengths: committed messages for the planner, notifications for
/// delivery, activity signals.
const SIGNALS: usize = 65_536;

/// Operator settings (`--push-*`).
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// VAPID `sub`: a `mailto:` or `https:` contact for push services.
    pub subject: String,
    pub rules: EndpointRules,
    pub timing: planner::Timing,
    pub hide_text: bool,
    pub ttl: Duration,
    pub queue: usize,
}

/// This node's sessions that are focused now (re-announced every [`RENEW`]),
/// and when each user's activity was last announced.
#[derive(Default)]
struct Local {
    focused: HashMap<u64, UserId>,
    touched: HashMap<UserId, i64>,
}

pub struct Push {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    limits: Arc<Limits>,
    key: Arc<VapidKey>,
    rules: EndpointRules,
    local: Mutex<Local>,
}

/// The tasks [`Push::start`] runs, ended by its `stop`.
pub struct PushTasks {
    pub planner: tokio::task::JoinHandle<()>,
    pub delivery: tokio::task::JoinHandle<()>,
    pub renew: tokio::task::JoinHandle<()>,
}

impl Push {
    /// Starts the planner and delivery, fed by `committed` (the pipeline's
    /// notifier queue) and by the hub's push watcher.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        cfg: PushConfig,
        key: Arc<VapidKey>,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub: &Hub,
        limits: Arc<Limits>,
        metrics: Arc<Metrics>,
        committed: notifier::Committed,
        stop: CancellationToken,
    ) -> anyhow::Result<(Arc<Push>, PushTasks)> {
        let deliverer = Deliverer::new(key.clone(), &cfg.subject)?;
        let (signal_tx, signals) = mpsc::channel(SIGNALS);
        let m = metrics.clone();
        hub.set_push_watcher(Box::new(move |ev| {
            if signal_tx.try_send(ev.clone()).is_err() {
                m.push_failed.with_label_values(&["dropped"]).inc();
            }
        }));
        let (out_tx, out_rx) = mpsc::channel(cfg.queue.max(1));
        let worker = worker::Worker::new(
            store.clone(),
            planner::Planner::new(cfg.timing),
            out_tx,
            metrics.clone(),
            cfg.hide_text,
        );
        let planner = tokio::spawn(worker.run(committed, signals, stop.clone()));
        let delivery =
            delivery::Delivery::new(store.clone(), bus.clone(), deliverer, metrics, cfg.ttl);
        let delivery = tokio::spawn(delivery.run(out_rx, stop.clone()));
        let push = Arc::new(Push {
            store,
            bus,
            limits,
            key,
            rules: cfg.rules,
            local: Mutex::new(Local::default()),
        });
        let renew = tokio::spawn(push.clone().renew_focus(stop));
        Ok((
            push,
            PushTasks {
                planner,
                delivery,
                renew,
            },
        ))
    }

    /// The VAPID public key (base64url, uncompressed P-256).
    pub fn public_key(&self) -> &str {
        self.key.public_key()
    }

    /// Records a browser's subscription for `user`.
    pub async fn subscribe(
        &self,
        user: &User,
        ip: Option<std::net::IpAddr>,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> AppResult<()> {
        self.limits
            .check(Limit::PushSubscribeUser, Key::User(user.id))?;
        if let Some(ip) = ip {
            self.limits.check(Limit::PushSubscribeIp, Key::Ip(ip))?;
        }
        check_endpoint(endpoint, &self.rules)
            .map_err(|why| AppError::invalid("invalid_endpoint", why))?;
        decode_keys(p256dh, auth).map_err(|why| AppError::invalid("invalid_keys", why))?;
        self.store
            .add_push_subscription(
                PushSubscription {
                    endpoint: endpoint.to_owned(),
                    user_id: user.id,
                    p256dh: p256dh.to_owned(),
                    auth: auth.to_owned(),
                    created_at: now_ms(),
                },
                KEEP_SUBSCRIPTIONS,
            )
            .await?;
        self.bus.publish(BusEvent::PushChanged { user_id: user.id });
        Ok(())
    }

    /// Removes `user`'s subscription with this endpoint; whether there was one.
    pub async fn unsubscribe(&self, user: &User, endpoint: &str) -> AppResult<bool> {
        let removed = self
            .store
            .remove_push_subscription(endpoint, Some(user.id))
            .await?;
        if removed {
            self.bus.publish(BusEvent::PushChanged { user_id: user.id });
        }
        Ok(removed)
    }

    /// `user`'s level for `room` (a member's: 403 `not_member` otherwise).
    pub async fn level(&self, user: &User, room: RoomId) -> AppResult<NotifyLevel> {
        let kind = self.member_room(user, room).await?;
        Ok(self
            .store
            .notification_level(user.id, room)
            .await?
            .unwrap_or_else(|| default_level(kind)))
    }

    pub async fn set_level(
        &self,
        user: &User,
        room: RoomId,
        level: NotifyLevel,
    ) -> AppResult<NotifyLevel> {
        self.limits
            .check(Limit::NotifyLevelUser, Key::User(user.id))?;
        let kind = self.member_room(user, room).await?;
        // The default is kept as "no choice", so a later default change applies.
        let chosen = (level != default_level(kind)).then_some(level);
        self.store
            .set_notification_level(user.id, room, chosen)
            .await?;
        self.bus.publish(BusEvent::PushChanged { user_id: user.id });
        Ok(level)
    }

    async fn member_room(&self, user: &User, room: RoomId) -> AppResult<crate::model::RoomKind> {
        let r = self
            .store
            .room(room)
            .await?
            .ok_or(AppError::NotFound("room"))?;
        if !self.store.is_member(room, user.id).await? {
            return Err(AppError::Forbidden {
                code: "not_member",
                message: "you are not a member of this room".into(),
            });
        }
        Ok(r.kind)
    }

    /// A session's client says it is (not) in focus (`/app/activity`).
    pub fn focus(&self, user: UserId, session: u64, focused: bool) -> AppResult<()> {
        self.limits.check(Limit::ActivityUser, Key::User(user))?;
        {
            let mut l = self.local.lock();
            if focused {
                l.focused.insert(session, user);
            } else {
                l.focused.remove(&session);
            }
        }
        self.announce(user, session, Some(focused), None);
        Ok(())
    }

    /// `user` sent a message (from `session`, if over STOMP): activity,
    /// announced at most every [`TOUCH_EVERY`] (the planner also sees the
    /// message itself on the node that pushes it).
    pub fn touched(&self, user: UserId, session: Option<u64>) {
        let now = now_ms();
        {
            let mut l = self.local.lock();
            if l.touched.get(&user).is_some_and(|&t| now - t < TOUCH_EVERY) {
                return;
            }
            if l.touched.len() > 100_000 {
                l.touched.retain(|_, t| now - *t < TOUCH_EVERY);
            }
            l.touched.insert(user, now);
        }
        self.announce(user, session.unwrap_or(0), None, None);
    }

    /// `user` moved their read cursor in `room` to `seq`: pending pushes up
    /// to it are cancelled on whichever node holds them.
    pub fn read(&self, user: UserId, room: RoomId, seq: i64) {
        self.announce(user, 0, None, Some((room, seq)));
    }

    /// A session closed: if it was focused, its focus ends now.
    pub fn session_closed(&self, user: UserId, session: u64) {
        let was = self.local.lock().focused.remove(&session).is_some();
        if was {
            self.announce(user, session, Some(false), None);
        }
    }

    fn announce(
        &self,
        user: UserId,
        session: u64,
        focused: Option<bool>,
        read: Option<(RoomId, i64)>,
    ) {
        self.bus.publish(BusEvent::Activity {
            user_id: user,
            session,
            focused,
            read,
            at: now_ms(),
        });
    }

    async fn renew_focus(self: Arc<Self>, stop: CancellationToken) {
        let mut every = tokio::time::interval(RENEW);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let focused: Vec<(u64, UserId)> = self
                .local
                .lock()
                .focused
                .iter()
                .map(|(s, u)| (*s, *u))
                .collect();
            for (session, user) in focused {
                self.announce(user, session, Some(true), None);
            }
        }
    }
}
