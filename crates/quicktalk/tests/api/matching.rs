//! Random matching over real sockets: pairing, chat, next, drops and grace,
//! memory of recent partners, interests, a crowd, REST mirrors, reports.

use std::collections::HashMap;
use std::time::Duration;

use quicktalk_client::StompClient;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_no_receipt, code, say, spawn_app_with, TestApp, TestUser};

async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.match_window_ms = 800;
        c.match_grace_ms = 600;
        c.match_next_interval_ms = 1000;
    })
    .await
}

/// A guest connected with events and errors subscribed.
async fn player(app: &TestApp, name: &str) -> (TestUser, StompClient) {
    let u = app.guest(name).await;
    let mut c = app.stomp(&u).await;
    c.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    c.subscribe_sync("err", "/user/queue/errors", &[])
        .await
        .unwrap();
    (u, c)
}

async fn event(c: &mut StompClient, ty: &str) -> Value {
    c.next_of_type("ev", ty).await.unwrap()
}

async fn connect(c: &mut StompClient, body: Value) {
    c.send_json("/app/match.connect", &body, None)
        .await
        .unwrap();
}

/// No event of type `ty` arrives within `wait`.
async fn none_of(c: &mut StompClient, ty: &str, wait: Duration) {
    let got = tokio::time::timeout(wait, c.next_of_type("ev", ty)).await;
    assert!(
        got.is_err() || got.as_ref().unwrap().is_err(),
        "unexpected {ty}: {got:?}"
    );
}

#[tokio::test]
async fn pair_chat_and_partner_left() {
    let app = app().await;
    let (a, mut ca) = player(&app, "민수").await;
    let (b, mut cb) = player(&app, "Jane").await;
    connect(&mut ca, json!({})).await;
    assert_eq!(
        event(&mut ca, "match.waiting").await["type"],
        "match.waiting"
    );
    connect(&mut cb, json!({})).await;
    let fa = event(&mut ca, "match.found").await;
    let fb = event(&mut cb, "match.found").await;
    assert_eq!(fa["room_id"], fb["room_id"]);
    assert_eq!(
        fa["partner"],
        json!({"id": b.id, "name": "Jane", "guest": true})
    );
    assert_eq!(
        fb["partner"],
        json!({"id": a.id, "name": "민수", "guest": true})
    );
    let room = fa["room_id"].as_i64().unwrap();
    let (s, r) = app.get(&format!("/api/v1/rooms/{room}"), &a.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["kind"], "random");
    assert_eq!(r["visibility"], "private");
    assert_eq!(r["member_count"], 2);
    // Chat both ways.
    let dest = format!("/topic/rooms.{room}");
    ca.subscribe_sync("r", &dest, &[]).await.unwrap();
    cb.subscribe_sync("r", &dest, &[]).await.unwrap();
    say(&mut ca, room, "안녕!").await;
    assert_eq!(
        cb.next_of_type("r", "message").await.unwrap()["text"],
        "안녕!"
    );
    say(&mut cb, room, "hi!").await;
    let m = loop {
        let m = ca.next_of_type("r", "message").await.unwrap();
        if m["kind"] == "text" && m["sender"]["id"] == b.id {
            break m;
        }
    };
    assert_eq!(m["text"], "hi!");
    // An outsider cannot read it.
    let outsider = app.guest("x").await;
    let (s, _) = app
        .get(&format!("/api/v1/rooms/{room}/messages"), &outsider.token)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A leaves with next: B hears partner_left at once, A you_left and queues again.
    ca.send_json("/app/match.next", &json!({}), Some("n"))
        .await
        .unwrap();
    ca.expect_receipt("n").await.unwrap();
    let ea = event(&mut ca, "match.ended").await;
    assert_eq!(
        ea,
        json!({"type": "match.ended", "room_id": room, "reason": "you_left"})
    );
    event(&mut ca, "match.waiting").await;
    let eb = event(&mut cb, "match.ended").await;
    assert_eq!(
        eb,
        json!({"type": "match.ended", "room_id": room, "reason": "partner_left"})
    );
    // The history stays readable by both.
    for u in [&a, &b] {
        let h = app.history(u, room).await;
        assert!(h.iter().any(|m| m["text"] == "hi!"));
    }
}

