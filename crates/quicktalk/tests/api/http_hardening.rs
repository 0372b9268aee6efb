//! HTTP hardening: request bodies have a total deadline, concurrent connections
//! per IP are capped, over-size bodies answer the contract's 413 JSON on every
//! route, and `/metrics` is off the public listener unless asked for (§2 v2).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::*;

#[tokio::test]
async fn over_size_bodies_get_413_json_on_every_route() {
    let app = spawn_app().await;
    let user = app.guest("big").await;
    let room = app.create_room(&user, "r", "public").await;
    let big = "x".repeat(80 * 1024);
    for path in [
        "/api/v1/auth/signup".to_string(),
        "/api/v1/auth/guest".into(),
        "/api/v1/rooms".into(),
        format!("/api/v1/rooms/{room}/messages"),
        "/api/v1/match/connect".into(),
        "/api/v1/match/report".into(),
        "/api/v1/nope".into(),
    ] {
        let res = app
            .http
            .post(app.url(&path))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(code(&v), "too_large", "{path}: {v}");
    }
    // Chunked (no Content-Length) too.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let mut req =
        b"POST /api/v1/auth/guest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..20 {
        req.extend_from_slice(b"2000\r\n");
        req.extend_from_slice(&[b' '; 0x2000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = s.write_all(&req).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("application/json") && text.contains("too_large"),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_and_closed_in_bounded_time() {
    let app = spawn_app_with(|c| c.http_body_timeout_ms = 500).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test]
async fn half_open_flood_from_one_ip_does_not_starve_others() {
    let app = spawn_app_with(|c| {
        c.rate_limits = true;
        c.max_http_connections_per_ip = 20;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        let _ = s
            .write_all(
                b"POST /api/v1/auth/guest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
            )
            .await;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Connections past the cap were closed at once.
    let mut closed = 0;
    for s in &mut held {
        let mut b = [0u8; 1];
        // Closed: end of stream, or a reset (the request was left unread).
        match tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            _ => {}
        }
    }
    assert!(closed >= 40, "only {closed} of 60 closed");
    // Another client is served at once.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let res = other.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_off_the_public_listener_by_default() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code(&v), "not_found");
    let res = app.http.get(app.metrics_url()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("quicktalk_connections"));
    // The metrics listener serves nothing else.
    let res = app
        .http
        .get(format!("http://{}/healthz", app.metrics_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_public_puts_them_back_on_the_public_listener() {
    let app = spawn_app_with(|c| c.metrics_public = true).await;
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("quicktalk_connections"));
}
