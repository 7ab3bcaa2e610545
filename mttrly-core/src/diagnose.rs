//! Diagnostics as deterministic rules: which probes a problem description calls for, which
//! read-only commands each probe runs, and what the evidence means. No language model: the same
//! evidence always gives the same findings.
//!
//! The agent runs exactly the commands listed here (each is read-only; a test runs them all
//! through the classifier) and returns the evidence, redacted; central applies [`analyze`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tools::common::{HostMetrics, Severity};
use crate::tools::diagnostics::{Finding, ProbeKind};
use crate::tools::playbooks::PlaybookId;

/// What one command showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEvidence {
    /// What ran.
    pub argv: Vec<String>,
    /// Its exit code (`None` when it did not run or was killed).
    pub exit_code: Option<i32>,
    /// Its output, redacted and capped.
    pub output: String,
    /// The program does not exist on the server.
    pub missing: bool,
}

/// Everything the probes collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// Fresh host metrics.
    pub metrics: Option<HostMetrics>,
    /// Logical CPUs.
    pub cpu_count: Option<u32>,
    /// Command evidence by key (see [`commands`]).
    pub commands: BTreeMap<String, CommandEvidence>,
}

const KEYWORDS: &[(ProbeKind, &[&str])] = &[
    (ProbeKind::Disk, &["disk", "space", "full", "inode", "no space", "storage", "volume", "write"]),
    (ProbeKind::Memory, &["memory", "oom", "ram", "swap", "killed", "leak"]),
    (ProbeKind::Cpu, &["cpu", "slow", "load", "hang", "latency", "spike", "timeout"]),
    (
        ProbeKind::Network,
        &["port", "network", "connection", "refused", "dns", "unreachable", "listen", "socket", "timeout"],
    ),
    (
        ProbeKind::Systemd,
        &["service", "unit", "systemd", "down", "crash", "restart", "failed", "stopped", "not running"],
    ),
    (ProbeKind::Docker, &["docker", "container", "compose", "image"]),
    (ProbeKind::Nginx, &["nginx", "502", "503", "504", "bad gateway", "proxy", "upstream", "website", "site", "http"]),
    (ProbeKind::Database, &["database", "postgres", "mysql", "mariadb", "db ", "sql", "connections", "redis"]),
    (ProbeKind::Logs, &["error", "exception", "log", "panic", "traceback"]),
];

