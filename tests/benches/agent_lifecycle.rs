//! The agent's lifecycle figures (issue 16), on the release binaries as an operator runs them:
//!
//! - **idle RSS**: a real `mttrly-agent run` (detectors on, as the default policy has them; the
//!   updater in), enrolled and connected to a real central, left idle; its `VmRSS` sampled once a
//!   second over the last ten seconds of the idle period. Goal: ≤ 10 MB.
//! - **update**: approval of `mttrly_update_agent` to the new version connected and committed
//!   (`mttrly-cli actions approve` returning, which waits for the action's verdict: the manifest
//!   verified, the binary fetched, hashed, staged, `execve`d, reconnected, self-tested, `current`
//!   swapped, the verdict read back by central), repeated with a distinct signed release each
//!   time. Goal: < 5 s on loopback.
//!
//! The agent is installed under a temporary root (`versions/<v>/mttrly-agent`, `current`) and
//! restarted by a supervisor loop as systemd's `Restart=always` would (`mttrly_tests::update_host`,
//! the harness of the self-update tests).
//!
//! cargo bench -p mttrly-tests --bench agent_lifecycle -- [--idle-seconds 30] [--updates 5]

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::cast_precision_loss)]

use std::process::Command;
use std::time::{Duration, Instant};

use mttrly_tests::bench::{arg, percentile};
use mttrly_tests::update_host::{BASE, Host, action_id};
use mttrly_tests::{cpu_time, rss_bytes};
use serde_json::json;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `VmRSS` of the supervised agent sampled once a second for `seconds`, after `settle` seconds;
/// the samples, and the CPU the agent used over the whole period.
fn idle(host: &Host, settle: u64, seconds: u64) -> (Vec<u64>, Duration, Duration) {
    let pid = host.supervisor.pid();
    let (cpu_before, started) = (cpu_time(pid).unwrap(), Instant::now());
    std::thread::sleep(Duration::from_secs(settle));
    let mut samples = Vec::new();
    for _ in 0..seconds {
        samples.push(rss_bytes(pid).expect("the agent is running"));
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(host.supervisor.pid(), pid, "the agent restarted while idle");
    (samples, cpu_time(pid).unwrap().saturating_sub(cpu_before), started.elapsed())
}

/// `RssAnon` and `RssFile` of `pid` (`/proc/PID/status`), in bytes: what of the resident set is the
/// agent's own memory and what is pages of its executable (and libraries) it has touched.
fn rss_split(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn report_idle(host: &Host, what: &str, (samples, cpu, wall): &(Vec<u64>, Duration, Duration)) {
    let max = samples.iter().copied().max().unwrap();
    let last = *samples.last().unwrap();
    let (anon, file) = rss_split(host.supervisor.pid());
    println!(
        "{what}: VmRSS last {:.2} MiB ({:.2} MB), max {:.2} MiB over the last {} s (now {:.2} MiB anonymous, {:.2} MiB \
         file pages); CPU {:.3} % of a core over {:.0} s",
        mib(last),
        last as f64 / 1e6,
        mib(max),
        samples.len(),
        mib(anon),
        mib(file),
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
}

/// Builds the binaries this bench runs as an operator builds them (`cargo build --release` of the
/// whole workspace, README): `cargo bench` builds the bench and the libraries it links, not the
/// workspace binaries it starts (`mttrly_tests::binary` builds them only when missing), so without
/// this a change to the agent (its code or its profile in Cargo.toml) would be measured on
/// whatever binary an earlier build left. The whole workspace, not `-p mttrly-agent`: features
/// are unified across what one build selects, so the agent of `-p mttrly-agent` alone differs
/// from the operator's (it is smaller).
fn build_binaries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--workspace", "--bins"]);
    // `target/<profile>/deps/agent_lifecycle-…`: the profile directory the harness takes them from.
    let exe = std::env::current_exe().unwrap();
    if exe.parent().and_then(std::path::Path::parent).is_some_and(|dir| dir.ends_with("release")) {
        command.arg("--release");
    }
    assert!(command.status().is_ok_and(|status| status.success()), "building the binaries the bench runs failed");
}

fn main() {
    let idle_seconds = arg("--idle-seconds", 30).max(11);
    let updates = arg("--updates", 5);
    assert!(
        !cfg!(debug_assertions) || std::env::var_os("AGENT_LIFECYCLE_DEBUG").is_some(),
        "run this with `cargo bench` (release binaries); set AGENT_LIFECYCLE_DEBUG=1 to try it in a debug build"
    );
    build_binaries();
    let host = Host::start();
    let agent = host.central.cli_json(&["servers", "status", &host.server_id]);
    println!("agent {BASE} online: {}", agent["server"]["status"]);

    let before = idle(&host, idle_seconds - 10, 10);
    report_idle(&host, &format!("idle agent {BASE}, detectors on, {idle_seconds} s connected"), &before);

    let mut took = Vec::new();
    let mut agent_ms = Vec::new();
    for k in 1..=updates {
        let version = format!("99.0.{k}");
        host.publish(&host.agent_copy(u8::try_from(k).unwrap()), &version, "1h");
        let id = action_id(&host.request(json!({ "target_version": version })));
        let started = Instant::now();
        host.central.approve(&id);
        let elapsed = started.elapsed();
        let action = host.action(&id);
        assert_eq!(action["status"], "succeeded", "{action}\n{}", host.log());
        assert_eq!(host.current(), version);
        host.wait_version(&version);
        println!("update to {version}: {elapsed:?} (agent side {} ms)", action["result"]["data"]["took_ms"]);
        took.push(elapsed);
        agent_ms.push(action["result"]["data"]["took_ms"].as_u64().unwrap_or(0));
    }
    if !took.is_empty() {
        took.sort();
        agent_ms.sort_unstable();
        println!(
            "update, approval to the new version connected and committed ({} runs): median {:?}, min {:?}, max {:?}; agent side median {} ms",
            took.len(),
            percentile(&took, 0.5),
            took[0],
            took[took.len() - 1],
            agent_ms[agent_ms.len() / 2]
        );
        let after = idle(&host, idle_seconds - 10, 10);
        report_idle(&host, "idle agent after the updates (the last version), detectors on", &after);
    }
}
