//! Web Push end to end (contract §8): the real binary pushes a direct message to
//! an away user's subscription on the tests' own push service
//! (`tests/common/push_service.rs`), which checks VAPID and decrypts it; then the
//! very same request is decrypted again by an independent implementation, PyPI's
//! `http_ece` (`tests/push/crosscheck.py`, Python from `QUICKTALK_TEST_PUSH_PYTHON`),
//! and both must agree. The script itself is first checked on the RFC 8291 example.
//! A subscription whose push service answers 410 is removed (contract §8). And the
//! push service is shown to accept what an unrelated sender (`tests/push/sender.py`)
//! sends. A 429 is retried no sooner than its `Retry-After`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use p256::ecdsa::SigningKey;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;

use crate::harness::{data_dir, ServerProcess};
use crate::push_service::{rfc8291, unix_now, vapid_header, Answer, PushService};

const PYTHON_ENV: &str = "QUICKTALK_TEST_PUSH_PYTHON";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/push")
        .join(name)
}

/// The Python with `http_ece` and `cryptography`, or `None` after a visible skip
/// (a failure under CI).
fn python() -> Option<String> {
    match std::env::var(PYTHON_ENV) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            crate::skip::skip(
                "Web Push cross-check (Python http_ece)",
                &format!("{PYTHON_ENV} is not set"),
                "python3 -m venv ~/.cache/quicktalk-pyece && ~/.cache/quicktalk-pyece/bin/pip install \
                 http_ece==1.2.1 cryptography==50.0.2, then export \
                 QUICKTALK_TEST_PUSH_PYTHON=$HOME/.cache/quicktalk-pyece/bin/python (.ci/run does)",
            );
            None
        }
    }
}

/// Runs `crosscheck.py` on `input`; returns (exit success, stdout, stderr).
async fn crosscheck(python: &str, input: &Value) -> (bool, Vec<u8>, String) {
    run_python(python, "crosscheck.py", input).await
}