/// The probes for a problem: disk, memory, CPU and recent errors always (cheap, and the usual
/// suspects), plus every probe whose keywords the description mentions, plus systemd when a unit
/// is named.
pub fn select_probes(problem: &str, unit: Option<&str>) -> Vec<ProbeKind> {
    let text = format!(" {} ", problem.to_lowercase());
    let mut probes = vec![ProbeKind::Disk, ProbeKind::Memory, ProbeKind::Cpu, ProbeKind::Logs];
    for (probe, words) in KEYWORDS {
        if words.iter().any(|w| text.contains(w)) {
            probes.push(*probe);
        }
    }
    if unit.is_some() {
        probes.push(ProbeKind::Systemd);
    }
    probes.sort();
    probes.dedup();
    probes
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// A unit name safe to pass as one argv element (the input type bounds its length).
pub fn valid_unit(unit: &str) -> bool {
    !unit.is_empty() && !unit.starts_with('-') && unit.chars().all(|c| c.is_ascii_alphanumeric() || ":_.@-".contains(c))
}

/// The read-only commands a probe runs, by evidence key. (Metrics come from the agent's sampler.)
pub fn commands(probe: ProbeKind, unit: Option<&str>) -> Vec<(String, Vec<String>)> {
    let unit = unit.filter(|u| valid_unit(u));
    let mut out: Vec<(&str, Vec<String>)> = match probe {
        ProbeKind::Disk => vec![("disk.inodes", argv(&["df", "-iP"]))],
        ProbeKind::Memory => vec![("memory.kernel_log", argv(&["journalctl", "-k", "-n", "300", "--no-pager"]))],
        ProbeKind::Cpu => vec![("cpu.top", argv(&["ps", "-eo", "pid,comm,%cpu,%mem", "--sort=-%cpu"]))],
        ProbeKind::Network => {
            vec![("network.listening", argv(&["ss", "-tlnp"])), ("network.summary", argv(&["ss", "-s"]))]
        }
        ProbeKind::Systemd => {
            vec![("systemd.failed", argv(&["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"]))]
        }
        ProbeKind::Docker => {
            vec![("docker.containers", argv(&["docker", "ps", "-a", "--format", "{{.Names}}|{{.Status}}"]))]
        }
        ProbeKind::Nginx => {
            vec![("nginx.config", argv(&["nginx", "-t"])), ("nginx.active", argv(&["systemctl", "is-active", "nginx"]))]
        }
        ProbeKind::Database => vec![(
            "database.connections",
            argv(&["ss", "-tn", "state", "established", "( sport = :5432 or sport = :3306 or sport = :6379 )"]),
        )],
        ProbeKind::Logs => {
            vec![("logs.errors", argv(&["journalctl", "-p", "err", "-n", "50", "--no-pager", "--since", "-1h"]))]
        }
    };
    if probe == ProbeKind::Systemd
        && let Some(u) = unit
    {
        out.push((
            "systemd.unit",
            vec![
                "systemctl".into(),
                "show".into(),
                "-p".into(),
                "ActiveState,SubState,Result,NRestarts,ExecMainStatus".into(),
                "--".into(),
                u.to_owned(),
            ],
        ));
    }
    out.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn finding(
    probe: ProbeKind,
    severity: Severity,
    title: impl Into<String>,
    evidence: impl Into<String>,
    suggestion: impl Into<String>,
    playbook: Option<&str>,
) -> Finding {
    Finding {
        probe,
        severity,
        title: title.into(),
        evidence: evidence.into(),
        suggestion: suggestion.into(),
        playbook_id: playbook.and_then(|p| PlaybookId::new(p).ok()),
    }
}

/// systemctl answered, but there is no systemd to talk to (a container, a chroot).
fn no_systemd(output: &str) -> bool {
    output.contains("System has not been booted with systemd") || output.contains("Failed to connect to bus")
}

fn cap(text: &str, lines: usize) -> String {
    text.lines().take(lines).collect::<Vec<_>>().join("\n")
}

/// What the evidence means, most severe first.
pub fn analyze(probes: &[ProbeKind], unit: Option<&str>, ev: &Evidence) -> Vec<Finding> {
    let mut f = Vec::new();
    let cmd = |key: &str| ev.commands.get(key);
    for probe in probes {
        match probe {
            ProbeKind::Disk => disk(ev, &mut f),
            ProbeKind::Memory => memory(ev, &mut f),
            ProbeKind::Cpu => cpu(ev, &mut f),
            ProbeKind::Network => {
                if let Some(c) = cmd("network.listening").filter(|c| !c.missing) {
                    let ports: Vec<&str> = c
                        .output
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_whitespace().nth(3))
                        .filter_map(|a| a.rsplit(':').next())
                        .collect();
                    f.push(finding(
                        ProbeKind::Network,
                        Severity::Info,
                        format!("{} listening TCP sockets", ports.len()),
                        cap(&c.output, 20),
                        "Check the expected ports are listed; a missing port means its service is down.",
                        None,
                    ));
                }
            }
            ProbeKind::Systemd => systemd(unit, ev, &mut f),
            ProbeKind::Docker => docker(ev, &mut f),
            ProbeKind::Nginx => nginx(ev, &mut f),
            ProbeKind::Database => {
                if let Some(c) = cmd("database.connections").filter(|c| !c.missing && c.exit_code == Some(0)) {
                    let n = c.output.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
                    let severity = if n >= 500 { Severity::Warning } else { Severity::Info };
                    f.push(finding(
                        ProbeKind::Database,
                        severity,
                        format!("{n} established connections to database ports (5432, 3306, 6379)"),
                        cap(&c.output, 10),
                        if n >= 500 {
                            "Many connections: check for a connection leak or a missing pool limit."
                        } else {
                            "Connection count looks ordinary."
                        },
                        None,
                    ));
                }
            }
            ProbeKind::Logs => {
                if let Some(c) = cmd("logs.errors").filter(|c| !c.missing && c.exit_code == Some(0)) {
                    let lines: Vec<&str> = c
                        .output
                        .lines()
                        .filter(|l| !l.trim().is_empty() && !l.starts_with("-- ") && !l.contains("No journal files"))
                        .collect();
                    if !lines.is_empty() {
                        let severity = if lines.len() >= 20 { Severity::Warning } else { Severity::Info };
                        f.push(finding(
                            ProbeKind::Logs,
                            severity,
                            format!("{} error-level journal entries in the last hour", lines.len()),
                            lines.iter().rev().take(10).rev().copied().collect::<Vec<_>>().join("\n"),
                            "Read the newest errors first; they usually name the failing component.",
                            None,
                        ));
                    }
                }
            }
        }
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    f
}

fn disk(ev: &Evidence, f: &mut Vec<Finding>) {
    if let Some(m) = &ev.metrics {
        for fs in &m.filesystems {
            let (severity, playbook) = match fs.used_percent {
                p if p >= 95.0 => (Severity::Critical, Some("compress-rotated-logs")),
                p if p >= 85.0 => (Severity::Warning, Some("vacuum-journal")),
                _ => continue,
            };
            f.push(finding(
                ProbeKind::Disk,
                severity,
                format!("{} is {:.1}% full", fs.mount_point, fs.used_percent),
                format!("{} of {} bytes used ({})", fs.used_bytes, fs.total_bytes, fs.fs_type),
                "Free space: compress rotated logs, shrink the journal, prune Docker images or clean package caches (see `disk-usage` to find what grew).",
                playbook,
            ));
        }
    }
    if let Some(c) = ev.commands.get("disk.inodes").filter(|c| c.exit_code == Some(0)) {
        for line in c.output.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if let (Some(pct), Some(mount)) = (cols.get(4), cols.get(5))
                && let Ok(p) = pct.trim_end_matches('%').parse::<u32>()
                && p >= 90
            {
                f.push(finding(
                    ProbeKind::Disk,
                    if p >= 98 { Severity::Critical } else { Severity::Warning },
                    format!("{mount} has used {p}% of its inodes"),
                    line.to_owned(),
                    "Many small files (caches, sessions, temp files): find and remove them.",
                    Some("clear-old-tmp-files"),
                ));
            }
        }
    }
}

fn memory(ev: &Evidence, f: &mut Vec<Finding>) {
    if let Some(m) = &ev.metrics
        && m.memory_percent >= 90.0
    {
        f.push(finding(
            ProbeKind::Memory,
            if m.memory_percent >= 97.0 { Severity::Critical } else { Severity::Warning },
            format!("memory is {:.1}% used", m.memory_percent),
            format!(
                "{} of {} bytes used; swap {} of {} bytes",
                m.memory_used_bytes, m.memory_total_bytes, m.swap_used_bytes, m.swap_total_bytes
            ),
            "Find the largest processes (`ps -eo pid,comm,%mem --sort=-%mem`) and restart a leaking service.",
            Some("restart-systemd-unit"),
        ));
    }
    if let Some(c) = ev.commands.get("memory.kernel_log").filter(|c| !c.missing) {
        let kills: Vec<&str> = c
            .output
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("out of memory") || l.contains("oom-kill") || l.contains("killed process")
            })
            .collect();
        if !kills.is_empty() {
            f.push(finding(
                ProbeKind::Memory,
                Severity::Critical,
                format!("the kernel killed processes for lack of memory ({} log lines)", kills.len()),
                kills.iter().rev().take(5).rev().copied().collect::<Vec<_>>().join("\n"),
                "Restart what was killed, then find what grew; consider memory limits for the service.",
                Some("restart-systemd-unit"),
            ));
        }
    }
}

