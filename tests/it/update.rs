//! Issue 16, signed self-update, end to end: a real central, real `mttrly-cli releases` keys and
//! publishes, and a real agent installed in a temporary root (`versions/<v>/mttrly-agent`,
//! `versions/current`) running under a supervisor loop that restarts `current` whenever the
//! agent exits, as systemd's `Restart=always` does.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mttrly_tests::{TestCentral, binary, wait_for};
use serde_json::{Value, json};

/// The version the workspace agent reports when nothing signed says otherwise.
const BASE: &str = env!("CARGO_PKG_VERSION");

/// A host with the agent installed under a temporary root, and the release keys its owner trusts.
struct Host {
    dir: tempfile::TempDir,
    central: TestCentral,
    server_id: String,
    assistant: String,
    supervisor: Supervisor,
}

/// Restarts `versions/current/mttrly-agent run` whenever it exits, until dropped.
struct Supervisor {
    stop: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
    starts: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    fn start(state_dir: PathBuf, policy: PathBuf, log: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(AtomicU32::new(0));
        let (s, p, n) = (Arc::clone(&stop), Arc::clone(&pid), Arc::clone(&starts));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log");
                let mut child: Child = Command::new(state_dir.join("versions/current/mttrly-agent"))
                    .arg("run")
                    .arg("--state-dir")
                    .arg(&state_dir)
                    .arg("--policy")
                    .arg(&policy)
                    .env(mttrly_agent::env::LOG, "info")
                    .stdout(Stdio::null())
                    .stderr(log_file)
                    .spawn()
                    .expect("the supervised agent starts");
                p.store(child.id(), Ordering::SeqCst);
                n.fetch_add(1, Ordering::SeqCst);
                loop {
                    if s.load(Ordering::SeqCst) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return;
                    }
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                // systemd's RestartSec, shortened.
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self { stop, pid, starts, thread: Some(thread) }
    }

    fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Host {
    /// Central, a root and a signing key, an enrolled agent installed as `versions/BASE` under a
    /// temporary root with a policy trusting the root, supervised, and online.
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let central = TestCentral::start(dir.path());
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).expect("keys dir");
        let root = central.cli_json(&["releases", "keygen", "--root", "--out", path(&keys.join("root.key"))]);
        let root_public = root["public_key"].as_str().expect("public key").to_owned();
        let signing = central.cli_json(&[
            "releases",
            "keygen",
            "--signing",
            "--out",
            path(&keys.join("signing.key")),
            "--root-key",
            path(&keys.join("root.key")),
            "--not-after",
            "30d",
        ]);
        assert_eq!(signing["root_key_id"], root["key_id"]);
        let mode = std::fs::metadata(keys.join("signing.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private keys are written 0600");

        let install = dir.path().join("host");
        let state_dir = install.join("var/lib/mttrly-agent");
        let versions = state_dir.join("versions");
        std::fs::create_dir_all(versions.join(BASE)).expect("versions dir");
        std::fs::copy(binary("mttrly-agent"), versions.join(BASE).join("mttrly-agent")).expect("install the binary");
        std::os::unix::fs::symlink(BASE, versions.join("current")).expect("current link");
        let policy = install.join("etc/mttrly-agent/policy.toml");
        std::fs::create_dir_all(policy.parent().expect("etc")).expect("etc dir");
        std::fs::write(&policy, format!("[updates]\ntrusted_root_keys = [\"{root_public}\"]\n")).expect("policy");

        let added = central.cli_json(&["servers", "add", "web-1", "--env", "staging"]);
        let server_id = added["server_id"].as_str().expect("server_id").to_owned();
        let out = mttrly_tests::TestAgent::enroll(
            &central.grpc_url,
            added["install_token"].as_str().expect("token"),
            &state_dir,
        );
        assert!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
        let supervisor = Supervisor::start(state_dir, policy, dir.path().join("agent.log"));
        let assistant = central.assistant_token("claude");
        let host = Self { dir, central, server_id, assistant, supervisor };
        host.wait_version(BASE);
        host
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("host/var/lib/mttrly-agent")
    }

    fn versions(&self) -> PathBuf {
        self.state_dir().join("versions")
    }

    fn current(&self) -> String {
        std::fs::read_link(self.versions().join("current")).expect("current link").display().to_string()
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Waits until central sees the agent online reporting `version`.
    fn wait_version(&self, version: &str) {
        wait_for(&format!("the agent online as {version}"), Duration::from_secs(60), || {
            let status = self.central.cli_json(&["servers", "status", &self.server_id]);
            (status["server"]["status"] == "online" && status["server"]["agent_version"] == version).then_some(())
        });
    }

    /// Publishes `file` as `version`, valid for `expires_in`.
    fn publish(&self, file: &Path, version: &str, expires_in: &str) -> Value {
        self.central.cli_json(&[
            "releases",
            "publish",
            "--binary",
            path(file),
            "--version",
            version,
            "--expires-in",
            expires_in,
            "--signing-key",
            path(&self.keys().join("signing.key")),
            "--signing-cert",
            path(&self.keys().join("signing.key.cert")),
        ])
    }

    /// Asks for an update through the tool (as an assistant) and returns the submission.
    fn request(&self, args: Value) -> Value {
        let mut args = args;
        args["server_id"] = json!(self.server_id);
        self.central.call_tool(&self.assistant, "mttrly_update_agent", &args)
    }

    fn action(&self, id: &str) -> Value {
        self.central.cli_json(&["actions", "show", id])
    }

    /// The audit entries about a refused update.
    fn refusals(&self) -> Vec<Value> {
        let audit = self.central.cli_json(&["audit", "list", "--limit", "500"]);
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["subject"] == "agent_update_refused")
            .cloned()
            .collect()
    }

