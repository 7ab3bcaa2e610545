//! A host with the agent installed under a temporary root the way `mttrly-agent install` lays it
//! out (`versions/<v>/mttrly-agent`, `versions/current`), run by a supervisor loop that restarts
//! `current` whenever the agent exits, as systemd's `Restart=always` does; with the release keys
//! its owner trusts. Shared by the self-update tests (`it/update.rs`) and the lifecycle bench.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{TestCentral, binary, wait_for};

/// The version the workspace agent reports when nothing signed says otherwise.
pub const BASE: &str = env!("CARGO_PKG_VERSION");

/// A host with the agent installed under a temporary root, and the release keys its owner trusts.
pub struct Host {
    /// The temporary root (the host's files, the keys, the agent's log).
    pub dir: tempfile::TempDir,
    /// The central the agent is enrolled with.
    pub central: TestCentral,
    /// The agent's server.
    pub server_id: String,
    /// An assistant token of the admin.
    pub assistant: String,
    /// The loop running the agent.
    pub supervisor: Supervisor,
}

/// Restarts `versions/current/mttrly-agent run` whenever it exits, until dropped.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
    /// How many times the loop has started the agent.
    pub starts: Arc<AtomicU32>,
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

    /// The running agent's process id (0 before the first start).
    pub fn pid(&self) -> u32 {
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
    pub fn start() -> Self {
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
        let out =
            crate::TestAgent::enroll(&central.grpc_url, added["install_token"].as_str().expect("token"), &state_dir);
        assert!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
        let supervisor = Supervisor::start(state_dir, policy, dir.path().join("agent.log"));
        let assistant = central.assistant_token("claude");
        let host = Self { dir, central, server_id, assistant, supervisor };
        host.wait_version(BASE);
        host
    }

    /// The agent's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("host/var/lib/mttrly-agent")
    }

    /// The installed versions (`versions/<v>/`, `current`).
    pub fn versions(&self) -> PathBuf {
        self.state_dir().join("versions")
    }

    /// The version `current` points at.
    pub fn current(&self) -> String {
        std::fs::read_link(self.versions().join("current")).expect("current link").display().to_string()
    }

    /// The release keys (root, signing, and the signing key's certificate).
    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// What the agent wrote to stderr so far, over every start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Waits until central sees the agent online reporting `version`.
    pub fn wait_version(&self, version: &str) {
        wait_for(&format!("the agent online as {version}"), Duration::from_secs(60), || {
            let status = self.central.cli_json(&["servers", "status", &self.server_id]);
            (status["server"]["status"] == "online" && status["server"]["agent_version"] == version).then_some(())
        });
    }

    /// Publishes `file` as `version`, valid for `expires_in`.
    pub fn publish(&self, file: &Path, version: &str, expires_in: &str) -> Value {
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
    pub fn request(&self, args: Value) -> Value {
        let mut args = args;
        args["server_id"] = json!(self.server_id);
        self.central.call_tool(&self.assistant, "mttrly_update_agent", &args)
    }

    /// `mttrly-cli actions show ID`.
    pub fn action(&self, id: &str) -> Value {
        self.central.cli_json(&["actions", "show", id])
    }

    /// The audit entries about a refused update.
    pub fn refusals(&self) -> Vec<Value> {
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
    pub fn agent_copy(&self, tag: u8) -> PathBuf {
        let file = self.dir.path().join(format!("agent-{tag}"));
        let mut bytes = std::fs::read(binary("mttrly-agent")).expect("agent binary");
        bytes.push(tag);
        std::fs::write(&file, bytes).expect("copy");
        file
    }
}

impl Host {
    /// 4 KiB of bytes that are no program, distinct per `tag`.
    pub fn blob(&self, tag: u8) -> PathBuf {
        let file = self.dir.path().join(format!("blob-{tag}"));
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(tag)).collect();
        std::fs::write(&file, bytes).expect("blob");
        file
    }
}

/// A path as UTF-8 text (the temp roots are).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The `action_id` of a tool's submission.
pub fn action_id(submission: &Value) -> String {
    submission["action_id"].as_str().unwrap_or_else(|| panic!("no action id in {submission}")).to_owned()
}
