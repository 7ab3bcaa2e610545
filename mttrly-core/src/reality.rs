//! Service reality: what actually runs on a server (systemd services, Docker containers,
//! listening ports mapped to processes, language runtimes and web servers), from read-only
//! commands, interpreted by pure functions so the parsing is tested without a host.

use crate::diagnose::Evidence;
use crate::tools::diagnostics::{DiscoveredService, ListeningPort, Runtime, ServiceKind};

/// The discovery commands, by evidence key. Runtimes are only asked when their program exists.
pub fn commands() -> Vec<(String, Vec<String>)> {
    let v = |key: &str, parts: &[&str]| (key.to_owned(), parts.iter().map(|s| (*s).to_owned()).collect());
    vec![
        v("services", &["systemctl", "list-units", "--type=service", "--all", "--no-legend", "--plain", "--no-pager"]),
        v("containers", &["docker", "ps", "-a", "--format", "{{.Names}}|{{.Status}}|{{.Ports}}"]),
        v("ports", &["ss", "-tulnpH"]),
        v("runtime.node", &["node", "--version"]),
        v("runtime.python3", &["python3", "--version"]),
        v("runtime.java", &["java", "-version"]),
        v("runtime.go", &["go", "version"]),
        v("runtime.ruby", &["ruby", "--version"]),
        v("runtime.php", &["php", "--version"]),
        v("runtime.nginx", &["nginx", "-v"]),
        v("runtime.apache2", &["apache2", "-v"]),
        v("runtime.caddy", &["caddy", "version"]),
    ]
}

/// The interpreted snapshot (without its server and timestamps).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Services and containers.
    pub services: Vec<DiscoveredService>,
    /// Listening sockets.
    pub listening_ports: Vec<ListeningPort>,
    /// Runtimes and web servers found.
    pub runtimes: Vec<Runtime>,
    /// Notable facts (failed services, unhealthy containers, exposed databases).
    pub findings: Vec<String>,
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit(':').next()?.parse().ok()
}

