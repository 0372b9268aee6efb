//! `spawn_app()` and friends: start a real server on port 0 with a fresh data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use quicktalk::config::Config;
use quicktalk::store::Store;
use quicktalk::Application;
use quicktalk_client::stomp::{Command, Frame};
use quicktalk_client::StompClient;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The `--metrics-listen` listener (tests always have one).
    pub metrics_addr: SocketAddr,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub token: String,
    pub name: String,
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        presence_interval_ms: 50,
        // Limits are off in tests (contract §4) unless a test is about them.
        rate_limits: false,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_in(dir, tweak).await
}

pub async fn spawn_app_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_wrapping_store(dir, tweak, |s| s).await
}

/// A server whose store is first passed through `wrap` (fault injection).
pub async fn spawn_app_wrapping_store(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    spawn_app_with_faults(dir, tweak, wrap, None).await
}

/// A server built with [`Application::build_with_faults`].
pub async fn spawn_app_with_faults(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    record_hook: Option<quicktalk::cluster::RecordHook>,
) -> TestApp {
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let app = Application::build_with_faults(config, wrap, record_hook)
        .await
        .expect("server builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr().expect("metrics listener");
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        http: reqwest::Client::new(),
        dir,
        stop: Some(tx),
        done: Some(done),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Graceful shutdown; returns the data dir for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.done
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("clean shutdown");
        self.dir
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn signup(&self, username: &str) -> TestUser {
        let (s, v) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"username": username, "password": "correct horse", "display_name": format!("{username} 님")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        TestUser {
            id: v["user"]["id"].as_i64().unwrap(),
            token: v["token"].as_str().unwrap().to_owned(),
            name: v["user"]["display_name"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn guest(&self, nickname: &str) -> TestUser {
        let (s, v) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/auth/guest",
                None,
                Some(json!({ "nickname": nickname })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        TestUser {
            id: v["user"]["id"].as_i64().unwrap(),
            token: v["token"].as_str().unwrap().to_owned(),
            name: nickname.to_owned(),
        }
    }

    pub async fn create_room(&self, user: &TestUser, name: &str, visibility: &str) -> i64 {
        let (s, v) = self
            .post(
                "/api/v1/rooms",
                &user.token,
                json!({"name": name, "visibility": visibility}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn join(&self, user: &TestUser, room: i64) {
        let (s, v) = self
            .post(
                &format!("/api/v1/rooms/{room}/join"),
                &user.token,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// Every stored message of `room`, ascending, via REST paging.
    pub async fn history(&self, user: &TestUser, room: i64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (s, v) = self
                .get(
                    &format!("/api/v1/rooms/{room}/messages?after_seq={after}&limit=200"),
                    &user.token,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let page = v["messages"].as_array().unwrap().clone();
            if let Some(last) = page.last() {
                after = last["seq"].as_i64().unwrap();
            }
            out.extend(page);
            if !v["has_more"].as_bool().unwrap() {
                return out;
            }
        }
    }

    pub async fn stomp(&self, user: &TestUser) -> StompClient {
        StompClient::connect(&self.ws_url(), &user.token)
            .await
            .expect("STOMP connect")
    }

    /// A STOMP client of `user` already subscribed to `/user/queue/errors` as `errs`.
    pub async fn stomp_with_errors(&self, user: &TestUser) -> StompClient {
        let mut c = self.stomp(user).await;
        c.subscribe_sync("errs", "/user/queue/errors", &[])
            .await
            .unwrap();
        c
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(self.metrics_url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

/// The error code of a contract error body.
pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no code>")
}

/// Sends a text message and waits for its receipt.
pub async fn say(c: &mut StompClient, room: i64, text: &str) {
    let receipt = format!("r-{}", rand_id());
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({ "text": text }),
        Some(&receipt),
    )
    .await
    .unwrap();
    c.expect_receipt(&receipt).await.unwrap();
}

/// Asserts that RECEIPT `id` was not sent and will not be: a probe frame's
/// RECEIPT, sent after it, arrives first (frames are answered in order; call this
/// after the rejection's error event arrived). Frames read meanwhile are dropped.
pub async fn assert_no_receipt(c: &mut StompClient, id: &str) {
    let probe = format!("probe-{}", rand_id());
    c.send(
        &Frame::new(Command::Unsubscribe)
            .with_header("id", "no-such-subscription")
            .with_header("receipt", &probe),
    )
    .await
    .unwrap();
    loop {
        let f = c.recv().await.unwrap().expect("socket open");
        if f.command == Command::Receipt {
            let r = f.header("receipt-id");
            assert_ne!(r, Some(id), "a rejected frame got a RECEIPT");
            if r == Some(probe.as_str()) {
                return;
            }
        }
    }
}

/// Waits for the next error event on `sub` (the `/user/queue/errors` subscription).
pub async fn next_error(c: &mut StompClient, sub: &str) -> Value {
    let e = c.next_json(sub).await.unwrap();
    assert_eq!(e["type"], "error", "{e}");
    e
}

pub fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}