fn cpu(ev: &Evidence, f: &mut Vec<Finding>) {
    let (Some(m), Some(cpus)) = (&ev.metrics, ev.cpu_count) else { return };
    let load = m.load_average[0];
    let cpus_f = f64::from(cpus.max(1));
    if load >= 2.0 * cpus_f || m.cpu_percent >= 90.0 {
        let top = ev.commands.get("cpu.top").map(|c| cap(&c.output, 6)).unwrap_or_default();
        f.push(finding(
            ProbeKind::Cpu,
            if load >= 4.0 * cpus_f { Severity::Critical } else { Severity::Warning },
            format!("CPU is busy: {:.0}% used, load {:.2} on {cpus} CPUs", m.cpu_percent, load),
            top,
            "Look at the top processes; a runaway worker can be restarted.",
            Some("restart-systemd-unit"),
        ));
    }
}

fn systemd(unit: Option<&str>, ev: &Evidence, f: &mut Vec<Finding>) {
    let unavailable =
        ev.commands.iter().filter(|(k, _)| k.starts_with("systemd.")).any(|(_, c)| c.missing || no_systemd(&c.output));
    if unavailable {
        f.push(finding(
            ProbeKind::Systemd,
            Severity::Info,
            "systemd is not running on this server",
            ev.commands.get("systemd.failed").map(|c| cap(&c.output, 3)).unwrap_or_default(),
            "Services here are not managed by systemd (a container or another init): check processes and containers instead.",
            None,
        ));
        return;
    }
    if let Some(c) = ev.commands.get("systemd.failed").filter(|c| !c.missing && c.exit_code == Some(0)) {
        let failed: Vec<&str> =
            c.output.lines().filter_map(|l| l.split_whitespace().next()).filter(|u| !u.is_empty()).collect();
        if !failed.is_empty() {
            f.push(finding(
                ProbeKind::Systemd,
                Severity::Critical,
                format!("{} failed systemd unit(s): {}", failed.len(), failed.join(", ")),
                cap(&c.output, 10),
                "Read the unit's status and journal, fix the cause, then restart it.",
                Some("restart-systemd-unit"),
            ));
        }
    }
    if let (Some(u), Some(c)) = (unit, ev.commands.get("systemd.unit").filter(|c| !c.missing)) {
        let props: BTreeMap<&str, &str> = c.output.lines().filter_map(|l| l.split_once('=')).collect();
        let active = props.get("ActiveState").copied().unwrap_or("unknown");
        let restarts: u64 = props.get("NRestarts").and_then(|n| n.parse().ok()).unwrap_or(0);
        let (severity, title) = match active {
            "active" if restarts >= 3 => (Severity::Warning, format!("{u} is active but restarted {restarts} times")),
            "active" => (Severity::Info, format!("{u} is active")),
            "inactive" | "failed" => (Severity::Critical, format!("{u} is {active}")),
            other => (Severity::Warning, format!("{u} is {other}")),
        };
        f.push(finding(
            ProbeKind::Systemd,
            severity,
            title,
            cap(&c.output, 10),
            if active == "active" {
                "The unit runs; look at its logs for errors."
            } else {
                "Check its journal, then restart it."
            },
            (active != "active" || restarts >= 3).then_some("restart-systemd-unit"),
        ));
    }
}

