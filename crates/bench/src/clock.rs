//! One monotonic clock for the whole process: nanoseconds since a shared
//! `Instant` epoch. Publishers embed these stamps in message bodies and
//! subscribers (in the same process) subtract them from their own reading, so
//! both sides use the same clock and no wall-clock skew enters a latency.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The shared epoch (fixed the first time anything asks for it).
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The nanosecond stamp of `t` (0 if `t` is before the epoch).
pub fn ns_of(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}
