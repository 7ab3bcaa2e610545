//! The lockout after repeated failed second-factor attempts: five consecutive failures lock the
//! person out of second-factor checks for fifteen minutes. With a ±1 step window, an online guesser
//! gets 3 chances in 10^6 per attempt; five attempts per fifteen minutes makes guessing a code take
//! decades, while a person who mistypes a few times is held up briefly.
//!
//! The state is the caller's to persist per user (in the same transaction as the attempt, so two
//! parallel attempts cannot both be the fifth). Success resets the count.

use serde::{Deserialize, Serialize};

/// Consecutive failures that lock.
pub const MAX_FAILURES: u32 = 5;
/// How long a lock lasts, in milliseconds.
pub const LOCK_MS: i64 = 15 * 60 * 1000;

/// The policy (constants by default; a struct so tests and a future setting can vary it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures that lock.
    pub max_failures: u32,
    /// Lock duration in milliseconds.
    pub lock_ms: i64,
}

impl Default for Lockout {
    fn default() -> Self {
        Self { max_failures: MAX_FAILURES, lock_ms: LOCK_MS }
    }
}

/// A person's persisted second-factor attempt state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutState {
    /// Consecutive failures since the last success or lock expiry.
    pub failures: u32,
    /// Until when (epoch ms) attempts are refused unchecked, if locked.
    pub locked_until_ms: Option<i64>,
}

impl Lockout {
    /// Whether an attempt may be checked at `now_ms`; `Err(until)` while locked. A locked person's
    /// attempt is refused before the code is looked at, so it cannot be used as an oracle.
    pub fn admit(&self, state: &LockoutState, now_ms: i64) -> Result<(), i64> {
        match state.locked_until_ms {
            Some(until) if now_ms < until => Err(until),
            _ => Ok(()),
        }
    }

    /// The state after a failed attempt at `now_ms` (a lock that has run out starts a new count).
    pub fn on_failure(&self, state: &LockoutState, now_ms: i64) -> LockoutState {
        let failures = match state.locked_until_ms {
            Some(until) if now_ms >= until => 1,
            _ => state.failures.saturating_add(1),
        };
        if failures >= self.max_failures {
            LockoutState { failures, locked_until_ms: Some(now_ms.saturating_add(self.lock_ms)) }
        } else {
            LockoutState { failures, locked_until_ms: None }
        }
    }

    /// The state after a successful attempt.
    pub fn on_success(&self) -> LockoutState {
        LockoutState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_for_fifteen_minutes_then_counting_starts_again() {
        let policy = Lockout::default();
        let mut state = LockoutState::default();
        let t0 = 1_000_000;
        for i in 0..4 {
            assert!(policy.admit(&state, t0 + i).is_ok());
            state = policy.on_failure(&state, t0 + i);
            assert_eq!(state.locked_until_ms, None);
        }
        state = policy.on_failure(&state, t0 + 4);
        assert_eq!(state.locked_until_ms, Some(t0 + 4 + LOCK_MS));
        assert_eq!(policy.admit(&state, t0 + 5), Err(t0 + 4 + LOCK_MS));
        assert_eq!(policy.admit(&state, t0 + 4 + LOCK_MS - 1), Err(t0 + 4 + LOCK_MS));
        assert!(policy.admit(&state, t0 + 4 + LOCK_MS).is_ok());
        let after = policy.on_failure(&state, t0 + 4 + LOCK_MS);
        assert_eq!(after, LockoutState { failures: 1, locked_until_ms: None });
    }

    #[test]
    fn a_success_resets_the_count() {
        let policy = Lockout::default();
        let mut state = LockoutState::default();
        for i in 0..4 {
            state = policy.on_failure(&state, i);
        }
        state = policy.on_success();
        for i in 0..4 {
            state = policy.on_failure(&state, 10 + i);
        }
        assert!(policy.admit(&state, 20).is_ok());
    }
}
