//! Files end to end: a real agent with an owner's policy, real files in a temp dir standing in
//! for /var/log and friends, tools called through central's API exactly as MCP calls them.

use std::time::Duration;

use mttrly_tests::{TestAgent, TestCentral};
use serde_json::{Value, json};

struct Setup {
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
    central: TestCentral,
    assistant: String,
    server_id: String,
    _agent: TestAgent,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    for d in ["log/nginx", "secret", "etc/sudoers.d", "srv/app"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let mut log = String::new();
    for i in 1..=1000 {
        log.push_str(&format!("line {i} GET /health 200\n"));
    }
    log.push_str("upstream failed: Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n");
    std::fs::write(root.join("log/nginx/access.log"), log).expect("log");
    std::fs::write(root.join("log/nginx/error.log"), "boot ok\nERROR connect() failed\n").expect("log");
    std::fs::write(root.join("log/nginx/error.log.1"), "boot ok\nERROR old failure\n").expect("log");
    std::fs::write(root.join("secret/shadow"), "root:$6$secret\n").expect("secret");
    std::fs::write(root.join("etc/sudoers.d/deploy"), "deploy ALL=(ALL) NOPASSWD: /bin/systemctl\n").expect("sudo");
    std::fs::write(root.join("srv/app/.env"), "PORT=8080\nDATABASE_PASSWORD=supersecretvalue\n").expect("env");
    std::fs::write(root.join("srv/app/app.conf"), "workers = 2\n").expect("conf");
    std::os::unix::fs::symlink(root.join("secret/shadow"), root.join("log/shadow.log")).expect("symlink");
    let fifo = root.join("log/pipe.log");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let policy = root.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "file_roots = [\"{r}/log/**\"]\nmanaged_files = [\"{r}/srv/app/*.conf\"]\n\
             privileged_files_enabled = true\nprivileged_files = [\"{r}/etc/sudoers.d/*\"]\n\
             [env_files]\napp = \"{r}/srv/app/.env\"\n",
            r = root.display()
        ),
    )
    .expect("policy");

    let central = TestCentral::start(dir.path());
    let (server_id, agent) = central.online_server("web-1", "staging", &root.join("agent-state"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    Setup { root, _dir: dir, central, assistant, server_id, _agent: agent }
}

impl Setup {
    #[allow(clippy::needless_pass_by_value)] // call sites read better with json!(..) inline
    fn call(&self, tool: &str, args: Value) -> Value {
        self.central.call_tool(&self.assistant, tool, &args)
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

#[test]
fn reads_tail_redact_and_refuse_what_the_policy_does_not_allow() {
    let s = setup();
    let read = s.call(
        "mttrly_read_file",
        json!({ "server_id": s.server_id, "target": { "type": "file", "path": s.path("log/nginx/access.log") }, "lines": 3 }),
    );
    assert_eq!(read["line_count"], 3, "{read}");
    let content = read["content"].as_str().expect("content");
    assert!(content.starts_with("line 999 "), "{content}");
    assert!(!content.contains("abcdefghijklmnopqrstuvwxyz012345"), "bearer token redacted: {content}");
    assert!(read["redactions"].as_array().is_some_and(|r| !r.is_empty()), "{read}");
    assert_eq!(read["truncated"], true);

    // Traversal, a symlink out of the allowlist, a FIFO, /proc: refused by the agent's policy.
    for path in [
        s.path("log/../secret/shadow"),
        s.path("log/shadow.log"),
        s.path("log/pipe.log"),
        "/proc/self/environ".to_owned(),
    ] {
        let started = std::time::Instant::now();
        let err =
            s.call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "file", "path": path } }));
        assert_eq!(err["code"], "POLICY_DENIED", "{path}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path} must not block");
        assert!(!err.to_string().contains("$6$secret"));
    }

    // A managed env file: secrets redacted by key name, the rest readable.
    let env = s
        .call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "env_file", "name": "app" } }));
    let text = env["content"].as_str().expect("env");
    assert!(text.contains("PORT=8080") && !text.contains("supersecretvalue"), "{env}");
    let unknown =
        s.call("mttrly_read_file", json!({ "server_id": s.server_id, "target": { "type": "env_file", "name": "db" } }));
    assert_eq!(unknown["code"], "POLICY_DENIED", "{unknown}");

    // The privileged allowlist, opted into by the owner.
    let sudo = s.call(
        "mttrly_read_privileged_file",
        json!({ "server_id": s.server_id, "path": s.path("etc/sudoers.d/deploy") }),
    );
    assert!(sudo["content"].as_str().is_some_and(|c| c.contains("NOPASSWD")), "{sudo}");
    let not_priv =
        s.call("mttrly_read_privileged_file", json!({ "server_id": s.server_id, "path": s.path("secret/shadow") }));
    assert_eq!(not_priv["code"], "POLICY_DENIED", "{not_priv}");
}