/// `users:(("nginx",pid=12,fd=6),...)` → `nginx`.
fn process_of(field: &str) -> Option<String> {
    let start = field.find("((\"")? + 3;
    let rest = &field[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Interprets discovery evidence.
pub fn interpret(ev: &Evidence) -> Snapshot {
    let mut s = Snapshot::default();
    let ok = |key: &str| ev.commands.get(key).filter(|c| !c.missing && c.exit_code == Some(0));
    if let Some(c) = ok("ports") {
        for line in c.output.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // Netid State Recv-Q Send-Q Local Peer [Process]
            let (Some(proto), Some(local)) = (cols.first(), cols.get(4)) else { continue };
            let Some(port) = port_of(local) else { continue };
            let address = local.rsplit_once(':').map_or(*local, |(a, _)| a).to_owned();
            s.listening_ports.push(ListeningPort {
                port,
                protocol: (*proto).to_owned(),
                address,
                process: cols.get(6).and_then(|p| process_of(p)),
            });
        }
        s.listening_ports.sort_by(|a, b| (a.port, &a.protocol).cmp(&(b.port, &b.protocol)));
        s.listening_ports.dedup_by(|a, b| a.port == b.port && a.protocol == b.protocol && a.process == b.process);
        for p in &s.listening_ports {
            let public = p.address == "0.0.0.0" || p.address == "*" || p.address == "[::]";
            if public && matches!(p.port, 3306 | 5432 | 6379 | 27017 | 9200) {
                s.findings.push(format!(
                    "port {} ({}) listens on all interfaces: a database reachable from the network",
                    p.port,
                    p.process.as_deref().unwrap_or("unknown process")
                ));
            }
        }
    }
    let ports_of = |process: &str| -> Vec<u16> {
        let mut v: Vec<u16> = s
            .listening_ports
            .iter()
            .filter(|p| p.process.as_deref().is_some_and(|n| process.starts_with(n) || n.starts_with(process)))
            .map(|p| p.port)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut services = Vec::new();
    if let Some(c) = ok("services") {
        for line in c.output.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // UNIT LOAD ACTIVE SUB DESCRIPTION...
            let (Some(unit), Some(load), Some(active), Some(sub)) =
                (cols.first(), cols.get(1), cols.get(2), cols.get(3))
            else {
                continue;
            };
            if *load != "loaded" || (*active == "inactive" && *sub == "dead") {
                continue;
            }
            let name = unit.trim_end_matches(".service");
            let healthy = *active == "active" && matches!(*sub, "running" | "exited");
            if *active == "failed" {
                s.findings.push(format!("systemd service {unit} has failed"));
            }
            services.push(DiscoveredService {
                name: (*unit).to_owned(),
                kind: ServiceKind::Systemd,
                state: format!("{active}/{sub}"),
                healthy,
                ports: ports_of(name),
            });
        }
    }
    if let Some(c) = ok("containers") {
        for line in c.output.lines() {
            let mut parts = line.splitn(3, '|');
            let (Some(name), Some(status)) = (parts.next(), parts.next()) else { continue };
            let ports_text = parts.next().unwrap_or("");
            let mut ports: Vec<u16> = ports_text
                .split(", ")
                .filter_map(|p| p.split("->").next())
                .filter(|host| host.contains(':'))
                .filter_map(port_of)
                .collect();
            ports.sort_unstable();
            ports.dedup();
            let healthy = status.starts_with("Up") && !status.contains("unhealthy");
            if status.contains("unhealthy") || status.starts_with("Restarting") {
                s.findings.push(format!("container {name} is {status}"));
            }
            services.push(DiscoveredService {
                name: name.to_owned(),
                kind: ServiceKind::Docker,
                state: status.to_owned(),
                healthy,
                ports,
            });
        }
    }
    s.services = services;
    for (key, c) in &ev.commands {
        let Some(name) = key.strip_prefix("runtime.") else { continue };
        if c.missing || c.exit_code != Some(0) {
            continue;
        }
        let version = c
            .output
            .split_whitespace()
            .find(|w| {
                w.trim_start_matches(['v', '/']).chars().next().is_some_and(|ch| ch.is_ascii_digit()) || w.contains('/')
            })
            .map(|w| w.rsplit('/').next().unwrap_or(w).trim_start_matches('v').trim_matches('"').to_owned());
        s.runtimes.push(Runtime { name: name.to_owned(), version });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::CommandEvidence;

    fn ok(output: &str) -> CommandEvidence {
        CommandEvidence { argv: vec![], exit_code: Some(0), output: output.to_owned(), missing: false }
    }

    #[test]
    fn discovery_output_is_interpreted() {
        let mut ev = Evidence::default();
        ev.commands.insert(
            "ports".into(),
            ok("tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=10,fd=6))\n\
                tcp LISTEN 0 244 0.0.0.0:5432 0.0.0.0:* users:((\"postgres\",pid=20,fd=5))\n\
                tcp LISTEN 0 128 [::]:22 [::]:* users:((\"sshd\",pid=1,fd=4))\n"),
        );
        ev.commands.insert(
            "services".into(),
            ok("nginx.service loaded active running A high performance web server\n\
                app.service loaded failed failed My app\n\
                old.service loaded inactive dead Old\n"),
        );
        ev.commands
            .insert("containers".into(), ok("web|Up 3 hours (unhealthy)|0.0.0.0:8080->80/tcp, [::]:8080->80/tcp\n"));
        ev.commands.insert("runtime.node".into(), ok("v20.11.1\n"));
        ev.commands.insert("runtime.nginx".into(), ok("nginx version: nginx/1.24.0\n"));
        ev.commands.insert(
            "runtime.go".into(),
            CommandEvidence { argv: vec![], exit_code: None, output: String::new(), missing: true },
        );
        let s = interpret(&ev);
        assert_eq!(s.listening_ports.iter().map(|p| p.port).collect::<Vec<_>>(), vec![22, 80, 5432]);
        assert_eq!(s.listening_ports[1].process.as_deref(), Some("nginx"));
        let nginx = s.services.iter().find(|x| x.name == "nginx.service").unwrap();
        assert!(nginx.healthy);
        assert_eq!(nginx.ports, vec![80]);
        assert!(!s.services.iter().any(|x| x.name == "old.service"));
        let web = s.services.iter().find(|x| x.name == "web").unwrap();
        assert_eq!((web.kind, web.healthy, web.ports.clone()), (ServiceKind::Docker, false, vec![8080]));
        assert!(s.findings.iter().any(|f| f.contains("app.service has failed")), "{:?}", s.findings);
        assert!(s.findings.iter().any(|f| f.contains("5432")), "{:?}", s.findings);
        assert!(s.findings.iter().any(|f| f.contains("web is Up 3 hours (unhealthy)")));
        let names: Vec<(&str, Option<&str>)> =
            s.runtimes.iter().map(|r| (r.name.as_str(), r.version.as_deref())).collect();
        assert_eq!(names, vec![("nginx", Some("1.24.0")), ("node", Some("20.11.1"))]);
    }

    #[test]
    fn every_discovery_command_is_read_only() {
        for (key, argv) in commands() {
            // Interpreters are never in the classifier's read-only set (they run code); here they
            // only ever get a fixed version flag, nothing from a request.
            if key.starts_with("runtime.") {
                assert_eq!(argv.len(), 2, "{key}");
                assert!(["--version", "-version", "version", "-v"].contains(&argv[1].as_str()), "{key}");
                continue;
            }
            let line = argv
                .iter()
                .map(|a| if a.contains(['{', '|', ' ']) { format!("'{a}'") } else { a.clone() })
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(
                crate::classifier::classify(&line).class,
                crate::classifier::CommandClass::ReadOnly,
                "{key}: {line}"
            );
        }
    }
}
