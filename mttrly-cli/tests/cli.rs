//! The real `mttrly-cli` binary, run as a child process.

use std::process::{Command, Output};

use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mttrly-cli"))
        .args(args)
        .env_remove("MTTRLY_CENTRAL")
        .env_remove("MTTRLY_TOKEN")
        .env_remove("MTTRLY_CA_CERT")
        .output()
        .expect("mttrly-cli runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// The seed's tool tables, transcribed: (id, kind, plan of the seed's "Plan" column).
const SEED_TOOLS: &[(&str, &str, &str)] = &[
    ("mttrly_get_capabilities", "read", "watchdog"),
    ("mttrly_list_servers", "read", "watchdog"),
    ("mttrly_get_server_status", "read", "watchdog"),
    ("mttrly_get_alerts", "read", "watchdog"),
    ("mttrly_quick_triage", "read", "watchdog"),
    ("mttrly_run_diagnostic", "read", "deployment_bro"),
    ("mttrly_list_playbooks", "read", "watchdog"),
    ("mttrly_get_service_reality", "read", "deployment_bro"),
    ("mttrly_refresh_reality", "read", "deployment_bro"),
    ("mttrly_get_server_timeline", "read", "deployment_bro"),
    ("mttrly_run_deploy_verifier", "read", "deployment_bro"),
    ("mttrly_read_file", "read", "deployment_bro"),
    ("mttrly_read_privileged_file", "read", "deployment_bro"),
    ("mttrly_search_files", "read", "deployment_bro"),
    ("mttrly_diff_file", "read", "deployment_bro"),
    ("mttrly_compare_source_to_dist", "read", "deployment_bro"),
    ("mttrly_get_install_health", "read", "deployment_bro"),
    ("mttrly_search_knowledge", "read", "deployment_bro"),
    ("mttrly_get_morning_brief", "read", "deployment_bro"),
    ("mttrly_get_investigation_bypass", "read", "deployment_bro"),
    ("mttrly_acknowledge_proactive_event", "read", "deployment_bro"),
    ("mttrly_run_playbook", "execute", "deployment_bro"),
    ("mttrly_execute_command", "execute", "deployment_bro"),
    ("mttrly_get_pending_actions", "execute", "deployment_bro"),
    ("mttrly_get_action_result", "execute", "deployment_bro"),
    ("mttrly_approve_action", "execute", "deployment_bro"),
    ("mttrly_cancel_action", "execute", "deployment_bro"),
    ("mttrly_get_audit_log", "execute", "deployment_bro"),
    ("mttrly_write_file", "execute", "deployment_bro"),
    ("mttrly_cleanup_file", "execute", "deployment_bro"),
    ("mttrly_execute_script", "execute", "deployment_bro"),
    ("mttrly_bootstrap_recover", "execute", "deployment_bro"),
    ("mttrly_repair_install", "execute", "deployment_bro"),
    ("mttrly_regenerate_install_token", "execute", "watchdog"),
    ("mttrly_decommission_server", "execute", "watchdog"),
    ("mttrly_update_agent", "execute", "deployment_bro"),
    ("mttrly_start_investigation", "execute", "deployment_bro"),
    ("mttrly_generate_retrospective", "execute", "deployment_bro"),
    ("mttrly_acquire_investigation_bypass", "execute", "deployment_bro"),
    ("mttrly_revoke_investigation_bypass", "execute", "deployment_bro"),
];

/// The war room's tools (issue 17), beyond the seed's catalog.
const WAR_ROOM_TOOLS: &[(&str, &str, &str)] = &[
    ("mttrly_publish_notification", "execute", "deployment_bro"),
    ("mttrly_list_channels", "read", "deployment_bro"),
    ("mttrly_create_channel", "execute", "deployment_bro"),
    ("mttrly_get_thread", "read", "deployment_bro"),
    ("mttrly_get_notifications", "read", "deployment_bro"),
    ("mttrly_subscribe_channel", "execute", "deployment_bro"),
    ("mttrly_unsubscribe_channel", "execute", "deployment_bro"),
    ("mttrly_get_incident_summary", "read", "deployment_bro"),
    ("mttrly_get_incident_stats", "read", "deployment_bro"),
];

#[test]
fn tools_list_json_is_exactly_the_seed_and_the_war_room() {
    let out = cli(&["tools", "list", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    let mut got: Vec<(String, String, String)> = json["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().expect("string field").to_owned();
            (field("id"), field("kind"), field("min_plan"))
        })
        .collect();
    let mut want: Vec<(String, String, String)> = SEED_TOOLS
        .iter()
        .chain(WAR_ROOM_TOOLS)
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn tools_list_table() {
    let out = cli(&["tools", "list"]);
    assert!(out.status.success());
    insta::assert_snapshot!("tools_list_table", stdout(&out));
}

#[test]
fn tools_list_filters() {
    let out = cli(&["--output", "json", "tools", "list", "--plan", "watchdog", "--kind", "execute"]);
    let json: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let ids: Vec<&str> = json["tools"].as_array().expect("array").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["mttrly_regenerate_install_token", "mttrly_decommission_server"]);

    let out = cli(&["tools", "list", "--plan", "platinum"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown plan `platinum`"), "{}", stderr(&out));
}

#[test]
fn execute_command_schema_is_a_documented_object() {
    let out = cli(&["tools", "schema", "mttrly_execute_command"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let schema: Value = serde_json::from_str(&stdout(&out)).expect("json schema");
    assert_eq!(schema["type"], "object");
    let props = schema["properties"].as_object().expect("properties");
    assert!(!props.is_empty());
    for (name, prop) in props {
        assert!(prop["description"].as_str().is_some_and(|d| !d.is_empty()), "{name} undocumented");
    }
    insta::assert_json_snapshot!("execute_command_schema", schema);

    let out = cli(&["--output", "json", "tools", "schema", "mttrly_execute_command", "--result"]);
    let result: Value = serde_json::from_str(&stdout(&out)).expect("json schema");
    assert_eq!(result["type"], "object");
    assert!(result["properties"]["action_id"].is_object());
}

#[test]
fn unknown_tool_id_is_a_clear_error_with_non_zero_exit() {
    let out = cli(&["tools", "schema", "mttrly_execute_comand"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    insta::assert_snapshot!("unknown_tool_table", stderr(&out));

    let out = cli(&["--output", "json", "tools", "schema", "rm -rf /"]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_str(&stderr(&out)).expect("error body on stderr");
    assert_eq!(body["code"], "NOT_FOUND");
    assert_eq!(body["details"]["tool_id"], "rm -rf /");
    assert!(body["suggested_action"].is_string());
}

#[test]
fn help_texts() {
    for args in [&["--help"][..], &["tools", "--help"], &["tools", "list", "--help"], &["tools", "schema", "--help"]] {
        let out = cli(args);
        assert!(out.status.success());
        insta::assert_snapshot!(format!("help_{}", args.join("_").replace("--", "")), stdout(&out));
    }
}

#[test]
fn policy_classify_prints_class_reason_and_argv() {
    let out = cli(&["--output", "json", "policy", "classify", "journalctl -u nginx -n 50"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["class"], "read_only");
    assert_eq!(v["argv"], serde_json::json!(["journalctl", "-u", "nginx", "-n", "50"]));
    assert!(v["reason"].is_string());

    let out = cli(&["--output", "json", "policy", "classify", "rm${IFS}-rf${IFS}/"]);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["class"], "needs_approval");
    assert_eq!(v["argv"], Value::Null);
    insta::assert_snapshot!("policy_classify_table", stdout(&cli(&["policy", "classify", "systemctl restart nginx"])));
}

#[test]
fn policy_redact_filters_stdin_and_explains() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mttrly-cli"))
        .args(["policy", "redact", "--explain"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"ok line\nDB_PASSWORD=hunter2hunter2\nkey AKIAIOSFODNN7EXAMPLE\n")
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success());
    insta::assert_snapshot!("policy_redact_stdout", String::from_utf8_lossy(&out.stdout));
    let explain = String::from_utf8_lossy(&out.stderr);
    assert!(explain.contains("aws_access_key") && explain.contains("secret_assignment"), "{explain}");
}

#[test]
fn policy_check_path_resolves_like_the_agent_and_exits_by_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(root.join("logs")).expect("mkdir");
    std::fs::create_dir_all(root.join("secret")).expect("mkdir");
    std::fs::write(root.join("logs/app.log"), "x\n").expect("write");
    std::fs::write(root.join("secret/key"), "k\n").expect("write");
    std::os::unix::fs::symlink(root.join("secret/key"), root.join("logs/key.log")).expect("symlink");
    let policy = root.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "file_roots = [\"{0}/logs/*.log\"]\nprivileged_files_enabled = true\nprivileged_files = [\"{0}/secret/*\"]\n",
            root.display()
        ),
    )
    .expect("policy");
    let check = |path: &str, extra: &[&str]| {
        let mut args = vec!["--output", "json", "policy", "check-path", path, "--policy", policy.to_str().expect("p")];
        args.extend_from_slice(extra);
        let out = cli(&args);
        let v: Value = serde_json::from_str(&stdout(&out)).expect("json verdict");
        (out.status.code(), v)
    };
    let (code, v) = check(&format!("{}/logs/app.log", root.display()), &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["rule"], format!("{}/logs/*.log", root.display()));
    let (code, v) = check(&format!("{}/logs/key.log", root.display()), &[]);
    assert_eq!(code, Some(1), "a symlink out of the allowlist is denied: {v}");
    assert_eq!(v["code"], "POLICY_DENIED");
    assert!(v["reason"].as_str().is_some_and(|r| r.contains("resolves to")), "{v}");
    let (code, _) = check(&format!("{}/logs/../secret/key", root.display()), &[]);
    assert_eq!(code, Some(1));
    let (code, v) = check(&format!("{}/secret/key", root.display()), &["--privileged"]);
    assert_eq!(code, Some(0), "{v}");
    let (code, _) = check("/proc/self/environ", &[]);
    assert_eq!(code, Some(1));

    // A broken policy file is a clear error, not a verdict.
    std::fs::write(&policy, "file_rootz = []\n").expect("policy");
    let out = cli(&["policy", "check-path", "/var/log/x", "--policy", policy.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("file_rootz"), "{}", stderr(&out));

    // Rules that parse but cannot be compiled together allow nothing on the agent; the check says
    // why instead of a bare denial.
    std::fs::write(&policy, format!("file_roots = [\"/tmp/{}\", \"/tmp/**\"]\n", "?".repeat(300_000))).expect("policy");
    let out = cli(&["policy", "check-path", "/tmp/x", "--policy", policy.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("file_roots rules cannot be compiled"), "{}", stderr(&out));
}
