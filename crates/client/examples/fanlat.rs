//! Delivery latency probe: one publisher, S subscribers in one room; the
//! publisher sends a message every INTERVAL_MS and each subscriber measures
//! send -> receive (same process clock). Prints p50/p99 over all deliveries.
//!
//! usage: fanlat WS_URL TOKEN ROOM SUBSCRIBERS MESSAGES INTERVAL_MS

use std::time::{Duration, Instant};

use quicktalk_client::StompClient;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, room, subs, n, every] = args.as_slice() else {
        anyhow::bail!("usage: fanlat WS_URL TOKEN ROOM SUBSCRIBERS MESSAGES INTERVAL_MS");
    };
    let (subs, n, every): (usize, usize, u64) = (subs.parse()?, n.parse()?, every.parse()?);
    let epoch = Instant::now();
    let dest = format!("/topic/rooms.{room}");
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let mut c = StompClient::connect(url, token).await?;
        c.subscribe_sync("s", &dest, &[]).await?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            while lat.len() < n {
                let m = c.next_of_type("s", "message").await?;
                let sent: u64 = m["text"].as_str().unwrap_or("0").parse().unwrap_or(0);
                lat.push(epoch.elapsed().as_micros() as u64 - sent);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut p = StompClient::connect(url, token).await?;
    for _ in 0..n {
        let now = epoch.elapsed().as_micros() as u64;
        p.send_json(
            &format!("/app/rooms.{room}"),
            &json!({ "text": now.to_string() }),
            None,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    let q = |x: f64| all[((all.len() as f64 * x) as usize).min(all.len() - 1)] as f64 / 1000.0;
    println!(
        "{} deliveries: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
