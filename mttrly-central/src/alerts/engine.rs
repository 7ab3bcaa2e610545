//! Evaluates the rules against observations and decides which alerts open and resolve.
//!
//! Pure state machine over (server, rule, subject); the caller writes the changes to SQLite in
//! order. Rebuilt from the open alerts in the database at start.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};

use super::rules::{AlertRule, Measure};
use crate::db::alerts::{AlertChange, NewAlert};

#[derive(Default)]
struct RuleState {
    breach_since: Option<i64>,
    open: Option<AlertId>,
}

type Key = (ServerId, &'static str, String);

/// The alert engine.
pub struct AlertEngine {
    rules: Vec<AlertRule>,
    state: Mutex<HashMap<Key, RuleState>>,
}

impl AlertEngine {
    /// An engine with these rules and the currently open alerts.
    pub fn new(rules: Vec<AlertRule>, open: Vec<(ServerId, String, String, AlertId)>) -> Self {
        let mut state = HashMap::new();
        for (server, rule, subject, id) in open {
            if let Some(rule) = rules.iter().find(|r| r.id == rule) {
                state.insert((server, rule.id, subject), RuleState { breach_since: None, open: Some(id) });
            }
        }
        Self { rules, state: Mutex::new(state) }
    }

    /// Evaluates the metric rules against a heartbeat.
    pub fn on_metrics(&self, account: &AccountId, server: &ServerId, m: &HostMetrics, now_ms: i64) -> Vec<AlertChange> {
        let mut observations = Vec::new();
        for rule in &self.rules {
            match rule.measure {
                Measure::DiskUsedPercent => {
                    for fs in &m.filesystems {
                        observations.push((rule, fs.mount_point.clone(), fs.used_percent));
                    }
                }
                Measure::MemoryPercent => observations.push((rule, "memory".to_owned(), m.memory_percent)),
                Measure::CpuPercent => observations.push((rule, "cpu".to_owned(), m.cpu_percent)),
                Measure::AgentOffline => {}
            }
        }
        self.evaluate(account, server, &observations, now_ms)
    }

    /// Evaluates the offline rule against a server's connection status.
    pub fn on_status(
        &self,
        account: &AccountId,
        server: &ServerId,
        status: ConnectionStatus,
        now_ms: i64,
    ) -> Vec<AlertChange> {
        let value = if status == ConnectionStatus::Offline { 100.0 } else { 0.0 };
        let observations: Vec<_> = self
            .rules
            .iter()
            .filter(|r| r.measure == Measure::AgentOffline)
            .map(|r| (r, "agent".to_owned(), value))
            .collect();
        self.evaluate(account, server, &observations, now_ms)
    }

    /// Forgets a decommissioned server, resolving whatever was open.
    pub fn forget(&self, server: &ServerId, now_ms: i64) -> Vec<AlertChange> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changes = Vec::new();
        state.retain(|(s, _, _), st| {
            if s != server {
                return true;
            }
            if let Some(id) = st.open.take() {
                changes.push(AlertChange::Resolve(id, now_ms));
            }
            false
        });
        changes
    }

    fn evaluate(
        &self,
        account: &AccountId,
        server: &ServerId,
        observations: &[(&AlertRule, String, f64)],
        now_ms: i64,
    ) -> Vec<AlertChange> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changes = Vec::new();
        for (rule, subject, value) in observations {
            let st = state.entry((server.clone(), rule.id, subject.clone())).or_default();
            if *value >= rule.threshold {
                let since = *st.breach_since.get_or_insert(now_ms);
                let held = u128::try_from(now_ms - since).unwrap_or(0);
                if st.open.is_none() && held >= rule.sustained.as_millis() {
                    let id = AlertId::generate();
                    st.open = Some(id.clone());
                    changes.push(AlertChange::Open(NewAlert {
                        id,
                        account_id: account.clone(),
                        server_id: server.clone(),
                        rule: rule.id.to_owned(),
                        subject: subject.clone(),
                        severity: rule.severity,
                        summary: summary(rule, subject, *value),
                        opened_at: now_ms,
                    }));
                }
            } else {
                st.breach_since = None;
                if *value < rule.clear_below
                    && let Some(id) = st.open.take()
                {
                    changes.push(AlertChange::Resolve(id, now_ms));
                }
            }
        }
        changes
    }
}

