//! `push`: the latency of a push notification, from the message's commit (its
//! RECEIPT) to the push service receiving the push — QuickTalk only. R rooms
//! each hold one away member subscribed at the bench's push sink; one
//! publisher sends to room 0, 1, …, R−1, 0, … and after each RECEIPT waits for
//! that room's next push before the next message, so every push is matched
//! with its message. Run against a server with `--push-delay-ms 0` and
//! `--push-repeat-ms 0` (the bench sets both for this scenario), so what is
//! measured is the machinery — planner, encryption, signing, HTTP — not the
//! deliberate burst window (1.5 s by default), which adds to it one for one.

use std::time::{Duration, Instant};

use serde_json::json;

use super::fanout::away_members;
use crate::stats::{new_hist, record_ns, Percentiles};
use crate::target::{self, Server};

#[derive(Debug, Clone)]
pub struct PushParams {
    pub rooms: usize,
    pub messages: usize,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    pub params: PushParams,
    /// Commit (RECEIPT) → push received, ms.
    pub latency: Percentiles,
    /// Messages whose push did not arrive within 10 s.
    pub missing: usize,
}

pub async fn run(server: &Server, p: &PushParams) -> anyhow::Result<PushResult> {
    let fx = server.fixture(p.rooms, 1).await?;
    let sink = away_members(server, &fx, p.rooms).await?;
    let mut c = target::connect(fx.ws_url(0), &fx.publisher).await?;
    let mut hist = new_hist();
    let mut missing = 0;
    let mut sent = vec![0usize; p.rooms];
    for k in 0..p.messages {
        let r = k % p.rooms;
        let receipt = format!("p{k}");
        c.send_json(
            &fx.pub_dests[r],
            &json!({ "text": format!("push {k}") }),
            Some(&receipt),
        )
        .await?;
        c.expect_receipt(&receipt).await?;
        let committed = Instant::now();
        sent[r] += 1;
        match sink.nth_arrival(r, sent[r], Duration::from_secs(10)).await {
            Some(at) => record_ns(
                &mut hist,
                at.saturating_duration_since(committed).as_nanos() as u64,
            ),
            None => missing += 1,
        }
    }
    Ok(PushResult {
        params: p.clone(),
        latency: Percentiles::of(&hist),
        missing,
    })
}
