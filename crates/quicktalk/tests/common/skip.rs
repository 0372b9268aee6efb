//! Skipping a suite whose outside service or tool is missing, visibly.
//!
//! libtest captures the output of passing tests, so a plain `eprintln!` is never
//! seen. Each skip is also appended to the file named by `QUICKTALK_SKIP_LOG`
//! (`scripts/test` sets it and prints the list at the end). Under `CI` a skip is
//! a failure: CI provides every service.

use std::io::Write as _;

/// Records that `suite` did not run because of `why` (with `how` to fix it), or
/// panics under `CI`.
pub fn skip(suite: &str, why: &str, how: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{suite} cannot run: {why} ({how})");
    }
    eprintln!("SKIPPED: {suite}: {why} ({how})");
    if let Some(path) = std::env::var_os("QUICKTALK_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{suite}: {why} ({how})");
        }
    }
}
