//! The standalone `mttrly-mcp` binary in front of a real central: stdio for local clients, and
//! Streamable HTTP on loopback, with approvals relayed only when the human confirmed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use mttrly_tests::mcp::{self, Human};
use mttrly_tests::{TestAgent, TestCentral, binary};
use serde_json::{Value, json};

fn setup(dir: &std::path::Path) -> (TestCentral, String, String, TestAgent) {
    let central = TestCentral::start(dir);
    let (server_id, agent) = central.online_server("web-1", "staging", &dir.join("agent"), None);
    let assistant = central.assistant_token("laptop-claude");
    (central, assistant, server_id, agent)
}

#[test]
fn stdio_serves_the_tools_and_calls_are_the_assistants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (central, assistant, server_id, _agent) = setup(dir.path());
    let mut child = Command::new(binary("mttrly-mcp"))
        .args(["--central", &central.grpc_url, "--token", &assistant, "--read-only"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mttrly-mcp starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut send = |v: Value| writeln!(stdin, "{v}").expect("write");
    let mut recv = || {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line:?}"))
    };
    send(json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "stdio-test", "version": "1" } } }));
    assert_eq!(recv()["result"]["serverInfo"]["name"], "mttrly");
    send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }));
    let tools = recv();
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(
        names.contains(&"mttrly_list_servers") && !names.contains(&"mttrly_execute_command"),
        "--read-only: {names:?}"
    );
    send(
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": { "name": "mttrly_list_servers", "arguments": {} } }),
    );
    let listed = recv();
    assert_eq!(listed["result"]["structuredContent"]["servers"][0]["server_id"], server_id.as_str(), "{listed}");
    send(
        json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": { "name": "mttrly_get_server_status", "arguments": { "server_id": "nope" } } }),
    );
    let bad = recv();
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert_eq!(bad["result"]["structuredContent"]["code"], "VALIDATION_ERROR", "{bad}");
    drop(stdin);
    let status = child.wait().expect("exits when stdin closes");
    assert!(status.success(), "{status}");

    // Central audited the relayed calls as the assistant, through MCP.
    let audit = central.cli_json(&["audit", "list"]);
    let rows = audit["entries"].as_array().expect("entries");
    assert!(
        rows.iter().any(|r| r["source"] == "mcp"
            && r["subject"] == "mttrly_list_servers"
            && r["actor"]["type"] == "assistant"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The standalone server answers decisions exactly like central's `/mcp`: never a decision, with
/// an assistant's token or the human's own, whatever the client answers.
async fn http_mode_never_decides_whatever_the_token_or_the_client_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (central, assistant, server_id, _agent) = tokio::task::block_in_place(|| setup(dir.path()));
    let start = |token: &str| {
        let mut child = Command::new(binary("mttrly-mcp"))
            .args(["--central", &central.grpc_url, "--token", token, "--http", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mttrly-mcp starts");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("read");
        let url = line.trim().rsplit(' ').next().expect("url").to_owned();
        // Keep draining stderr so the server's logs never hit a closed pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{line}");
        (child, url)
    };
    let marker = dir.path().join("standalone-approved");
    let command = format!("touch {}", marker.display());

    // With the assistant's token: refused, with the command a human runs.
    let (mut child, url) = start(&assistant);
    let (session, forms) = mcp::connect(&url, "unused", Some(Human::Confirms)).await;
    let pending =
        mcp::call_ok(&session, "mttrly_execute_command", json!({ "server_id": server_id, "command": command })).await;
    let id = pending["action_id"].as_str().expect("id").to_owned();
    for decision in ["approve", "reject"] {
        let refused =
            mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": decision })).await;
        assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
        assert!(refused["message"].as_str().is_some_and(|m| m.contains(&format!("mttrly-cli actions approve {id}"))));
    }
    assert!(forms.lock().expect("lock").is_empty(), "no form is shown");
    assert!(!marker.exists());
    let _ = child.kill();
    let _ = child.wait();

    // With the human's own token and a client that accepts everything: still no decision.
    let (mut child, url) = start(&central.admin_token);
    let (session, forms) = mcp::connect(&url, "unused", Some(Human::Confirms)).await;
    let refused =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["details"]["allowed_channels"], json!(["cli", "dashboard"]), "{refused}");
    let refused = mcp::call_err(&session, "mttrly_cancel_action", json!({ "action_id": id })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "another principal's request is not withdrawn: {refused}");
    assert!(forms.lock().expect("lock").is_empty(), "no form is shown");
    let still = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
    assert_eq!(still["status"], "pending_approval", "{still}");
    assert!(!marker.exists());

    // A client with URL-mode elicitation is sent to the action's page on central and waits; the
    // client's "accept" decides nothing; the human decides (here with the CLI) and the waiting call
    // reports the outcome, relayed through central's API.
    let (session, forms, pages) = mcp::connect_with_pages(&url, "unused", Some(Human::OpensPages)).await;
    let call = tokio::spawn({
        let id = id.clone();
        async move {
            let result =
                mcp::call(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
            (session, result)
        }
    });
    let page = format!("{}/actions/{id}", central.http_url.trim_end_matches('/'));
    for _ in 0..300 {
        if !pages.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pages.lock().expect("lock").clone(), vec![page], "sent to the action's page on central");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!call.is_finished() && !marker.exists(), "the client's accept decided nothing");
    let approved = tokio::task::block_in_place(|| central.cli_json(&["actions", "approve", &id, "--yes"]));
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert_eq!(approved["approvals"][0]["channel"], "cli", "{approved}");
    assert!(marker.exists());
    let (_session, reported) =
        tokio::time::timeout(std::time::Duration::from_secs(30), call).await.expect("in time").expect("joined");
    assert_ne!(reported.is_error, Some(true), "{reported:?}");
    let view = reported.structured_content.expect("the action");
    assert_eq!(view["status"], "succeeded", "the waiting call reports the outcome: {view}");
    assert!(forms.lock().expect("lock").is_empty(), "never a form");
    // A browser page on another origin is refused.
    let evil = mttrly_tests::http_request(
        url.trim_end_matches("/mcp"),
        "POST",
        "/mcp",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        "{}",
    );
    assert_eq!(evil.status, 403, "{evil:?}");
    let _ = child.kill();
    let _ = child.wait();
}
