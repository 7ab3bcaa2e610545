//! A real central, real agents and the real CLI: enrollment, live metrics, liveness, restarts.

use std::time::Duration;

use mttrly_tests::{TestAgent, TestCentral, wait_for};
use serde_json::Value;

fn status(central: &TestCentral, server_id: &str) -> Value {
    central.cli_json(&["servers", "status", server_id])
}

#[test]
fn enroll_live_metrics_central_restart_and_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut central = TestCentral::start(dir.path());

    let added = central.cli_json(&["servers", "add", "web-1", "--env", "staging"]);
    let server_id = added["server_id"].as_str().expect("server_id").to_owned();
    let token = added["install_token"].as_str().expect("install_token").to_owned();
    let command = added["agent_command"].as_str().expect("agent_command");
    assert!(command.contains(&token) && command.contains(&central.grpc_url), "{command}");

    let mut agent = TestAgent::start(&central.grpc_url, &token, &dir.path().join("agent"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            std::fs::metadata(agent.state_dir.join("credentials.json")).expect("credentials").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Live metrics arrive through heartbeats.
    let live = wait_for("live metrics", Duration::from_secs(15), || {
        let s = status(&central, &server_id);
        (s["server"]["status"] == "online" && s["metrics"].is_object()).then_some(s)
    });
    assert!(live["metrics"]["memory_total_bytes"].as_u64().expect("memory") > 0);
    assert!(!live["metrics"]["filesystems"].as_array().expect("filesystems").is_empty());
    assert!(!live["host"]["hostname"].as_str().expect("hostname").is_empty());
    // The test central judges no host metric (the machine's own disk would decide): none open.
    assert_eq!(live["active_alerts"], 0, "{live}");

    // The install token was single-use.
    let reuse = TestAgent::enroll(&central.grpc_url, &token, &dir.path().join("agent2"));
    assert!(!reuse.status.success());
    let body: Value = serde_json::from_slice(&reuse.stderr).expect("JSON error");
    assert_eq!(body["code"], "AUTH_FAILED");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("already used")), "{body}");

    // Central restarts; the agent comes back by itself.
    central.restart();
    wait_for("the agent to reconnect", Duration::from_secs(20), || {
        let s = status(&central, &server_id);
        let fresh = s["server"]["last_seen_at"].as_str().is_some();
        (s["server"]["status"] == "online" && fresh).then_some(())
    });
    assert!(agent.is_running());

    // The agent dies; within the window the server is offline and an alert opens.
    agent.kill();
    wait_for("the server to go offline", Duration::from_secs(8), || {
        (status(&central, &server_id)["server"]["status"] == "offline").then_some(())
    });
    let alerts = wait_for("an agent_offline alert", Duration::from_secs(8), || {
        let alerts = central.cli_json(&["alerts", "list", "--server", &server_id, "--status", "open"]);
        let open = alerts["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["rule"] == "agent_offline"));
        open.then_some(alerts)
    });
    assert_eq!(alerts["alerts"][0]["severity"], "critical");

    // Offline servers can be removed; the registry forgets them.
    let removed = central.cli_json(&["servers", "remove", &server_id]);
    assert_eq!(removed["removed"], true);
    let list = central.cli_json(&["servers", "list"]);
    assert_eq!(list["servers"].as_array().map(Vec::len), Some(0));

    assert!(central.stop().success());
}

#[test]
fn an_online_server_cannot_be_removed_and_cli_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let added = central.cli_json(&["servers", "add", "db-1", "--env", "production"]);
    let server_id = added["server_id"].as_str().expect("server_id").to_owned();
    let token = added["install_token"].as_str().expect("install_token").to_owned();
    let _agent = TestAgent::start(&central.grpc_url, &token, &dir.path().join("agent"));
    wait_for("online", Duration::from_secs(15), || {
        (status(&central, &server_id)["server"]["status"] == "online").then_some(())
    });

    let out = central.cli(&["--output", "json", "servers", "remove", &server_id]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stderr).expect("JSON error body");
    assert_eq!(body["code"], "SERVER_ONLINE");

    let out = central.cli_as("mttrly_h_not-a-real-token", &["--output", "json", "servers", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stderr).expect("JSON error body");
    assert_eq!(body["code"], "AUTH_FAILED");

    let out = central.cli(&["servers", "status", "srv_nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VALIDATION_ERROR"));

    let out = std::process::Command::new(mttrly_tests::binary("mttrly-cli"))
        .args(["--central", "http://127.0.0.1:9", "--token", "x", "--output", "json", "servers", "list"])
        .output()
        .expect("cli runs");
    let body: Value = serde_json::from_slice(&out.stderr).expect("JSON error body");
    assert_eq!(body["code"], "CONNECTION_ERROR");

    let health: Value = serde_json::from_str(&central.http_get("/healthz")).expect("healthz JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["agents_connected"], 1);
}
