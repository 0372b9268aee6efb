//! Contract §9 over HTTP and STOMP, on the embedded store (SQLite) and on
//! PostgreSQL (`QUICKTALK_TEST_POSTGRES_URL`, a schema per test): search over
//! the caller's rooms or one room, Korean substrings, paging by cursor, what is
//! never returned (deleted, blocked), its errors and limit, and `around_seq`.

use std::sync::{Arc, Mutex};

use quicktalk::model::Role;
use quicktalk::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster_env::{pg_schema, PgSchema};
use crate::helpers::{code, say, spawn_app_wrapping_store, TestApp, TestUser};

/// The server under test, its store, and the PostgreSQL schema to drop.
struct Env {
    app: TestApp,
    store: Arc<dyn Store>,
    schema: Option<PgSchema>,
}

impl Env {
    async fn finish(self) {
        if let Some(s) = self.schema {
            s.drop_schema().await;
        }
    }
}

/// A server on `backend` ("sqlite" or "postgres"); `None` (said) when
/// PostgreSQL is not configured outside CI.
async fn env(backend: &str, tweak: impl FnOnce(&mut quicktalk::config::Config)) -> Option<Env> {
    let schema = match backend {
        "postgres" => Some(pg_schema("search on PostgreSQL", "search").await?),
        _ => None,
    };
    let database_url = schema.as_ref().map(|s| s.db_url.clone());
    let slot: Arc<Mutex<Option<Arc<dyn Store>>>> = Arc::default();
    let keep = slot.clone();
    let app = spawn_app_wrapping_store(
        tempfile::tempdir().unwrap(),
        |c| {
            c.database_url = database_url;
            tweak(c);
        },
        move |s| {
            *keep.lock().unwrap() = Some(s.clone());
            s
        },
    )
    .await;
    let store = slot.lock().unwrap().take().expect("store captured");
    Some(Env { app, store, schema })
}

async fn search(app: &TestApp, who: &TestUser, query: &str) -> (StatusCode, Value) {
    let url =
        reqwest::Url::parse_with_params("http://x/api/v1/search", query_pairs(query)).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    app.get(&path, &who.token).await
}

/// `q=…&room_id=…` from "q|room_id=…|limit=…" (the first part is `q`).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let mut parts = query.split('|');
    let mut pairs = vec![("q".to_owned(), parts.next().unwrap().to_owned())];
    for p in parts {
        let (k, v) = p.split_once('=').unwrap();
        pairs.push((k.to_owned(), v.to_owned()));
    }
    pairs
}

