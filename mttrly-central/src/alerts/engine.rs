//! Evaluates the rules against observations and decides which alerts open and resolve.
//!
//! Pure state machine over (server, rule, subject); the caller writes the changes to SQLite in
//! order. Rebuilt from the open alerts in the database at start.
//!
//! Only what differs from "clear, nothing open" is kept: an observation below its threshold with
//! no alert open leaves nothing behind, so a healthy fleet costs no state and a heartbeat is
//! judged without allocating. Absent state and a default state judge identically (a breach starts
//! its window at the first observation at or above the threshold either way).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use mttrly_core::ids::{AccountId, AlertId, ServerId};
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};

use super::rules::{AlertRule, Measure};
use crate::db::alerts::{AlertChange, NewAlert};

/// One (rule, subject) of a server that is breaching or has an alert open.
struct Tracked {
    rule: &'static str,
    subject: Box<str>,
    breach_since: Option<i64>,
    open: Option<AlertId>,
}

impl Tracked {
    fn is_clear(&self) -> bool {
        self.breach_since.is_none() && self.open.is_none()
    }
}

/// One observation: the rule, the subject it is about (a mount point, `memory`, `agent`) and the
/// measured value.
pub type Observation<'a> = (&'a AlertRule, &'a str, f64);

/// What a heartbeat measures for each metric rule: one observation per rule and subject (every
/// mounted filesystem for a disk rule). The one reading of a heartbeat by the rules, shared by the
/// engine and the near-miss watch so the two cannot judge different numbers.
pub fn observations<'a>(
    rules: &'a [AlertRule],
    m: &'a HostMetrics,
) -> impl Iterator<Item = Observation<'a>> + Clone + 'a {
    rules.iter().flat_map(move |rule| {
        let filesystems: &[_] = if rule.measure == Measure::DiskUsedPercent { &m.filesystems } else { &[] };
        let single = match rule.measure {
            Measure::MemoryPercent => Some(("memory", m.memory_percent)),
            Measure::CpuPercent => Some(("cpu", m.cpu_percent)),
            Measure::DiskUsedPercent | Measure::AgentOffline => None,
        };
        filesystems
            .iter()
            .map(|fs| (fs.mount_point.as_str(), fs.used_percent))
            .chain(single)
            .map(move |(subject, value)| (rule, subject, value))
    })
}

/// The alert engine.
pub struct AlertEngine {
    rules: Vec<AlertRule>,
    /// Per server, its (rule, subject)s that are not clear; a server with none has no entry.
    state: Mutex<HashMap<ServerId, Vec<Tracked>>>,
}

impl AlertEngine {
    /// An engine with these rules and the currently open alerts.
    pub fn new(rules: Vec<AlertRule>, open: Vec<(ServerId, String, String, AlertId)>) -> Self {
        let mut state: HashMap<ServerId, Vec<Tracked>> = HashMap::new();
        for (server, rule, subject, id) in open {
            if let Some(rule) = rules.iter().find(|r| r.id == rule) {
                state.entry(server).or_default().push(Tracked {
                    rule: rule.id,
                    subject: subject.into_boxed_str(),
                    breach_since: None,
                    open: Some(id),
                });
            }
        }
        Self { rules, state: Mutex::new(state) }
    }

    /// The rules it judges by (the near-miss watch reads the same ones).
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Evaluates the metric rules against a heartbeat.
    pub fn on_metrics(&self, account: &AccountId, server: &ServerId, m: &HostMetrics, now_ms: i64) -> Vec<AlertChange> {
        self.evaluate(account, server, observations(&self.rules, m), now_ms)
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
        let observations =
            self.rules.iter().filter(|r| r.measure == Measure::AgentOffline).map(move |r| (r, "agent", value));
        self.evaluate(account, server, observations, now_ms)
    }

