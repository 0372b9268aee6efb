//! Moderation in the message path (contract §5, issue 11 part 3): blocked
//! messages are refused (`moderated`, not stored), masked ones are stored and
//! delivered masked (`"masked": true`), flagged ones as written; each room's
//! policy (set by its creator, fixed strict for random chats, off for all with
//! `--moderation off`); names checked strictly; reports of any message; and
//! the matching cool-down after repeated blocked messages.
//!
//! Phrases, as `quicktalk moderate` classifies them: `kill yourself` blocks
//! (self_harm) under both policies; `fuck you` masks to `**** you` under both;
//! `this is damn good` is flagged (kept) under standard and masked to
//! `this is **** good` under strict; `hello there` is allowed.

use quicktalk_client::StompClient;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const BLOCKED: &str = "kill yourself";
const MASKED: &str = "fuck you";
const MASKED_AS: &str = "**** you";
const MILD: &str = "this is damn good";
const MILD_STRICT: &str = "this is **** good";
const CLEAN: &str = "hello there";

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::PATCH, path, Some(token), Some(body))
        .await
}

async fn post_text(app: &TestApp, u: &TestUser, room: i64, text: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/rooms/{room}/messages"),
        &u.token,
        json!({ "text": text }),
    )
    .await
}

/// A room made with `moderation` (None: the default).
async fn room_with(app: &TestApp, u: &TestUser, moderation: Option<&str>) -> i64 {
    let mut body = json!({"name": "talk", "visibility": "public"});
    if let Some(m) = moderation {
        body["moderation"] = json!(m);
    }
    let (s, v) = app.post("/api/v1/rooms", &u.token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["moderation"], moderation.unwrap_or("standard"), "{v}");
    v["id"].as_i64().unwrap()
}

fn texts(history: &[Value]) -> Vec<(String, bool)> {
    history
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m.get("masked").is_some_and(|v| v == true),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_blocked_send_gets_moderated_and_nothing_is_stored() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = room_with(&app, &alice, None).await;
    let mut c = app.stomp_with_errors(&alice).await;
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({ "text": BLOCKED, "client_id": "c-1" }),
        Some("r-blocked"),
    )
    .await
    .unwrap();
    let e = next_error(&mut c, "errs").await;
    assert_eq!(e["code"], "moderated", "{e}");
    assert_eq!(e["categories"], json!(["self_harm"]), "{e}");
    assert_eq!(e["receipt_id"], "r-blocked", "{e}");
    assert_no_receipt(&mut c, "r-blocked").await;
    // Nothing stored: the next message takes seq 2 (after alice's join).
    say(&mut c, room, CLEAN).await;
    let h = app.history(&alice, room).await;
    assert_eq!(texts(&h), vec![(CLEAN.to_owned(), false)]);
    assert_eq!(h.last().unwrap()["seq"], 2);
    // Over REST: 400 with the categories, nothing stored either.
    let (s, v) = post_text(&app, &alice, room, BLOCKED).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(code(&v), "moderated", "{v}");
    assert_eq!(v["error"]["categories"], json!(["self_harm"]), "{v}");
    assert_eq!(app.history(&alice, room).await.len(), 2);
    let verdicts =
        |action: &str| format!("quicktalk_moderation_verdicts_total{{action=\"{action}\"}}");
    assert_eq!(app.metric(&verdicts("block")).await, 2.0);
    assert_eq!(app.metric(&verdicts("allow")).await, 1.0);
}

