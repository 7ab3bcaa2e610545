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
