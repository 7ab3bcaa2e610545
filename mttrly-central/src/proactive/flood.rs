//! A bound on what one server's agent may report per minute: proactive events and detected
//! deploys each become a stored row, an audit row and a line in everyone's brief, so an agent
//! that floods (a bug, or a host someone else controls) must not fill the database or bury the
//! other servers' news.
//!
//! Per (server, kind) token bucket of [`PER_MINUTE`] (bursts up to that many). A report over the
//! bound is dropped — never half-stored — counted, logged, and audited once per [`WINDOW_MS`] per
//! (server, kind): the first drop of a window writes one audit row carrying how many were dropped
//! in the window before, so a reader sees the flood and its size without one row per drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use mttrly_core::ids::ServerId;

use crate::ratelimit::RateLimiter;

/// Reports of one kind one server may send per minute.
pub const PER_MINUTE: u32 = 30;

/// How often, at most, drops of one (server, kind) are audited.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;

/// What an agent reports that the bound covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// `AgentMessage.proactive_event`.
    ProactiveEvent,
    /// `AgentMessage.deploy_detected`.
    DeployDetected,
}

impl ReportKind {
    /// The message's name, as audit rows say it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ProactiveEvent => "proactive_event",
            Self::DeployDetected => "deploy_detected",
        }
    }
}

/// The verdict on one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Store it.
    Admitted,
    /// Drop it. `audit` is set on the first drop of a window: write one audit row saying that
    /// `dropped_before` reports were dropped in the previous window of this (server, kind).
    Dropped {
        /// Whether this drop is the one to audit.
        audit: bool,
        /// Drops in the previous window (only meaningful with `audit`).
        dropped_before: u64,
    },
}

/// Drops of one (server, kind) in the current window.
struct Window {
    started_at: i64,
    dropped: u64,
}

/// The bound, for every server.
pub struct ReportLimits {
    buckets: RateLimiter,
    windows: Mutex<HashMap<(ServerId, ReportKind), Window>>,
    dropped_total: AtomicU64,
}

impl Default for ReportLimits {
    fn default() -> Self {
        Self::new(PER_MINUTE)
    }
}

impl ReportLimits {
    /// A bound of `per_minute` reports per (server, kind).
    pub fn new(per_minute: u32) -> Self {
        Self {
            buckets: RateLimiter::new(per_minute),
            windows: Mutex::new(HashMap::new()),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// Judges one report of `kind` from `server` at `now` (ms).
    pub fn admit(&self, server: &ServerId, kind: ReportKind, now: i64) -> Admission {
        if self.buckets.take(&format!("{server}/{}", kind.as_str()), now).is_ok() {
            return Admission::Admitted;
        }
        self.dropped_total.fetch_add(1, Ordering::Relaxed);
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        // Windows of floods long over go, so the map holds only servers flooding lately.
        windows.retain(|_, w| now.saturating_sub(w.started_at) < 2 * WINDOW_MS);
        match windows.get_mut(&(server.clone(), kind)) {
            Some(w) if now.saturating_sub(w.started_at) < WINDOW_MS => {
                w.dropped = w.dropped.saturating_add(1);
                Admission::Dropped { audit: false, dropped_before: 0 }
            }
            Some(w) => {
                let before = w.dropped;
                *w = Window { started_at: now, dropped: 1 };
                Admission::Dropped { audit: true, dropped_before: before }
            }
            None => {
                windows.insert((server.clone(), kind), Window { started_at: now, dropped: 1 });
                Admission::Dropped { audit: true, dropped_before: 0 }
            }
        }
    }

    /// Reports dropped since start, every server and kind.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

/// Judges a report and, when dropped, logs it and audits the first drop of the window. Returns
/// whether to store the report.
pub fn admit(
    central: &crate::state::Central,
    account: &mttrly_core::ids::AccountId,
    server: &ServerId,
    kind: ReportKind,
    now: i64,
) -> bool {
    let Admission::Dropped { audit, dropped_before } = central.report_limits.admit(server, kind, now) else {
        return true;
    };
    if !audit {
        tracing::debug!(server_id = %server, kind = kind.as_str(), "dropped an agent report over the rate bound");
        return false;
    }
    tracing::warn!(
        server_id = %server,
        kind = kind.as_str(),
        per_minute = PER_MINUTE,
        dropped_before,
        "an agent reports faster than the bound; dropping its reports (audited once per window)"
    );
    let mut event = crate::audit::events::agent_event(
        account,
        server,
        kind.as_str(),
        serde_json::json!({
            "refused": format!("more than {PER_MINUTE} {} reports a minute from this server", kind.as_str()),
            "audited_once_per_ms": WINDOW_MS,
            "dropped_in_previous_window": dropped_before,
        }),
        false,
    );
    event.outcome = mttrly_core::audit::AuditOutcome::Error { code: mttrly_core::ErrorCode::RateLimited };
    central.audit(crate::events::Recorded::new(event, crate::events::Payload::AgentEvent));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_dropped_over_the_bound_and_audited_once_per_window() {
        let limits = ReportLimits::new(3);
        let (server, other) = (ServerId::generate(), ServerId::generate());
        for _ in 0..3 {
            assert_eq!(limits.admit(&server, ReportKind::ProactiveEvent, 0), Admission::Admitted);
        }
        assert_eq!(
            limits.admit(&server, ReportKind::ProactiveEvent, 0),
            Admission::Dropped { audit: true, dropped_before: 0 },
            "the first drop is audited"
        );
        for _ in 0..5 {
            assert_eq!(
                limits.admit(&server, ReportKind::ProactiveEvent, 1),
                Admission::Dropped { audit: false, dropped_before: 0 }
            );
        }
        // Another kind, another server: their own buckets.
        assert_eq!(limits.admit(&server, ReportKind::DeployDetected, 1), Admission::Admitted);
        assert_eq!(limits.admit(&other, ReportKind::ProactiveEvent, 1), Admission::Admitted);
        // The bucket refills (3 a minute: one every 20 s).
        assert_eq!(limits.admit(&server, ReportKind::ProactiveEvent, 20_001), Admission::Admitted);
        // Still flooding in the next window: one audit row, with the previous window's count.
        for _ in 0..3 {
            limits.admit(&server, ReportKind::ProactiveEvent, WINDOW_MS + 20_001);
        }
        let next = (0..10).map(|_| limits.admit(&server, ReportKind::ProactiveEvent, WINDOW_MS + 20_002));
        let audited: Vec<_> = next.filter(|a| matches!(a, Admission::Dropped { audit: true, .. })).collect();
        assert_eq!(audited, [Admission::Dropped { audit: true, dropped_before: 6 }]);
        assert_eq!(limits.dropped_total(), 16);
    }
}
