//! Issue 10 (§3b.4, impersonation): guests are marked wherever a user appears
//! (messages live and in history, typing, presence, members, profiles), and no
//! new name may pass for a registered user's.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{code, say, spawn_app, TestApp};

async fn guest_named(app: &TestApp, nickname: &str) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        "/api/v1/auth/guest",
        None,
        Some(json!({ "nickname": nickname })),
    )
    .await
}

async fn signup_as(app: &TestApp, username: &str, display_name: &str) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        "/api/v1/auth/signup",
        None,
        Some(json!({"username": username, "password": "correct horse", "display_name": display_name})),
    )
    .await
}

#[tokio::test]
async fn guest_status_is_in_every_message_live_and_in_history() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let guest = app.guest("민수").await;
    let room = app.create_room(&alice, "lobby", "public").await;
    app.join(&guest, room).await;
    let dest = format!("/topic/rooms.{room}");
    let mut a = app.stomp(&alice).await;
    a.subscribe_sync("a", &dest, &[]).await.unwrap();
    let mut g = app.stomp(&guest).await;
    g.subscribe_sync("g", &dest, &[]).await.unwrap();
    say(&mut g, room, "from the guest").await;
    say(&mut a, room, "from alice").await;
    let mut live = Vec::new();
    while live.len() < 2 {
        let m = a.next_of_type("a", "message").await.unwrap();
        if m["kind"] == "text" {
            live.push((
                m["sender"]["id"].as_i64().unwrap(),
                m["sender"]["guest"].clone(),
            ));
        }
    }
    assert_eq!(
        live,
        [(guest.id, json!(true)), (alice.id, json!(false))],
        "MESSAGE frames"
    );

    // REST history: the joins too.
    let history = app.history(&alice, room).await;
    let stored: Vec<(i64, Value)> = history
        .iter()
        .map(|m| {
            (
                m["sender"]["id"].as_i64().unwrap(),
                m["sender"]["guest"].clone(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            (alice.id, json!(false)),
            (guest.id, json!(true)),
            (guest.id, json!(true)),
            (alice.id, json!(false)),
        ],
        "REST history"
    );

    // A since-seq replay.
    let mut r = app.stomp(&alice).await;
    r.subscribe_sync("r", &dest, &[("since-seq", "0")])
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        let m = r.next_of_type("r", "message").await.unwrap();
        replayed.push((
            m["sender"]["id"].as_i64().unwrap(),
            m["sender"]["guest"].clone(),
        ));
    }
    assert_eq!(replayed, stored, "since-seq replay");
}

#[tokio::test]
async fn guest_status_is_in_typing_and_presence() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let guest = app.guest("손님").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&guest, room).await;
    let dest = format!("/topic/rooms.{room}");
    let mut a = app.stomp(&alice).await;
    a.subscribe_sync("a", &dest, &[]).await.unwrap();
    let mut g = app.stomp(&guest).await;
    g.subscribe_sync("g", &dest, &[]).await.unwrap();
    loop {
        let p = a.next_of_type("a", "presence").await.unwrap();
        if p["online"].as_array().unwrap().len() == 2 {
            let mut online = p["online"].as_array().unwrap().clone();
            online.sort_by_key(|u| u["id"].as_i64());
            assert_eq!(
                online,
                [
                    json!({"id": alice.id, "name": alice.name, "guest": false}),
                    json!({"id": guest.id, "name": "손님", "guest": true}),
                ]
            );
            break;
        }
    }
    g.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let t = a.next_of_type("a", "typing").await.unwrap();
    assert_eq!(
        t["user"],
        json!({"id": guest.id, "name": "손님", "guest": true})
    );
}

#[tokio::test]
async fn guest_members_are_marked_and_registered_members_show_their_username() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let guest = app.guest("손님").await;
    let room = app.create_room(&alice, "r", "public").await;
    app.join(&guest, room).await;
    let (s, v) = app
        .get(&format!("/api/v1/rooms/{room}/members"), &guest.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["members"],
        json!([
            {"id": alice.id, "name": alice.name, "online": false, "guest": false, "username": "alice"},
            {"id": guest.id, "name": "손님", "online": false, "guest": true, "username": null},
        ])
    );
}

