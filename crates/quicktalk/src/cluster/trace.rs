//! Where a message's time goes on the multi-node path. Each hop's end is
//! stamped in wall-clock microseconds ([`now_us`]) and the stamps travel with
//! the message: the accepting node's in the request (`Request::at`) and in
//! the stored message's event (`Stored::at`), the sequencer's commit time in
//! that event (`Event::Messages::committed`). Whoever sees a hop
//! end observes it in `quicktalk_cluster_hop_seconds{hop}` ([`Hop`]), so the
//! histograms of all nodes together show the whole path:
//!
//! ```text
//! accepted ─produce─► acked by the broker                       (accepting node)
//! accepted ─to_sequencer─► consumed ─batch_wait─► transaction begins
//!          ─commit─► committed ─event_produce─► event acked      (sequencer)
//! committed ─to_node─► event consumed ─fan_out─► queued to every local
//!          subscriber; accepted ─end_to_end─► the same moment   (every node)
//! accepted ─receipt─► the reply reaches the SEND's connection   (accepting node)
//! ```
//!
//! Hops that cross nodes compare two machines' clocks: on one machine (the
//! bench) they are exact; across machines they include the clocks' offset.
//! A stamp that would give a negative time is not observed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::Metrics;

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// One hop of the path (the `hop` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Produce,
    ToSequencer,
    BatchWait,
    Commit,
    EventProduce,
    ToNode,
    FanOut,
    EndToEnd,
    Receipt,
}

impl Hop {
    pub fn label(self) -> &'static str {
        match self {
            Hop::Produce => "produce",
            Hop::ToSequencer => "to_sequencer",
            Hop::BatchWait => "batch_wait",
            Hop::Commit => "commit",
            Hop::EventProduce => "event_produce",
            Hop::ToNode => "to_node",
            Hop::FanOut => "fan_out",
            Hop::EndToEnd => "end_to_end",
            Hop::Receipt => "receipt",
        }
    }
}

/// Observes `to - from` (microsecond stamps) for `hop`; an unknown start (0)
/// or a negative span is skipped.
pub fn observe(metrics: &Metrics, hop: Hop, from: i64, to: i64) {
    if from > 0 && to >= from {
        observe_span(metrics, hop, Duration::from_micros((to - from) as u64));
    }
}

/// Observes a span measured on one node's monotonic clock.
pub fn observe_span(metrics: &Metrics, hop: Hop, span: Duration) {
    metrics
        .cluster_hop_seconds
        .with_label_values(&[hop.label()])
        .observe(span.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_negative_spans_are_not_observed() {
        let m = Metrics::new();
        observe(&m, Hop::Commit, 0, 5);
        observe(&m, Hop::Commit, 10, 5);
        observe(&m, Hop::Commit, 1_000, 3_500);
        let h = m.cluster_hop_seconds.with_label_values(&["commit"]);
        assert_eq!(h.get_sample_count(), 1);
        assert!((h.get_sample_sum() - 0.0025).abs() < 1e-9);
    }
}
