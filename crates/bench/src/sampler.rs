//! A background sampler of a process's resident set (`/proc/PID/status`
//! `VmRSS`) at a fixed period, keeping the peak. It runs on its own OS thread so
//! a busy async runtime (the upload it watches) does not delay the samples.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::proc;

/// What a sampler saw between [`RssSampler::start`] and [`RssSampler::stop`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssPeak {
    /// Highest `VmRSS` read, in kB.
    pub peak_kb: u64,
    /// Readings taken.
    pub samples: u64,
}

/// Samples `VmRSS` of one process every `period` until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RssPeak>,
}

impl RssSampler {
    /// Starts sampling `pid` (one reading at once, then every `period`).
    pub fn start(pid: u32, period: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = RssPeak::default();
            loop {
                if let Ok(kb) = proc::rss_kb(pid) {
                    seen.peak_kb = seen.peak_kb.max(kb);
                    seen.samples += 1;
                }
                if flag.load(Ordering::Relaxed) {
                    return seen;
                }
                std::thread::sleep(period);
            }
        });
        RssSampler { stop, thread }
    }

    /// Takes one last reading and returns the peak.
    pub fn stop(self) -> RssPeak {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = RssSampler::start(std::process::id(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(30));
        let peak = s.stop();
        assert!(peak.samples >= 2, "{peak:?}");
        assert!(peak.peak_kb > 0, "{peak:?}");
    }
}