#[tokio::test]
async fn guest_and_registered_profiles() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let guest = app.guest("손님").await;
    let (s, v) = app
        .get(&format!("/api/v1/users/{}", alice.id), &guest.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"id": alice.id, "username": "alice", "display_name": alice.name, "guest": false, "role": "user", "dm_policy": "everyone"})
    );
    let (s, v) = app
        .get(&format!("/api/v1/users/{}", guest.id), &alice.token)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"id": guest.id, "username": null, "display_name": "손님", "guest": true, "role": "user", "dm_policy": "everyone"})
    );
    for unknown in ["987654321", "not-a-number"] {
        let (s, v) = app
            .get(&format!("/api/v1/users/{unknown}"), &alice.token)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}: {v}");
        assert_eq!(code(&v), "not_found");
    }
    let (s, v) = app
        .request(
            Method::GET,
            &format!("/api/v1/users/{}", alice.id),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&v), "unauthorized");
}

#[tokio::test]
async fn guest_nicknames_that_look_like_a_registered_user_are_refused() {
    let app = spawn_app().await;
    let (s, _) = signup_as(&app, "alice", "Alice").await;
    assert_eq!(s, StatusCode::CREATED, "one's own username as display name");
    app.signup("cope").await;
    for look_alike in [
        "Alice",
        "alice",
        "ALICE",
        " a1ice ",
        "\u{FF21}lice",                 // fullwidth Ａ
        "\u{441}\u{43E}\u{440}\u{435}", // "соре", all Cyrillic
    ] {
        let (s, v) = guest_named(&app, look_alike).await;
        assert_eq!(s, StatusCode::CONFLICT, "{look_alike:?}: {v}");
        assert_eq!(code(&v), "name_taken", "{look_alike:?}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Look-alike scripts mixed in one word: refused whoever exists.
    for mixed in ["\u{410}lice", "B\u{43E}b", "\u{3bf}bama"] {
        let (s, v) = guest_named(&app, mixed).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{mixed:?}: {v}");
        assert_eq!(code(&v), "invalid_nickname", "{mixed:?}");
    }
    // Real names keep working, Korean mixes included; guests may share names.
    for ok in [
        "민수Kim",
        "김철수",
        "李민수",
        "Alicia",
        "🙂",
        "Иван Ivan",
        "Bob",
        "Bob",
    ] {
        let (s, v) = guest_named(&app, ok).await;
        assert_eq!(s, StatusCode::CREATED, "{ok:?}: {v}");
        assert_eq!(v["user"]["display_name"], ok);
    }
    // A guest's name is not protected: a registered user may take it.
    let (s, v) = signup_as(&app, "bob", "Bob").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn signups_cannot_take_a_look_alike_of_a_registered_name_either() {
    let app = spawn_app().await;
    let (s, _) = signup_as(&app, "alice", "Alice").await;
    assert_eq!(s, StatusCode::CREATED);
    // Another user's display name looking like alice's.
    let (s, v) = signup_as(&app, "mallory", "\u{430}lice").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_display_name"),
        "{v}"
    );
    let (s, v) = signup_as(&app, "mallory", "A1ICE").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "name_taken"), "{v}");
    // A username alone (the display name defaults to it).
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"username": "a1ice", "password": "correct horse"})),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "name_taken"), "{v}");
    // The refused sign-ups left nothing behind: the username is still free.
    let (s, v) = signup_as(&app, "mallory", "Mallory").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A username looking like someone's display name.
    let (s, v) = signup_as(&app, "ma11ory", "Someone Else").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "name_taken"), "{v}");
    // The exact username of an existing user is still username_taken.
    let (s, v) = signup_as(&app, "ALICE", "Totally New").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "username_taken"),
        "{v}"
    );
}

#[tokio::test]
async fn guest_rooms_named_like_a_registered_user_are_refused() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.guest("Bobby").await;
    for look_alike in ["alice", "Alice", "alice 님", "ALICE  님"] {
        let (s, v) = app
            .post(
                "/api/v1/rooms",
                &bob.token,
                json!({"name": look_alike, "visibility": "public"}),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, "name_taken"),
            "{look_alike:?}: {v}"
        );
    }
    let (s, v) = app
        .post(
            "/api/v1/rooms",
            &bob.token,
            json!({"name": "p\u{430}ypal", "visibility": "public"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_room_name"),
        "{v}"
    );
    // Alice may name a room after herself.
    app.create_room(&alice, "Alice", "public").await;
    app.create_room(&bob, "민수Kim 방", "public").await;
}
