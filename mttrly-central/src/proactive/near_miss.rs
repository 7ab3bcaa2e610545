//! Near-misses of the alert rules: a measure held at 90 % or more of a rule's threshold, without
//! reaching it, for [`NEAR_INTERVALS`] heartbeats in a row, becomes a proactive event.
//!
//! Judged here on central, not on the agent, because the rules live here (`crate::alerts::rules`,
//! one table for every server, changeable without touching any agent): an agent would have to be
//! told the rules and kept in step. Central already judges every heartbeat against them, so the
//! near-miss watch reads the same observations at the same moment.
//!
//! Like the alert engine, only what differs from "clear" is kept: a server with no measure in the
//! near band holds no state, and judging a healthy heartbeat allocates nothing. An episode raises
//! one event; it ends when the measure leaves the band (below it, or over the threshold, where the
//! alert rule takes over), and only then can the same (rule, subject) raise again.
//!
//! State also ends when what it watched is gone: a (rule, subject) a heartbeat no longer reports
//! (an unmounted filesystem, a rule taken out) is dropped with that heartbeat, and a server not
//! heard from for [`STALE_MS`] is dropped by a sweep at most once per [`SWEEP_MS`]. So the watch
//! holds state only for what is still reported, and a run never spans a gap in the heartbeats.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::{HostMetrics, Severity};

use crate::alerts::engine::observations;
use crate::alerts::rules::{AlertRule, Measure};
use crate::db::proactive::NewEvent;

/// The share of a threshold that starts the near band.
pub const NEAR_FRACTION: f64 = 0.9;

/// Heartbeats in a row in the band before an event is raised.
pub const NEAR_INTERVALS: u32 = 3;

/// The detector name on near-miss events (it keys their false-positive budget).
pub const DETECTOR: &str = "near_miss";

/// A server silent this long loses its near-miss state (its runs would span the gap).
pub const STALE_MS: i64 = 10 * 60 * 1000;

/// How often, at most, a heartbeat sweeps out silent servers.
pub const SWEEP_MS: i64 = 60 * 1000;

/// One (rule, subject) of a server in the band, or raised and not yet out of it.
struct Tracked {
    rule: &'static str,
    subject: Box<str>,
    run: u32,
    raised: bool,
    /// Whether the heartbeat being judged reported it.
    seen: bool,
}

/// One server's tracked (rule, subject)s and when it last reported.
struct Server {
    seen_at: i64,
    tracked: Vec<Tracked>,
}

#[derive(Default)]
struct State {
    servers: HashMap<ServerId, Server>,
    swept_at: i64,
}

/// The near-miss watch over every server.
#[derive(Default)]
pub struct NearMisses {
    state: Mutex<State>,
}

/// The metric name an event of `rule` about `subject` carries (the agents' names, so a near miss
/// and an anomaly of the same measure read alike).
fn metric(measure: Measure, subject: &str) -> Option<String> {
    match measure {
        Measure::CpuPercent => Some("cpu_percent".to_owned()),
        Measure::MemoryPercent => Some("memory_percent".to_owned()),
        Measure::DiskUsedPercent => Some(format!("disk_used_percent:{subject}")),
        Measure::AgentOffline => None,
    }
}