#[tokio::test]
async fn a_dropped_socket_gets_a_grace_period() {
    let app = app().await;
    let (a, mut ca) = player(&app, "a").await;
    let (_b, mut cb) = player(&app, "b").await;
    connect(&mut ca, json!({})).await;
    connect(&mut cb, json!({})).await;
    let room = event(&mut ca, "match.found").await["room_id"].clone();
    event(&mut cb, "match.found").await;
    // A drops and comes back within the grace period: the match resumes.
    ca.abort();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut ca = app.stomp(&a).await;
    ca.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    let again = event(&mut ca, "match.found").await;
    assert_eq!(again["room_id"], room, "resumed in the same room");
    none_of(&mut cb, "match.ended", Duration::from_millis(1200)).await;
    // A drops for good: B hears partner_disconnected after the grace period.
    let dropped_at = std::time::Instant::now();
    ca.abort();
    let e = event(&mut cb, "match.ended").await;
    assert_eq!(e["reason"], "partner_disconnected");
    assert_eq!(e["room_id"], room);
    let waited = dropped_at.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "ended after {waited:?}, before the grace period"
    );
    let (_, s) = app.get("/api/v1/match", &a.token).await;
    assert_eq!(s["state"], "idle");
}

#[tokio::test]
async fn no_immediate_rematch_with_the_partner_just_left() {
    let app = app().await;
    let (a, mut ca) = player(&app, "a").await;
    let (b, mut cb) = player(&app, "b").await;
    connect(&mut ca, json!({})).await;
    connect(&mut cb, json!({})).await;
    event(&mut ca, "match.found").await;
    event(&mut cb, "match.found").await;
    ca.send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    event(&mut cb, "match.ended").await;
    connect(&mut cb, json!({})).await;
    event(&mut cb, "match.waiting").await;
    // Both wait, past the preference window, and are not paired again.
    none_of(&mut cb, "match.found", Duration::from_millis(1500)).await;
    let (c, mut cc) = player(&app, "c").await;
    connect(&mut cc, json!({})).await;
    let found = event(&mut cc, "match.found").await;
    assert_eq!(
        found["partner"]["id"], a.id,
        "the longest waiting eligible user"
    );
    let fa = event(&mut ca, "match.found").await;
    assert_eq!(fa["partner"]["id"], c.id);
    let _ = b;
}

#[tokio::test]
async fn overlapping_interests_are_preferred() {
    let app = app().await;
    let (_a, mut ca) = player(&app, "a").await;
    let (b, mut cb) = player(&app, "b").await;
    let (c, mut cc) = player(&app, "c").await;
    connect(
        &mut ca,
        json!({"interests": ["Music"], "lang": "ko", "unknown": 1}),
    )
    .await;
    event(&mut ca, "match.waiting").await;
    connect(&mut cb, json!({"interests": ["games"]})).await;
    event(&mut cb, "match.waiting").await;
    connect(&mut cc, json!({"interests": ["GAMES", "art"]})).await;
    let fc = event(&mut cc, "match.found").await;
    assert_eq!(
        fc["partner"]["id"], b.id,
        "the overlapping partner, though later in line"
    );
    // A waits for music; after the window anyone will do.
    let (d, mut cd) = player(&app, "d").await;
    connect(&mut cd, json!({})).await;
    let started = std::time::Instant::now();
    let fd = event(&mut cd, "match.found").await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "A's preference was honoured for a while"
    );
    assert_ne!(fd["partner"]["id"], c.id);
    let _ = d;
    event(&mut ca, "match.found").await;
}

