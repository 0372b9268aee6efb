//! Push notifications end to end (contract §8): the real server pushing to a
//! push service of our own on 127.0.0.1 (`--push-allow-http`), which checks
//! the VAPID signature and decrypts each payload with the test browser's key.

use std::time::{Duration, Instant};

use quicktalk::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{code, spawn_app_with, TestApp, TestUser};
use crate::push_service::{Answer, PushService};

/// Short timings so a test does not wait a minute for "away".
fn fast(c: &mut Config) {
    c.push_allow_http = true;
    c.push_idle_ms = 400;
    c.push_delay_ms = 300;
    c.push_repeat_ms = 10_000;
}

async fn subscribe(app: &TestApp, svc: &PushService, who: &TestUser, name: &str) {
    let (s, v) = app
        .post(
            "/api/v1/push/subscriptions",
            &who.token,
            svc.subscriber(name).json(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn direct(app: &TestApp, a: &TestUser, b: &TestUser) -> i64 {
    let (s, v) = app
        .post("/api/v1/direct", &a.token, json!({"user_id": b.id}))
        .await;
    assert!(s.is_success(), "{v}");
    v["id"].as_i64().unwrap()
}

async fn post(app: &TestApp, who: &TestUser, room: i64, text: &str) -> i64 {
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &who.token,
            json!({ "text": text }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["seq"].as_i64().unwrap()
}

async fn set_level(app: &TestApp, who: &TestUser, room: i64, level: &str) -> (StatusCode, Value) {
    app.request(
        Method::PUT,
        &format!("/api/v1/rooms/{room}/notifications"),
        Some(&who.token),
        Some(json!({ "level": level })),
    )
    .await
}

async fn start() -> (TestApp, PushService, TestUser, TestUser) {
    let app = spawn_app_with(fast).await;
    let svc = PushService::start().await;
    let (_, key) = app
        .request(Method::GET, "/api/v1/push/key", None, None)
        .await;
    svc.expect_key(key["public_key"].as_str().unwrap());
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    (app, svc, alice, bob)
}

#[tokio::test]
async fn an_away_user_gets_one_push_per_room_burst_and_the_sender_none() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    subscribe(&app, &svc, &alice, "alice").await;
    let room = direct(&app, &alice, &bob).await;
    let mut last = 0;
    for text in ["one", "two", "세 번째 message"] {
        last = post(&app, &alice, room, text).await;
    }
    let got = svc.wait_for("bob", 1, Duration::from_secs(10)).await;
    let p = &got[0].payload;
    assert_eq!(p["room_id"], room, "{p}");
    assert_eq!(p["seq"], last, "the newest message of the burst: {p}");
    assert_eq!(p["title"], alice.name.as_str(), "{p}");
    assert_eq!(p["body"], "세 번째 message", "{p}");
    assert_eq!(got[0].topic.as_deref(), Some(&*format!("room-{room}")));
    assert_eq!(got[0].urgency.as_deref(), Some("high"), "a direct message");
    assert!(got[0].ttl > 0);
    svc.assert_quiet("bob", Duration::from_millis(1500)).await;
    svc.assert_quiet("alice", Duration::from_millis(10)).await;
    assert_eq!(app.metric("quicktalk_push_sent_total").await, 1.0);
    assert!(app.metric("quicktalk_push_latency_seconds_count").await >= 1.0);
    assert!(svc.rejected().is_empty(), "{:?}", svc.rejected());
}

#[tokio::test]
async fn an_active_user_gets_none_until_they_have_been_away() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    let mut c = app.stomp(&bob).await;
    c.send_json("/app/activity", &json!({"focused": true}), Some("f1"))
        .await
        .unwrap();
    c.expect_receipt("f1").await.unwrap();
    let seq = post(&app, &alice, room, "are you there?").await;
    // Focused: nothing, however long (idle is 400 ms here).
    svc.assert_quiet("bob", Duration::from_millis(2000)).await;
    // The tab loses focus and the message is still unread: pushed once away.
    let blurred = Instant::now();
    c.send_json("/app/activity", &json!({"focused": false}), Some("f2"))
        .await
        .unwrap();
    c.expect_receipt("f2").await.unwrap();
    let got = svc.wait_for("bob", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].payload["seq"], seq);
    assert!(
        got[0].at.duration_since(blurred) >= Duration::from_millis(350),
        "pushed {:?} after the blur, before the user was away",
        got[0].at.duration_since(blurred)
    );
    // A bad activity body is an error event, not a closed socket.
    let mut e = app.stomp_with_errors(&bob).await;
    e.send_json("/app/activity", &json!({"focus": "yes"}), Some("bad"))
        .await
        .unwrap();
    let err = crate::helpers::next_error(&mut e, "errs").await;
    assert_eq!(err["code"], "invalid_json", "{err}");
}

#[tokio::test]
async fn a_closed_focused_session_stops_counting() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    let mut c = app.stomp(&bob).await;
    c.send_json("/app/activity", &json!({"focused": true}), Some("f1"))
        .await
        .unwrap();
    c.expect_receipt("f1").await.unwrap();
    post(&app, &alice, room, "hello").await;
    svc.assert_quiet("bob", Duration::from_millis(1000)).await;
    drop(c); // the tab closes without a blur
    svc.wait_for("bob", 1, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_read_cancels_a_pending_push() {
    let app = spawn_app_with(|c| {
        fast(c);
        c.push_idle_ms = 1500;
    })
    .await;
    let svc = PushService::start().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    let mut c = app.stomp(&bob).await;
    c.send_json("/app/activity", &json!({"focused": false}), Some("f"))
        .await
        .unwrap();
    c.expect_receipt("f").await.unwrap();
    // Bob was active just now: the push waits for him to be away…
    let seq = post(&app, &alice, room, "read me").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // …and he reads it on another device first.
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &bob.token,
            json!({ "seq": seq }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    svc.assert_quiet("bob", Duration::from_millis(2500)).await;
    // A later message, once he is away, is pushed.
    let seq = post(&app, &alice, room, "and this").await;
    let got = svc.wait_for("bob", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].payload["seq"], seq);
}

#[tokio::test]
async fn levels_decide_and_mentions_name_the_user() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = app.create_room(&alice, "lobby", "public").await;
    // Not a member yet: no level to read or set.
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{room}/notifications"), &bob.token)
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_member"), "{v}");
    app.join(&bob, room).await;
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{room}/notifications"), &bob.token)
        .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"level": "mentions"})));

    // Group rooms default to mentions.
    post(&app, &alice, room, "hello everyone").await;
    post(&app, &alice, room, "mail bobby@bob.example").await;
    svc.assert_quiet("bob", Duration::from_millis(1200)).await;
    let seq = post(&app, &alice, room, "hey @Bob, look").await;
    let got = svc.wait_for("bob", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].payload["seq"], seq);
    assert_eq!(got[0].payload["title"], "lobby");
    assert_eq!(
        got[0].payload["body"],
        format!("{}: hey @Bob, look", alice.name)
    );
    assert_eq!(got[0].urgency.as_deref(), Some("high"), "a mention");

    // Muted: not even a mention. (A later push of this room would also wait
    // for `repeat`, 10 s: use another room for `all`.)
    let (s, v) = set_level(&app, &bob, room, "none").await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"level": "none"})));
    post(&app, &alice, room, "@bob muted?").await;
    svc.assert_quiet("bob", Duration::from_millis(1200)).await;

    let other = app.create_room(&alice, "news", "public").await;
    app.join(&bob, other).await;
    let (s, _) = set_level(&app, &bob, other, "all").await;
    assert_eq!(s, StatusCode::OK);
    let seq = post(&app, &alice, other, "plain news").await;
    let got = svc.wait_for("bob", 2, Duration::from_secs(10)).await;
    assert_eq!(got[1].payload["seq"], seq);
    assert_eq!(got[1].urgency.as_deref(), Some("normal"));
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{other}/notifications"), &bob.token)
        .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"level": "all"})));

    let (s, v) = set_level(&app, &bob, other, "loud").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_level"));
    assert!(svc.rejected().is_empty(), "{:?}", svc.rejected());
}

