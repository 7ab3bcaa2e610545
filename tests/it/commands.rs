//! Commands end to end with real processes: read-only ones run at once without a shell; others
//! wait for a human; deadlines kill; and a central crash mid-run never causes a second run.

use std::time::Duration;

use mttrly_tests::mcp;
use mttrly_tests::{TestAgent, TestCentral, wait_for};
use serde_json::json;

struct Setup {
    dir: tempfile::TempDir,
    central: TestCentral,
    assistant: String,
    server_id: String,
    agent: TestAgent,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let added = central.cli_json(&["servers", "add", "web-1", "--env", "staging"]);
    let server_id = added["server_id"].as_str().expect("id").to_owned();
    let agent =
        TestAgent::start(&central.grpc_url, added["install_token"].as_str().expect("token"), &dir.path().join("agent"));
    let assistant = central.cli_json(&["tokens", "create", "--assistant", "claude-code"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    wait_for("the agent online", Duration::from_secs(15), || {
        (central.cli_json(&["servers", "status", &server_id])["server"]["status"] == "online").then_some(())
    });
    Setup { dir, central, assistant, server_id, agent }
}

#[test]
fn read_only_commands_run_at_once_and_others_wait_for_a_human() {
    let s = setup();
    let ran = s.central.call_tool(
        &s.assistant,
        "mttrly_execute_command",
        &json!({ "server_id": s.server_id, "command": "uptime" }),
    );
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(ran["requires_approval"], false);
    assert!(ran["result"]["output"].as_str().is_some_and(|o| o.contains("load average")), "{ran}");

    let marker = s.dir.path().join("approved-marker");
    let command = format!("touch {}", marker.display());
    let pending = s.central.call_tool(
        &s.assistant,
        "mttrly_execute_command",
        &json!({ "server_id": s.server_id, "command": command }),
    );
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert!(pending["description"].as_str().is_some_and(|d| d.contains("needs approval")));
    assert!(!marker.exists(), "nothing runs before a human approves");

    let id = pending["action_id"].as_str().expect("id");
    let approved = s.central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert!(marker.exists());

    // A command that ignores SIGTERM is killed at its deadline.
    let stubborn = s.central.call_tool(
        &s.assistant,
        "mttrly_execute_command",
        &json!({ "server_id": s.server_id, "command": "trap '' TERM; sleep 30", "timeout_seconds": 1 }),
    );
    let id = stubborn["action_id"].as_str().expect("id");
    let started = std::time::Instant::now();
    let done = s.central.approve(id);
    assert_eq!(done["status"], "failed");
    assert_eq!(done["result"]["error"]["code"], "TIMEOUT", "{done}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_central_crash_mid_run_fails_the_action_and_it_never_runs_twice() {
    let mut s = setup();
    let marker = s.dir.path().join("runs");
    let command = format!("sleep 2; echo run >> {}", marker.display());
    let pending = s.central.call_tool(
        &s.assistant,
        "mttrly_execute_command",
        &json!({ "server_id": s.server_id, "command": command, "timeout_seconds": 30 }),
    );
    let id = pending["action_id"].as_str().expect("id").to_owned();
    // Approve without waiting: the action is running on the agent when central dies.
    let running = s.central.cli_json(&["actions", "approve", &id, "--yes", "--wait", "0"]);
    assert_eq!(running["status"], "running", "{running}");
    s.central.crash_and_restart();

    // The agent finishes the one run it started; central, restarted, never re-sends it.
    wait_for("the command to finish on the agent", Duration::from_secs(10), || marker.exists().then_some(()));
    let view = s.central.cli_json(&["actions", "show", &id]);
    assert_eq!(view["status"], "failed", "{view}");
    assert!(view["result"]["error"]["message"].as_str().is_some_and(|m| m.contains("outcome unknown")), "{view}");
    wait_for("the agent to reconnect", Duration::from_secs(15), || {
        (s.central.cli_json(&["servers", "status", &s.server_id])["server"]["status"] == "online").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "run\n", "it ran exactly once");
    assert!(s.agent.is_running());
}

#[test]
fn scripts_always_wait_for_a_human_and_only_managed_names_run() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let script = root.join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s|' \"$@\" > \"$(dirname \"$0\")/hello.out\"\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let policy = root.join("policy.toml");
    std::fs::write(&policy, format!("commands_enabled = false\n[managed_scripts]\nhello = \"{}\"\n", script.display()))
        .expect("policy");
    let central = TestCentral::start(&root);
    let (server_id, _agent) = central.online_server("web-1", "staging", &root.join("a"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    let run = |script: serde_json::Value, args: serde_json::Value| {
        let pending = central.call_tool(
            &assistant,
            "mttrly_execute_script",
            &json!({ "server_id": server_id, "script": script, "args": args }),
        );
        assert_eq!(pending["status"], "pending_approval", "{pending}");
        let id = pending["action_id"].as_str().expect("id").to_owned();
        central.approve(&id)
    };

    // A managed script by name; arguments arrive verbatim, never through a shell.
    let done = run(json!({ "type": "managed", "name": "hello" }), json!(["a b", "$(id)", "; rm -rf /"]));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(std::fs::read_to_string(root.join("hello.out")).expect("out"), "a b|$(id)|; rm -rf /|");

    // A name the owner did not list.
    let denied = run(json!({ "type": "managed", "name": "rotate-keys" }), json!([]));
    assert_eq!(denied["status"], "failed");
    assert_eq!(denied["result"]["error"]["code"], "POLICY_DENIED", "{denied}");

    // Inline scripts need command execution, which this owner switched off.
    let inline = run(json!({ "type": "inline", "content": "touch /tmp/should-not-exist-mttrly" }), json!([]));
    assert_eq!(inline["result"]["error"]["code"], "POLICY_DENIED", "{inline}");
}

/// The files a read-only command reads are checked by the agent, as `mttrly_read_file` checks
/// them: under the owner's roots they run at once; outside, hard-linked or symlinked they wait for
/// a human. Options that write, read unchecked files or run batch files never run unapproved.
#[test]
fn the_agent_checks_the_files_a_command_reads_and_writers_never_run_unapproved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Files { root, logs, log, secret, policy } = hostile_files(dir.path());
    let central = TestCentral::start(&root);
    let (server_id, _agent) = central.online_server("web-1", "staging", &root.join("a"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    let run = |command: String| {
        central.call_tool(&assistant, "mttrly_execute_command", &json!({ "server_id": server_id, "command": command }))
    };

    // Incident reads of the owner's logs run at once, without a shell, on the checked file.
    for (command, expect) in [
        (format!("tail -n 1 {}", log.display()), "last line"),
        (format!("grep -c error {}", log.display()), "2"),
        (format!("head -n 1 {}", log.display()), "boot ok"),
        (format!("wc -l {}", log.display()), "4"),
        (format!("cat {}", log.display()), "connection refused"),
    ] {
        let ran = run(command.clone());
        assert_eq!(ran["requires_approval"], false, "{command}: {ran}");
        assert_eq!(ran["status"], "succeeded", "{command}: {ran}");
        assert!(ran["result"]["output"].as_str().is_some_and(|o| o.contains(expect)), "{command}: {ran}");
    }

    // Files that fail the agent's checks, and commands that write or read around the allowlist:
    // pending, never run, never a byte of the secret. Each is rejected at once (pending is capped).
    let marker = root.join("pwned");
    let hard = logs.join("hard.log");
    let link = logs.join("link.log");
    for command in [
        format!("cat {}", secret.display()),
        format!("tail -n 5 {}", hard.display()),
        format!("head {}", link.display()),
        format!("grep -f {} {}", secret.display(), log.display()),
        format!("ss -D{}", marker.display()),
        format!("ss -tlnp --diag={}", marker.display()),
        format!("dmesg --file={}", secret.display()),
        format!("date -f {}", secret.display()),
        format!("du --files0-from={}", secret.display()),
        format!("ip -b {}", root.join("ipbatch").display()),
        format!("systemctl --failed enable x.service --root={}", root.display()),
        "journalctl --rot".to_owned(),
        "ps auxwwe".to_owned(),
        "kubectl get secret db -o yaml".to_owned(),
    ] {
        let pending = run(command.clone());
        assert_eq!(pending["status"], "pending_approval", "{command}: {pending}");
        assert_eq!(pending["requires_approval"], true, "{command}");
        assert!(!pending.to_string().contains("TOPSECRET"), "{command}: {pending}");
        let id = pending["action_id"].as_str().expect("id");
        central.cli_json(&["actions", "reject", id, "--reason", "test"]);
    }
    assert!(!marker.exists(), "no unapproved command wrote a file");

    // The policy decides on the agent's host: the same file outside this agent's roots.
    let verdict = central.cli_json(&["policy", "classify", &format!("tail -n 1 {}", log.display())]);
    assert_eq!(verdict["class"], "needs_approval", "the default policy (/var/log/**) does not allow it: {verdict}");
    let verdict = central.cli_json(&[
        "policy",
        "classify",
        "--policy",
        policy.to_str().expect("utf-8"),
        &format!("tail -n 1 {}", log.display()),
    ]);
    assert_eq!(verdict["class"], "read_only", "{verdict}");
    assert_eq!(verdict["files"], json!([log.display().to_string()]));
}

/// Hostile fixtures under one root: an allowlisted log directory holding a log, a hard link and a
/// symlink to a secret outside it, a batch file for `ip -b`, and a policy allowing only the logs.
struct Files {
    root: std::path::PathBuf,
    logs: std::path::PathBuf,
    log: std::path::PathBuf,
    secret: std::path::PathBuf,
    policy: std::path::PathBuf,
}

fn hostile_files(dir: &std::path::Path) -> Files {
    let root = dir.canonicalize().expect("canonical");
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let log = logs.join("app.log");
    std::fs::write(&log, "boot ok\nerror: upstream timed out\nerror: connection refused\nlast line\n").expect("log");
    let secret = root.join("secret.txt");
    std::fs::write(&secret, "TOPSECRET-OUTSIDE-ALLOWLIST\n").expect("secret");
    std::fs::hard_link(&secret, logs.join("hard.log")).expect("hard link");
    std::os::unix::fs::symlink(&secret, logs.join("link.log")).expect("symlink");
    std::fs::write(root.join("ipbatch"), "link show lo\n").expect("batch file");
    let policy = root.join("policy.toml");
    std::fs::write(&policy, format!("file_roots = [\"{}/**\"]\n", logs.display())).expect("policy");
    Files { root, logs, log, secret, policy }
}

/// A corpus subset through central's real `/mcp` with an rmcp client, both ways. Read-only
/// commands run at once on the agent, on the checked files, with the expected output; everything
/// else becomes a pending action (rejected at once through the CLI, under the per-server pending
/// cap) and never runs: no marker file appears and no byte of the secret comes back. For every
/// row, `mttrly-cli policy classify --policy` (what the owner can try locally) agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_subset_over_mcp_runs_read_only_commands_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = hostile_files(dir.path());
    let central = TestCentral::start(&f.root);
    let (server_id, _agent) = central.online_server("web-1", "staging", &f.root.join("a"), Some(&f.policy));
    let assistant = central.assistant_token("claude-code");
    let (session, forms) = mcp::connect(&central.mcp_url, &assistant, None).await;
    let policy = f.policy.to_str().expect("utf-8 policy path");
    let local_verdict = |command: &str| {
        tokio::task::block_in_place(|| central.cli_json(&["policy", "classify", "--policy", policy, command]))
    };

    let (log, logs, secret) = (f.log.display(), f.logs.display(), f.secret.display());
    for (command, expect) in [
        ("uptime".to_owned(), "load average"),
        ("df -h /".to_owned(), "/"),
        (format!("df -P {}/", f.root.display()), "%"),
        ("ps -eo pid,comm".to_owned(), "PID"),
        ("vmstat 1 1".to_owned(), "free"),
        ("date -u +%Y".to_owned(), "20"),
        ("uname -s".to_owned(), "Linux"),
        ("id -un".to_owned(), ""),
        ("free -m".to_owned(), "Mem:"),
        (format!("ls -la {logs}"), "app.log"),
        (format!("stat -c %s {log}"), "70"),
        (format!("du -s {logs}"), "logs"),
        (format!("tail -n 1 {log}"), "last line"),
        (format!("tail {log} -n 1"), "last line"),
        (format!("head -n 1 {log}"), "boot ok"),
        (format!("grep -c error {log}"), "2"),
        (format!("grep -e refused -- {log}"), "connection refused"),
        (format!("wc -l {log}"), "4"),
        (format!("cat -n {log}"), "upstream timed out"),
        (format!("'cat' \"{log}\""), "boot ok"),
    ] {
        let ran =
            mcp::call_ok(&session, "mttrly_execute_command", json!({ "server_id": server_id, "command": command }))
                .await;
        assert_eq!(ran["requires_approval"], false, "{command}: {ran}");
        assert_eq!(ran["status"], "succeeded", "{command}: {ran}");
        let output = ran["result"]["output"].as_str().unwrap_or_default();
        assert!(output.contains(expect), "{command}: {ran}");
        assert_eq!(local_verdict(&command)["class"], "read_only", "{command}");
    }

    // Each of these would leave a marker (or a secret) behind if it ran.
    let marker = |name: &str| f.root.join(name).display().to_string();
    let hard = f.logs.join("hard.log");
    let link = f.logs.join("link.log");
    let batch = f.root.join("ipbatch");
    let refused = [
        format!("ss -D{}", marker("m-ss-d")),
        format!("ss -tlnp --diag={}", marker("m-ss-diag")),
        format!("ss --dia={}", marker("m-ss-dia")),
        format!("journalctl --cursor-file={} -n 1", marker("m-cursor")),
        format!("journalctl --cursor-fil={} -n 1", marker("m-cursor-abbr")),
        format!("touch {}", marker("m-touch")),
        format!("uptime; touch {}", marker("m-chain")),
        format!("cat {log} > {}", marker("m-redirect")),
        format!("docker save nginx -o {}", marker("m-docker")),
        format!("kubectl cluster-info dump --output-directory={}", marker("m-kube")),
        format!("cat {secret}"),
        format!("tail -n 5 {}", hard.display()),
        format!("head {}", link.display()),
        format!("grep -f {secret} {log}"),
        format!("grep x {log} -f {secret}"),
        format!("dmesg --file={secret}"),
        format!("date -f {secret}"),
        format!("du --files0-from={secret}"),
        format!("git diff /dev/null {secret}"),
        format!("ip -b {}", batch.display()),
        format!("systemctl --failed enable x.service --root={}", f.root.display()),
        "systemctl --failed reboot".to_owned(),
        "journalctl --rot".to_owned(),
        "mount -a".to_owned(),
        "ps auxwwe".to_owned(),
        "kubectl get secret db -o yaml".to_owned(),
        "kubectl --context prod get pods".to_owned(),
        "docker stats --no-stream --no-stream=false".to_owned(),
        "docker logs --details web".to_owned(),
        "df /dev/watchdog".to_owned(),
        "vmstat 1".to_owned(),
        format!("tail -f {log}"),
        "nginx".to_owned(),
        "FOO=1 uptime".to_owned(),
        "ｕｐｔｉｍｅ".to_owned(),
    ];
    for command in refused {
        let pending =
            mcp::call_ok(&session, "mttrly_execute_command", json!({ "server_id": server_id, "command": command }))
                .await;
        assert_eq!(pending["status"], "pending_approval", "{command}: {pending}");
        assert_eq!(pending["requires_approval"], true, "{command}: {pending}");
        assert!(!pending.to_string().contains("TOPSECRET"), "{command}: {pending}");
        let id = pending["action_id"].as_str().expect("id").to_owned();
        let rejected =
            tokio::task::block_in_place(|| central.cli_json(&["actions", "reject", &id, "--reason", "test"]));
        assert_eq!(rejected["status"], "rejected", "{command}: {rejected}");
        assert_eq!(local_verdict(&command)["class"], "needs_approval", "{command}");
    }
    let leftovers: Vec<String> = std::fs::read_dir(&f.root)
        .expect("root")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("m-"))
        .collect();
    assert!(leftovers.is_empty(), "an unapproved command wrote {leftovers:?}");
    assert!(forms.lock().expect("lock").is_empty(), "no form is ever shown");
    session.cancel().await.expect("close");
}