#[tokio::test]
async fn a_hundred_users_connecting_at_once_pair_exactly() {
    const N: usize = 100;
    let app = app().await;
    let mut players = Vec::new();
    for i in 0..N {
        players.push(player(&app, &format!("p{i}")).await);
    }
    let mut tasks = Vec::new();
    for (u, mut c) in players {
        tasks.push(tokio::spawn(async move {
            connect(&mut c, json!({})).await;
            let f = c.next_of_type("ev", "match.found").await.unwrap();
            // Nobody gets a second match.
            let extra = tokio::time::timeout(
                Duration::from_millis(300),
                c.next_of_type("ev", "match.found"),
            )
            .await;
            assert!(extra.is_err() || extra.unwrap().is_err());
            (
                u.id,
                f["partner"]["id"].as_i64().unwrap(),
                f["room_id"].as_i64().unwrap(),
            )
        }));
    }
    let mut partner = HashMap::new();
    let mut rooms: HashMap<i64, Vec<i64>> = HashMap::new();
    for t in tasks {
        let (me, p, room) = t.await.unwrap();
        assert_ne!(me, p);
        partner.insert(me, p);
        rooms.entry(room).or_default().push(me);
    }
    assert_eq!(partner.len(), N);
    for (me, p) in &partner {
        assert_eq!(partner[p], *me, "pairs are symmetric");
    }
    assert_eq!(rooms.len(), N / 2);
    assert!(rooms.values().all(|v| v.len() == 2));
    let (_, q) = app
        .get("/api/v1/match", &app.guest("late").await.token)
        .await;
    assert_eq!(q["state"], "idle");
    assert_eq!(app.metric("quicktalk_matches_total").await, (N / 2) as f64);
}

