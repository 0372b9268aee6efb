//! Interop: the stock `@stomp/stompjs` client (tests/interop at the repo root)
//! connects, subscribes, publishes with a receipt and sees its own message.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{data_dir, ServerProcess};

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("tests/interop")
}

/// In CI a missing prerequisite fails the test; locally it is skipped loudly.
fn skip_or_fail(why: &str) {
    crate::skip::skip(
        "stomp.js interop (node)",
        why,
        "install Node.js and npm, then npm ci --prefix tests/interop",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_publishes_and_receives_its_message() {
    let interop = interop_dir();
    let repo_root = interop.join("../..");
    if !interop.join("node_modules/@stomp/stompjs").is_dir()
        || !interop.join("node_modules/ws").is_dir()
    {
        skip_or_fail(&format!("{} has no node_modules", interop.display()));
        return;
    }

    let dir = data_dir();
    let server = ServerProcess::start(dir.path(), &[]);
    let (user_id, token) = server.signup("stompjs_user").await;
    let room = server.create_room(&token, "stomp.js room").await;

    let child = tokio::process::Command::new("node")
        .arg("tests/interop/stompjs-smoke.mjs")
        .arg(server.ws_url())
        .arg(&token)
        .arg(room.to_string())
        .current_dir(&repo_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            skip_or_fail(&format!("cannot run node: {e}"));
            return;
        }
    };
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stompjs-smoke.mjs did not finish within 30 s")
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stompjs-smoke.mjs failed with {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from stompjs-smoke.mjs: {stdout}"));
    let seen: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"));
    eprintln!("stomp.js saw: {seen}");
    assert_eq!(seen["ok"], true, "{seen}");
    assert_eq!(seen["receipt"], true, "{seen}");
    assert_eq!(seen["message"]["text"], "hello from stomp.js", "{seen}");
    assert_eq!(seen["message"]["room_id"].as_i64(), Some(room), "{seen}");
    assert_eq!(
        seen["message"]["sender"]["id"].as_i64(),
        Some(user_id),
        "{seen}"
    );
    let seq = seen["message"]["seq"].as_i64().expect("seq in the MESSAGE");

    // And it is stored, with the seq stomp.js was told.
    let history = server.history(&token, room).await;
    let stored = history
        .iter()
        .find(|m| m["text"] == "hello from stomp.js")
        .unwrap_or_else(|| panic!("stomp.js message not stored: {history:?}"));
    assert_eq!(stored["seq"].as_i64(), Some(seq), "{stored}");
    assert_eq!(stored["sender"]["id"].as_i64(), Some(user_id), "{stored}");
}
