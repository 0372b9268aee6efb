//! Prometheus metrics, one registry per server instance (no globals, so tests can
//! run several servers in one process). Rendered at `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Bucket bounds of `cluster_hop_seconds`: fine between 0.1 ms and 50 ms,
/// where a LAN chat message's hops should be.
const HOP_BUCKETS: [f64; 24] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0065, 0.008,
    0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.1, 0.25, 0.5, 1.0,
];

pub struct Metrics {
    registry: Registry,
    pub connections: IntGauge,
    pub connections_total: IntCounter,
    pub frames_in: IntCounter,
    pub frames_out: IntCounter,
    pub messages_stored: IntCounter,
    pub commit_seconds: Histogram,
    pub commit_batch: Histogram,
    pub outbound_drops: IntCounter,
    pub fanout_events: IntCounter,
    pub protocol_errors: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub match_queue_length: IntGauge,
    /// Multi-node mode: message-log partitions this node sequences.
    pub partitions_owned: IntGauge,
    /// Multi-node mode: one message's time through each hop of the cluster
    /// path, label `hop` (see `cluster::trace::Hop`).
    pub cluster_hop_seconds: HistogramVec,
    pub match_wait_seconds: Histogram,
    pub matches: IntCounter,
    /// `since-seq` history replays running now (each holds one page).
    pub replays_running: IntGauge,
    /// `since-seq` subscriptions by outcome: `replayed` (history was sent) or
    /// `current` (nothing newer than `since-seq`: live at once, no replay).
    pub replays: IntCounterVec,
    /// Connections dropped by a timeout: `write` (peer not reading), `idle`,
    /// `frame` (a frame left incomplete), `heartbeat`.
    pub conn_timeouts: IntCounterVec,
    /// Rejections by abuse limit (contract §4), label `limit`.
    pub rate_limited: IntCounterVec,
    /// Moderation verdicts on posted messages (rooms whose policy is not
    /// `off`), label `action`: `allow`, `flag`, `mask`, `block`.
    pub moderation_verdicts: IntCounterVec,
    /// Files stored (contract §6), label `kind`: image, video, audio, file.
    pub media_uploads: IntCounterVec,
    /// Bytes of the stored originals.
    pub media_upload_bytes: IntCounter,
    /// Time to strip and thumbnail one image (on a blocking thread).
    pub media_image_seconds: Histogram,
    /// Removed by the cleanup, label `what`: `unattached` files, `stale_upload`s,
    /// `orphan` objects.
    pub media_removed: IntCounterVec,
    /// Web Push (contract §8): notifications a push service accepted, one per
    /// browser subscription.
    pub push_sent: IntCounter,
    /// Push requests that failed for good, label `reason`: `rejected` (the
    /// push service refused it: 400/403/413), `gave_up` (retries exhausted),
    /// `dropped` (a queue was full), `error` (no request could be built).
    pub push_failed: IntCounterVec,
    /// Subscriptions removed because their push service answered 404 or 410.
    pub push_expired: IntCounter,
    /// Notifications waiting for delivery, and committed messages waiting to be
    /// looked at by the push planner.
    pub push_queue_depth: IntGauge,
    /// From a message's commit to a push service accepting its notification
    /// (includes the wait for the user to be away and the burst window).
    pub push_latency_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("quicktalk".into()), None).expect("registry");
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone())).expect("unique metric");
            c
        }
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("metric");
        Metrics {
            push_sent: reg(
                &registry,
                counter(
                    "push_sent_total",
                    "Push notifications accepted by a push service",
                ),
            ),
            push_failed: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "push_failed_total",
                        "Push notifications that failed, by reason",
                    ),
                    &["reason"],
                )
                .expect("metric"),
            ),
            push_expired: reg(
                &registry,
                counter(
                    "push_subscriptions_expired_total",
                    "Push subscriptions removed on 404/410 from their push service",
                ),
            ),
            push_queue_depth: reg(
                &registry,
                IntGauge::new(
                    "push_queue_depth",
                    "Push work waiting (planner and delivery)",
                )
                .expect("metric"),
            ),
            push_latency_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "push_latency_seconds",
                        "From a message's commit to its push being accepted",
                    )
                    .buckets(prometheus::exponential_buckets(0.001, 2.0, 18).expect("buckets")),
                )
                .expect("metric"),
            ),
            connections: reg(
                &registry,
                IntGauge::new("connections", "Open STOMP connections").expect("metric"),
            ),
            connections_total: reg(
                &registry,
                counter("connections_total", "STOMP connections accepted"),
            ),
            frames_in: reg(
                &registry,
                counter("frames_in_total", "STOMP frames received"),
            ),
            frames_out: reg(&registry, counter("frames_out_total", "STOMP frames sent")),
            messages_stored: reg(
                &registry,
                counter("messages_stored_total", "Room messages durably stored"),
            ),
            commit_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new("commit_seconds", "Time to durably commit one batch")
                        .buckets(
                            prometheus::exponential_buckets(0.0001, 2.0, 16).expect("buckets"),
                        ),
                )
                .expect("metric"),
            ),
            cluster_hop_seconds: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "cluster_hop_seconds",
                        "Time of one message through one hop of the multi-node path",
                    )
                    .buckets(HOP_BUCKETS.to_vec()),
                    &["hop"],
                )
                .expect("metric"),
            ),
            commit_batch: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new("commit_batch_size", "Messages per committed batch")
                        .buckets(prometheus::exponential_buckets(1.0, 2.0, 14).expect("buckets")),
                )
                .expect("metric"),
            ),
            outbound_drops: reg(
                &registry,
                counter(
                    "outbound_queue_drops_total",
                    "Connections closed because their outbound queue was full",
                ),
            ),
            fanout_events: reg(
                &registry,
                counter("fanout_events_total", "Room events fanned out on this node"),
            ),
            protocol_errors: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new("protocol_errors_total", "STOMP protocol errors by kind"),
                    &["kind"],
                )
                .expect("metric"),
            ),
            http_requests: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new("http_responses_total", "HTTP API responses by status class"),
                    &["class"],
                )
                .expect("metric"),
            ),
            match_queue_length: reg(
                &registry,
                IntGauge::new("match_queue_length", "Users waiting for a random match")
                    .expect("metric"),
            ),
            match_wait_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new("match_wait_seconds", "Time from queueing to a match")
                        .buckets(prometheus::exponential_buckets(0.005, 2.0, 14).expect("buckets")),
                )
                .expect("metric"),
            ),
            matches: reg(&registry, counter("matches_total", "Random matches made")),
            rate_limited: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new("rate_limited_total", "Actions refused by an abuse limit"),
                    &["limit"],
                )
                .expect("metric"),
            ),
            moderation_verdicts: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "moderation_verdicts_total",
                        "Moderation verdicts on posted messages, by action",
                    ),
                    &["action"],
                )
                .expect("metric"),
            ),
            partitions_owned: reg(
                &registry,
                IntGauge::new(
                    "pipeline_partitions_owned",
                    "Message-log partitions this node sequences (multi-node mode)",
                )
                .expect("metric"),
            ),
            replays_running: reg(
                &registry,
                IntGauge::new(
                    "history_replays_running",
                    "since-seq history replays running now",
                )
                .expect("metric"),
            ),
            replays: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "history_replays_total",
                        "since-seq subscriptions: replayed, or current (nothing to replay)",
                    ),
                    &["outcome"],
                )
                .expect("metric"),
            ),
            conn_timeouts: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "connection_timeouts_total",
                        "Connections dropped by a timeout, by kind",
                    ),
                    &["kind"],
                )
                .expect("metric"),
            ),
            media_uploads: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new("media_uploads_total", "Files stored, by kind"),
                    &["kind"],
                )
                .expect("metric"),
            ),
            media_upload_bytes: reg(
                &registry,
                counter("media_upload_bytes_total", "Bytes of stored files"),
            ),
            media_image_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "media_image_seconds",
                        "Stripping and thumbnailing one uploaded image",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ]),
                )
                .expect("metric"),
            ),
            media_removed: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "media_removed_total",
                        "Removed by the media cleanup: unattached, stale_upload, orphan",
                    ),
                    &["what"],
                )
                .expect("metric"),
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