fn summary(rule: &AlertRule, subject: &str, value: f64) -> String {
    match rule.measure {
        Measure::DiskUsedPercent => {
            format!("filesystem {subject} is {value:.1}% full (threshold {:.0}%)", rule.threshold)
        }
        Measure::MemoryPercent => format!(
            "memory use is {value:.1}% for at least {}s (threshold {:.0}%)",
            rule.sustained.as_secs(),
            rule.threshold
        ),
        Measure::CpuPercent => format!(
            "CPU has been at {value:.1}% for at least {}s (threshold {:.0}%)",
            rule.sustained.as_secs(),
            rule.threshold
        ),
        Measure::AgentOffline => "the agent stopped sending heartbeats".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::tools::common::FilesystemUsage;

    use super::super::rules::default_rules;
    use super::*;

    fn metrics(cpu: f64, disk: f64) -> HostMetrics {
        HostMetrics {
            collected_at: jiff::Timestamp::UNIX_EPOCH,
            cpu_percent: cpu,
            memory_total_bytes: 100,
            memory_used_bytes: 10,
            memory_percent: 10.0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            load_average: [0.0; 3],
            uptime_seconds: 1,
            filesystems: vec![FilesystemUsage {
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                total_bytes: 100,
                used_bytes: 0,
                used_percent: disk,
            }],
        }
    }

    fn opened(changes: &[AlertChange]) -> Vec<&str> {
        changes
            .iter()
            .filter_map(|c| match c {
                AlertChange::Open(a) => Some(a.rule.as_str()),
                AlertChange::Resolve(..) => None,
            })
            .collect()
    }

    #[test]
    fn disk_opens_at_threshold_resolves_below_hysteresis_and_does_not_reopen_while_open() {
        let engine = AlertEngine::new(default_rules(), Vec::new());
        let (a, s) = (AccountId::generate(), ServerId::generate());
        assert!(engine.on_metrics(&a, &s, &metrics(1.0, 50.0), 0).is_empty());
        assert_eq!(opened(&engine.on_metrics(&a, &s, &metrics(1.0, 86.0), 1)), ["disk_usage"]);
        assert!(engine.on_metrics(&a, &s, &metrics(1.0, 87.0), 2).is_empty(), "already open");
        assert!(engine.on_metrics(&a, &s, &metrics(1.0, 82.0), 3).is_empty(), "inside hysteresis");
        let changes = engine.on_metrics(&a, &s, &metrics(1.0, 70.0), 4);
        assert!(matches!(changes.as_slice(), [AlertChange::Resolve(_, 4)]), "{changes:?}");
    }

    #[test]
    fn cpu_must_be_sustained_for_the_window() {
        let engine = AlertEngine::new(default_rules(), Vec::new());
        let (a, s) = (AccountId::generate(), ServerId::generate());
        assert!(engine.on_metrics(&a, &s, &metrics(95.0, 1.0), 0).is_empty());
        assert!(engine.on_metrics(&a, &s, &metrics(95.0, 1.0), 299_000).is_empty());
        assert_eq!(opened(&engine.on_metrics(&a, &s, &metrics(95.0, 1.0), 300_000)), ["cpu_sustained"]);
        // A dip resets the window.
        let engine = AlertEngine::new(default_rules(), Vec::new());
        engine.on_metrics(&a, &s, &metrics(95.0, 1.0), 0);
        engine.on_metrics(&a, &s, &metrics(50.0, 1.0), 100_000);
        assert!(engine.on_metrics(&a, &s, &metrics(95.0, 1.0), 300_000).is_empty());
    }

    #[test]
    fn offline_opens_and_online_resolves() {
        let engine = AlertEngine::new(default_rules(), Vec::new());
        let (a, s) = (AccountId::generate(), ServerId::generate());
        assert_eq!(opened(&engine.on_status(&a, &s, ConnectionStatus::Offline, 5)), ["agent_offline"]);
        assert!(engine.on_status(&a, &s, ConnectionStatus::Offline, 6).is_empty());
        assert!(matches!(engine.on_status(&a, &s, ConnectionStatus::Online, 7).as_slice(), [AlertChange::Resolve(..)]));
    }

    #[test]
    fn open_alerts_survive_a_restart() {
        let s = ServerId::generate();
        let id = AlertId::generate();
        let engine =
            AlertEngine::new(default_rules(), vec![(s.clone(), "agent_offline".into(), "agent".into(), id.clone())]);
        let changes = engine.on_status(&AccountId::generate(), &s, ConnectionStatus::Online, 1);
        assert_eq!(changes, [AlertChange::Resolve(id, 1)]);
    }
}