fn docker(ev: &Evidence, f: &mut Vec<Finding>) {
    let Some(c) = ev.commands.get("docker.containers") else { return };
    if c.missing {
        f.push(finding(
            ProbeKind::Docker,
            Severity::Info,
            "Docker is not installed",
            "no `docker` program",
            "Docker playbooks are unavailable on this server.",
            None,
        ));
        return;
    }
    let bad: Vec<&str> = c
        .output
        .lines()
        .filter(|l| {
            let s = l.split('|').nth(1).unwrap_or("");
            s.starts_with("Restarting")
                || (s.starts_with("Exited") && !s.starts_with("Exited (0)"))
                || s.contains("unhealthy")
        })
        .collect();
    if !bad.is_empty() {
        f.push(finding(
            ProbeKind::Docker,
            Severity::Critical,
            format!("{} container(s) exited with an error, restarting or unhealthy", bad.len()),
            bad.join("\n"),
            "Read the container's logs (mttrly_read_file docker_logs), fix the cause, then restart it.",
            Some("restart-docker-container"),
        ));
    }
}

fn nginx(ev: &Evidence, f: &mut Vec<Finding>) {
    if let Some(c) = ev.commands.get("nginx.config").filter(|c| !c.missing)
        && c.exit_code != Some(0)
    {
        f.push(finding(
            ProbeKind::Nginx,
            Severity::Critical,
            "nginx's configuration does not pass `nginx -t`",
            cap(&c.output, 10),
            "Fix the configuration error shown before reloading nginx.",
            None,
        ));
    }
    let installed = ev.commands.get("nginx.config").is_some_and(|c| !c.missing);
    if !installed {
        f.push(finding(
            ProbeKind::Nginx,
            Severity::Info,
            "nginx is not installed",
            "no `nginx` program",
            "The web server here is something else: see mttrly_get_service_reality.",
            None,
        ));
        return;
    }
    if let Some(c) = ev.commands.get("nginx.active").filter(|c| !c.missing && !no_systemd(&c.output))
        && c.output.trim() != "active"
    {
        f.push(finding(
            ProbeKind::Nginx,
            Severity::Critical,
            format!("nginx is {}", c.output.trim()),
            cap(&c.output, 3),
            "Test its configuration, then start or restart it.",
            Some("restart-systemd-unit"),
        ));
    }
}