#[tokio::test]
async fn masked_text_is_delivered_stored_and_replayed_masked() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = room_with(&app, &alice, None).await;
    app.join(&bob, room).await;
    let mut cb = app.stomp(&bob).await;
    cb.subscribe_sync("room", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let mut ca = app.stomp_with_errors(&alice).await;
    say(&mut ca, room, MASKED).await;
    let live = cb.next_of_type("room", "message").await.unwrap();
    assert_eq!(live["text"], MASKED_AS, "{live}");
    assert_eq!(live["masked"], true, "{live}");
    // Over REST too; the answer is the stored (masked) message.
    let (s, v) = post_text(&app, &alice, room, MASKED).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["text"].clone(), v["masked"].clone()),
        (json!(MASKED_AS), json!(true))
    );
    let live = cb.next_of_type("room", "message").await.unwrap();
    assert_eq!(live["masked"], true, "{live}");
    say(&mut ca, room, CLEAN).await;
    let live = cb.next_of_type("room", "message").await.unwrap();
    assert!(live.get("masked").is_none(), "{live}");
    // History and a since-seq replay show the same.
    let want = vec![
        (MASKED_AS.to_owned(), true),
        (MASKED_AS.to_owned(), true),
        (CLEAN.to_owned(), false),
    ];
    assert_eq!(texts(&app.history(&bob, room).await), want);
    let mut late = app.stomp(&bob).await;
    late.subscribe(
        "replay",
        &format!("/topic/rooms.{room}"),
        &[("since-seq", "0")],
    )
    .await
    .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 5 {
        replayed.push(late.next_of_type("replay", "message").await.unwrap());
    }
    assert_eq!(texts(&replayed), want);
}

#[tokio::test]
async fn policy_off_stores_the_raw_text_and_strict_masks_a_mild_word() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let off = room_with(&app, &alice, Some("off")).await;
    let standard = room_with(&app, &alice, Some("standard")).await;
    let strict = room_with(&app, &alice, Some("strict")).await;
    for text in [BLOCKED, MASKED] {
        let (s, v) = post_text(&app, &alice, off, text).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["text"], text);
        assert!(v.get("masked").is_none(), "{v}");
    }
    // A mild word: flagged (kept as written) under standard, masked under strict.
    let (_, v) = post_text(&app, &alice, standard, MILD).await;
    assert_eq!(v["text"], MILD, "{v}");
    assert!(v.get("masked").is_none(), "{v}");
    let (_, v) = post_text(&app, &alice, strict, MILD).await;
    assert_eq!(
        (v["text"].clone(), v["masked"].clone()),
        (json!(MILD_STRICT), json!(true))
    );
    let (s, v) = app
        .post(
            "/api/v1/rooms",
            &alice.token,
            json!({"name": "x", "moderation": "lenient"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_moderation")
    );
}

#[tokio::test]
async fn moderation_off_for_the_server_stores_everything_as_written() {
    let app = spawn_app_with(|c| c.moderation = false).await;
    let alice = app.signup("alice").await;
    let room = room_with(&app, &alice, Some("strict")).await;
    for text in [BLOCKED, MASKED, MILD] {
        let (s, v) = post_text(&app, &alice, room, text).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["text"], text);
    }
}

