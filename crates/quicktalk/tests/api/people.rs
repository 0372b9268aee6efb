//! Contract §7 against the real server: profiles and avatars, the guest
//! upgrade, friends with live events, and direct rooms (one per pair, however
//! many ask at once). Blocks are in `blocks.rs`.

use std::io::Cursor;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{code, say, spawn_app, TestApp, TestUser};

async fn patch_me(app: &TestApp, u: &TestUser, body: Value) -> (StatusCode, Value) {
    app.request(Method::PATCH, "/api/v1/me", Some(&u.token), Some(body))
        .await
}

async fn upload(app: &TestApp, u: &TestUser, bytes: Vec<u8>) -> String {
    let res = app
        .http
        .post(app.url("/api/v1/media?name=face.png"))
        .bearer_auth(&u.token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 40, 200]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn get_bytes(
    app: &TestApp,
    u: &TestUser,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = app
        .http
        .get(app.url(path))
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    let (s, h) = (res.status(), res.headers().clone());
    (s, h, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn profiles_count_graphemes_normalize_and_are_moderated() {
    let app = spawn_app().await;
    let u = app.signup("minsu").await;
    // 64 Hangul syllables, sent decomposed (NFD): stored NFC, 64 characters.
    let nfd: String = "\u{1100}\u{1161}".repeat(64);
    let (s, v) = patch_me(
        &app,
        &u,
        json!({"display_name": nfd, "status_message": "  안녕 👋  "}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["display_name"], "가".repeat(64));
    assert_eq!(v["status_message"], "안녕 👋");
    assert_eq!(v["dm_policy"], "everyone");
    let (s, v) = patch_me(&app, &u, json!({"display_name": "가".repeat(65)})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_display_name")
    );
    let (s, v) = patch_me(&app, &u, json!({"status_message": "字".repeat(141)})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_status_message")
    );
    // Moderated: a name as a name, a status message as a message.
    let (s, v) = patch_me(&app, &u, json!({"display_name": "fuckface"})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "moderated"), "{v}");
    let (s, v) = patch_me(&app, &u, json!({"status_message": "kill yourself"})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "moderated"), "{v}");
    let (s, v) = patch_me(&app, &u, json!({"status_message": "fuck you"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status_message"], "**** you");
    // Another registered user's look-alike name is refused.
    app.signup("jisoo").await;
    let (s, v) = patch_me(&app, &u, json!({"display_name": "JISOO"})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "name_taken"), "{v}");
    // Null clears; dm_policy is checked.
    let (s, v) = patch_me(
        &app,
        &u,
        json!({"status_message": null, "dm_policy": "friends"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("status_message").is_none(), "{v}");
    assert_eq!(v["dm_policy"], "friends");
    let (s, v) = patch_me(&app, &u, json!({"dm_policy": "nobody"})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_dm_policy")
    );
    // Nothing half-applied by a refused patch.
    let (_, me) = app.get("/api/v1/me", &u.token).await;
    assert_eq!(me["display_name"], "가".repeat(64));
    // Profiles by id and by exact username (case-insensitive); no listing.
    let other = app.signup("reader").await;
    let (s, v) = app
        .get(&format!("/api/v1/users/{}", u.id), &other.token)
        .await;
    assert_eq!((s, v["id"].as_i64()), (StatusCode::OK, Some(u.id)));
    let (s, v) = app
        .get("/api/v1/users/by-username/MinSu", &other.token)
        .await;
    assert_eq!((s, v["id"].as_i64()), (StatusCode::OK, Some(u.id)), "{v}");
    let (s, _) = app
        .get("/api/v1/users/by-username/mins", &other.token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .request(Method::GET, "/api/v1/users/by-username/minsu", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_avatar_is_an_own_image_reencoded_to_two_squares() {
    let app = spawn_app().await;
    let u = app.signup("painter").await;
    let other = app.guest("viewer").await;
    let media = upload(&app, &u, png(300, 120)).await;
    // Someone else's image cannot be made your avatar.
    let (s, _) = patch_me(&app, &other, json!({"avatar": media})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = patch_me(&app, &u, json!({"avatar": media})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = v["avatar_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/api/v1/avatars/"), "{url}");
    for (q, side) in [("", 256), ("?size=64", 64), ("?size=256", 256)] {
        let (s, h, body) = get_bytes(&app, &other, &format!("{url}{q}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["content-type"], "image/jpeg");
        assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), (side, side));
    }
    let (s, _, _) = get_bytes(&app, &other, &format!("{url}?size=5")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.request(Method::GET, &url, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "signed-in users only");
    // The profile shows it to others.
    let (_, p) = app
        .get(&format!("/api/v1/users/{}", u.id), &other.token)
        .await;
    assert_eq!(p["avatar_url"], url.as_str());
    // A new avatar is a new URL; the old one is gone.
    let media2 = upload(&app, &u, png(50, 90)).await;
    let (_, v) = patch_me(&app, &u, json!({"avatar": media2})).await;
    let url2 = v["avatar_url"].as_str().unwrap().to_owned();
    assert_ne!(url, url2);
    let (s, _, _) = get_bytes(&app, &other, &url).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A file that is not an image is refused; null clears.
    let res = app
        .http
        .post(app.url("/api/v1/media?name=notes.txt"))
        .bearer_auth(&u.token)
        .body("just text")
        .send()
        .await
        .unwrap();
    let text_id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = patch_me(&app, &u, json!({"avatar": text_id})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "not_an_image"),
        "{v}"
    );
    let (s, v) = patch_me(&app, &u, json!({"avatar": null})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.get("avatar_url").is_none(), "{v}");
    let (s, _, _) = get_bytes(&app, &other, &url2).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_guest_upgrades_in_place_and_the_old_token_stops_working() {
    let app = spawn_app().await;
    let g = app.guest("wanderer").await;
    let owner = app.signup("owner").await;
    let room = app.create_room(&owner, "lounge", "private").await;
    // The guest is in a private room, with history.
    let (s, v) = app
        .post(&format!("/api/v1/rooms/{room}/join"), &g.token, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let public = app.create_room(&owner, "square", "public").await;
    app.join(&g, public).await;
    let mut c = app.stomp(&g).await;
    say(&mut c, public, "before the upgrade").await;
    let (s, v) = app
        .post(
            "/api/v1/auth/upgrade",
            &g.token,
            json!({"username": "wanderer", "password": "correct horse"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["id"].as_i64(), Some(g.id), "same id");
    assert_eq!(v["user"]["guest"], false);
    assert_eq!(v["user"]["username"], "wanderer");
    let token = v["token"].as_str().unwrap().to_owned();
    // The old token is refused everywhere; the new one works.
    let (s, v) = app.get("/api/v1/me", &g.token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = app.get("/api/v1/rooms", &g.token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        quicktalk_client::StompClient::connect(&app.ws_url(), &g.token)
            .await
            .is_err()
    );
    let upgraded = TestUser { token, ..g.clone() };
    let (s, me) = app.get("/api/v1/me", &upgraded.token).await;
    assert_eq!((s, me["guest"].as_bool()), (StatusCode::OK, Some(false)));
    // Same rooms and history; login works.
    let h = app.history(&upgraded, public).await;
    assert!(h.iter().any(|m| m["text"] == "before the upgrade"));
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "wanderer", "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Again: already registered. A taken username: conflict.
    let (s, v) = app
        .post(
            "/api/v1/auth/upgrade",
            &upgraded.token,
            json!({"username": "other1", "password": "correct horse"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "already_registered"));
    let g2 = app.guest("late").await;
    let (s, v) = app
        .post(
            "/api/v1/auth/upgrade",
            &g2.token,
            json!({"username": "OWNER", "password": "correct horse"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "username_taken"),
        "{v}"
    );
    let (s, _) = app.get("/api/v1/me", &g2.token).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a refused upgrade leaves the guest token working"
    );
}

async fn events(app: &TestApp, u: &TestUser) -> quicktalk_client::StompClient {
    let mut c = app.stomp(u).await;
    c.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    c
}

#[tokio::test]
async fn friends_request_accept_list_and_unfriend_with_live_events() {
    let app = spawn_app().await;
    let a = app.signup("alice").await;
    let b = app.signup("bobby").await;
    let g = app.guest("guest").await;
    let mut ca = events(&app, &a).await;
    let mut cb = events(&app, &b).await;
    // Guests have no friends, either way.
    let (s, v) = app
        .post(
            "/api/v1/friends/requests",
            &g.token,
            json!({"user_id": a.id}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "registration_required")
    );
    let (s, v) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": g.id}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "registration_required")
    );
    let (s, v) = app.get("/api/v1/friends", &g.token).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "registration_required")
    );
    let (s, _) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": a.id}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": 999_999}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // a asks b: 201, b hears it live.
    let (s, r) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        (r["from"].as_i64(), r["to"].as_i64()),
        (Some(a.id), Some(b.id))
    );
    assert_eq!(r["status"], "pending");
    let ev = cb.next_of_type("ev", "friend.request").await.unwrap();
    assert_eq!(ev["request"]["id"], r["id"]);
    assert_eq!(ev["request"]["user"]["id"].as_i64(), Some(a.id));
    // Asking again: the same pending request, 200.
    let (s, again) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!((s, &again["id"]), (StatusCode::OK, &r["id"]));
    let (_, lists) = app.get("/api/v1/friends/requests", &b.token).await;
    assert_eq!(lists["incoming"][0]["id"], r["id"], "{lists}");
    let (_, lists) = app.get("/api/v1/friends/requests", &a.token).await;
    assert_eq!(lists["outgoing"][0]["id"], r["id"], "{lists}");
    // Only the target answers.
    let (s, _) = app
        .post(
            &format!("/api/v1/friends/requests/{}/accept", r["id"]),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // b asks a back: accepted at once (200), both told.
    let (s, v) = app
        .post(
            "/api/v1/friends/requests",
            &b.token,
            json!({"user_id": a.id}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{v}"
    );
    for c in [&mut ca, &mut cb] {
        let ev = c.next_of_type("ev", "friend.accepted").await.unwrap();
        assert_eq!(ev["request"]["id"], r["id"]);
    }
    let (s, f) = app.get("/api/v1/friends", &a.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["friends"][0]["id"].as_i64(), Some(b.id), "{f}");
    assert_eq!(f["friends"][0]["online"], true, "b is connected");
    drop(cb);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, f) = app.get("/api/v1/friends", &a.token).await;
    assert_eq!(f["friends"][0]["online"], false, "{f}");
    let (s, v) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "already_friends"));
    // Unfriend: both told, gone from both lists.
    let mut cb = events(&app, &b).await;
    let (s, _) = app
        .request(
            Method::DELETE,
            &format!("/api/v1/friends/{}", b.id),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        cb.next_of_type("ev", "friend.removed").await.unwrap()["user_id"].as_i64(),
        Some(a.id)
    );
    assert_eq!(
        ca.next_of_type("ev", "friend.removed").await.unwrap()["user_id"].as_i64(),
        Some(b.id)
    );
    let (_, f) = app.get("/api/v1/friends", &b.token).await;
    assert_eq!(f["friends"], json!([]));
    // Decline (untold) and cancel (told to the target).
    let (_, r2) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    cb.next_of_type("ev", "friend.request").await.unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/friends/requests/{}/decline", r2["id"]),
            &b.token,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("declined"))
    );
    let (s, v) = app
        .post(
            &format!("/api/v1/friends/requests/{}/accept", r2["id"]),
            &b.token,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "not_pending"));
    let (s, r3) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "asking again after a decline: {r3}");
    cb.next_of_type("ev", "friend.request").await.unwrap();
    let (s, _) = app
        .request(
            Method::DELETE,
            &format!("/api/v1/friends/requests/{}", r3["id"]),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "only the sender cancels");
    let (s, v) = app
        .request(
            Method::DELETE,
            &format!("/api/v1/friends/requests/{}", r3["id"]),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let ev = cb.next_of_type("ev", "friend.cancelled").await.unwrap();
    assert_eq!(ev["request_id"], r3["id"]);
}

#[tokio::test]
async fn friend_requests_are_rate_limited() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.rate_limits = true;
        c.rates.set(
            quicktalk::limits::Limit::FriendRequestUser,
            "2/1h".parse().unwrap(),
        );
    })
    .await;
    let a = app.signup("asker").await;
    for i in 0..2 {
        let b = app.signup(&format!("target{i}")).await;
        let (s, v) = app
            .post(
                "/api/v1/friends/requests",
                &a.token,
                json!({"user_id": b.id}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let c = app.signup("target9").await;
    let (s, v) = app
        .post(
            "/api/v1/friends/requests",
            &a.token,
            json!({"user_id": c.id}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn one_direct_room_per_pair_however_many_ask_at_once() {
    let app = spawn_app().await;
    let a = app.signup("anna").await;
    let b = app.guest("bo").await;
    let (s, v) = app
        .post("/api/v1/direct", &a.token, json!({"user_id": a.id}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, first) = app
        .post("/api/v1/direct", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["kind"], "direct");
    assert_eq!(first["visibility"], "private");
    assert_eq!(first["peer"]["id"].as_i64(), Some(b.id));
    let room = first["id"].as_i64().unwrap();
    let (s, v) = app
        .post("/api/v1/direct", &b.token, json!({"user_id": a.id}))
        .await;
    assert_eq!(
        (s, v["id"].as_i64()),
        (StatusCode::OK, Some(room)),
        "the other way round: the same room"
    );
    // Both are members and can talk; an outsider cannot read it.
    let mut cb = app.stomp(&b).await;
    say(&mut cb, room, "hi anna").await;
    let h = app.history(&a, room).await;
    assert_eq!(h.last().unwrap()["text"], "hi anna");
    let outsider = app.signup("outsider").await;
    let (s, _) = app
        .get(&format!("/api/v1/rooms/{room}/messages"), &outsider.token)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .post(&format!("/api/v1/rooms/{room}/leave"), &a.token, json!({}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
    // Many at once, from both sides, for a new pair: one room.
    let c = app.signup("carol").await;
    let d = app.signup("dave").await;
    let calls = (0..12).map(|i| {
        let (me, other) = if i % 2 == 0 { (&c, &d) } else { (&d, &c) };
        app.post("/api/v1/direct", &me.token, json!({"user_id": other.id}))
    });
    let results = futures_util::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let ids: std::collections::HashSet<i64> = results
        .iter()
        .map(|(s, v)| {
            assert!(s.is_success(), "{v}");
            v["id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!((created, ids.len()), (1, 1), "{results:?}");
    let (_, members) = app
        .get(
            &format!("/api/v1/rooms/{}/members", ids.iter().next().unwrap()),
            &c.token,
        )
        .await;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(2),
        "{members}"
    );
}

#[tokio::test]
async fn friends_only_dm_policy_refuses_strangers_and_takes_friends() {
    let app = spawn_app().await;
    let a = app.signup("private1").await;
    let b = app.signup("stranger").await;
    let (s, _) = patch_me(&app, &a, json!({"dm_policy": "friends"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post("/api/v1/direct", &b.token, json!({"user_id": a.id}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
    // a opens one (their own choice); b still cannot post into it.
    let (s, v) = app
        .post("/api/v1/direct", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let room = v["id"].as_i64().unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &b.token,
            json!({"text": "hello?"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "not_allowed"), "{v}");
    // Friends: allowed.
    let (_, r) = app
        .post(
            "/api/v1/friends/requests",
            &b.token,
            json!({"user_id": a.id}),
        )
        .await;
    app.post(
        &format!("/api/v1/friends/requests/{}/accept", r["id"]),
        &a.token,
        json!({}),
    )
    .await;
    let (s, v) = app
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &b.token,
            json!({"text": "hello friend"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
}