/// One line for the whole report.
pub fn summary(findings: &[Finding]) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (c, w) = (count(Severity::Critical), count(Severity::Warning));
    match findings.iter().find(|f| f.severity != Severity::Info) {
        Some(top) => format!("{c} critical, {w} warning: most urgent: {}", top.title),
        None => "No problems found by the probes that ran.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::{CommandClass, classify};
    use crate::tools::common::FilesystemUsage;

    fn cmd(output: &str, exit: i32) -> CommandEvidence {
        CommandEvidence { argv: vec![], exit_code: Some(exit), output: output.to_owned(), missing: false }
    }

    #[test]
    fn probes_follow_the_description() {
        let p = select_probes("nginx returns 502 since the deploy", None);
        assert!(p.contains(&ProbeKind::Nginx) && p.contains(&ProbeKind::Disk) && !p.contains(&ProbeKind::Docker));
        let p = select_probes("the app container keeps restarting", Some("app"));
        assert!(p.contains(&ProbeKind::Docker) && p.contains(&ProbeKind::Systemd));
        assert_eq!(select_probes("x", None), vec![ProbeKind::Disk, ProbeKind::Memory, ProbeKind::Cpu, ProbeKind::Logs]);
    }

    #[test]
    fn every_probe_command_is_read_only_and_units_cannot_inject() {
        let all = [
            ProbeKind::Disk,
            ProbeKind::Memory,
            ProbeKind::Cpu,
            ProbeKind::Network,
            ProbeKind::Systemd,
            ProbeKind::Docker,
            ProbeKind::Nginx,
            ProbeKind::Database,
            ProbeKind::Logs,
        ];
        for probe in all {
            for (key, argv) in commands(probe, Some("nginx.service")) {
                let line = argv
                    .iter()
                    .map(
                        |a| if a.contains([' ', '(', ')', '{', '}', '\t', '=']) { format!("'{a}'") } else { a.clone() },
                    )
                    .collect::<Vec<_>>()
                    .join(" ");
                assert_eq!(classify(&line).class, CommandClass::ReadOnly, "{key}: {line}");
            }
        }
        assert!(commands(ProbeKind::Systemd, Some("--help")).iter().all(|(k, _)| k != "systemd.unit"));
        assert!(commands(ProbeKind::Systemd, Some("a;reboot")).iter().all(|(k, _)| k != "systemd.unit"));
    }

    #[test]
    fn evidence_becomes_findings_with_playbooks() {
        let mut ev = Evidence {
            metrics: Some(HostMetrics {
                collected_at: jiff::Timestamp::now(),
                cpu_percent: 12.0,
                memory_total_bytes: 100,
                memory_used_bytes: 50,
                memory_percent: 50.0,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                load_average: [0.1, 0.1, 0.1],
                uptime_seconds: 10,
                filesystems: vec![FilesystemUsage {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    total_bytes: 100,
                    used_bytes: 96,
                    used_percent: 96.0,
                }],
            }),
            cpu_count: Some(2),
            commands: BTreeMap::new(),
        };
        ev.commands.insert(
            "systemd.failed".into(),
            cmd("nginx.service loaded failed failed A high performance web server\n", 0),
        );
        ev.commands.insert("docker.containers".into(), cmd("web|Up 2 hours\nworker|Restarting (1) 5 seconds ago\n", 0));
        ev.commands
            .insert("memory.kernel_log".into(), cmd("Nov 21 kernel: Out of memory: Killed process 123 (java)\n", 0));
        let probes = [ProbeKind::Disk, ProbeKind::Memory, ProbeKind::Systemd, ProbeKind::Docker];
        let findings = analyze(&probes, None, &ev);
        assert!(findings.iter().all(|f| f.severity == Severity::Critical), "{findings:#?}");
        let books: Vec<&str> = findings.iter().filter_map(|f| f.playbook_id.as_ref().map(PlaybookId::as_str)).collect();
        for b in ["compress-rotated-logs", "restart-systemd-unit", "restart-docker-container"] {
            assert!(books.contains(&b), "{books:?}");
        }
        // Every suggested playbook exists.
        for b in books {
            assert!(crate::playbook::built_in().iter().any(|p| p.id.as_str() == b), "{b}");
        }
        assert!(summary(&findings).starts_with("4 critical"), "{}", summary(&findings));
        // No systemd (a container): one info finding, not a critical outage.
        let mut bare = Evidence::default();
        bare.commands.insert(
            "systemd.failed".into(),
            cmd("System has not been booted with systemd as init system (PID 1). Can't operate.", 1),
        );
        let f = analyze(&[ProbeKind::Systemd], Some("nginx"), &bare);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Info);
        // nginx missing: info, and no "nginx is inactive" alarm.
        let mut no_nginx = Evidence::default();
        no_nginx.commands.insert(
            "nginx.config".into(),
            CommandEvidence { argv: vec![], exit_code: None, output: String::new(), missing: true },
        );
        no_nginx.commands.insert("nginx.active".into(), cmd("inactive", 3));
        let f = analyze(&[ProbeKind::Nginx], None, &no_nginx);
        assert_eq!((f.len(), f[0].severity), (1, Severity::Info), "{f:#?}");
        assert_eq!(analyze(&[ProbeKind::Cpu], None, &ev), vec![]);
    }
}
