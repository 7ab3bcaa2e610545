//! The offline sweep: agents judged offline (or back) raise or resolve their alerts.
//!
//! Once a second it takes the servers whose check came due ([`AgentRegistry::judge_due`]: a
//! stream opened or closed, heartbeats grew too old, a heartbeat followed an offline judgement)
//! and runs the offline rule on each. The rest cannot have changed status, so judging them too
//! (as the sweep once did, every server every second) opened and resolved nothing more; it cost
//! ten judgements a second per thousand agents against one heartbeat.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::ConnectionStatus;
use tokio::sync::watch;

use crate::agents::registry::AgentRegistry;
use crate::alerts::engine::AlertEngine;
use crate::db;
use crate::db::alerts::AlertChange;
use crate::state::Central;

/// Judges agents offline and raises or resolves their alerts, once a second.
///
/// Nobody is judged offline during the grace period after start: every agent is disconnected
/// when central starts, and judging then opened (and a moment later resolved) a critical alert for
/// every server on every restart. Agents that come back resolve nothing and open nothing; one
/// that does not is judged when the grace ends, as if central had been up all along.
pub(super) async fn offline_sweeper(central: Arc<Central>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let grace_ends =
        db::now_ms().saturating_add(i64::try_from(central.config.offline_grace().as_millis()).unwrap_or(i64::MAX));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (account, server, changes) in sweep(&central.agents, &central.alerts, db::now_ms(), grace_ends) {
                    central.write_alerts(&account, &server, changes);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// One sweep at `now_ms`: the alert changes of every server judged, in the order judged.
///
/// An offline server inside the grace period is judged again when it ends; one whose offline
/// rule has a sustain window still running is judged again when the window ends.
fn sweep(
    agents: &AgentRegistry,
    alerts: &AlertEngine,
    now_ms: i64,
    grace_ends: i64,
) -> Vec<(AccountId, ServerId, Vec<AlertChange>)> {
    let mut out = Vec::new();
    for judged in agents.judge_due(now_ms) {
        let offline = judged.status == ConnectionStatus::Offline;
        if offline && now_ms < grace_ends {
            agents.recheck(&judged.server, grace_ends);
            continue;
        }
        let changes = alerts.on_status(&judged.account, &judged.server, judged.status, now_ms);
        if offline && let Some(at) = alerts.offline_window_ends(&judged.server) {
            agents.recheck(&judged.server, at);
        }
        if !changes.is_empty() {
            out.push((judged.account, judged.server, changes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use mttrly_core::capability::CapabilitySet;
    use mttrly_core::ids::AlertId;
    use mttrly_core::tools::common::HostMetrics;
    use tokio::sync::mpsc;

    use super::*;
    use crate::agents::registry::{AgentSender, Announced};
    use crate::alerts::rules::{AlertRule, default_rules};

    const OFFLINE_AFTER: Duration = Duration::from_secs(30);
    const GRACE_ENDS: i64 = 15_000;
    /// No alert change at all.
    const NONE: [i64; 0] = [];

    /// What happens to one server at an instant.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        Connect,
        Heartbeat { cpu: f64 },
        Disconnect,
        Kick,
    }

    /// An alert change as both sweeps must make it: when, for which server, and which alert
    /// (by rule and subject; ids are random).
    type Seen = (i64, usize, &'static str, String, String);

    /// A server known at start: its index, last heartbeat and whether an offline alert is open.
    type Seeded = (usize, Option<i64>, bool);

    /// The two ways of judging, side by side over one timeline.
    struct Fleet {
        agents: AgentRegistry,
        /// Judged by `sweep` (only servers whose check is due).
        alerts: AlertEngine,
        /// Judged the way the sweep used to: every known server, every tick.
        every_tick: AlertEngine,
        account: AccountId,
        servers: Vec<ServerId>,
        connections: Vec<Option<u64>>,
        senders: Vec<mpsc::Receiver<Box<mttrly_proto::agent::v1::CentralMessage>>>,
        names: [HashMap<AlertId, (String, String)>; 2],
        seen: [Vec<Seen>; 2],
    }

    impl Fleet {
        fn new(rules: &[AlertRule], n: usize, seeded: &[Seeded]) -> Self {
            let account = AccountId::generate();
            let servers: Vec<_> = (0..n).map(|_| ServerId::generate()).collect();
            let agents = AgentRegistry::new(OFFLINE_AFTER);
            let mut open = Vec::new();
            for &(i, last_seen, alert_open) in seeded {
                agents.seed(servers[i].clone(), account.clone(), last_seen, None);
                if alert_open {
                    open.push((
                        servers[i].clone(),
                        "agent_offline".to_owned(),
                        "agent".to_owned(),
                        AlertId::generate(),
                    ));
                }
            }
            let mut fleet = Self {
                agents,
                alerts: AlertEngine::new(rules.to_vec(), open.clone()),
                every_tick: AlertEngine::new(rules.to_vec(), open.clone()),
                account,
                servers,
                connections: vec![None; n],
                senders: Vec::new(),
                names: [HashMap::new(), HashMap::new()],
                seen: [Vec::new(), Vec::new()],
            };
            for (_, rule, subject, id) in open {
                for names in &mut fleet.names {
                    names.insert(id.clone(), (rule.clone(), subject.clone()));
                }
            }
            fleet
        }

        fn record(&mut self, which: usize, server: &ServerId, changes: Vec<AlertChange>) {
            let i = self.servers.iter().position(|s| s == server).unwrap_or(usize::MAX);
            for change in changes {
                let (at, kind, id) = match change {
                    AlertChange::Open(a) => {
                        self.names[which].insert(a.id.clone(), (a.rule.clone(), a.subject.clone()));
                        (a.opened_at, "open", a.id)
                    }
                    AlertChange::Resolve(id, at) => (at, "resolve", id),
                };
                let (rule, subject) = self.names[which].get(&id).cloned().unwrap_or_default();
                self.seen[which].push((at, i, kind, rule, subject));
            }
        }

        /// Both engines see what central's stream handler shows them.
        fn apply(&mut self, now: i64, i: usize, step: Step) {
            let server = self.servers[i].clone();
            let account = self.account.clone();
            match step {
                Step::Connect => {
                    let (tx, rx): (AgentSender, _) = mpsc::channel(1);
                    self.senders.push(rx);
                    let announced = Announced { agent_version: "t".into(), capabilities: CapabilitySet::all() };
                    self.connections[i] = Some(self.agents.connect(&server, &account, tx, announced, now));
                    for which in 0..2 {
                        let engine = if which == 0 { &self.alerts } else { &self.every_tick };
                        let changes = engine.on_status(&account, &server, ConnectionStatus::Online, now);
                        self.record(which, &server, changes);
                    }
                }
                Step::Heartbeat { cpu } => {
                    let Some(connection) = self.connections[i] else { return };
                    let mut metrics: HostMetrics = mttrly_proto::convert::metrics_from_wire(
                        &mttrly_proto::agent::v1::HostMetrics::default(),
                        jiff::Timestamp::UNIX_EPOCH,
                    );
                    metrics.cpu_percent = cpu;
                    for which in 0..2 {
                        let engine = if which == 0 { &self.alerts } else { &self.every_tick };
                        let changes = engine.on_metrics(&account, &server, &metrics, now);
                        self.record(which, &server, changes);
                    }
                    self.agents.heartbeat(&server, connection, metrics, now);
                }
                Step::Disconnect => {
                    if let Some(connection) = self.connections[i].take() {
                        self.agents.disconnect(&server, connection);
                    }
                }
                Step::Kick => {
                    self.connections[i] = None;
                    self.agents.kick(&server);
                }
            }
        }

        fn tick(&mut self, now: i64) {
            for (account, server, changes) in sweep(&self.agents, &self.alerts, now, GRACE_ENDS) {
                assert_eq!(account, self.account);
                self.record(0, &server, changes);
            }
            // Servers the registry does not know read as never seen, which changes nothing: the
            // same as the old sweep's snapshot of known servers.
            for server in self.servers.clone() {
                let status = self.agents.status(&server, now).status;
                if now < GRACE_ENDS && status == ConnectionStatus::Offline {
                    continue;
                }
                let changes = self.every_tick.on_status(&self.account, &server, status, now);
                self.record(1, &server, changes);
            }
        }

        /// Runs `script` (instant, server, step) with a sweep every second until `until`.
        fn run(&mut self, script: &[(i64, usize, Step)], until: i64) {
            let mut script = script.to_vec();
            script.sort_by_key(|(at, ..)| *at);
            let mut next = 0;
            for tick in (0..=until).step_by(1000) {
                while let Some(&(at, i, step)) = script.get(next)
                    && at <= tick
                {
                    self.apply(at, i, step);
                    next += 1;
                }
                self.tick(tick);
            }
        }

        fn opened_at(&self, server: usize, rule: &str) -> Vec<i64> {
            self.seen[0].iter().filter(|s| s.1 == server && s.2 == "open" && s.3 == rule).map(|s| s.0).collect()
        }

        fn resolved_at(&self, server: usize) -> Vec<i64> {
            self.seen[0].iter().filter(|s| s.1 == server && s.2 == "resolve").map(|s| s.0).collect()
        }
    }

    fn beats(i: usize, from: i64, to: i64, every: i64, cpu: f64) -> Vec<(i64, usize, Step)> {
        let count = usize::try_from((to - from) / every + 1).unwrap_or_default();
        (0..count).map(|k| (from + i64::try_from(k).unwrap_or_default() * every, i, Step::Heartbeat { cpu })).collect()
    }

    /// A fleet's life: heartbeats that stop on an open stream, a disconnect, a kick, a comeback
    /// on the same stream, a reconnect, a server that never returns after a restart, one never
    /// seen with an alert left open, a gap of exactly `offline_after`, and a sustained CPU breach.
    fn script() -> (Vec<Seeded>, Vec<(i64, usize, Step)>) {
        let seeded = vec![(2, Some(-5_000), true), (3, None, true), (4, Some(-1_000), false)];
        let mut s = vec![(0, 0, Step::Connect), (2_300, 1, Step::Connect), (20_000, 5, Step::Connect)];
        // 0: heartbeats stop at 40 s on an open stream, come back at 100.5 s.
        s.extend(beats(0, 10_000, 40_000, 10_000, 10.0));
        s.extend(beats(0, 100_500, 420_000, 10_000, 10.0));
        // 1: disconnects at 25.7 s, reconnects at 40.2 s, is kicked at 90.4 s.
        s.extend(beats(1, 12_300, 25_000, 10_000, 10.0));
        s.push((25_700, 1, Step::Disconnect));
        s.push((40_200, 1, Step::Connect));
        s.extend(beats(1, 50_200, 90_000, 10_000, 10.0));
        s.push((90_400, 1, Step::Kick));
        // 4: seeded, reconnects inside the grace period.
        s.push((6_000, 4, Step::Connect));
        s.extend(beats(4, 16_000, 420_000, 10_000, 10.0));
        // 5: a gap of exactly offline_after at a tick (60 s to 90.5 s: still online at 90 s),
        // then a longer one (90.5 s to 121.7 s: offline at 121 s); CPU high throughout, so its
        // sustained window runs across both.
        s.extend(beats(5, 30_000, 60_000, 10_000, 95.0));
        s.push((90_500, 5, Step::Heartbeat { cpu: 95.0 }));
        s.extend(beats(5, 121_700, 420_000, 10_000, 95.0));
        (seeded, s)
    }

    #[test]
    fn judging_only_due_servers_changes_the_same_alerts_at_the_same_ticks() {
        let (seeded, steps) = script();
        let mut fleet = Fleet::new(&default_rules(), 6, &seeded);
        fleet.run(&steps, 420_000);
        assert_eq!(fleet.seen[0], fleet.seen[1], "sweeping only due servers differs from sweeping all");

        // The moments themselves, so the comparison cannot pass with both sides empty.
        assert_eq!(fleet.opened_at(0, "agent_offline"), [71_000], "last heartbeat 40 s + 30 s, next tick");
        assert_eq!(fleet.resolved_at(0), [101_000], "the heartbeat at 100.5 s, judged at the next tick");
        assert_eq!(fleet.opened_at(1, "agent_offline"), [26_000, 91_000], "disconnect, then kick");
        assert_eq!(fleet.resolved_at(1), [40_200], "the reconnect itself resolves");
        assert_eq!(fleet.opened_at(2, "agent_offline"), NONE, "already open from before the restart");
        assert_eq!(fleet.resolved_at(2), NONE, "never came back");
        assert_eq!(fleet.resolved_at(3), [0], "never seen: judged not offline at the first sweep");
        assert_eq!(fleet.opened_at(4, "agent_offline"), NONE, "back within the grace period");
        assert_eq!(fleet.opened_at(5, "agent_offline"), [121_000], "30 s old is online, 30.5 s is not");
        assert_eq!(fleet.resolved_at(5), [122_000], "the heartbeat at 121.7 s, judged at the next tick");
        assert_eq!(
            fleet.opened_at(5, "cpu_sustained"),
            [331_700],
            "breaching since 30 s: the first heartbeat 300 s on"
        );
        assert!(fleet.agents.queued_checks() <= 2 * fleet.servers.len(), "checks do not pile up with heartbeats");
    }

    #[test]
    fn a_sustained_offline_rule_opens_at_the_same_tick_as_when_every_server_was_judged() {
        let mut rules = default_rules();
        for rule in &mut rules {
            if rule.id == "agent_offline" {
                rule.sustained = Duration::from_millis(45_500);
            }
        }
        let (seeded, steps) = script();
        let mut fleet = Fleet::new(&rules, 6, &seeded);
        fleet.run(&steps, 420_000);
        assert_eq!(fleet.seen[0], fleet.seen[1], "sweeping only due servers differs from sweeping all");
        assert_eq!(fleet.opened_at(0, "agent_offline"), NONE, "back before the window ended");
        assert_eq!(fleet.opened_at(1, "agent_offline"), [137_000], "kicked at 90.4 s, judged at 91 s, + 45.5 s");
        assert_eq!(fleet.opened_at(4, "agent_offline"), NONE, "back within the grace period");
    }
}
