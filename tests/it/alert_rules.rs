//! `[alerts.RULE]` in central's config: a deployment's thresholds are the ones heartbeats are
//! judged by, a disabled rule's open alert resolves at start, and a bad override stops `serve`.

use std::time::Duration;

use mttrly_core::capability::{CapabilityId, CapabilitySet};
use mttrly_tests::TestCentral;
use mttrly_tests::sim::{SimAgent, SimHost};
use serde_json::Value;

fn disk_alerts(central: &TestCentral, server: &str) -> Vec<Value> {
    let listed = central.cli_json(&["alerts", "list", "--server", server]);
    listed["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["rule"].as_str().is_some_and(|r| r.starts_with("disk_usage")))
        .cloned()
        .collect()
}

#[test]
fn configured_thresholds_judge_heartbeats_and_a_disabled_rule_resolves_its_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut central = TestCentral::start(dir.path());
    central.write_config(
        "[alerts.disk_usage]\nthreshold = 90\nclear_below = 85\n[alerts.disk_usage_critical]\nenabled = false\n",
    );
    central.restart();
    let added = central.cli_json(&["servers", "add", "disk-sim", "--env", "staging"]);
    let token = added["install_token"].as_str().expect("install_token");
    let host = SimHost::default();
    *host.disk_used_tenths.lock().expect("disk") = Some(880);
    let offered: CapabilitySet = [CapabilityId::HostSample].into_iter().collect();
    let sim = SimAgent::start(&central.grpc_url, token, "0.9.0-sim", offered, host);
    mttrly_tests::wait_for("a heartbeat with the disk at 88 %", Duration::from_secs(15), || {
        let status = central.cli_json(&["servers", "status", &sim.server_id]);
        (status["metrics"]["filesystems"][0]["used_percent"].as_f64() == Some(88.0)).then_some(())
    });
    // The built-in 85 % would have opened an alert by now; the configured 90 % does not.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(disk_alerts(&central, &sim.server_id), Vec::<Value>::new());

    *sim.host.disk_used_tenths.lock().expect("disk") = Some(960);
    let open = mttrly_tests::wait_for("the disk alert at 96 %", Duration::from_secs(15), || {
        let alerts = disk_alerts(&central, &sim.server_id);
        (!alerts.is_empty()).then_some(alerts)
    });
    assert_eq!(open.len(), 1, "the critical rule is off: {open:?}");
    assert_eq!((open[0]["rule"].as_str(), open[0]["status"].as_str()), (Some("disk_usage"), Some("open")));
    drop(sim);

    // Turned off: the alert it opened does not stay open forever.
    central.write_config("[alerts.disk_usage]\nenabled = false\n");
    central.restart();
    let after = mttrly_tests::wait_for("the alert resolved", Duration::from_secs(15), || {
        let alerts = disk_alerts(&central, open[0]["server_id"].as_str().expect("server_id"));
        (alerts.iter().all(|a| a["status"] == "resolved")).then_some(alerts)
    });
    assert_eq!(after.len(), 1, "{after:?}");
}

#[test]
fn a_bad_override_stops_serve_naming_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut central = TestCentral::start(dir.path());
    central.stop();
    for (config, needle) in [
        ("[alerts.disk]\nthreshold = 90\n", "[alerts.disk]: no such alert rule"),
        ("[alerts.memory]\nthreshold = 150\n", "threshold must be above 0 and at most 100 (got 150)"),
        ("[alerts.memory]\nthreshhold = 90\n", "unknown field `threshhold`"),
    ] {
        central.write_config(config);
        let out = std::process::Command::new(mttrly_tests::binary("mttrly-central"))
            .args(["serve", "--data-dir"])
            .arg(&central.data_dir)
            .arg("--config")
            .arg(central.data_dir.with_file_name("central-test.toml"))
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .output()
            .expect("mttrly-central runs");
        assert!(!out.status.success(), "{config}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("VALIDATION_ERROR") && stderr.contains(needle), "{config}: {stderr}");
    }
}
