//! `mttrly-central quickstart`: one command, everything up, one JSON line with what to use.

use std::process::{Command, Stdio};
use std::time::Duration;

use mttrly_tests::{binary, http_get, terminate, wait_for};
use serde_json::Value;

#[test]
fn quickstart_prints_one_json_line_and_serves_a_live_local_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let start = || {
        let mut child = Command::new(binary("mttrly-central"))
            .args(["--output", "json", "quickstart", "--data-dir"])
            .arg(&data)
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env("MTTRLY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("quickstart starts");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
            .expect("read line");
        let info: Value = serde_json::from_str(&line).expect("one JSON line");
        (child, info)
    };

    let (mut child, info) = start();
    // The admin has no password or second factor yet: the run says where to set them.
    let setup = info["admin_setup_url"].as_str().expect("admin_setup_url on a fresh data dir");
    assert!(setup.starts_with(&format!("{}/invite/", info["http_url"].as_str().expect("http"))), "{setup}");
    for field in
        ["mcp_url", "grpc_url", "http_url", "dashboard_url", "admin_token", "assistant_token", "server_id", "data_dir"]
    {
        assert!(info[field].as_str().is_some_and(|v| !v.is_empty()), "missing {field}: {info}");
    }
    // The dashboard is central's own root; signed out, it leads to the sign-in page.
    let dashboard = info["dashboard_url"].as_str().expect("dashboard_url");
    assert_eq!(dashboard, format!("{}/", info["http_url"].as_str().expect("http")));
    let root = mttrly_tests::http_request(dashboard.trim_end_matches('/'), "GET", "/", &[], "");
    assert_eq!(root.status, 303, "{root:?}");
    let cli = |args: &[&str]| -> Value {
        let out = Command::new(binary("mttrly-cli"))
            .args(["--central", info["grpc_url"].as_str().expect("url")])
            .args(["--token", info["admin_token"].as_str().expect("token"), "--output", "json"])
            .args(args)
            .output()
            .expect("cli runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let servers = wait_for("the local agent online", Duration::from_secs(15), || {
        let list = cli(&["servers", "list"]);
        (list["servers"][0]["status"] == "online").then_some(list)
    });
    assert_eq!(servers["servers"].as_array().map(Vec::len), Some(1));
    assert_eq!(servers["servers"][0]["server_id"], info["server_id"]);
    let health: Value =
        serde_json::from_str(&http_get(info["http_url"].as_str().expect("http"), "/healthz")).expect("json");
    assert_eq!(health["agents_connected"], 1);
    // The printed MCP endpoint answers an MCP client holding the printed assistant token.
    let mcp_url = info["mcp_url"].as_str().expect("mcp_url");
    let http_url = info["http_url"].as_str().expect("http");
    assert_eq!(mcp_url, format!("{http_url}/mcp"));
    let bearer = format!("Bearer {}", info["assistant_token"].as_str().expect("assistant"));
    let init = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "qs", "version": "1" } }
    });
    let answered = mttrly_tests::http_request(
        http_url,
        "POST",
        "/mcp",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        &init.to_string(),
    );
    assert_eq!(answered.status, 200, "{answered:?}");
    assert!(answered.body.contains("\"serverInfo\""), "{answered:?}");
    assert!(terminate(&mut child).success(), "quickstart exits cleanly on SIGTERM");

    // A second run reuses the data dir: same tokens, same server, no duplicate registration.
    let (mut again, info2) = start();
    assert_eq!(info2["admin_token"], info["admin_token"]);
    assert_eq!(info2["server_id"], info["server_id"]);
    assert!(terminate(&mut again).success());
}
