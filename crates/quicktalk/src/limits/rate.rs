//! Keyed GCRA limiters (the `governor` crate), one per [`Limit`].

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Key, Limit, Rates};

pub struct RateLimits {
    clock: DefaultClock,
    /// Indexed like [`Limit::ALL`].
    limiters: Vec<DefaultKeyedRateLimiter<Key>>,
}

fn quota(rate: super::Rate) -> Quota {
    let count = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let every = (rate.per / count.get()).max(Duration::from_nanos(1));
    Quota::with_period(every)
        .expect("non-zero period")
        .allow_burst(count)
}

impl RateLimits {
    pub fn new(rates: &Rates) -> Self {
        let clock = DefaultClock::default();
        RateLimits {
            limiters: Limit::ALL
                .iter()
                .map(|l| RateLimiter::keyed(quota(rates.get(*l))))
                .collect(),
            clock,
        }
    }

    fn limiter(&self, limit: Limit) -> &DefaultKeyedRateLimiter<Key> {
        let i = Limit::ALL
            .iter()
            .position(|l| *l == limit)
            .expect("every limit is in ALL");
        &self.limiters[i]
    }

    /// `Err(wait)`: over the limit; the next action is allowed after `wait`.
    pub fn check(&self, limit: Limit, key: &Key) -> Result<(), Duration> {
        self.limiter(limit)
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys whose state is back to "full burst available".
    pub fn cleanup(&self) {
        for l in &self.limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.limiters.iter().map(|l| l.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Rate;

    #[test]
    fn burst_then_refusal_with_wait_then_cleanup_forgets_idle_keys() {
        let mut rates = Rates::default();
        rates.set(
            Limit::SendUser,
            Rate {
                count: 3,
                per: Duration::from_millis(60),
            },
        );
        let r = RateLimits::new(&rates);
        for _ in 0..3 {
            r.check(Limit::SendUser, &Key::User(1)).unwrap();
        }
        let wait = r.check(Limit::SendUser, &Key::User(1)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(20),
            "{wait:?}"
        );
        // Another key has its own budget.
        r.check(Limit::SendUser, &Key::User(2)).unwrap();
        for u in 0..1000 {
            r.check(Limit::SendUser, &Key::User(100 + u)).unwrap();
        }
        assert!(r.len() >= 1000);
        std::thread::sleep(Duration::from_millis(80));
        r.cleanup();
        assert_eq!(r.len(), 0, "idle keys are dropped");
    }
}