#[tokio::test]
async fn the_creator_may_change_a_rooms_policy_and_it_applies_at_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = room_with(&app, &alice, None).await;
    app.join(&bob, room).await;
    let path = format!("/api/v1/rooms/{room}");
    // A SEND first, so the room's policy is cached.
    let (_, v) = post_text(&app, &alice, room, MILD).await;
    assert_eq!(v["text"], MILD);
    let (s, v) = patch(&app, &bob.token, &path, json!({"moderation": "off"})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let (s, v) = patch(&app, &alice.token, &path, json!({"moderation": "nope"})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_moderation"),
        "{v}"
    );
    let (s, v) = patch(&app, &alice.token, &path, json!({"moderation": 3})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = patch(&app, &alice.token, &path, json!({"moderation": "strict"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["id"].as_i64(), v["moderation"].clone()),
        (Some(room), json!("strict"))
    );
    assert_eq!(app.get(&path, &bob.token).await.1["moderation"], "strict");
    // No waiting for the cache: this node dropped its entry.
    let (_, v) = post_text(&app, &bob, room, MILD).await;
    assert_eq!(
        (v["text"].clone(), v["masked"].clone()),
        (json!(MILD_STRICT), json!(true))
    );
    let (s, v) = patch(
        &app,
        &alice.token,
        "/api/v1/rooms/999999",
        json!({"moderation": "off"}),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
}

/// Two guests matched into a random room: (a, a's client, b, b's client, room).
async fn matched_pair(app: &TestApp) -> (TestUser, StompClient, TestUser, StompClient, i64) {
    let a = app.guest("Mina").await;
    let b = app.guest("Jane").await;
    let mut ca = app.stomp_with_errors(&a).await;
    let mut cb = app.stomp_with_errors(&b).await;
    for c in [&mut ca, &mut cb] {
        c.subscribe_sync("ev", "/user/queue/events", &[])
            .await
            .unwrap();
        c.send_json("/app/match.connect", &json!({}), None)
            .await
            .unwrap();
    }
    let found = ca.next_of_type("ev", "match.found").await.unwrap();
    cb.next_of_type("ev", "match.found").await.unwrap();
    let room = found["room_id"].as_i64().unwrap();
    (a, ca, b, cb, room)
}

#[tokio::test]
async fn a_random_chat_is_strict_and_its_policy_fixed() {
    let app = spawn_app().await;
    let (a, mut ca, _b, _cb, room) = matched_pair(&app).await;
    let path = format!("/api/v1/rooms/{room}");
    assert_eq!(app.get(&path, &a.token).await.1["moderation"], "strict");
    let (s, v) = patch(&app, &a.token, &path, json!({"moderation": "off"})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    say(&mut ca, room, MILD).await;
    let h = app.history(&a, room).await;
    assert_eq!(texts(&h), vec![(MILD_STRICT.to_owned(), true)]);
}

#[tokio::test]
async fn names_that_strict_moderation_refuses_are_rejected() {
    let app = spawn_app().await;
    let signup = |username: &str, display: &str| json!({"username": username, "password": "correct horse", "display_name": display});
    for body in [
        signup("alice", "damn"),
        signup("fuckface", "Alice"),
        json!({"username": "fuckface", "password": "correct horse"}),
    ] {
        let (s, v) = app
            .request(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "moderated"),
            "{body}: {v}"
        );
        assert_eq!(v["error"]["categories"], json!(["profanity"]), "{v}");
    }
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/guest",
            None,
            Some(json!({"nickname": MASKED})),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "moderated"), "{v}");
    let alice = app.signup("alice").await;
    for name in [BLOCKED, "damn"] {
        let (s, v) = app
            .post("/api/v1/rooms", &alice.token, json!({"name": name}))
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "moderated"),
            "{name}: {v}"
        );
    }
    // Innocent names pass (an allow-listed one included).
    app.guest("민수").await;
    app.create_room(&alice, "assassin club", "public").await;
}

/// The id of the newest message in `room`.
async fn newest(app: &TestApp, u: &TestUser, room: i64) -> i64 {
    app.history(u, room).await.last().unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn report(app: &TestApp, u: &TestUser, id: i64, reason: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/messages/{id}/report"),
        &u.token,
        json!({ "reason": reason }),
    )
    .await
}