#[tokio::test]
async fn rest_mirrors() {
    let app = app().await;
    let a = app.guest("a").await;
    let b = app.guest("b").await;
    let (s, v) = app.get("/api/v1/match", &a.token).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"state": "idle"})));
    let (s, v) = app
        .post("/api/v1/match/connect", &a.token, json!({"interests": []}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"state": "waiting"}));
    let (_, v) = app.post("/api/v1/match/connect", &b.token, json!({})).await;
    assert_eq!(v["state"], "matched");
    assert_eq!(v["partner"]["id"], a.id);
    let room = v["room_id"].as_i64().unwrap();
    let (_, v) = app.get("/api/v1/match", &a.token).await;
    assert_eq!(
        v,
        json!({"state": "matched", "room_id": room, "partner": {"id": b.id, "name": "b", "guest": true}})
    );
    let (s, v) = app.post("/api/v1/match/connect", &a.token, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(code(&v), "already_matched");
    let (s, v) = app
        .post("/api/v1/match/disconnect", &a.token, json!({}))
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"state": "idle"})));
    let (_, v) = app.get("/api/v1/match", &b.token).await;
    assert_eq!(v["state"], "idle");
    for (body, want) in [
        (json!({"interests": "music"}), "invalid_json"),
        (
            json!({"interests": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "invalid_interests",
        ),
        (json!({"interests": ["x".repeat(33)]}), "invalid_interests"),
        (json!({"lang": 5}), "invalid_json"),
    ] {
        let (s, v) = app
            .post("/api/v1/match/connect", &a.token, body.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&v), want);
    }
    let (s, _) = app
        .request(reqwest::Method::GET, "/api/v1/match", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_and_no_ops_over_stomp() {
    let app = app().await;
    let (_a, mut ca) = player(&app, "a").await;
    let (_b, mut cb) = player(&app, "b").await;
    // next / disconnect while idle: a harmless reply.
    ca.send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    assert_eq!(event(&mut ca, "match.idle").await["type"], "match.idle");
    ca.send_json("/app/match.disconnect", &json!({}), None)
        .await
        .unwrap();
    event(&mut ca, "match.idle").await;
    for (body, want) in [
        (json!({"interests": [1, 2]}), "invalid_json"),
        (
            json!({"interests": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]}),
            "invalid_interests",
        ),
    ] {
        ca.send_json("/app/match.connect", &body, Some("r"))
            .await
            .unwrap();
        let e = ca.next_json("err").await.unwrap();
        assert_eq!(e["code"], want);
        assert_eq!(e["destination"], "/app/match.connect");
        assert_eq!(e["receipt_id"], "r");
        assert_no_receipt(&mut ca, "r").await;
    }
    // An empty body is fine.
    ca.send_text("SEND\ndestination:/app/match.connect\n\n\0")
        .await
        .unwrap();
    event(&mut ca, "match.waiting").await;
    connect(&mut cb, json!({})).await;
    event(&mut ca, "match.found").await;
    connect(&mut ca, json!({})).await;
    assert_eq!(
        ca.next_json("err").await.unwrap()["code"],
        "already_matched"
    );
    // next is rate limited.
    cb.send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    event(&mut cb, "match.ended").await;
    cb.send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    let e = cb.next_json("err").await.unwrap();
    assert_eq!(e["code"], "rate_limited");
}

#[tokio::test]
async fn reported_users_are_never_matched_again() {
    let app = app().await;
    let (a, mut ca) = player(&app, "a").await;
    let (b, mut cb) = player(&app, "b").await;
    connect(&mut ca, json!({})).await;
    connect(&mut cb, json!({})).await;
    let room = event(&mut ca, "match.found").await["room_id"]
        .as_i64()
        .unwrap();
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": room, "reason": "  rude  "}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The match ends for both.
    assert_eq!(
        event(&mut cb, "match.ended").await["reason"],
        "partner_left"
    );
    let outsider = app.guest("o").await;
    let (s, _) = app
        .post(
            "/api/v1/match/report",
            &outsider.token,
            json!({"room_id": room, "reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": room, "reason": ""}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_reason"));
    let group = app
        .create_room(&app.signup("owner").await, "g", "public")
        .await;
    app.join(&a, group).await;
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": group, "reason": "x"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "not_random_room"));
    // Even long after the partner memory would allow it, and after a restart.
    let dir = app.stop().await;
    let app = crate::helpers::spawn_app_in(dir, |c| {
        c.match_window_ms = 100;
    })
    .await;
    let mut ca = app.stomp(&a).await;
    ca.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    let mut cb = app.stomp(&b).await;
    cb.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    connect(&mut ca, json!({})).await;
    connect(&mut cb, json!({})).await;
    none_of(&mut cb, "match.found", Duration::from_millis(800)).await;
    // Anyone else is matched at once.
    let (_, mut cc) = player(&app, "c").await;
    connect(&mut cc, json!({})).await;
    event(&mut cc, "match.found").await;
}

/// Pairs two fresh players and chats once; returns both and the room.
async fn matched_pair(app: &TestApp) -> ((TestUser, StompClient), (TestUser, StompClient), i64) {
    let (a, mut ca) = player(app, "a").await;
    let (b, mut cb) = player(app, "b").await;
    connect(&mut ca, json!({})).await;
    connect(&mut cb, json!({})).await;
    let room = event(&mut ca, "match.found").await["room_id"]
        .as_i64()
        .unwrap();
    event(&mut cb, "match.found").await;
    say(&mut ca, room, "before").await;
    ((a, ca), (b, cb), room)
}

/// Neither side can post to `room` any more (STOMP and REST), and both still read
/// its whole history (REST and a `since-seq` subscription).
async fn assert_chat_ended(app: &TestApp, room: i64, sides: Vec<(&TestUser, &mut StompClient)>) {
    for (u, c) in sides {
        for (dest, body, receipt) in [
            (
                format!("/app/rooms.{room}"),
                json!({"text": "after"}),
                "late",
            ),
            (format!("/app/rooms.{room}.typing"), json!({}), "typing"),
        ] {
            c.send_json(&dest, &body, Some(receipt)).await.unwrap();
            let e = c.next_of_type("err", "error").await.unwrap();
            assert_eq!(e["code"], "match_ended", "{e}");
            assert_eq!(e["receipt_id"], receipt, "{e}");
        }
        let (s, v) = app
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &u.token,
                json!({"text": "after"}),
            )
            .await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "match_ended"), "{v}");
        let history = app.history(u, room).await;
        assert!(history.iter().any(|m| m["text"] == "before"));
        assert!(!history.iter().any(|m| m["text"] == "after"), "{history:?}");
        let sub = format!("h{}", u.id);
        c.subscribe_sync(&sub, &format!("/topic/rooms.{room}"), &[("since-seq", "0")])
            .await
            .unwrap();
        loop {
            let m = c.next_of_type(&sub, "message").await.unwrap();
            if m["text"] == "before" {
                break;
            }
        }
        let (s, v) = app.get(&format!("/api/v1/rooms/{room}"), &u.token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["ended"], true, "{v}");
    }
}

