//! Reconnect delays: exponential, capped, with full jitter, so a fleet of agents that lost central
//! at the same moment does not come back at the same moment.

use std::time::Duration;

/// Exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, doubles per attempt, never exceeds `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, attempt: 0 }
    }

    /// The next delay: uniformly random in `[base/2, min(cap, base * 2^attempt)]`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << self.attempt.min(20)).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let floor = self.base / 2;
        let span = ceiling.saturating_sub(floor).as_millis();
        let jitter = if span == 0 { 0 } else { u128::from(random_u64()) % span };
        floor + Duration::from_millis(u64::try_from(jitter).unwrap_or(0))
    }

    /// Back to the first delay (after a connection that stayed up).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Jitter only: if the OS RNG fails, a fixed value still gives a valid (unjittered) delay.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut max_seen = Duration::ZERO;
        for _ in 0..50 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(50), "{d:?}");
            assert!(d <= Duration::from_secs(2), "{d:?}");
            max_seen = max_seen.max(d);
        }
        assert!(max_seen > Duration::from_millis(400), "grows: {max_seen:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
