//! The services one server instance is made of, shared by every adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::accounts::Accounts;
use crate::domain::matching::MatchService;
use crate::domain::media::MediaService;
use crate::domain::moderators::Moderation;
use crate::domain::people::People;
use crate::domain::profiles::Profiles;
use crate::domain::push::Push;
use crate::domain::rooms::Rooms;
use crate::fanout::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;

pub struct AppState {
    pub config: Config,
    pub accounts: Accounts,
    pub rooms: Rooms,
    pub matching: Arc<MatchService>,
    /// Moderators' tools: review queue, bans, deleting messages (contract §5).
    pub moderation: Arc<Moderation>,
    /// Files in chat: uploads, downloads, signed URLs (contract §6).
    pub media: Arc<MediaService>,
    /// Friends, blocks, direct rooms (contract §7).
    pub people: People,
    /// Profile changes (contract §7).
    pub profiles: Profiles,
    /// Push notifications: subscriptions, levels, activity (contract §8).
    pub push: Arc<Push>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Abuse limits (contract §4).
    pub limits: Arc<Limits>,
    /// Cancelled when the server starts shutting down: connections close.
    pub shutdown: CancellationToken,
    next_conn: AtomicU64,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        accounts: Accounts,
        rooms: Rooms,
        matching: Arc<MatchService>,
        moderation: Arc<Moderation>,
        media: Arc<MediaService>,
        people: People,
        profiles: Profiles,
        push: Arc<Push>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        limits: Arc<Limits>,
        shutdown: CancellationToken,
    ) -> Self {
        AppState {
            config,
            accounts,
            rooms,
            matching,
            moderation,
            media,
            people,
            profiles,
            push,
            hub,
            metrics,
            limits,
            shutdown,
            next_conn: AtomicU64::new(1),
        }
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