#[tokio::test]
async fn a_chat_ended_by_next_takes_no_more_messages() {
    let app = app().await;
    let ((a, mut ca), (b, mut cb), room) = matched_pair(&app).await;
    ca.send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    event(&mut cb, "match.ended").await;
    assert_chat_ended(&app, room, vec![(&a, &mut ca), (&b, &mut cb)]).await;
}

#[tokio::test]
async fn a_chat_ended_by_disconnect_takes_no_more_messages() {
    let app = app().await;
    let ((a, mut ca), (b, mut cb), room) = matched_pair(&app).await;
    cb.send_json("/app/match.disconnect", &json!({}), None)
        .await
        .unwrap();
    event(&mut ca, "match.ended").await;
    assert_chat_ended(&app, room, vec![(&a, &mut ca), (&b, &mut cb)]).await;
}

#[tokio::test]
async fn a_chat_ended_by_the_grace_period_takes_no_more_messages() {
    let app = app().await;
    let ((a, ca), (b, mut cb), room) = matched_pair(&app).await;
    ca.abort();
    assert_eq!(
        event(&mut cb, "match.ended").await["reason"],
        "partner_disconnected"
    );
    let mut ca = app.stomp(&a).await;
    ca.subscribe_sync("err", "/user/queue/errors", &[])
        .await
        .unwrap();
    assert_chat_ended(&app, room, vec![(&a, &mut ca), (&b, &mut cb)]).await;
}

/// A single node keeps matches in memory: after a restart no match runs, so the
/// random chats left open are closed (and stay readable).
#[tokio::test]
async fn a_restart_closes_the_chats_whose_match_it_forgot() {
    let app = app().await;
    let ((a, ca), (b, cb), room) = matched_pair(&app).await;
    drop((ca, cb));
    let dir = app.stop().await;
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    for c in [&mut ca, &mut cb] {
        c.subscribe_sync("err", "/user/queue/errors", &[])
            .await
            .unwrap();
    }
    assert_chat_ended(&app, room, vec![(&a, &mut ca), (&b, &mut cb)]).await;
}

#[tokio::test]
async fn a_reported_partner_cannot_post_into_the_reporters_room() {
    let app = app().await;
    let ((a, mut ca), (b, mut cb), room) = matched_pair(&app).await;
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": room, "reason": "rude"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    event(&mut cb, "match.ended").await;
    assert_chat_ended(&app, room, vec![(&b, &mut cb), (&a, &mut ca)]).await;
}

#[tokio::test]
async fn the_former_partner_can_be_reported_after_leaving_the_room() {
    let app = app().await;
    let ((a, _ca), (b, cb), room) = matched_pair(&app).await;
    let (s, v) = app
        .post(&format!("/api/v1/rooms/{room}/leave"), &b.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Leaving the room ends the match there.
    let (_, st) = app.get("/api/v1/match", &a.token).await;
    assert_eq!(st["state"], "idle", "{st}");
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": room, "reason": "rude"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // B, no longer a member, cannot come back into the private room.
    let (s, _) = app
        .post(&format!("/api/v1/rooms/{room}/join"), &b.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    drop(cb.close().await);
}
