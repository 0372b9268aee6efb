//! Readers for `/proc`: a process's resident memory (`status` → `VmRSS`) and CPU
//! time (`stat`), its open-files limit (`limits`), the kernel's TCP socket
//! memory (`/proc/net/sockstat`), and a description of the machine. The parsers
//! are pure functions over the file text so they can be unit-tested.

use std::fs;
use std::time::Instant;

use anyhow::{anyhow, Context as _};

/// Page size used by `/proc/net/sockstat` `mem` (pages).
pub const PAGE_BYTES: u64 = 4096;

/// `VmRSS` of a `/proc/PID/status` text, in kB.
pub fn parse_vmrss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `VmHWM` (peak resident set since the process started) of a
/// `/proc/PID/status` text, in kB.
pub fn parse_vmhwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The `TCP:` line of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSockstat {
    pub inuse: u64,
    pub tw: u64,
    /// Socket buffer memory, in pages.
    pub mem_pages: u64,
}

/// Parses the `TCP:` line (`TCP: inuse 11 orphan 0 tw 9 alloc 14 mem 176`).
pub fn parse_sockstat(text: &str) -> Option<TcpSockstat> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == name)?;
        words.get(i + 1)?.parse().ok()
    };
    Some(TcpSockstat {
        inuse: field("inuse")?,
        tw: field("tw").unwrap_or(0),
        mem_pages: field("mem")?,
    })
}

/// `utime + stime` (clock ticks) from a `/proc/PID/stat` text. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ")": field 3 (state) is f[0]; utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The soft and hard "Max open files" of a `/proc/PID/limits` text.
pub fn parse_nofile(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..]
        .split_whitespace()
        .map(|w| w.parse::<u64>().unwrap_or(u64::MAX));
    Some((nums.next()?, nums.next()?))
}

/// Resident set size of `pid`, in kB.
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vmrss_kb(&text).ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// Peak resident set size of `pid` so far (`VmHWM`), in kB.
pub fn hwm_kb(pid: u32) -> anyhow::Result<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vmhwm_kb(&text).ok_or_else(|| anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// The current `TCP:` line of `/proc/net/sockstat`.
pub fn sockstat() -> anyhow::Result<TcpSockstat> {
    let text = fs::read_to_string("/proc/net/sockstat").context("reading /proc/net/sockstat")?;
    parse_sockstat(&text).ok_or_else(|| anyhow!("no TCP line in /proc/net/sockstat"))
}

/// The least TCP buffer memory seen over `samples` readings 100 ms apart: idle
/// sockets hold ~nothing, so the minimum filters out other traffic's transient
/// buffers (the counter is machine-wide).
pub async fn sockstat_quiet(samples: usize) -> anyhow::Result<TcpSockstat> {
    let mut best = sockstat()?;
    for _ in 1..samples {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let s = sockstat()?;
        if s.mem_pages < best.mem_pages {
            best = s;
        }
    }
    Ok(best)
}

/// CPU ticks used so far by `pid` (`"self"` works too).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    parse_stat_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Soft and hard open-files limits of `pid`.
pub fn nofile(pid: u32) -> Option<(u64, u64)> {
    parse_nofile(&fs::read_to_string(format!("/proc/{pid}/limits")).ok()?)
}

/// Clock ticks per second for `/proc/PID/stat` (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Measures CPU use of the server and of this process over a window.
pub struct CpuMeter {
    server: u32,
    t0: Instant,
    server0: Option<u64>,
    me0: Option<u64>,
}

/// CPU used over a window, in percent of one core (200 = both cores).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    pub server_pct: f64,
    pub bench_pct: f64,
}

impl CpuMeter {
    pub fn start(server: u32) -> CpuMeter {
        CpuMeter {
            server,
            t0: Instant::now(),
            server0: cpu_ticks(&server.to_string()),
            me0: cpu_ticks("self"),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-3);
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / TICKS_PER_SEC / secs * 100.0,
            _ => 0.0,
        };
        CpuUse {
            server_pct: pct(self.server0, cpu_ticks(&self.server.to_string())),
            bench_pct: pct(self.me0, cpu_ticks("self")),
        }
    }
}

/// `model name` of the first processor in a `/proc/cpuinfo` text.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// `MemTotal` of a `/proc/meminfo` text, in kB.
pub fn parse_memtotal_kb(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// What the results ran on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_gib: f64,
    pub kernel: String,
    /// `/proc/loadavg` when described: other work on the machine skews results.
    pub loadavg: String,
}

/// The number of CPUs in a `/proc/cpuinfo` text (`processor` lines).
pub fn parse_cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count()
}

impl Machine {
    /// CPUs of the machine (not this process's CPU list, which pinning narrows).
    pub fn online_cpus() -> usize {
        let n = parse_cpu_count(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
        if n > 0 {
            n
        } else {
            std::thread::available_parallelism().map_or(0, |n| n.get())
        }
    }

    pub fn describe() -> Machine {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        Machine {
            nproc: Machine::online_cpus(),
            cpu_model: parse_cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            mem_total_gib: parse_memtotal_kb(&read("/proc/meminfo")).unwrap_or(0) as f64
                / (1024.0 * 1024.0),
            kernel: format!(
                "{} {}",
                read("/proc/sys/kernel/ostype").trim(),
                read("/proc/sys/kernel/osrelease").trim()
            ),
            loadavg: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tquicktalk\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  123456 kB\nVmHWM:\t   20000 kB\nVmRSS:\t    8448 kB\nRssAnon:\t    3000 kB\n";

    #[test]
    fn vmrss_is_read_in_kb() {
        assert_eq!(parse_vmrss_kb(STATUS), Some(8448));
        assert_eq!(parse_vmrss_kb("Name:\tx\n"), None);
        assert_eq!(parse_vmhwm_kb(STATUS), Some(20000));
        assert_eq!(parse_vmhwm_kb("Name:\tx\n"), None);
    }

    #[test]
    fn sockstat_tcp_line() {
        let text = "sockets: used 27\nTCP: inuse 11 orphan 0 tw 9481 alloc 14 mem 176\n\
                    UDP: inuse 0 mem 0\nUDPLITE: inuse 0\n";
        assert_eq!(
            parse_sockstat(text),
            Some(TcpSockstat {
                inuse: 11,
                tw: 9481,
                mem_pages: 176
            })
        );
        // The UDP line's "mem" must not be taken for TCP's.
        assert_eq!(parse_sockstat("UDP: inuse 0 mem 5\n"), None);
    }

    #[test]
    fn stat_cpu_ticks_survive_odd_command_names() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 3 0 123 456789 789 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn nofile_limits() {
        let limits =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max cpu time              unlimited            unlimited            seconds   \n\
            Max open files            1024                 20000                files     \n";
        assert_eq!(parse_nofile(limits), Some((1024, 20000)));
    }

    #[test]
    fn cpu_model_and_memory() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(parse_cpu_count(cpuinfo), 1);
        assert_eq!(
            parse_cpu_count("processor\t: 0\nprocessor\t: 1\nmodel name : x\n"),
            2
        );
        assert_eq!(
            parse_cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            parse_memtotal_kb("MemTotal:       25165824 kB\nMemFree: 1 kB\n"),
            Some(25165824)
        );
    }
}
