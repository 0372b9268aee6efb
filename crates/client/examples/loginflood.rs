//! The login flood from issue 10, as an attacker would run it: C concurrent
//! clients each send N wrong passwords for one account (from 127.0.0.1), while
//! the account's owner logs in from another IP (127.0.0.2). Prints the status
//! counts, whether the owner got in (and how long it took), and — given the
//! server's pid — its peak RSS (VmHWM) and the RSS before the flood.
//!
//! ```text
//! quicktalk serve --listen 127.0.0.1:8080 --data-dir /tmp/qt-flood &
//! cargo run --release -p quicktalk-client --example loginflood -- \
//!     http://127.0.0.1:8080 $! [clients=64] [per_client=5]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

fn vm(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn client(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args
        .first()
        .cloned()
        .unwrap_or("http://127.0.0.1:8080".into());
    let pid = args.get(1).cloned();
    let clients: usize = args.get(2).map_or(Ok(64), |s| s.parse())?;
    let per_client: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let login = format!("{base}/api/v1/auth/login");
    let user = format!("victim{}", std::process::id());
    let owner = client([127, 0, 0, 2]);
    let r = owner
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"username": user, "password": "correct horse"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "signup: {}", r.status());
    let rss_before = pid.as_deref().and_then(|p| vm(p, "VmRSS:"));

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (login, user) = (login.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let http = client([127, 0, 0, 1]);
            let mut codes = Vec::new();
            for _ in 0..per_client {
                let body = json!({"username": user, "password": "wrong password"});
                let code = match http.post(&login).json(&body).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                codes.push(code);
            }
            codes
        }));
    }
    // The owner tries during the flood (a 503 "busy" is retried, as a client would).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let owner_started = Instant::now();
    let mut owner_tries = 0;
    let owner_status = loop {
        owner_tries += 1;
        let s = owner
            .post(&login)
            .json(&json!({"username": user, "password": "correct horse"}))
            .send()
            .await?
            .status()
            .as_u16();
        if s != 503 || owner_tries >= 20 {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let owner_took = owner_started.elapsed();
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    let mut peak_rss = 0;
    for t in tasks {
        while !t.is_finished() {
            if let Some(p) = pid.as_deref() {
                peak_rss = peak_rss.max(vm(p, "VmRSS:").unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for c in t.await? {
            *counts.entry(c).or_default() += 1;
        }
    }
    let took = started.elapsed();
    println!(
        "flood: {clients} clients x {per_client} wrong passwords in {:.2} s; statuses {counts:?}",
        took.as_secs_f64()
    );
    println!(
        "owner from 127.0.0.2: status {owner_status} after {owner_tries} tries, {:.0} ms",
        owner_took.as_secs_f64() * 1e3
    );
    if let Some(p) = pid.as_deref() {
        println!(
            "server rss: before {} KB, peak sampled {peak_rss} KB, VmHWM {} KB",
            rss_before.unwrap_or(0),
            vm(p, "VmHWM:").unwrap_or(0)
        );
    }
    Ok(())
}
