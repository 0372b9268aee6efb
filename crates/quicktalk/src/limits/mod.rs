//! Abuse limits (contract §4): keyed rate limits per client IP, user and room
//! (`rate`), login back-off after failures (`backoff`), and caps on concurrent
//! sockets (`sockets`). One [`Limits`] per server instance, reached from the
//! adapters and domain services through `AppState`; every rejection is an
//! [`AppError::RateLimited`] carrying its retry-after, and is counted in
//! `quicktalk_rate_limited_total{limit}`.
//!
//! State is per node: each node enforces its limits on the traffic it sees.

mod backoff;
mod quota;
mod rate;
mod sockets;

pub use backoff::LoginBackoff;
pub use quota::{Limit, Rate, Rates};
pub use sockets::{SocketCaps, SocketGuard};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::model::{RoomId, UserId};
use rate::RateLimits;

/// What a rate limit is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Ip(IpAddr),
    User(UserId),
    Room(RoomId),
}

/// How often idle limiter state is dropped.
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

pub struct Limits {
    enabled: bool,
    rates: RateLimits,
    pub login: LoginBackoff,
    pub sockets: SocketCaps,
    metrics: Arc<Metrics>,
}

impl Limits {
    pub fn new(
        enabled: bool,
        rates: &Rates,
        sockets_per_ip: usize,
        sockets_per_user: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Limits {
            enabled,
            rates: RateLimits::new(rates),
            login: LoginBackoff::default(),
            sockets: SocketCaps::new(sockets_per_ip, sockets_per_user),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts one action against `limit` for `key`; over the limit, a
    /// `rate_limited` error with the time until the next one is allowed.
    pub fn check(&self, limit: Limit, key: Key) -> AppResult<()> {
        if !self.enabled {
            return Ok(());
        }
        self.rates
            .check(limit, &key)
            .map_err(|wait| self.rejected(limit.name(), wait))
    }

    /// A login attempt for `account` from `ip`: refused while either is backing
    /// off. Counted as a failure until [`Limits::login_succeeded`] says otherwise.
    pub fn login_attempt(&self, account: &str, ip: IpAddr) -> AppResult<()> {
        if !self.enabled {
            return Ok(());
        }
        self.check(Limit::LoginIp, Key::Ip(ip))?;
        self.login
            .attempt(account, ip, std::time::Instant::now())
            .map_err(|(name, wait)| self.rejected(name, wait))
    }

    pub fn login_succeeded(&self, account: &str, ip: IpAddr) {
        if self.enabled {
            self.login.succeeded(account, ip);
        }
    }

    /// Holds one socket slot for `ip` (and `user`, once known) until dropped.
    pub fn open_socket(&self, ip: IpAddr, user: Option<UserId>) -> AppResult<SocketGuard> {
        if !self.enabled {
            return Ok(SocketGuard::unlimited());
        }
        self.sockets
            .open(ip, user)
            .map_err(|name| self.rejected(name, Duration::from_secs(1)))
    }

    fn rejected(&self, name: &'static str, wait: Duration) -> AppError {
        self.metrics.rate_limited.with_label_values(&[name]).inc();
        AppError::rate_limited(name, wait)
    }

    /// Drops idle limiter and back-off state every minute, so memory follows the
    /// clients active lately, not every client ever seen.
    pub fn spawn_cleanup(self: &Arc<Self>, stop: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CLEANUP_EVERY);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => me.cleanup(),
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// One cleanup pass (also called by tests).
    pub fn cleanup(&self) {
        self.rates.cleanup();
        self.login.cleanup(std::time::Instant::now());
    }

    /// Keys held across all rate limiters (for tests and diagnostics).
    pub fn tracked_keys(&self) -> usize {
        self.rates.len() + self.login.len()
    }
}
