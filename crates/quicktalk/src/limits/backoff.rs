//! Login back-off: after a few failures, exponentially growing waits, per client
//! IP and per account. Each attempt counts as a failure until it succeeds, so
//! concurrent guesses cannot slip past the count; a success clears the
//! account's record.
//!
//! The account-wide back-off applies only to IPs that themselves failed on that
//! account lately: an attacker guessing a victim's password slows down only
//! himself, and the victim logging in from elsewhere is never locked out. The
//! per-account wait is capped short (30 s), the per-IP one at 5 min.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures allowed before waits start.
const ACCOUNT_FREE: u32 = 5;
const IP_FREE: u32 = 10;
const ACCOUNT_CAP: Duration = Duration::from_secs(30);
const IP_CAP: Duration = Duration::from_secs(300);
/// A record untouched this long is forgotten (and its count with it).
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most records of each kind; past it new keys are not tracked (the per-IP
/// rate limit still applies), so memory stays bounded under any flood.
const MAX_RECORDS: usize = 100_000;

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    until: Instant,
}

impl Record {
    fn new(now: Instant) -> Self {
        Record {
            failures: 0,
            last: now,
            until: now,
        }
    }
    fn fail(&mut self, now: Instant, free: u32, cap: Duration) {
        self.failures = self.failures.saturating_add(1);
        self.last = now;
        if self.failures >= free {
            let exp = (self.failures - free).min(20);
            let wait = Duration::from_secs(1u64 << exp).min(cap);
            self.until = now + wait;
        }
    }
}

#[derive(Default)]
struct Records {
    ip: HashMap<IpAddr, Record>,
    account: HashMap<String, Record>,
    pair: HashMap<(String, IpAddr), Record>,
}

#[derive(Default)]
pub struct LoginBackoff {
    inner: Mutex<Records>,
}

fn account_key(account: &str) -> String {
    account.chars().take(64).collect::<String>().to_lowercase()
}

fn slot<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Record>,
    key: K,
    now: Instant,
) -> Option<&mut Record> {
    if map.len() >= MAX_RECORDS && !map.contains_key(&key) {
        return None;
    }
    Some(map.entry(key).or_insert_with(|| Record::new(now)))
}

impl LoginBackoff {
    /// `Err((limit name, wait))` while backing off; otherwise counts the attempt
    /// as a failure (undone by [`LoginBackoff::succeeded`]).
    pub fn attempt(
        &self,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), (&'static str, Duration)> {
        let account = account_key(account);
        let mut r = self.inner.lock();
        if let Some(rec) = r.ip.get(&ip) {
            if rec.until > now {
                return Err(("login_backoff_ip", rec.until - now));
            }
        }
        let pair_key = (account.clone(), ip);
        if let Some(pair) = r.pair.get(&pair_key) {
            let acc_until = r.account.get(&account).map_or(now, |a| a.until);
            let until = pair.until.max(acc_until);
            if until > now {
                return Err(("login_backoff_account", until - now));
            }
        }
        if let Some(rec) = slot(&mut r.ip, ip, now) {
            rec.fail(now, IP_FREE, IP_CAP);
        }
        if let Some(rec) = slot(&mut r.account, account, now) {
            rec.fail(now, ACCOUNT_FREE, ACCOUNT_CAP);
        }
        if let Some(rec) = slot(&mut r.pair, pair_key, now) {
            rec.fail(now, ACCOUNT_FREE, ACCOUNT_CAP);
        }
        Ok(())
    }

    /// The attempt was right: the account's and this pair's records go, and the
    /// IP's pessimistic count is taken back.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        let account = account_key(account);
        let mut r = self.inner.lock();
        r.pair.remove(&(account.clone(), ip));
        r.account.remove(&account);
        if let Some(rec) = r.ip.get_mut(&ip) {
            rec.failures = rec.failures.saturating_sub(1);
        }
    }

    pub fn cleanup(&self, now: Instant) {
        let mut r = self.inner.lock();
        let keep = |rec: &Record| now.duration_since(rec.last) < FORGET_AFTER || rec.until > now;
        r.ip.retain(|_, rec| keep(rec));
        r.account.retain(|_, rec| keep(rec));
        r.pair.retain(|_, rec| keep(rec));
        r.ip.shrink_to_fit();
        r.account.shrink_to_fit();
        r.pair.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        let r = self.inner.lock();
        r.ip.len() + r.account.len() + r.pair.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn back_off_grows_is_capped_and_spares_other_ips() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        for _ in 0..ACCOUNT_FREE - 1 {
            b.attempt("alice", ip(1), t0).unwrap();
        }
        // The fifth failure starts a 1 s wait for this IP on this account…
        b.attempt("alice", ip(1), t0).unwrap();
        let (name, wait) = b.attempt("Alice", ip(1), t0).unwrap_err();
        assert_eq!(name, "login_backoff_account");
        assert_eq!(wait, Duration::from_secs(1));
        // …but alice from another IP still gets to try, and succeeds.
        b.attempt("alice", ip(2), t0).unwrap();
        b.succeeded("alice", ip(2));
        // Waits double per failure, never past the cap.
        let mut rec = Record::new(t0);
        let mut waits = Vec::new();
        for _ in 0..40 {
            rec.fail(t0, ACCOUNT_FREE, ACCOUNT_CAP);
            waits.push(rec.until - t0);
        }
        assert_eq!(
            waits[4..9].iter().map(|w| w.as_secs()).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16]
        );
        assert!(waits.iter().all(|w| *w <= ACCOUNT_CAP));
        assert_eq!(waits[39], ACCOUNT_CAP);
    }

    #[test]
    fn ip_back_off_covers_all_accounts_and_records_are_forgotten() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        for i in 0..IP_FREE {
            b.attempt(&format!("user{i}"), ip(9), t0).unwrap();
        }
        let (name, _) = b.attempt("someone", ip(9), t0).unwrap_err();
        assert_eq!(name, "login_backoff_ip");
        assert!(!b.is_empty());
        b.cleanup(t0 + FORGET_AFTER + IP_CAP);
        assert_eq!(b.len(), 0);
        b.attempt("someone", ip(9), t0 + FORGET_AFTER + IP_CAP)
            .unwrap();
    }
}