    /// When an offline rule that is breaching but not open yet would open, if the server stays
    /// offline: the instant its sustain window ends. `None` when no such window is running (every
    /// built-in offline rule opens at once). The offline sweep judges the server again then, so
    /// the alert opens at the same sweep it would if every server were judged every second.
    pub fn offline_window_ends(&self, server: &ServerId) -> Option<i64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let tracked = state.get(server)?;
        self.rules
            .iter()
            .filter(|r| r.measure == Measure::AgentOffline)
            .filter_map(|rule| {
                let t = tracked.iter().find(|t| t.rule == rule.id && &*t.subject == "agent")?;
                let since = t.breach_since.filter(|_| t.open.is_none())?;
                let window = i64::try_from(rule.sustained.as_millis()).unwrap_or(i64::MAX);
                Some(since.saturating_add(window))
            })
            .min()
    }

    /// Forgets a decommissioned server, resolving whatever was open.
    pub fn forget(&self, server: &ServerId, now_ms: i64) -> Vec<AlertChange> {
        let removed = self.state.lock().unwrap_or_else(PoisonError::into_inner).remove(server);
        removed.into_iter().flatten().filter_map(|t| t.open).map(|id| AlertChange::Resolve(id, now_ms)).collect()
    }

    /// How many (server, rule, subject)s hold state: for tests (a healthy fleet holds none).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).values().map(Vec::len).sum()
    }

    fn evaluate<'a>(
        &self,
        account: &AccountId,
        server: &ServerId,
        observations: impl Iterator<Item = Observation<'a>> + Clone,
        now_ms: i64,
    ) -> Vec<AlertChange> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.contains_key(server) {
            // Nothing tracked: only a breach starts something (the common case, no allocation).
            if !observations.clone().any(|(rule, _, value)| value >= rule.threshold) {
                return Vec::new();
            }
            state.insert(server.clone(), Vec::new());
        }
        let Some(tracked) = state.get_mut(server) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for (rule, subject, value) in observations {
            let slot = tracked.iter().position(|t| t.rule == rule.id && &*t.subject == subject);
            if value >= rule.threshold {
                let slot = slot.unwrap_or_else(|| {
                    tracked.push(Tracked { rule: rule.id, subject: subject.into(), breach_since: None, open: None });
                    tracked.len() - 1
                });
                let Some(st) = tracked.get_mut(slot) else { continue };
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
                        subject: subject.to_owned(),
                        severity: rule.severity,
                        summary: summary(rule, subject, value),
                        opened_at: now_ms,
                    }));
                }
            } else if let Some(st) = slot.and_then(|i| tracked.get_mut(i)) {
                st.breach_since = None;
                if value < rule.clear_below
                    && let Some(id) = st.open.take()
                {
                    changes.push(AlertChange::Resolve(id, now_ms));
                }
            }
        }
        tracked.retain(|t| !t.is_clear());
        if tracked.is_empty() {
            state.remove(server);
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
    #![allow(clippy::cast_precision_loss)]

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
    fn healthy_servers_hold_no_state_and_a_recovered_one_lets_go_of_it() {
        let engine = AlertEngine::new(default_rules(), Vec::new());
        let a = AccountId::generate();
        let servers: Vec<_> = (0..100).map(|_| ServerId::generate()).collect();
        for (t, s) in servers.iter().enumerate() {
            let t = i64::try_from(t).unwrap_or_default();
            assert!(engine.on_metrics(&a, s, &metrics(20.0, 40.0), t).is_empty());
            assert!(engine.on_status(&a, s, ConnectionStatus::Online, t).is_empty());
        }
        assert_eq!(engine.tracked(), 0, "nothing is breaching or open");
        let s = &servers[0];
        engine.on_metrics(&a, s, &metrics(95.0, 90.0), 1_000);
        assert_eq!(engine.tracked(), 2, "the CPU window and the open disk alert");
        engine.on_metrics(&a, s, &metrics(20.0, 82.0), 2_000);
        assert_eq!(engine.tracked(), 1, "the disk alert stays open inside its hysteresis");
        engine.on_metrics(&a, s, &metrics(20.0, 40.0), 3_000);
        assert_eq!(engine.tracked(), 0);
    }

    /// The engine as it was before it dropped clear state: one entry per (server, rule,
    /// subject) ever observed. Kept here as the model the leaner engine must match.
    #[derive(Default)]
    struct Model {
        state: HashMap<(usize, &'static str, String), (Option<i64>, bool)>,
    }

    impl Model {
        fn evaluate(&mut self, server: usize, observations: &[(&AlertRule, String, f64)], now: i64) -> Vec<String> {
            let mut out = Vec::new();
            for (rule, subject, value) in observations {
                let st = self.state.entry((server, rule.id, subject.clone())).or_default();
                if *value >= rule.threshold {
                    let since = *st.0.get_or_insert(now);
                    if !st.1 && u128::try_from(now - since).unwrap_or(0) >= rule.sustained.as_millis() {
                        st.1 = true;
                        out.push(format!("open {} {subject} {now}", rule.id));
                    }
                } else {
                    st.0 = None;
                    if *value < rule.clear_below && st.1 {
                        st.1 = false;
                        out.push(format!("resolve {} {subject} {now}", rule.id));
                    }
                }
            }
            out
        }
    }

    #[test]
    fn matches_the_engine_that_kept_every_observation_over_a_noisy_fleet() {
        let rules = default_rules();
        let engine = AlertEngine::new(rules.clone(), Vec::new());
        let mut model = Model::default();
        let account = AccountId::generate();
        let servers: Vec<_> = (0..8).map(|_| ServerId::generate()).collect();
        let mut names: HashMap<AlertId, String> = HashMap::new();
        // A deterministic walk around every threshold and clear level (xorshift).
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |range: f64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f64 / 10_000.0 * range
        };
        let mut opened = 0;
        for step in 0..20_000_i64 {
            let now = step * 5_000;
            let i = usize::try_from(step).unwrap_or_default() % servers.len();
            let (cpu, disk) = (75.0 + next(25.0), 78.0 + next(22.0));
            let mut m = metrics(cpu, disk);
            m.memory_percent = 82.0 + next(12.0);
            let status = if next(1.0) < 0.3 { ConnectionStatus::Offline } else { ConnectionStatus::Online };
            let mut got = Vec::new();
            let changes = engine.on_metrics(&account, &servers[i], &m, now);
            for change in changes.into_iter().chain(engine.on_status(&account, &servers[i], status, now)) {
                got.push(match change {
                    AlertChange::Open(n) => {
                        let name = format!("{} {}", n.rule, n.subject);
                        names.insert(n.id, name.clone());
                        opened += 1;
                        format!("open {name} {now}")
                    }
                    AlertChange::Resolve(id, at) => format!("resolve {} {at}", names[&id]),
                });
            }
            let mut observations: Vec<(&AlertRule, String, f64)> = Vec::new();
            for rule in &rules {
                match rule.measure {
                    Measure::DiskUsedPercent => observations.push((rule, "/".to_owned(), disk)),
                    Measure::MemoryPercent => observations.push((rule, "memory".to_owned(), m.memory_percent)),
                    Measure::CpuPercent => observations.push((rule, "cpu".to_owned(), cpu)),
                    Measure::AgentOffline => {}
                }
            }
            let mut want = model.evaluate(i, &observations, now);
            let offline = rules
                .iter()
                .filter(|r| r.measure == Measure::AgentOffline)
                .map(|r| (r, "agent".to_owned(), if status == ConnectionStatus::Offline { 100.0 } else { 0.0 }))
                .collect::<Vec<_>>();
            want.extend(model.evaluate(i, &offline, now));
            assert_eq!(got, want, "step {step}");
        }
        assert!(opened > 1_000, "the walk crosses the thresholds often ({opened} alerts opened)");
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