    /// A copy of the workspace agent made distinct by one appended byte (an ELF file runs the same
    /// with trailing bytes), so each release has its own SHA-256.
    fn agent_copy(&self, tag: u8) -> PathBuf {
        let file = self.dir.path().join(format!("agent-{tag}"));
        let mut bytes = std::fs::read(binary("mttrly-agent")).expect("agent binary");
        bytes.push(tag);
        std::fs::write(&file, bytes).expect("copy");
        file
    }
}

impl Host {
    /// 4 KiB of bytes that are no program, distinct per `tag`.
    fn blob(&self, tag: u8) -> PathBuf {
        let file = self.dir.path().join(format!("blob-{tag}"));
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(tag)).collect();
        std::fs::write(&file, bytes).expect("blob");
        file
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn action_id(submission: &Value) -> String {
    submission["action_id"].as_str().unwrap_or_else(|| panic!("no action id in {submission}")).to_owned()
}

/// The good path: the workspace agent published as 99.0.0 is verified, staged, started, connects,
/// passes its self-test and becomes `current`; the result says from → to; the update action is in
/// the shared executed-actions ledger once and never runs again after the swap.
#[test]
fn a_signed_release_is_installed_and_the_ledger_survives_the_swap() {
    let host = Host::start();
    let published = host.publish(&host.agent_copy(1), "99.0.0", "1h");
    assert_eq!(published["version"], "99.0.0");
    let listed = host.central.cli_json(&["releases", "list"]);
    assert_eq!(listed["releases"][0]["version"], "99.0.0");

    let submission = host.request(json!({}));
    assert_eq!(submission["status"], "pending_approval", "{submission}");
    let id = action_id(&submission);
    let pending = host.action(&id);
    let description = pending["description"].as_str().unwrap_or_default().to_owned();
    assert!(description.contains(&format!("from {BASE} to 99.0.0")), "{description}");
    assert!(description.contains(published["sha256"].as_str().expect("sha")), "{description}");
    assert!(description.contains("manifest expires"), "{description}");

    let started = Instant::now();
    let approved = host.central.approve(&id);
    let took = started.elapsed();
    let action = host.action(&id);
    assert_eq!(action["status"], "succeeded", "{approved}\n{action}\n{}", host.log());
    let data = &action["result"]["data"];
    assert_eq!(data["from_version"], BASE, "{action}");
    assert_eq!(data["to_version"], "99.0.0", "{action}");
    assert_eq!(host.current(), "99.0.0");
    host.wait_version("99.0.0");
    println!("update: approval to the new version connected and committed in {took:?} (agent: {} ms)", data["took_ms"]);
    assert!(!host.versions().join("update.json").exists());

    // At most once across the swap: the ledger holds the action once, and after another restart
    // of the new version (it reconnects, reporting its executed ids) nothing runs again.
    let ledger = std::fs::read_to_string(host.state_dir().join("executed-actions")).expect("ledger");
    assert_eq!(ledger.lines().filter(|l| *l == id).count(), 1, "{ledger}");
    let pid = host.supervisor.pid();
    let _ = nix_kill(pid);
    wait_for("the agent restarted", Duration::from_secs(20), || (host.supervisor.pid() != pid).then_some(()));
    host.wait_version("99.0.0");
    std::thread::sleep(Duration::from_secs(1));
    let ledger = std::fs::read_to_string(host.state_dir().join("executed-actions")).expect("ledger");
    assert_eq!(ledger.lines().filter(|l| *l == id).count(), 1, "{ledger}");
    assert_eq!(host.action(&id)["status"], "succeeded");
    assert_eq!(host.current(), "99.0.0");
}

fn nix_kill(pid: u32) -> bool {
    Command::new("kill").arg("-9").arg(pid.to_string()).status().is_ok_and(|s| s.success())
}

/// A flipped byte in the binary central serves, a replayed older manifest (a downgrade nobody
/// allowed), an expired manifest: each refused with its reason in the audit log; `current` and
/// the running version unchanged.
#[test]
fn tampered_old_and_expired_releases_are_refused_and_audited() {
    let host = Host::start();

    // A flipped byte on central's disk: the agent's hash check refuses it before staging. (The
    // refused releases need not run, so they are small files: nothing of them is ever executed.)
    let published = host.publish(&host.blob(2), "50.0.0", "1h");
    let blob = host.central.data_dir.join("releases").join(published["sha256"].as_str().expect("sha"));
    let mut bytes = std::fs::read(&blob).expect("stored binary");
    bytes[1000] ^= 0x01;
    std::fs::write(&blob, bytes).expect("flip a byte");
    let id = action_id(&host.request(json!({ "target_version": "50.0.0" })));
    host.central.approve(&id);
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}");
    assert_eq!(action["result"]["error"]["code"], "POLICY_DENIED", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "hash_mismatch", "{action}");
    assert!(!host.versions().join("50.0.0").exists(), "nothing is left staged");
    assert_eq!(host.current(), BASE);