#[tokio::test]
async fn a_blocked_senders_messages_are_never_pushed() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = app.create_room(&alice, "lobby", "public").await;
    app.join(&bob, room).await;
    set_level(&app, &bob, room, "all").await;
    let (s, v) = app
        .post("/api/v1/blocks", &bob.token, json!({"user_id": alice.id}))
        .await;
    assert!(s.is_success(), "{v}");
    post(&app, &alice, room, "you cannot see me").await;
    svc.assert_quiet("bob", Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn a_gone_subscription_is_removed() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    svc.answer_next("bob", Answer::Gone);
    post(&app, &alice, room, "anyone?").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .metric("quicktalk_push_subscriptions_expired_total")
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "the 410 was not acted on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(svc.attempts("bob").len(), 1);
    // It is gone from the store: deleting it now finds nothing.
    let endpoint = svc.subscriber("bob").json()["endpoint"].clone();
    let (s, _) = app
        .request(
            Method::DELETE,
            "/api/v1/push/subscriptions",
            Some(&bob.token),
            Some(json!({ "endpoint": endpoint })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (app, svc, alice, bob) = start().await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    svc.answer_next(
        "bob",
        Answer::TooMany {
            retry_after_secs: 1,
        },
    );
    let seq = post(&app, &alice, room, "patience").await;
    let got = svc.wait_for("bob", 1, Duration::from_secs(15)).await;
    assert_eq!(got[0].payload["seq"], seq);
    let tries = svc.attempts("bob");
    assert!(tries.len() >= 2, "{tries:?}");
    let gap = tries[1].at.duration_since(tries[0].at);
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test]
async fn hidden_text_says_only_new_message() {
    let app = spawn_app_with(|c| {
        fast(c);
        c.push_hide_text = true;
    })
    .await;
    let svc = PushService::start().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    subscribe(&app, &svc, &bob, "bob").await;
    let room = direct(&app, &alice, &bob).await;
    post(&app, &alice, room, "a secret").await;
    let got = svc.wait_for("bob", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].payload["title"], "New message");
    assert_eq!(got[0].payload["body"], "");
    assert!(!String::from_utf8_lossy(&got[0].body).contains("secret"));
}

#[tokio::test]
async fn subscriptions_are_checked_and_removed_by_their_owner() {
    // Default rules: only the browsers' push services, https.
    let app = spawn_app_with(|_| {}).await;
    let bob = app.signup("bob").await;
    let eve = app.signup("eve").await;
    let (s, v) = app
        .request(Method::GET, "/api/v1/push/key", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let key = v["public_key"].as_str().unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .unwrap();
    assert_eq!((raw.len(), raw[0]), (65, 4), "an uncompressed P-256 point");

    let svc = PushService::start().await;
    let good = svc.subscriber("x").json();
    let with = |endpoint: &str| {
        let mut b = good.clone();
        b["endpoint"] = json!(endpoint);
        b
    };
    for (body, want) in [
        (good.clone(), "invalid_endpoint"), // http:// on 127.0.0.1: refused here
        (with("https://169.254.169.254/latest"), "invalid_endpoint"),
        (with("https://intranet/push"), "invalid_endpoint"),
        (with("https://example.com/push"), "invalid_endpoint"),
        (
            {
                let mut b = with("https://fcm.googleapis.com/fcm/send/x");
                b["keys"]["auth"] = json!("c2hvcnQ");
                b
            },
            "invalid_keys",
        ),
        (
            {
                let mut b = with("https://fcm.googleapis.com/fcm/send/x");
                b["keys"]["p256dh"] = json!("AAAA");
                b
            },
            "invalid_keys",
        ),
    ] {
        let (s, v) = app
            .post("/api/v1/push/subscriptions", &bob.token, body.clone())
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, want),
            "{body}: {v}"
        );
    }
    let fcm = with("https://fcm.googleapis.com/fcm/send/abc");
    let (s, v) = app
        .post("/api/v1/push/subscriptions", &bob.token, fcm.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let del = |who: &TestUser| {
        let who = who.clone();
        let app = &app;
        async move {
            app.request(
                Method::DELETE,
                "/api/v1/push/subscriptions",
                Some(&who.token),
                Some(json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc"})),
            )
            .await
            .0
        }
    };
    assert_eq!(del(&eve).await, StatusCode::NOT_FOUND, "not eve's");
    assert_eq!(del(&bob).await, StatusCode::NO_CONTENT);
    assert_eq!(del(&bob).await, StatusCode::NOT_FOUND);
    let (s, _) = app
        .request(Method::POST, "/api/v1/push/subscriptions", None, Some(fcm))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
