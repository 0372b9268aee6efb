//! Quick throughput probe: N connections SEND with receipts into one room, each
//! keeping W receipts in flight; prints receipts/s. A receipt means "stored".
//!
//! usage: persist WS_URL ROOM_ID MESSAGES_PER_CONN WINDOW TOKEN...

use std::time::Instant;

use quicktalk_client::StompClient;
use quicktalk_stomp::Command;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, room, per, window, tokens @ ..] = args.as_slice() else {
        anyhow::bail!("usage: persist WS_URL ROOM_ID MESSAGES_PER_CONN WINDOW TOKEN...");
    };
    let per: usize = per.parse()?;
    let window: usize = window.parse()?;
    let dest = format!("/app/rooms.{room}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, token) in tokens.iter().enumerate() {
        let (url, token, dest) = (url.clone(), token.clone(), dest.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = StompClient::connect(&url, &token).await?;
            let (mut sent, mut acked) = (0usize, 0usize);
            let mut sent_at = std::collections::VecDeque::new();
            let mut lat = Vec::with_capacity(per);
            while acked < per {
                while sent < per && sent - acked < window {
                    let body =
                        serde_json::json!({"text": format!("c{c} m{sent} {}", "x".repeat(60))});
                    client
                        .send_json(&dest, &body, Some(&sent.to_string()))
                        .await?;
                    sent += 1;
                    sent_at.push_back(Instant::now());
                }
                match client.recv().await? {
                    Some(f) if f.command == Command::Receipt => {
                        acked += 1;
                        if let Some(t) = sent_at.pop_front() {
                            lat.push(t.elapsed());
                        }
                    }
                    Some(f) if f.command == Command::Error => anyhow::bail!("ERROR: {f:?}"),
                    Some(_) => {}
                    None => anyhow::bail!("closed"),
                }
            }
            lat.sort();
            if c == 0 && !lat.is_empty() {
                let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
                println!(
                    "connection 0 receipt latency: p50 {:?} p99 {:?} max {:?}",
                    p(0.5),
                    p(0.99),
                    lat[lat.len() - 1]
                );
            }
            anyhow::Ok(acked)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} receipts in {secs:.2} s = {:.0} messages/s stored",
        total as f64 / secs
    );
    Ok(())
}
