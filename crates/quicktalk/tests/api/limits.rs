//! Abuse limits ON (contract §4): 429 + Retry-After over HTTP, `rate_limited` +
//! `retry_after_ms` over STOMP with the socket kept, login back-off that never
//! locks out the account's owner, socket caps, and the rejection counter.

use std::net::IpAddr;
use std::time::Duration;

use quicktalk_client::StompClient;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn limited(overrides: &[&str]) -> TestApp {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    spawn_app_with(move |c| {
        c.rate_limits = true;
        c.rates.apply(&overrides).unwrap();
    })
    .await
}

/// A client whose requests come from `ip` (Linux routes all of 127/8 to lo).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn post_from(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let res = http.post(app.url(path)).json(&body).send().await.unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

fn assert_limited(status: StatusCode, retry: Option<String>, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(body), "rate_limited", "{body}");
    let secs: u64 = retry.expect("Retry-After header").parse().unwrap();
    assert!(secs >= 1, "Retry-After {secs}");
}

#[tokio::test]
async fn guest_and_signup_floods_get_429_with_retry_after_per_ip() {
    let app = limited(&["guest_ip=3/1h", "signup_ip=2/1h"]).await;
    let http = client_from([127, 0, 0, 1]);
    for i in 0..3 {
        let (s, _, v) = post_from(&http, &app, "/api/v1/auth/guest", json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "guest {i}: {v}");
    }
    let (s, retry, v) = post_from(&http, &app, "/api/v1/auth/guest", json!({})).await;
    assert_limited(s, retry.clone(), &v);
    // An hour's budget of 3: the next one is 20 minutes away.
    assert!(retry.unwrap().parse::<u64>().unwrap() > 1000);
    for i in 0..2 {
        let body = json!({"username": format!("flood{i}"), "password": "correct horse"});
        let (s, _, v) = post_from(&http, &app, "/api/v1/auth/signup", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let body = json!({"username": "flood9", "password": "correct horse"});
    let (s, retry, v) = post_from(&http, &app, "/api/v1/auth/signup", body).await;
    assert_limited(s, retry, &v);
    // Another IP has its own budget.
    let other = client_from([127, 0, 0, 2]);
    let (s, _, v) = post_from(&other, &app, "/api/v1/auth/guest", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"guest_ip\"}")
            .await
            >= 1.0
    );
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"signup_ip\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn login_flood_backs_off_per_account_without_locking_out_the_owner() {
    let app = limited(&[]).await;
    app.signup("victim").await;
    let attacker = client_from([127, 0, 0, 1]);
    let wrong = json!({"username": "victim", "password": "wrong password"});
    let mut refused = None;
    for i in 0..8 {
        let (s, retry, v) = post_from(&attacker, &app, "/api/v1/auth/login", wrong.clone()).await;
        match s {
            StatusCode::UNAUTHORIZED => assert!(i < 5, "attempt {i} still checked: {v}"),
            _ => {
                assert_limited(s, retry.clone(), &v);
                refused.get_or_insert(i);
            }
        }
    }
    assert_eq!(refused, Some(5), "back-off starts after 5 failures");
    // The owner, from elsewhere, logs in at once…
    let owner = client_from([127, 0, 0, 2]);
    let right = json!({"username": "victim", "password": "correct horse"});
    let (s, _, v) = post_from(&owner, &app, "/api/v1/auth/login", right.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // …and the attacker's wait is short and bounded (capped at 30 s).
    let (s, retry, v) = post_from(&attacker, &app, "/api/v1/auth/login", wrong).await;
    assert_limited(s, retry.clone(), &v);
    assert!(retry.unwrap().parse::<u64>().unwrap() <= 30);
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"login_backoff_account\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn trusted_proxy_forwarded_for_is_the_client_ip() {
    let app = spawn_app_with(|c| {
        c.rate_limits = true;
        c.rates.apply(&["guest_ip=1/1h".into()]).unwrap();
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let guest = |xff: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/api/v1/auth/guest"))
                .header("x-forwarded-for", xff)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(guest("9.9.9.9, 1.1.1.1").await, StatusCode::CREATED);
    // Same rightmost untrusted hop (a spoofed left part does not help).
    assert_eq!(
        guest("8.8.8.8, 1.1.1.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(guest("2.2.2.2").await, StatusCode::CREATED);
    // From an untrusted peer the header is ignored: 127.0.0.2 is the client.
    let other = client_from([127, 0, 0, 2]);
    let (s, _, _) = post_from(&other, &app, "/api/v1/auth/guest", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let res = other
        .post(app.url("/api/v1/auth/guest"))
        .header("x-forwarded-for", "3.3.3.3")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn stomp_send_flood_gets_rate_limited_events_and_the_socket_stays_open() {
    let app = limited(&["send_user=3/1s"]).await;
    let user = app.guest("flooder").await;
    let room = app.create_room(&user, "flood", "public").await;
    let mut c = app.stomp(&user).await;
    c.subscribe_sync("err", "/user/queue/errors", &[])
        .await
        .unwrap();
    for i in 0..6 {
        c.send_json(
            &format!("/app/rooms.{room}"),
            &json!({ "text": format!("m{i}") }),
            None,
        )
        .await
        .unwrap();
    }
    let e = c.next_json("err").await.unwrap();
    assert_eq!(e["code"], "rate_limited", "{e}");
    let wait = e["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait > 0 && wait <= 1000, "{e}");
    tokio::time::sleep(Duration::from_millis(wait + 400)).await;
    // Still connected, and accepted again once the budget refilled.
    say(&mut c, room, "after the wait").await;
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"send_user\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn concurrent_sockets_are_capped_per_user_and_per_ip() {
    let app = spawn_app_with(|c| {
        c.rate_limits = true;
        c.max_sockets_per_user = 2;
        c.max_sockets_per_ip = 3;
    })
    .await;
    let a = app.guest("a").await;
    let b = app.guest("b").await;
    let _a1 = app.stomp(&a).await;
    let a2 = app.stomp(&a).await;
    let refused = StompClient::connect(&app.ws_url(), &a.token).await;
    assert!(refused.is_err(), "third socket of one user is refused");
    let _b1 = app.stomp(&b).await;
    let refused = StompClient::connect(&app.ws_url(), &b.token).await;
    assert!(refused.is_err(), "fourth socket from one IP is refused");
    // The open sockets still work, and a closed one frees its slot.
    a2.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _b2 = app.stomp(&b).await;
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"sockets_user\"}")
            .await
            >= 1.0
    );
    assert!(
        app.metric("quicktalk_rate_limited_total{limit=\"sockets_ip\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn limits_off_lets_floods_through() {
    let app = spawn_app_with(|c| {
        c.rate_limits = false;
        c.rates.apply(&["guest_ip=1/1h".into()]).unwrap();
    })
    .await;
    for _ in 0..5 {
        app.guest("g").await;
    }
}
