//! The web UI end to end: `tests/e2e/*.test.mjs` (Node's test runner driving
//! Debian's chromium through playwright-core) against this build's binary. The
//! browser tests start and restart the server themselves.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("tests/e2e")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// In CI a missing prerequisite fails the test; locally it is skipped loudly.
fn skip_or_fail(why: &str) {
    crate::skip::skip(
        "web UI browser tests (chromium)",
        why,
        "apt-get install -y chromium fonts-noto-cjk; npm ci --prefix tests/e2e",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_chromium() {
    let dir = e2e_dir();
    if !dir.join("node_modules/playwright-core").is_dir() {
        skip_or_fail(&format!("{} has no node_modules", dir.display()));
        return;
    }
    if !Path::new(&chromium()).exists() {
        skip_or_fail(&format!("{} not found", chromium().display()));
        return;
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading tests/e2e")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "browser test files missing: {files:?}");

    let child = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-concurrency=1")
        .args(&files)
        .env("QUICKTALK_BIN", env!("CARGO_BIN_EXE_quicktalk"))
        .current_dir(&dir)
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
    let out = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .expect("browser tests did not finish within 10 minutes")
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok ") || l.starts_with("# "))
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        out.status.success(),
        "browser tests failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "unexpected test summary:\n{stdout}"
    );
}