/// Runs `tests/push/<name>` with `input` as JSON on stdin; returns (exit
/// success, stdout, stderr).
async fn run_python(python: &str, name: &str, input: &Value) -> (bool, Vec<u8>, String) {
    let mut child = tokio::process::Command::new(python)
        .arg(script(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("running {python} (from {PYTHON_ENV}): {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("writing to {name}: {e}"));
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} took over 30 s"))
        .unwrap_or_else(|e| panic!("waiting for {name}: {e}"));
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crosscheck_script_reads_the_rfc_8291_example_and_refuses_forgeries() {
    let Some(python) = python() else { return };
    let aud = "http://127.0.0.1:4711";
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let claims = json!({"aud": aud, "exp": unix_now() + 3600, "sub": "mailto:ops@quicktalk.test"});
    let input = |body: &str, authorization: &str| {
        json!({
            "private_key": rfc8291::UA_PRIVATE,
            "auth": rfc8291::AUTH,
            "body": body,
            "authorization": authorization,
            "audience": aud,
            "json": false,
        })
    };
    let good_auth = vapid_header(&key, &key, &claims);

    let (ok, stdout, stderr) = crosscheck(&python, &input(rfc8291::BODY, &good_auth)).await;
    assert!(ok, "crosscheck.py failed on the RFC 8291 example: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        format!("{}\n", rfc8291::PLAINTEXT)
    );

    // One changed character of the ciphertext's tail.
    let mut tampered = rfc8291::BODY.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'N' { 'M' } else { 'N' });
    let (ok, _, stderr) = crosscheck(&python, &input(&tampered, &good_auth)).await;
    assert!(!ok, "crosscheck.py accepted a tampered body");
    assert!(stderr.contains("decrypt"), "{stderr}");

    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let forged = vapid_header(&key, &other, &claims);
    let (ok, _, stderr) = crosscheck(&python, &input(rfc8291::BODY, &forged)).await;
    assert!(!ok, "crosscheck.py accepted a JWT signed by another key");
    assert!(stderr.contains("signature"), "{stderr}");

    let far =
        json!({"aud": aud, "exp": unix_now() + 25 * 3600, "sub": "mailto:ops@quicktalk.test"});
    let (ok, _, stderr) = crosscheck(
        &python,
        &input(rfc8291::BODY, &vapid_header(&key, &key, &far)),
    )
    .await;
    assert!(!ok, "crosscheck.py accepted exp 25 h ahead");
    assert!(stderr.contains("24 h"), "{stderr}");

    let wrong_aud =
        json!({"aud": "http://127.0.0.1:1", "exp": unix_now() + 60, "sub": "mailto:a@b.c"});
    let (ok, _, stderr) = crosscheck(
        &python,
        &input(rfc8291::BODY, &vapid_header(&key, &key, &wrong_aud)),
    )
    .await;
    assert!(!ok, "crosscheck.py accepted a wrong aud");
    assert!(stderr.contains("aud"), "{stderr}");
}

/// The push service accepts and decrypts what an unrelated sender (PyPI's
/// `http_ece` plus a `cryptography`-signed JWT, `tests/push/sender.py`) sends,
/// and refuses it when the JWT's `exp` is 25 h ahead or its `aud` is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_service_accepts_what_http_ece_sends() {
    let Some(python) = python() else { return };
    let svc = PushService::start().await;
    let sub = svc.subscriber("py");
    let payload = json!({"room_id": 3, "seq": 9, "title": "민수", "body": "🍉 from python"});
    let send = |extra: Value| {
        let mut input = json!({
            "endpoint": sub.endpoint,
            "p256dh": sub.p256dh(),
            "auth": sub.auth_b64(),
            "payload": payload,
        });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        let python = python.clone();
        async move {
            let (ok, stdout, stderr) = run_python(&python, "sender.py", &input).await;
            assert!(ok, "sender.py failed: {stderr}");
            serde_json::from_slice::<Value>(&stdout).expect("sender.py prints JSON")
        }
    };

    let out = send(json!({})).await;
    assert_eq!(out["status"], 201, "{out}");
    let got = svc.wait_for("py", 1, Duration::from_secs(5)).await;
    svc.assert_no_rejections();
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[0].ttl, 120);
    assert_eq!(got[0].urgency.as_deref(), Some("normal"));
    assert_eq!(json!(got[0].vapid_key), out["vapid_key"]);

    let out = send(json!({"exp_in": 25 * 3600})).await;
    assert_eq!(out["status"], 400, "{out}");
    let out = send(json!({"aud": "http://127.0.0.1:1"})).await;
    assert_eq!(out["status"], 400, "{out}");
    let reasons: Vec<String> = svc.rejected().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("more than 24 h"), "{reasons:?}");
    assert!(reasons[1].contains("aud"), "{reasons:?}");
    assert_eq!(svc.received("py").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_away_user_gets_a_push_that_http_ece_decrypts_the_same() {
    let svc = PushService::start().await;
    let dir = data_dir();
    let server = ServerProcess::start(
        dir.path(),
        &[
            "--push-allow-http",
            "--push-idle-ms",
            "300",
            "--rate-limits",
            "off",
        ],
    );
    let (_alice_id, alice) = server.signup("push_alice").await;
    let (bob_id, bob) = server.signup("push_bob").await;

    let (status, key) = server.get("/api/v1/push/key", Some(&bob)).await;
    assert_eq!(status, 200, "GET /api/v1/push/key: {key}");
    let server_key = key["public_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no public_key in {key}"))
        .to_owned();
    svc.expect_key(&server_key);

    let sub = svc.subscriber("bob");
    let (status, body) = server
        .post("/api/v1/push/subscriptions", Some(&bob), &sub.json())
        .await;
    assert_eq!(status, 201, "subscribing: {body}");

    let (status, dm) = server
        .post("/api/v1/direct", Some(&alice), &json!({"user_id": bob_id}))
        .await;
    assert!(
        status == 200 || status == 201,
        "opening the direct room: {status} {dm}"
    );
    let room = dm["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no room id in {dm}"));

    // Bob never connects: no session of his is active, so he is away.
    let text = "are you there? 수박 🍉 push-check-7f3a";
    let (status, msg) = server
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice),
            &json!({ "text": text }),
        )
        .await;
    assert_eq!(status, 201, "posting: {msg}");
    let seq = msg["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no seq in {msg}"));

    let got = svc.wait_for("bob", 1, Duration::from_secs(20)).await;
    svc.assert_no_rejections();
    let push = &got[0];
    let payload = &push.payload;
    let mut keys: Vec<&str> = payload
        .as_object()
        .unwrap_or_else(|| panic!("payload is not an object: {payload}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["body", "room_id", "seq", "title"], "{payload}");
    assert_eq!(payload["room_id"].as_i64(), Some(room), "{payload}");
    assert_eq!(payload["seq"].as_i64(), Some(seq), "{payload}");
    assert!(
        payload["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{payload}"
    );
    assert!(
        payload["body"].as_str().is_some_and(|b| b.contains(text)),
        "body does not contain the text: {payload}"
    );
    assert_eq!(push.vapid_key, server_key);
    assert!(
        push.topic.is_some(),
        "pushes for one room collapse by Topic"
    );

    // The same bytes through an independent decryptor and JWT check.
    let Some(python) = python() else { return };
    let input = json!({
        "private_key": sub.private_key_b64(),
        "auth": sub.auth_b64(),
        "body": crate::push_service::b64(&push.body),
        "authorization": push.authorization,
        "audience": svc.origin(),
    });
    let (ok, stdout, stderr) = crosscheck(&python, &input).await;
    assert!(
        ok,
        "http_ece / cryptography refused what the server sent: {stderr}"
    );
    let theirs = stdout.strip_suffix(b"\n").unwrap_or(&stdout);
    assert_eq!(
        String::from_utf8_lossy(theirs),
        String::from_utf8_lossy(&push.plaintext),
        "http_ece decrypted something else than the test push service"
    );
    let theirs: Value = serde_json::from_slice(theirs).expect("crosscheck output is JSON");
    assert_eq!(&theirs, payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_answered_410_is_removed_and_others_still_get_pushes() {
    let svc = PushService::start().await;
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &["--push-allow-http", "--push-idle-ms", "300"]);
    let (_, alice) = server.signup("gone_alice").await;
    let (bob_id, bob) = server.signup("gone_bob").await;
    // Two devices of Bob's: the one answered 410 goes; the other is the control
    // showing the server did push the second message.
    for name in ["bob", "bob-other-device"] {
        let sub = svc.subscriber(name);
        let (status, body) = server
            .post("/api/v1/push/subscriptions", Some(&bob), &sub.json())
            .await;
        assert_eq!(status, 201, "subscribing {name}: {body}");
    }
    let (_, dm) = server
        .post("/api/v1/direct", Some(&alice), &json!({"user_id": bob_id}))
        .await;
    let room = dm["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no room id in {dm}"));
    let say = |text: &'static str| {
        let path = format!("/api/v1/rooms/{room}/messages");
        let server = &server;
        let alice = &alice;
        async move {
            let (status, msg) = server
                .post(&path, Some(alice), &json!({ "text": text }))
                .await;
            assert_eq!(status, 201, "posting: {msg}");
        }
    };

    svc.answer_next("bob", Answer::Gone);
    say("first, answered 410").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while svc.attempts("bob").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no push attempt to bob within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(svc.attempts("bob")[0].status, 410);
    // Let the server act on the 410 before the next message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    say("second, to a removed subscription").await;
    let control = svc
        .wait_for("bob-other-device", 2, Duration::from_secs(20))
        .await;
    assert!(
        control[1].payload["body"]
            .as_str()
            .is_some_and(|b| b.contains("second")),
        "{:?}",
        control[1].payload
    );
    svc.assert_quiet("bob", Duration::from_secs(1)).await;
    assert_eq!(
        svc.attempts("bob").len(),
        1,
        "a push went to the removed subscription"
    );
    assert!(svc.received("bob").is_empty());
    svc.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_retry_after() {
    let svc = PushService::start().await;
    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &["--push-allow-http", "--push-idle-ms", "300"]);
    let (_, alice) = server.signup("retry_alice").await;
    let (bob_id, bob) = server.signup("retry_bob").await;
    let sub = svc.subscriber("bob");
    let (status, body) = server
        .post("/api/v1/push/subscriptions", Some(&bob), &sub.json())
        .await;
    assert_eq!(status, 201, "subscribing: {body}");
    let (_, dm) = server
        .post("/api/v1/direct", Some(&alice), &json!({"user_id": bob_id}))
        .await;
    let room = dm["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no room id in {dm}"));

    svc.answer_next(
        "bob",
        Answer::TooMany {
            retry_after_secs: 2,
        },
    );
    let (status, msg) = server
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice),
            &json!({ "text": "slow down" }),
        )
        .await;
    assert_eq!(status, 201, "posting: {msg}");
    let got = svc.wait_for("bob", 1, Duration::from_secs(20)).await;
    svc.assert_no_rejections();
    assert_eq!(got[0].payload["seq"], msg["seq"], "{:?}", got[0].payload);
    let attempts = svc.attempts("bob");
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [429, 201]);
    let gap = attempts[1].at.duration_since(attempts[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "retried {gap:?} after a 429 with Retry-After: 2"
    );
    assert_eq!(
        attempts[0].push.as_ref().unwrap().payload,
        got[0].payload,
        "the retry carries the same message"
    );
}