#[tokio::test]
async fn any_reader_may_report_a_message_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let public = room_with(&app, &alice, None).await;
    let (s, _) = post_text(&app, &alice, public, CLEAN).await;
    assert_eq!(s, StatusCode::CREATED);
    let msg = newest(&app, &alice, public).await;
    // Bob is no member, but a public room is readable.
    let (s, v) = report(&app, &bob, msg, &format!("  {MASKED} spam  ")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["reported"], true);
    let id = v["id"].as_i64().unwrap();
    let (s, again) = report(&app, &bob, msg, "again").await;
    assert_eq!((s, again["id"].as_i64()), (StatusCode::CREATED, Some(id)));
    let (s, other) = report(&app, &carol, msg, "rude").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(other["id"].as_i64(), Some(id));
    let (s, v) = report(&app, &alice, msg, "mine").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "own_message"),
        "{v}"
    );
    for reason in ["   ", &"x".repeat(501)] {
        let (s, v) = report(&app, &bob, msg, reason).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_reason"),
            "{v}"
        );
    }
    let (s, v) = report(&app, &bob, msg + 1000, "gone").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // A private room's message: not found for a non-member, fine for a member.
    let private = app.create_room(&alice, "secret", "private").await;
    post_text(&app, &alice, private, CLEAN).await;
    let hidden = newest(&app, &alice, private).await;
    let (s, v) = report(&app, &carol, hidden, "spam").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // A join notice is not a text anyone wrote.
    let join = app.history(&alice, public).await[0]["id"].as_i64().unwrap();
    let (s, v) = report(&app, &bob, join, "spam").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "not_reportable"),
        "{v}"
    );
}

#[tokio::test]
async fn message_reports_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| {
        c.rate_limits = true;
        c.rates
            .apply(&["report_user=2/1h".to_owned(), "report_ip=100/1h".to_owned()])
            .unwrap();
    })
    .await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = room_with(&app, &alice, None).await;
    post_text(&app, &alice, room, CLEAN).await;
    let msg = newest(&app, &alice, room).await;
    for _ in 0..2 {
        assert_eq!(report(&app, &bob, msg, "spam").await.0, StatusCode::CREATED);
    }
    let res = app
        .http
        .post(app.url(&format!("/api/v1/messages/{msg}/report")))
        .bearer_auth(&bob.token)
        .json(&json!({"reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "rate_limited", "{v}");
}

#[tokio::test]
async fn three_blocked_messages_pause_random_matching() {
    let app = spawn_app().await;
    let (a, mut ca, b, _cb, room) = matched_pair(&app).await;
    let dest = format!("/app/rooms.{room}");
    for i in 0..3 {
        if i == 2 {
            // Two strikes: no cool-down yet (a is still matched).
            let (s, v) = app.post("/api/v1/match/connect", &a.token, json!({})).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::CONFLICT, "already_matched"),
                "{v}"
            );
        }
        ca.send_json(&dest, &json!({ "text": BLOCKED }), None)
            .await
            .unwrap();
        let e = next_error(&mut ca, "errs").await;
        assert_eq!(e["code"], "moderated", "{e}");
    }
    // STOMP: match.connect and match.next are refused with the wait.
    for op in ["connect", "next"] {
        ca.send_json(&format!("/app/match.{op}"), &json!({}), Some(op))
            .await
            .unwrap();
        let e = next_error(&mut ca, "errs").await;
        assert_eq!(e["code"], "cooldown", "{op}: {e}");
        assert_eq!(e["receipt_id"], op, "{e}");
        let wait = e["retry_after_ms"].as_u64().unwrap();
        assert!((290_000..=300_000).contains(&wait), "{wait}");
    }
    // REST: 429 cooldown with Retry-After.
    let res = app
        .http
        .post(app.url("/api/v1/match/connect"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((290..=300).contains(&secs), "{secs}");
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "cooldown", "{v}");
    // The partner is not affected (still matched: no cool-down for them), and a
    // may still leave.
    let (s, v) = app.post("/api/v1/match/connect", &b.token, json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "already_matched"),
        "{v}"
    );
    let (s, v) = app
        .post("/api/v1/match/disconnect", &a.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_partner_report_is_stored_masked_and_answers_its_queue_id() {
    let app = spawn_app().await;
    let (a, _ca, _b, _cb, room) = matched_pair(&app).await;
    let (s, v) = app
        .post(
            "/api/v1/match/report",
            &a.token,
            json!({"room_id": room, "reason": format!("said {MASKED}")}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["reported"], true);
    assert!(v["id"].as_i64().is_some(), "{v}");
}