fn hit_texts(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| r["message"]["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn search_ok(app: &TestApp, who: &TestUser, query: &str) -> Value {
    let (s, v) = search(app, who, query).await;
    assert_eq!(s, StatusCode::OK, "{query}: {v}");
    v
}

async fn korean_search_over_my_rooms(backend: &str) {
    let Some(env) = env(backend, |_| {}).await else {
        return;
    };
    let app = &env.app;
    let a = app.signup("alice").await;
    let b = app.signup("bob").await;
    let outsider = app.signup("eve").await;
    let lobby = app.create_room(&a, "로비", "public").await;
    let secret = app.create_room(&a, "비밀방", "private").await;
    let other = app.create_room(&outsider, "남의 방", "public").await;
    app.join(&b, lobby).await;
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    let mut ce = app.stomp(&outsider).await;
    // A RECEIPT means the message is searchable: search right after each.
    say(&mut ca, lobby, "너를 사랑해요").await;
    assert_eq!(
        hit_texts(&search_ok(app, &a, "사랑").await),
        ["너를 사랑해요"]
    );
    say(&mut cb, lobby, "사랑을 해요 ㅋㅋ").await;
    assert_eq!(
        hit_texts(&search_ok(app, &a, "사랑을 해").await),
        ["사랑을 해요 ㅋㅋ"]
    );
    say(&mut ca, secret, "비밀 사랑 이야기").await;
    say(&mut ce, other, "남의 사랑").await;
    say(&mut cb, lobby, "QuickTalk 좋아요").await;

    let v = search_ok(app, &a, "사랑").await;
    assert_eq!(
        hit_texts(&v),
        ["비밀 사랑 이야기", "사랑을 해요 ㅋㅋ", "너를 사랑해요"]
    );
    assert!(v.get("next_cursor").is_none(), "{v}");
    let first = &v["results"][0];
    assert_eq!(first["room"], json!({"id": secret, "name": "비밀방"}));
    assert_eq!(first["message"]["room_id"], secret);
    assert_eq!(first["message"]["sender"]["id"], a.id);
    assert_eq!(first["message"]["kind"], "text");
    assert!(first["message"]["seq"].is_i64());
    // The same message JSON as history.
    let history = app.history(&a, secret).await;
    assert_eq!(&first["message"], history.last().unwrap());

    // Case-insensitive, mixed scripts; bob sees his rooms only.
    assert_eq!(
        hit_texts(&search_ok(app, &b, "quicktalk 좋").await),
        ["QuickTalk 좋아요"]
    );
    assert_eq!(
        hit_texts(&search_ok(app, &b, "사랑").await),
        ["사랑을 해요 ㅋㅋ", "너를 사랑해요"]
    );
    assert_eq!(
        hit_texts(&search_ok(app, &b, "ㅋㅋ").await),
        ["사랑을 해요 ㅋㅋ"]
    );

    // One room: a public one anyone may search; a private one members only;
    // an unknown one is 404.
    assert_eq!(
        hit_texts(&search_ok(app, &a, &format!("사랑|room_id={other}")).await),
        ["남의 사랑"]
    );
    assert_eq!(
        hit_texts(&search_ok(app, &a, &format!("사랑|room_id={lobby}")).await),
        ["사랑을 해요 ㅋㅋ", "너를 사랑해요"]
    );
    let (s, v) = search(app, &b, &format!("사랑|room_id={secret}")).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let (s, v) = search(app, &b, "사랑|room_id=999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // Without a token: 401.
    let (s, _) = app
        .request(Method::GET, "/api/v1/search?q=abc", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    env.finish().await;
}

#[tokio::test]
async fn korean_search_over_my_rooms_sqlite() {
    korean_search_over_my_rooms("sqlite").await;
}

#[tokio::test]
async fn korean_search_over_my_rooms_postgres() {
    korean_search_over_my_rooms("postgres").await;
}

async fn pages_deletions_blocks_and_errors(backend: &str) {
    let Some(env) = env(backend, |_| {}).await else {
        return;
    };
    let app = &env.app;
    let a = app.signup("alice").await;
    let b = app.signup("bob").await;
    let c = app.signup("carol").await;
    let moderator = app.signup("mod").await;
    env.store.set_role("mod", Role::Moderator).await.unwrap();
    let room = app.create_room(&a, "room", "public").await;
    app.join(&b, room).await;
    app.join(&c, room).await;
    let mut ca = app.stomp(&a).await;
    for i in 0..23 {
        say(&mut ca, room, &format!("점심 {i}")).await;
        say(&mut ca, room, "다른 이야기").await;
    }
    // Paging, for a short query and a long one.
    for q in ["점심", "점심 1"] {
        let want: Vec<String> = (0..23)
            .rev()
            .map(|i| format!("점심 {i}"))
            .filter(|t| t.contains(q))
            .collect();
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("{q}|limit=5");
            if let Some(c) = &cursor {
                query.push_str(&format!("|cursor={c}"));
            }
            let v = search_ok(app, &a, &query).await;
            let page = hit_texts(&v);
            assert!(page.len() <= 5);
            got.extend(page);
            match v.get("next_cursor") {
                Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
                None => break,
            }
        }
        assert_eq!(got, want, "{q}");
        // The default page is 20.
        let v = search_ok(app, &a, q).await;
        assert_eq!(hit_texts(&v).len(), want.len().min(20));
    }

    // A moderator's deletion takes the message out of search at once.
    let v = search_ok(app, &a, "점심 22").await;
    let id = v["results"][0]["message"]["id"].as_i64().unwrap();
    let (s, v) = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/messages/{id}"),
            Some(&moderator.token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert!(hit_texts(&search_ok(app, &a, "점심 22").await).is_empty());
    assert!(!hit_texts(&search_ok(app, &a, "점심").await).contains(&"점심 22".to_owned()));

    // A blocked user's messages are never returned to the blocker.
    let mut cc = app.stomp(&c).await;
    say(&mut cc, room, "캐롤의 점심").await;
    assert_eq!(
        hit_texts(&search_ok(app, &b, "캐롤의").await),
        ["캐롤의 점심"]
    );
    let (s, _) = app
        .post("/api/v1/blocks", &b.token, json!({"user_id": c.id}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for q in ["캐롤의", "캐롤", "점심"] {
        let texts = hit_texts(&search_ok(app, &b, q).await);
        assert!(!texts.contains(&"캐롤의 점심".to_owned()), "{q}: {texts:?}");
    }
    assert_eq!(
        hit_texts(&search_ok(app, &a, "캐롤의").await),
        ["캐롤의 점심"]
    );

    // Bad input: a clear 400 each.
    let long = "가".repeat(101);
    for (q, want) in [
        ("   ", "invalid_query"),
        (long.as_str(), "invalid_query"),
        ("abc|limit=0", "invalid_query"),
        ("abc|limit=51", "invalid_query"),
        ("abc|cursor=nope", "invalid_cursor"),
    ] {
        let (s, v) = search(app, &a, q).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, want), "{q}: {v}");
    }
    let (s, v) = app.get("/api/v1/search", &a.token).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_query"),
        "{v}"
    );
    let hundred = "가".repeat(100);
    search_ok(app, &a, &hundred).await;
    env.finish().await;
}

#[tokio::test]
async fn pages_deletions_blocks_and_errors_sqlite() {
    pages_deletions_blocks_and_errors("sqlite").await;
}

#[tokio::test]
async fn pages_deletions_blocks_and_errors_postgres() {
    pages_deletions_blocks_and_errors("postgres").await;
}

async fn around_seq_opens_a_hit_in_context(backend: &str) {
    let Some(env) = env(backend, |_| {}).await else {
        return;
    };
    let app = &env.app;
    let a = app.signup("alice").await;
    let b = app.signup("bob").await;
    let room = app.create_room(&a, "room", "public").await;
    app.join(&b, room).await;
    let mut ca = app.stomp(&a).await;
    let mut cb = app.stomp(&b).await;
    for i in 0..30 {
        say(&mut ca, room, &format!("m{i}")).await;
    }
    say(&mut cb, room, "bob says hi").await;
    for i in 30..40 {
        say(&mut ca, room, &format!("m{i}")).await;
    }
    let v = search_ok(app, &a, "m12").await;
    let hit = &v["results"][0]["message"];
    let seq = hit["seq"].as_i64().unwrap();
    let page = |q: String| {
        let a = a.clone();
        async move {
            let (s, v) = app
                .get(&format!("/api/v1/rooms/{room}/messages?{q}"), &a.token)
                .await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v
        }
    };
    let v = page(format!("around_seq={seq}&limit=10")).await;
    let seqs: Vec<i64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, ((seq - 4)..=(seq + 5)).collect::<Vec<_>>(), "{v}");
    assert_eq!(&v["messages"][4], hit);
    assert_eq!(
        (v["has_more"].as_bool(), v["has_more_after"].as_bool()),
        (Some(true), Some(true))
    );

    // Near the start and the end of the room.
    let v = page("around_seq=1&limit=10".into()).await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 6, "{v}");
    assert_eq!(
        (v["has_more"].as_bool(), v["has_more_after"].as_bool()),
        (Some(false), Some(true))
    );
    let last = app.history(&a, room).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap();
    let v = page(format!("around_seq={last}&limit=10")).await;
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5, "{v}");
    assert_eq!(msgs.last().unwrap()["seq"], last);
    assert_eq!(v["has_more_after"], false);
    // A page of one is the message itself.
    let v = page(format!("around_seq={seq}&limit=1")).await;
    assert_eq!(v["messages"], json!([hit]));
    assert_eq!(
        (v["has_more"].as_bool(), v["has_more_after"].as_bool()),
        (Some(true), Some(true))
    );

    // A blocked sender is a placeholder here as in history.
    let (s, _) = app
        .post("/api/v1/blocks", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let bob_seq = app
        .history(&b, room)
        .await
        .iter()
        .find(|m| m["text"] == "bob says hi")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let v = page(format!("around_seq={bob_seq}&limit=3")).await;
    assert_eq!(v["messages"][1]["kind"], "hidden", "{v}");
    assert!(v["messages"][1].get("text").is_none());

    // Bad combinations.
    for q in [
        format!("around_seq={seq}&before_seq=5"),
        format!("around_seq={seq}&after_seq=5"),
        "around_seq=0".into(),
        format!("around_seq={seq}&limit=201"),
    ] {
        let (s, v) = app
            .get(&format!("/api/v1/rooms/{room}/messages?{q}"), &a.token)
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{q}: {v}"
        );
    }
    env.finish().await;
}

#[tokio::test]
async fn around_seq_opens_a_hit_in_context_sqlite() {
    around_seq_opens_a_hit_in_context("sqlite").await;
}

#[tokio::test]
async fn around_seq_opens_a_hit_in_context_postgres() {
    around_seq_opens_a_hit_in_context("postgres").await;
}

#[tokio::test]
async fn search_is_rate_limited_per_user() {
    let Some(env) = env("sqlite", |c| {
        c.rate_limits = true;
        c.rates.apply(&["search_user=3/1m".into()]).unwrap();
    })
    .await
    else {
        return;
    };
    let app = &env.app;
    let a = app.signup("alice").await;
    let b = app.signup("bob").await;
    for _ in 0..3 {
        search_ok(app, &a, "안녕").await;
    }
    let res = app
        .http
        .get(app.url("/api/v1/search?q=abc"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "rate_limited", "{v}");
    // Another user is not limited by alice's searches, and a refused query
    // (checked before the limit) costs nothing.
    for _ in 0..5 {
        let (s, v) = search(app, &b, " ").await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
    }
    for _ in 0..3 {
        search_ok(app, &b, "안녕").await;
    }
    let (s, v) = search(app, &b, "안녕").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    env.finish().await;
}