impl NearMisses {
    /// Judges a heartbeat received at `now` (ms) against `rules`; returns the events to store.
    pub fn on_metrics(&self, rules: &[AlertRule], server: &ServerId, m: &HostMetrics, now: i64) -> Vec<NewEvent> {
        let observations = observations(rules, m);
        let near = |rule: &AlertRule, value: f64| {
            value.is_finite() && value >= NEAR_FRACTION * rule.threshold && value < rule.threshold
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_sub(state.swept_at) >= SWEEP_MS {
            state.swept_at = now;
            state.servers.retain(|_, s| now.saturating_sub(s.seen_at) < STALE_MS);
        }
        if !state.servers.contains_key(server) {
            if !observations.clone().any(|(rule, _, value)| rule.measure != Measure::AgentOffline && near(rule, value))
            {
                return Vec::new();
            }
            state.servers.insert(server.clone(), Server { seen_at: now, tracked: Vec::new() });
        }
        let Some(entry) = state.servers.get_mut(server) else { return Vec::new() };
        entry.seen_at = now;
        let tracked = &mut entry.tracked;
        for t in tracked.iter_mut() {
            t.seen = false;
        }
        let mut raised = Vec::new();
        for (rule, subject, value) in observations {
            let Some(metric) = metric(rule.measure, subject).filter(|_| rule.threshold > 0.0) else { continue };
            let position = tracked.iter().position(|t| t.rule == rule.id && &*t.subject == subject);
            if !near(rule, value) {
                if let Some(i) = position {
                    tracked.swap_remove(i);
                }
                continue;
            }
            let i = position.unwrap_or_else(|| {
                tracked.push(Tracked { rule: rule.id, subject: subject.into(), run: 0, raised: false, seen: true });
                tracked.len() - 1
            });
            let t = &mut tracked[i];
            t.seen = true;
            t.run = t.run.saturating_add(1);
            if t.raised || t.run < NEAR_INTERVALS {
                continue;
            }
            t.raised = true;
            let summary = format!(
                "{metric} held at {value:.1} for {} heartbeats, within {:.0} % of the `{}` rule's threshold ({:.1}) without reaching it",
                t.run,
                (1.0 - NEAR_FRACTION) * 100.0,
                rule.id,
                rule.threshold
            );
            let details =
                serde_json::json!({ "rule": rule.id, "threshold": rule.threshold, "near_fraction": NEAR_FRACTION });
            raised.push(NewEvent {
                server_id: server.clone(),
                detector: DETECTOR.to_owned(),
                metric: mttrly_core::redactor::redact(&metric).text.into_owned(),
                severity: Severity::Warning,
                summary,
                value,
                baseline: rule.threshold,
                intervals: t.run,
                details_json: details.to_string(),
                detected_at: now,
            });
        }
        // What this heartbeat no longer reports (an unmounted filesystem, a removed rule) is gone.
        tracked.retain(|t| t.seen);
        if tracked.is_empty() {
            state.servers.remove(server);
        }
        raised
    }

    /// How many (server, rule, subject)s hold state: a healthy fleet holds none.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).servers.values().map(|s| s.tracked.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::tools::common::FilesystemUsage;

    use super::*;
    use crate::alerts::rules::default_rules;

    #[test]
    fn a_vanished_mount_and_a_silent_server_are_forgotten() {
        let watch = NearMisses::default();
        let rules = default_rules();
        let (server, other) = (ServerId::generate(), ServerId::generate());
        // /var in the band for two heartbeats, then unmounted: its run must not survive.
        for _ in 0..2 {
            watch.on_metrics(&rules, &server, &metrics(10.0, 10.0, 80.0), 1);
        }
        assert_eq!(watch.tracked(), 1);
        let mut gone = metrics(10.0, 10.0, 80.0);
        gone.filesystems.clear();
        assert!(watch.on_metrics(&rules, &server, &gone, 2).is_empty());
        assert_eq!(watch.tracked(), 0, "the unmounted filesystem's state is dropped");
        // Remounted: a new run from one, not the old run's third heartbeat.
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 10.0, 80.0), 3).is_empty());
        // A server that stops reporting is swept out by another server's heartbeat.
        watch.on_metrics(&rules, &other, &metrics(10.0, 85.0, 10.0), 4);
        watch.on_metrics(&rules, &other, &metrics(10.0, 85.0, 10.0), STALE_MS / 2);
        assert_eq!(watch.tracked(), 2);
        let raised = watch.on_metrics(&rules, &other, &metrics(10.0, 85.0, 10.0), 3 + STALE_MS);
        assert_eq!(raised.len(), 1, "the reporting server's run went on to its third heartbeat");
        assert_eq!(watch.tracked(), 1, "the silent server's state is gone");
    }

    fn metrics(cpu: f64, memory: f64, disk: f64) -> HostMetrics {
        HostMetrics {
            collected_at: jiff::Timestamp::UNIX_EPOCH,
            cpu_percent: cpu,
            memory_total_bytes: 100,
            memory_used_bytes: 1,
            memory_percent: memory,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            load_average: [0.0; 3],
            uptime_seconds: 1,
            filesystems: vec![FilesystemUsage {
                mount_point: "/var".into(),
                fs_type: "ext4".into(),
                total_bytes: 100,
                used_bytes: 1,
                used_percent: disk,
            }],
        }
    }

    #[test]
    fn three_heartbeats_in_the_band_raise_one_event_per_episode() {
        let watch = NearMisses::default();
        let rules = default_rules();
        let server = ServerId::generate();
        // Memory 85 % (threshold 90: the band starts at 81): two heartbeats, nothing yet.
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 85.0, 10.0), 1).is_empty());
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 85.0, 10.0), 1).is_empty());
        let raised = watch.on_metrics(&rules, &server, &metrics(10.0, 86.0, 10.0), 1);
        assert_eq!(raised.len(), 1);
        assert_eq!((raised[0].detector.as_str(), raised[0].metric.as_str()), ("near_miss", "memory_percent"));
        assert_eq!((raised[0].value, raised[0].baseline, raised[0].intervals), (86.0, 90.0, 3));
        assert!(raised[0].summary.contains("`memory` rule's threshold (90.0)"), "{}", raised[0].summary);
        // Still in the band: the same episode.
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 86.0, 10.0), 1).is_empty());
        // Over the threshold (the alert's business) ends it; back in the band starts a new one.
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 95.0, 10.0), 1).is_empty());
        for _ in 0..2 {
            assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 85.0, 10.0), 1).is_empty());
        }
        assert_eq!(watch.on_metrics(&rules, &server, &metrics(10.0, 85.0, 10.0), 1).len(), 1);
    }

    #[test]
    fn disks_are_judged_per_mount_point_and_a_healthy_server_holds_nothing() {
        let watch = NearMisses::default();
        let rules = default_rules();
        let server = ServerId::generate();
        // /var at 80 %: in the band of `disk_usage` (85: band from 76.5), not of the critical rule.
        for _ in 0..2 {
            assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 10.0, 80.0), 1).is_empty());
        }
        let raised = watch.on_metrics(&rules, &server, &metrics(10.0, 10.0, 80.0), 1);
        assert_eq!(raised.iter().map(|e| e.metric.as_str()).collect::<Vec<_>>(), ["disk_used_percent:/var"]);
        assert!(watch.tracked() > 0);
        assert!(watch.on_metrics(&rules, &server, &metrics(10.0, 10.0, 10.0), 1).is_empty());
        assert_eq!(watch.tracked(), 0, "a healthy server holds no state");
    }
}