#[test]
fn search_and_diff_stay_inside_the_allowlist() {
    let s = setup();
    let found =
        s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "error", "ignore_case": true }));
    let matches = found["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 2, "{found}");
    assert!(matches.iter().all(|m| !m["path"].as_str().unwrap_or("").contains("secret")), "{found}");
    assert_eq!(matches[0]["line_number"], 2);
    let only = s.call(
        "mttrly_search_files",
        json!({ "server_id": s.server_id, "query": "ERROR", "glob": format!("{}/log/nginx/*.log", s.root.display()) }),
    );
    assert_eq!(only["matches"].as_array().map(Vec::len), Some(1), "{only}");
    let bearer = s.call("mttrly_search_files", json!({ "server_id": s.server_id, "query": "Bearer" }));
    assert!(!bearer.to_string().contains("abcdefghijklmnopqrstuvwxyz012345"), "{bearer}");

    let diff = s.call(
        "mttrly_diff_file",
        json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log.1"), "right_path": s.path("log/nginx/error.log") }),
    );
    let text = diff["diff"].as_str().expect("diff");
    assert!(text.contains("-ERROR old failure") && text.contains("+ERROR connect() failed"), "{diff}");
    assert_eq!(diff["identical"], false);
    let denied = s.call(
        "mttrly_diff_file",
        json!({ "server_id": s.server_id, "left_path": s.path("log/nginx/error.log"), "right_path": s.path("secret/shadow") }),
    );
    assert_eq!(denied["code"], "POLICY_DENIED", "{denied}");

    // Another tenant's server id behaves like a missing one.
    let missing = s.call(
        "mttrly_read_file",
        json!({ "server_id": "srv_00000000000000000000000000000000", "target": { "type": "docker_images" } }),
    );
    assert_eq!(missing["code"], "SERVER_NOT_FOUND", "{missing}");
}

#[test]
fn writes_and_cleanups_wait_for_a_human_and_keep_a_backup() {
    use base64::Engine as _;
    let s = setup();
    let conf = s.path("srv/app/app.conf");
    let new = base64::engine::general_purpose::STANDARD.encode("workers = 8\n");
    let pending = s.call("mttrly_write_file", json!({ "server_id": s.server_id, "path": conf, "content_base64": new }));
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "workers = 2\n", "nothing changes before approval");
    let id = pending["action_id"].as_str().expect("id");
    let shown = s.central.cli_json(&["actions", "show", id]);
    assert_eq!(shown["content"]["type"], "file_write");
    assert_eq!(shown["content"]["size_bytes"], 12);
    let done = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(std::fs::read_to_string(&conf).expect("conf"), "workers = 8\n");
    let backups: Vec<_> = std::fs::read_dir(s.root.join("srv/app"))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("app.conf.mttrly-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(s.root.join("srv/app").join(&backups[0])).expect("backup"), "workers = 2\n");

    // Outside the managed files: even approved, the agent refuses.
    let outside = s.path("log/nginx/access.log");
    let pending =
        s.call("mttrly_write_file", json!({ "server_id": s.server_id, "path": outside, "content_base64": new }));
    let id = pending["action_id"].as_str().expect("id");
    let refused = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["result"]["error"]["code"], "POLICY_DENIED", "{refused}");
    assert!(std::fs::read_to_string(&outside).expect("log").starts_with("line 1 "));

    // Cleanup.
    let pending = s.call("mttrly_cleanup_file", json!({ "server_id": s.server_id, "path": conf }));
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert!(std::path::Path::new(&conf).exists());
    let id = pending["action_id"].as_str().expect("id");
    let done = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(!std::path::Path::new(&conf).exists());
}