    // An older release: refused before anyone is asked (and audited), unless explicitly allowed.
    host.publish(&host.blob(3), "0.0.1", "1h");
    let refused = host.request(json!({ "target_version": "0.0.1" }));
    assert_eq!(refused["code"], "POLICY_DENIED", "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("downgrade"), "{refused}");

    // A manifest that expires between the request and the approval: the agent refuses it.
    host.publish(&host.blob(4), "60.0.0", "5s");
    let id = action_id(&host.request(json!({ "target_version": "60.0.0" })));
    std::thread::sleep(Duration::from_secs(6));
    host.central.approve(&id);
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "manifest_expired", "{action}");

    let reasons: Vec<(String, String)> = host
        .refusals()
        .iter()
        .map(|e| {
            (
                e["parameters"]["stage"].as_str().unwrap_or_default().to_owned(),
                e["parameters"]["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for want in [("agent", "hash_mismatch"), ("central", "downgrade"), ("agent", "manifest_expired")] {
        assert!(reasons.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {reasons:?}");
    }
    assert_eq!(host.current(), BASE);
    host.wait_version(BASE);
    assert_eq!(host.central.cli_json(&["audit", "verify"])["ok"], true);
}

/// A release that cannot run (a shell script that exits at once): it is staged and started, dies
/// before it connects, the supervisor starts `current` (the old version), which rolls the update
/// back by itself well within the 30 s deadline and marks the version skipped; asking for it
/// again is refused.
#[test]
fn a_failing_release_rolls_back_by_itself_and_is_skipped() {
    let host = Host::start();
    let script = host.dir.path().join("broken.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'broken release' >&2\nexit 3\n").expect("script");
    host.publish(&script, "70.0.0", "1h");
    let id = action_id(&host.request(json!({ "target_version": "70.0.0" })));
    let started = Instant::now();
    host.central.approve(&id);
    let took = started.elapsed();
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}\n{}", host.log());
    assert_eq!(action["result"]["data"]["state"], "rolled_back", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "exited_before_commit", "{action}");
    assert!(took < Duration::from_secs(30), "rolled back within the deadline ({took:?})");
    assert_eq!(host.current(), BASE);
    let skipped = std::fs::read_to_string(host.versions().join("skipped.json")).expect("skipped list");
    assert!(skipped.contains("70.0.0"), "{skipped}");
    host.wait_version(BASE);

    let again = action_id(&host.request(json!({ "target_version": "70.0.0" })));
    host.central.approve(&again);
    let action = host.action(&again);
    assert_eq!(action["result"]["error"]["details"]["reason"], "skipped_version", "{action}");
}

/// `kill -9` of the agent after it staged the release and before the new version committed:
/// `current` still names the old, complete version, which the supervisor starts; it rolls the
/// update back and the server is online again.
#[test]
fn kill_9_mid_update_leaves_a_runnable_agent() {
    let host = Host::start();
    host.publish(&host.agent_copy(5), "80.0.0", "1h");
    let id = action_id(&host.request(json!({ "target_version": "80.0.0" })));
    let marker = host.versions().join("update.json");
    let approving = {
        let grpc = host.central.grpc_url.clone();
        let token = host.central.admin_token.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            Command::new(binary("mttrly-cli"))
                .args(["--central", &grpc, "--token", &token, "--output", "json", "actions", "approve", &id, "--yes"])
                .output()
                .expect("approve runs")
        })
    };
    wait_for("the release staged", Duration::from_secs(60), || marker.exists().then_some(()));
    let pid = host.supervisor.pid();
    assert!(nix_kill(pid), "kill -9 {pid}");
    let _ = approving.join();
    wait_for("the action settled", Duration::from_secs(100), || {
        let action = host.action(&id);
        (action["status"] != "running" && action["status"] != "approved").then_some(action)
    });
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}\n{}", host.log());
    assert_eq!(action["result"]["data"]["state"], "rolled_back", "{action}");
    assert_eq!(host.current(), BASE);
    assert!(host.versions().join(BASE).join("mttrly-agent").exists());
    host.wait_version(BASE);
    assert!(host.supervisor.starts.load(Ordering::SeqCst) >= 2);
    assert!(!marker.exists());
}
