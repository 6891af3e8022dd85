//! The one token bucket of the crate: session and stream send rates
//! (`SessionLimits::session_send_rate`, `stream_send_rate`), the pre-auth handshake limiter
//! of [`crate::policy::RateLimiter`] and PX-1's per-session request limits.
//!
//! Sans-IO like the session: every call takes `now`, nothing reads the clock.

use std::time::Duration;

use web_time::Instant;

/// Tokens refill at `rate` per second up to `burst`; a fresh bucket is full.
///
/// A `rate` of 0 means unlimited: [`TokenBucket::take`] always succeeds,
/// [`TokenBucket::available`] is infinite and nothing is ever waited for.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date (None: never; the bucket is full).
    at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket refilling `rate` tokens per second up to `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// A byte budget: `bytes_per_sec` with one second of burst (0: unlimited).
    pub fn per_second(bytes_per_sec: u64) -> Self {
        Self::new(bytes_per_sec as f64, bytes_per_sec as f64)
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0.0
    }

    /// Refills for the time since the last call and returns the tokens there are now.
    pub fn available(&mut self, now: Instant) -> f64 {
        if self.is_unlimited() {
            return f64::INFINITY;
        }
        if let Some(at) = self.at {
            let add = now.saturating_duration_since(at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + add).min(self.burst);
        }
        self.at = Some(now);
        self.tokens.max(0.0)
    }

    /// Takes `n` tokens if there are that many at `now`; false (nothing taken) otherwise.
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        if self.available(now) >= n {
            self.spend(n);
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens unconditionally (after [`TokenBucket::available`] said how many
    /// there were).
    pub fn spend(&mut self, n: f64) {
        if !self.is_unlimited() {
            self.tokens -= n;
        }
    }

    /// When at least `want` tokens will be there again (None: there are, or the bucket is
    /// unlimited, or it was never used).
    pub fn ready_at(&self, want: f64) -> Option<Instant> {
        if self.is_unlimited() || self.tokens >= want {
            return None;
        }
        let missing = want - self.tokens;
        self.at
            .map(|at| at + Duration::from_secs_f64(missing / self.rate))
    }

    /// Whether the bucket will have refilled completely by `now` (a table of buckets may
    /// forget such a one: a fresh bucket is the same).
    pub fn is_full_at(&self, now: Instant) -> bool {
        let since = self
            .at
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.tokens + since * self.rate >= self.burst
    }

    /// When the bucket was last used (None: never).
    pub fn last_used(&self) -> Option<Instant> {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20.0);
        let granted = (0..30).filter(|_| b.take(1.0, t0)).count();
        assert_eq!(granted, 20);
        assert!(!b.take(1.0, t0));
        assert!(b.take(1.0, t0 + Duration::from_millis(150)));
        assert!(!b.take(1.0, t0 + Duration::from_millis(150)));
        // Never above the burst, however long it rested.
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 20.0);
    }

    #[test]
    fn byte_budget_spends_and_says_when_it_is_ready() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_second(1000);
        assert_eq!(b.available(t0), 1000.0);
        b.spend(1000.0);
        assert_eq!(b.available(t0), 0.0);
        assert_eq!(b.ready_at(500.0), Some(t0 + Duration::from_millis(500)));
        assert!(!b.is_full_at(t0 + Duration::from_millis(999)));
        assert!(b.is_full_at(t0 + Duration::from_secs(1)));
        let mut free = TokenBucket::per_second(0);
        assert!(free.is_unlimited());
        assert_eq!(free.available(t0) as u64, u64::MAX);
        free.spend(1e12);
        assert!(free.take(1e12, t0));
        assert_eq!(free.ready_at(1e12), None);
    }
}
