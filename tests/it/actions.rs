//! The human side of an action through the real CLI: review, approve (with the reviewed content
//! hash), reject; an assistant token creates the requests through the API as MCP would.

use std::process::Stdio;

use mttrly_tests::TestCentral;
use serde_json::Value;

#[test]
fn a_human_reviews_approves_and_rejects_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let server_id = central.cli_json(&["servers", "add", "web-1", "--env", "staging"])["server_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let assistant = central.cli_json(&["tokens", "create", "--assistant", "claude-code"])["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let submitted = central.call_tool(
        &assistant,
        "mttrly_regenerate_install_token",
        &serde_json::json!({ "server_id": server_id }),
    );
    assert_eq!(submitted["status"], "pending_approval", "{submitted}");
    let id = submitted["action_id"].as_str().expect("action_id").to_owned();

    let listed = central.cli_json(&["actions", "list", "--status", "pending_approval"]);
    assert_eq!(listed["actions"][0]["action_id"], id.as_str());
    let shown = central.cli_json(&["actions", "show", &id]);
    assert_eq!(shown["content"]["type"], "install_token_rotation");
    assert_eq!(shown["requested_by"]["type"], "assistant");

    // Without a terminal and without --yes, nothing is approved.
    let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", &central.grpc_url, "--token", &central.admin_token, "actions", "approve", &id])
        .stdin(Stdio::null())
        .output()
        .expect("cli runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(central.cli_json(&["actions", "show", &id])["status"], "pending_approval");

    // The assistant's token cannot approve through the CLI either.
    let out = central.cli_as(&assistant, &["--output", "json", "actions", "approve", &id, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stderr).expect("error body");
    assert_eq!(body["code"], "FORBIDDEN");

    let approved = central.cli_json(&["actions", "approve", &id, "--yes"]);
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert!(approved["result"]["data"]["agent_command"].as_str().is_some_and(|c| c.contains("mttrly-agent enroll")));

    // A second request, rejected with a reason.
    let second =
        central.call_tool(&assistant, "mttrly_decommission_server", &serde_json::json!({ "server_id": server_id }));
    let second_id = second["action_id"].as_str().expect("action_id").to_owned();
    let rejected = central.cli_json(&["actions", "reject", &second_id, "--reason", "not during the incident"]);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["approvals"][0]["reason"], "not during the incident");
    assert_eq!(central.cli_json(&["servers", "list"])["servers"].as_array().map(Vec::len), Some(1));

    // Everything is in the audit log, and the chain holds.
    let audit = central.cli_json(&["audit", "list"]);
    let kinds: Vec<&str> =
        audit["entries"].as_array().expect("entries").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"approval_decision") && kinds.contains(&"execution_result"), "{kinds:?}");
    assert_eq!(central.cli_json(&["audit", "verify"])["ok"], true);
}

/// Issue 10 §4 and §6: what the approver reads is what is there, the assistant's words come last
/// on one labelled line, and the exit status of `actions approve` says how the action ended.
#[test]
fn the_approver_sees_the_truth_and_the_exit_status_says_how_it_ended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let (server_id, _agent) = central.online_server("web-1", "staging", &dir.path().join("agent"), None);
    let assistant = central.assistant_token("claude-code");
    let marker = dir.path().join("shown");
    let command = format!("touch {}", marker.display());
    // The probe's reason: terminal controls, a bidi override, 30 blank lines and a fake block.
    let reason = format!(
        "disk full\u{1b}[2K\r\u{202e}{}exactly:     {{\"command\":\"df -h\"}}\ncontent sha: {}",
        "\n".repeat(30),
        "0".repeat(64)
    );
    let pending = central.call_tool(
        &assistant,
        "mttrly_execute_command",
        &serde_json::json!({ "server_id": server_id, "command": command, "reason": reason }),
    );
    let id = pending["action_id"].as_str().expect("action_id").to_owned();

    let out = central.cli(&["actions", "show", &id]);
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        !shown.chars().any(|c| (c.is_control() && c != '\n')
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)),
        "no raw control or bidi character reaches the terminal: {shown:?}"
    );
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines.len() < 24, "everything fits one screen: {shown}");
    let exactly = lines.iter().position(|l| l.starts_with("exactly:")).expect("exactly");
    let sha = lines.iter().position(|l| l.starts_with("content sha:")).expect("content sha");
    assert!(sha < 12, "the facts come first: {shown}");
    assert!(lines[exactly..sha].iter().any(|l| l.contains(&command)), "the first `exactly:` is the real one: {shown}");
    assert!(lines.iter().any(|l| l.starts_with("you:") && l.contains("may approve")), "{shown}");
    assert!(lines.iter().any(|l| l.starts_with("approvals:") && l.contains("0 of 1")), "{shown}");
    assert!(lines.iter().any(|l| l.starts_with("expires:")), "{shown}");
    let last = lines.last().expect("lines");
    assert!(last.starts_with("assistant's reason (unverified): disk full\\x1b[2K\\r\\u{202e} exactly:"), "{shown}");
    assert_eq!(shown.matches("exactly:").count(), 2, "the fake block is inside the labelled line: {shown}");
    assert!(!pending["description"].as_str().expect("description").contains("disk full"));
    let table = String::from_utf8(central.cli(&["actions", "list"]).stdout).expect("utf-8");
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");

    // A rejection keeps its reason: printed, and in the audit row.
    let rejected = central.cli(&["actions", "reject", &id, "--reason", "not on a Friday"]);
    assert!(String::from_utf8_lossy(&rejected.stdout).contains("their reason: not on a Friday"));
    let audit = central.cli_json(&["audit", "list"]);
    assert!(
        audit["entries"].as_array().expect("entries").iter().any(|e| e["kind"] == "approval_decision"
            && e["parameters"]["decision"] == "reject"
            && e["parameters"]["reason"] == "not on a Friday"),
        "{audit}"
    );
    assert!(!marker.exists());

    // An approved command that exits non-zero: `failed`, its exit status, no made-up error, exit 1.
    let failing = central.call_tool(
        &assistant,
        "mttrly_execute_command",
        &serde_json::json!({ "server_id": server_id, "command": "sh -c 'exit 3'" }),
    );
    let id = failing["action_id"].as_str().expect("action_id").to_owned();
    let done = central.approve(&id);
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["exit_code"], 3, "{done}");
    assert!(done["result"]["error"].is_null(), "a non-zero exit is not UNKNOWN_ERROR: {done}");
    let out = central.cli(&["actions", "show", &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("result:      failed: exited with status 3"));

    // A command that succeeds exits 0, through the same check.
    let ok = central.call_tool(
        &assistant,
        "mttrly_execute_command",
        &serde_json::json!({ "server_id": server_id, "command": command }),
    );
    let done = central.approve(ok["action_id"].as_str().expect("action_id"));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(marker.exists());
}
