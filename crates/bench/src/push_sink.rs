//! A stand-in push service for the fan-out scenario's away users
//! (`--push-away`): it accepts every push request (201) and counts them, so
//! the server's push path runs as it would against a real one — planning,
//! encryption, VAPID signing, HTTP — without leaving the machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Path;
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

pub struct PushSink {
    base: String,
    accepted: Arc<AtomicU64>,
    /// Endpoint id → when its pushes arrived.
    arrivals: Arc<Mutex<HashMap<usize, Vec<Instant>>>>,
    arrived: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl PushSink {
    pub async fn start() -> anyhow::Result<PushSink> {
        let accepted = Arc::new(AtomicU64::new(0));
        let arrivals: Arc<Mutex<HashMap<usize, Vec<Instant>>>> = Arc::default();
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (count, log, bell) = (accepted.clone(), arrivals.clone(), arrived.clone());
        let app = axum::Router::new().route(
            "/push/{id}",
            post(move |Path(id): Path<usize>| {
                let (count, log, bell) = (count.clone(), log.clone(), bell.clone());
                async move {
                    let now = Instant::now();
                    count.fetch_add(1, Ordering::Relaxed);
                    log.lock().unwrap().entry(id).or_default().push(now);
                    bell.notify_waiters();
                    axum::http::StatusCode::CREATED
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(PushSink {
            base,
            accepted,
            arrivals,
            arrived,
            task,
        })
    }

    /// A browser-like subscription (fresh P-256 key, 16-byte secret) whose
    /// endpoint is this sink: the body of `POST /api/v1/push/subscriptions`.
    pub fn subscription(&self, id: usize) -> Value {
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let point = secret.public_key().to_sec1_bytes();
        let auth: [u8; 16] = rand::random();
        json!({
            "endpoint": format!("{}/push/{id}", self.base),
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(point), "auth": URL_SAFE_NO_PAD.encode(auth)},
        })
    }

    /// When endpoint `id`'s `n`-th push (1-based) arrived, waiting up to `wait`.
    pub async fn nth_arrival(
        &self,
        id: usize,
        n: usize,
        wait: std::time::Duration,
    ) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let bell = self.arrived.notified();
            tokio::pin!(bell);
            bell.as_mut().enable();
            if let Some(at) = self
                .arrivals
                .lock()
                .unwrap()
                .get(&id)
                .and_then(|v| v.get(n - 1).copied())
            {
                return Some(at);
            }
            if tokio::time::timeout_at(deadline, bell).await.is_err() {
                return None;
            }
        }
    }

    /// Push requests accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for PushSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
