//! Caps on concurrent sockets per client IP and per user (§3b.5): a slot is
//! held by a [`SocketGuard`] and given back when it is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::UserId;

#[derive(Default)]
struct Counts {
    ip: HashMap<IpAddr, usize>,
    user: HashMap<UserId, usize>,
}

pub struct SocketCaps {
    per_ip: usize,
    per_user: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One socket's slot; dropping it frees the slot.
pub struct SocketGuard {
    counts: Option<Arc<Mutex<Counts>>>,
    ip: Option<IpAddr>,
    user: Option<UserId>,
}

impl SocketGuard {
    pub fn unlimited() -> Self {
        SocketGuard {
            counts: None,
            ip: None,
            user: None,
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = map.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            map.remove(k);
        }
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Some(counts) = &self.counts {
            let mut c = counts.lock();
            if let Some(ip) = self.ip {
                release(&mut c.ip, &ip);
            }
            if let Some(u) = self.user {
                release(&mut c.user, &u);
            }
        }
    }
}

impl SocketCaps {
    pub fn new(per_ip: usize, per_user: usize) -> Self {
        SocketCaps {
            per_ip,
            per_user,
            counts: Arc::default(),
        }
    }

    /// A slot for `ip` and `user` (either may be absent), or the name of the
    /// cap that is full.
    pub fn open(&self, ip: IpAddr, user: Option<UserId>) -> Result<SocketGuard, &'static str> {
        let mut c = self.counts.lock();
        if c.ip.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Err("sockets_ip");
        }
        if let Some(u) = user {
            if c.user.get(&u).copied().unwrap_or(0) >= self.per_user {
                return Err("sockets_user");
            }
            *c.user.entry(u).or_default() += 1;
        }
        *c.ip.entry(ip).or_default() += 1;
        Ok(SocketGuard {
            counts: Some(self.counts.clone()),
            ip: Some(ip),
            user,
        })
    }

    /// Sockets open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.counts.lock().ip.get(&ip).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_come_back() {
        let caps = SocketCaps::new(2, 1);
        let ip = IpAddr::from([127, 0, 0, 1]);
        let a = caps.open(ip, Some(1)).unwrap();
        assert_eq!(caps.open(ip, Some(1)).err(), Some("sockets_user"));
        let _b = caps.open(ip, Some(2)).unwrap();
        assert_eq!(caps.open(ip, Some(3)).err(), Some("sockets_ip"));
        drop(a);
        let _c = caps.open(ip, Some(1)).unwrap();
        drop((_b, _c));
        assert!(caps.counts.lock().ip.is_empty() && caps.counts.lock().user.is_empty());
    }
}
