//! Random-matching latency: for each pair, A queues (match.waiting seen), then B
//! sends match.connect; measures from B's SEND until both have match.found.
//!
//! usage: matchlat HTTP_BASE PAIRS        e.g. matchlat http://127.0.0.1:8080 1000

use std::time::{Duration, Instant};

use quicktalk_client::StompClient;
use serde_json::{json, Value};

async fn guest(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let v: Value = http
        .post(format!("{base}/api/v1/auth/guest"))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["token"].as_str().unwrap_or_default().to_owned())
}

async fn player(ws: &str, token: &str) -> anyhow::Result<StompClient> {
    let mut c = StompClient::connect(ws, token).await?;
    c.subscribe_sync("ev", "/user/queue/events", &[]).await?;
    c.subscribe_sync("err", "/user/queue/errors", &[]).await?;
    Ok(c)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, pairs] = args.as_slice() else {
        anyhow::bail!("usage: matchlat HTTP_BASE PAIRS");
    };
    let pairs: usize = pairs.parse()?;
    let ws = format!("{}/ws", base.replacen("http", "ws", 1));
    let http = reqwest::Client::new();
    let mut samples: Vec<Duration> = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let (ta, tb) = (guest(&http, base).await?, guest(&http, base).await?);
        let mut a = player(&ws, &ta).await?;
        let mut b = player(&ws, &tb).await?;
        a.send_json("/app/match.connect", &json!({}), Some("c"))
            .await?;
        a.expect_receipt("c").await?;
        a.next_of_type("ev", "match.waiting").await?;
        let t0 = Instant::now();
        b.send_json("/app/match.connect", &json!({}), None).await?;
        let fb = b.next_of_type("ev", "match.found").await?;
        let tb = t0.elapsed();
        let fa = a.next_of_type("ev", "match.found").await?;
        samples.push(t0.elapsed());
        if std::env::var("MATCHLAT_DEBUG").is_ok() && t0.elapsed() > Duration::from_millis(10) {
            eprintln!("slow: b after {tb:?}, a after {:?}", t0.elapsed());
        }
        anyhow::ensure!(
            fa["room_id"] == fb["room_id"],
            "paired into different rooms"
        );
        a.close().await.ok();
        b.close().await.ok();
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{} pairs: second match.connect -> both match.found: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
    Ok(())
}
