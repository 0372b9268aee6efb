//! Contract §2: sign-up, login, guests, `/me`, tokens, input validation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{code, spawn_app, spawn_app_in};

#[tokio::test]
async fn signup_login_me() {
    let app = spawn_app().await;
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"username": "Alice", "password": "password123", "display_name": "  앨리스  "})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["user"]["username"], "Alice");
    assert_eq!(v["user"]["display_name"], "앨리스");
    assert_eq!(v["user"]["guest"], false);
    let token = v["token"].as_str().unwrap();
    let (s, me) = app.get("/api/v1/me", token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me, v["user"]);

    // Usernames are unique regardless of case.
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"username": "alice", "password": "password123"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(code(&v), "username_taken");

    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "Alice", "password": "password123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["user"]["display_name"], "앨리스");
    let (s, _) = app.get("/api/v1/me", v["token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);

    for (user, pw) in [("Alice", "wrong-password"), ("nobody", "password123")] {
        let (s, v) = app
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": user, "password": pw})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&v), "invalid_credentials");
    }
}

#[tokio::test]
async fn guests_are_anonymous_users() {
    let app = spawn_app().await;
    let (s, v) = app
        .request(
            Method::POST,
            "/api/v1/auth/guest",
            None,
            Some(json!({"nickname": "익명"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["user"]["guest"], true);
    assert_eq!(v["user"]["display_name"], "익명");
    // No body at all is fine too: a generated nickname.
    let (s, v) = app
        .request(Method::POST, "/api/v1/auth/guest", None, None)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v["user"]["display_name"].as_str().unwrap().is_empty());
    let (s, me) = app.get("/api/v1/me", v["token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["guest"], true);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "ab", "password": "password123"}),
            "invalid_username",
        ),
        (
            json!({"username": "has space", "password": "password123"}),
            "invalid_username",
        ),
        (
            json!({"username": "a".repeat(33), "password": "password123"}),
            "invalid_username",
        ),
        (
            json!({"username": "bob", "password": "short"}),
            "invalid_password",
        ),
        (
            json!({"username": "bob", "password": "x".repeat(129)}),
            "invalid_password",
        ),
        (
            json!({"username": "bob", "password": "password123", "display_name": "   "}),
            "invalid_display_name",
        ),
        (
            json!({"username": "bob", "password": "password123", "display_name": "가".repeat(65)}),
            "invalid_display_name",
        ),
        (
            json!({"username": 5, "password": "password123"}),
            "invalid_json",
        ),
        (json!({"password": "password123"}), "invalid_json"),
    ];
    for (body, want) in cases {
        let (s, v) = app
            .request(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(code(&v), want, "{body}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Malformed JSON, wrong content type, huge body.
    let res = app
        .http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code(&v), "invalid_json");
    let res = app
        .http
        .post(app.url("/api/v1/auth/signup"))
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = app
        .http
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{}\"}}", "a".repeat(200_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code(&v), "too_large");
}

#[tokio::test]
async fn tokens_missing_forged_or_garbage_are_401() {
    let app = spawn_app().await;
    let (s, v) = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&v), "unauthorized");
    let user = app.signup("carol").await;
    // Flip a character of the signature.
    let mut forged = user.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for t in [forged.as_str(), "garbage", "a.b.c"] {
        let (s, v) = app.get("/api/v1/me", t).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t}");
        assert_eq!(code(&v), "invalid_token");
    }
    let res = app
        .http
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let app = crate::helpers::spawn_app_with(|c| c.token_ttl_secs = 1).await;
    let user = app.signup("dave").await;
    let (s, _) = app.get("/api/v1/me", &user.token).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, v) = app.get("/api/v1/me", &user.token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&v), "token_expired");
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let app = spawn_app().await;
    let user = app.signup("erin").await;
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    let (s, me) = app.get("/api/v1/me", &user.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "erin");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let app = spawn_app().await;
    let (s, v) = app.request(Method::GET, "/api/v1/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(code(&v), "not_found");
    let (s, v) = app.request(Method::DELETE, "/api/v1/me", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&v), "method_not_allowed");
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = app
        .http
        .get(app.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [
        "quicktalk_connections ",
        "quicktalk_frames_in_total",
        "quicktalk_frames_out_total",
        "quicktalk_messages_stored_total",
        "quicktalk_commit_seconds_bucket",
        "quicktalk_outbound_queue_drops_total",
    ] {
        assert!(text.contains(m), "missing {m} in /metrics");
    }
}

/// Names that show as nothing, or that reorder or hide text, are refused with a
/// typed error; Korean, other scripts and emoji go through (§3b.4).
#[tokio::test]
async fn invisible_and_format_characters_are_refused_in_names() {
    let app = spawn_app().await;
    for bad in [
        "\u{200B}",
        "\u{3164}\u{3164}",
        "\u{115F}",
        "\u{FFA0}",
        "\u{FE0F}",
        "Al\u{200B}ice",
        "\u{202E}ecilA",
    ] {
        let (s, v) = app
            .request(
                reqwest::Method::POST,
                "/api/v1/auth/guest",
                None,
                Some(json!({ "nickname": bad })),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_nickname"),
            "{bad:?}: {v}"
        );
        let (s, v) = app
            .request(
                reqwest::Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"username": "eve", "password": "correct horse", "display_name": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
    }
    let owner = app.guest("민수 🙂").await;
    let (s, v) = app
        .post(
            "/api/v1/rooms",
            &owner.token,
            json!({"name": "\u{200B}\u{200B}", "visibility": "public"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_room_name"),
        "{v}"
    );
    app.create_room(&owner, "한국어 방 👩‍💻", "public").await;
}
