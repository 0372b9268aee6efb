//! Coalesced presence broadcasts.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Hub;

impl Hub {
    /// Broadcasts one presence snapshot to each room whose online set changed since
    /// the last call.
    pub fn flush_presence(&self) {
        let dirty: Vec<_> = std::mem::take(&mut *self.presence_dirty.lock())
            .into_iter()
            .collect();
        for room in dirty {
            let ev = self.presence_event(room);
            self.fan_out_room(room, ev, None);
        }
    }

    /// Runs [`Hub::flush_presence`] every `every` until `stop`.
    pub fn spawn_presence_flusher(
        self: &Arc<Self>,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => hub.flush_presence(),
                    _ = stop.cancelled() => return,
                }
            }
        })
    }
}
