//! Rate limits per account and per token: token buckets, refilled continuously.
//!
//! An assistant stuck in a loop must not be able to flood a server with commands, nor one busy
//! token starve the rest of its account. The second bucket is keyed by the credential, not by the
//! MCP session: sessions are free to open, so a per-session bucket would grow with every
//! `initialize`. gRPC and MCP calls made with one token share it. Over the limit, calls fail with
//! `RATE_LIMITED` and `details.retry_after_seconds`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::{ErrorCode, MttrlyError};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// A set of token buckets with one capacity.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Allows `per_minute` calls per key per minute (bursts up to that many).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says how many seconds until one is available.
    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let per_ms = capacity / 60_000.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, at_ms: now_ms });
        #[allow(clippy::cast_precision_loss)]
        let elapsed = (now_ms - bucket.at_ms).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_ms).min(capacity);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait_ms = ((1.0 - bucket.tokens) / per_ms).ceil() as u64;
            Err(wait_ms.div_ceil(1000).max(1))
        }
    }
}

/// The limits central applies to tool calls.
pub struct Limits {
    account: RateLimiter,
    token: RateLimiter,
}

impl Limits {
    /// Per-account and per-token calls per minute.
    pub fn new(per_account: u32, per_token: u32) -> Self {
        Self { account: RateLimiter::new(per_account), token: RateLimiter::new(per_token) }
    }

    /// Admits one call made with `token` (its credential key) in `account`, or refuses it with
    /// `RATE_LIMITED`.
    pub fn admit(&self, account: &str, token: &str, now_ms: i64) -> Result<(), MttrlyError> {
        let refuse = |scope: &str, limit: u32, retry: u64| {
            MttrlyError::new(ErrorCode::RateLimited, format!("too many calls for this {scope}; retry in {retry}s"))
                .with_detail("retry_after_seconds", retry)
                .with_detail("scope", scope)
                .with_detail("limit_per_minute", limit)
        };
        self.token.take(token, now_ms).map_err(|retry| refuse("token", self.token.per_minute, retry))?;
        self.account.take(account, now_ms).map_err(|retry| refuse("account", self.account.per_minute, retry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_over_time() {
        let limiter = RateLimiter::new(60); // one per second, bursts of 60
        for _ in 0..60 {
            assert!(limiter.take("k", 0).is_ok());
        }
        assert_eq!(limiter.take("k", 0), Err(1));
        assert!(limiter.take("other", 0).is_ok(), "keys are independent");
        assert!(limiter.take("k", 1000).is_ok(), "one token back after a second");
        assert!(limiter.take("k", 1000).is_err());
    }

    #[test]
    fn the_token_and_the_account_are_both_limited() {
        let limits = Limits::new(3, 2);
        assert!(limits.admit("a", "p1", 0).is_ok());
        assert!(limits.admit("a", "p1", 0).is_ok());
        let err = limits.admit("a", "p1", 0).unwrap_err();
        assert_eq!(err.details()["scope"], "token");
        assert_eq!(err.details()["limit_per_minute"], 2);
        assert!(limits.admit("a", "p2", 0).is_ok());
        let err = limits.admit("a", "p3", 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert_eq!(err.details()["scope"], "account");
        assert!(err.details()["retry_after_seconds"].as_u64().unwrap() >= 1);
    }
}
