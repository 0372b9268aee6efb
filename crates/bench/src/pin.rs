//! CPU pinning with `taskset` (util-linux), so the server and the load
//! generator do not take each other's core: servers the bench starts run on
//! [`SERVER_CORE`] (started through `taskset -c`), the bench process and its
//! idle workers on [`BENCH_CORE`], and RabbitMQ, which the bench does not
//! start, gets all its threads moved to the server core for a scenario and
//! its previous affinity back afterwards (`taskset -a -p`).

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _};

pub const SERVER_CORE: usize = 0;
pub const BENCH_CORE: usize = 1;

/// Whether pinning is possible here: at least two cores and `taskset`
/// (decided once: after [`pin_self`] this process sees one core only).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        crate::proc::Machine::online_cpus() >= 2
            && Command::new("taskset")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// The command prefix that starts a server on [`SERVER_CORE`].
pub fn server_prefix() -> Vec<String> {
    vec!["taskset".into(), "-c".into(), SERVER_CORE.to_string()]
}

/// Sets the CPU list of every thread of `pid` (`taskset -a -p -c LIST PID`).
pub fn set_all(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("running taskset")?;
    if !out.status.success() {
        bail!(
            "taskset -a -p -c {cpus} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Pins this process (call before the runtime starts its threads; children
/// started later inherit it).
pub fn pin_self() -> anyhow::Result<()> {
    set_all(std::process::id(), &BENCH_CORE.to_string())
}

/// The CPU list of `pid`'s main thread (`taskset -c -p PID`), e.g. `0,1`.
pub fn get(pid: u32) -> anyhow::Result<String> {
    let out = Command::new("taskset")
        .args(["-c", "-p", &pid.to_string()])
        .output()
        .context("running taskset")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_list(&text).ok_or_else(|| anyhow!("taskset -c -p {pid} printed {text:?}"))
}

/// `0,1` from `pid 2990's current affinity list: 0,1`.
pub fn parse_list(out: &str) -> Option<String> {
    let list = out.lines().next()?.rsplit_once(": ")?.1.trim();
    (!list.is_empty() && list.chars().all(|c| c.is_ascii_digit() || ",-".contains(c)))
        .then(|| list.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_list_parses() {
        assert_eq!(
            parse_list("pid 2990's current affinity list: 0,1\n").as_deref(),
            Some("0,1")
        );
        assert_eq!(
            parse_list("pid 7's current affinity list: 0-1\n").as_deref(),
            Some("0-1")
        );
        assert_eq!(parse_list("taskset: failed"), None);
    }

    #[test]
    fn server_prefix_names_the_server_core() {
        assert_eq!(server_prefix(), ["taskset", "-c", "0"]);
    }
}
