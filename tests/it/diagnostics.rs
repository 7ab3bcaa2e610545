//! Diagnostics and service reality end to end, on this machine's real agent: structured findings
//! from read-only probes, the per-server cooldowns, the cached snapshot.

use mttrly_tests::TestCentral;
use serde_json::json;

#[test]
fn diagnostics_run_probes_and_cool_down_and_reality_is_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let (server_id, _agent) = central.online_server("web-1", "staging", &dir.path().join("a"), None);
    let assistant = central.assistant_token("claude-code");
    let call = |tool: &str, args: serde_json::Value| central.call_tool(&assistant, tool, &args);

    let report = call(
        "mttrly_run_diagnostic",
        json!({ "server_id": server_id, "problem": "the site returns 502 and the disk may be full", "unit": "nginx.service" }),
    );
    let probes = report["probes"].as_array().expect("probes");
    for p in ["disk", "memory", "cpu", "logs", "nginx", "systemd"] {
        assert!(probes.iter().any(|x| x == p), "{p} probe: {report}");
    }
    assert!(report["findings"].is_array() && report["summary"].is_string(), "{report}");
    for f in report["findings"].as_array().expect("findings") {
        assert!(["info", "warning", "critical"].contains(&f["severity"].as_str().unwrap_or("")), "{f}");
        assert!(f["suggestion"].is_string() && f["evidence"].is_string());
    }

    // The 30 s cooldown, with the wait left.
    let again = call("mttrly_run_diagnostic", json!({ "server_id": server_id, "problem": "again" }));
    assert_eq!(again["code"], "DIAGNOSTIC_COOLDOWN", "{again}");
    let left = again["details"]["retry_after_seconds"].as_u64().expect("seconds");
    assert!((1..=30).contains(&left), "{again}");
    // A bad unit name never reaches the host.
    let bad = call("mttrly_run_diagnostic", json!({ "server_id": server_id, "problem": "x", "unit": "--help" }));
    assert_eq!(bad["code"], "VALIDATION_ERROR", "{bad}");

    // Service reality: live the first time, then cached; a refresh right away is refused.
    let live = call("mttrly_get_service_reality", json!({ "server_id": server_id }));
    assert_eq!(live["origin"], "live", "{live}");
    assert!(live["listening_ports"].is_array() && live["services"].is_array() && live["runtimes"].is_array());
    let cached = call("mttrly_get_service_reality", json!({ "server_id": server_id }));
    assert_eq!(cached["origin"], "cached", "{cached}");
    assert_eq!(cached["captured_at"], live["captured_at"]);
    let refused = call("mttrly_refresh_reality", json!({ "server_id": server_id }));
    assert_eq!(refused["code"], "DIAGNOSTIC_COOLDOWN", "{refused}");
}
