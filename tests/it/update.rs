//! Issue 16, signed self-update, end to end: a real central, real `mttrly-cli releases` keys and
//! publishes, and a real agent installed in a temporary root (`versions/<v>/mttrly-agent`,
//! `versions/current`) running under a supervisor loop that restarts `current` whenever the
//! agent exits, as systemd's `Restart=always` does.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mttrly_tests::update_host::{BASE, Host, action_id};
use mttrly_tests::{binary, wait_for};
use serde_json::json;

/// The good path: the workspace agent published as 99.0.0 is verified, staged, started, connects,
/// passes its self-test and becomes `current`; the result says from → to; the update action is in
/// the shared executed-actions ledger once and never runs again after the swap.
#[test]
fn a_signed_release_is_installed_and_the_ledger_survives_the_swap() {
    let host = Host::start();
    let published = host.publish(&host.agent_copy(1), "99.0.0", "1h");
    assert_eq!(published["version"], "99.0.0");
    let listed = host.central.cli_json(&["releases", "list"]);
    assert_eq!(listed["releases"][0]["version"], "99.0.0");

    let submission = host.request(json!({}));
    assert_eq!(submission["status"], "pending_approval", "{submission}");
    let id = action_id(&submission);
    let pending = host.action(&id);
    let description = pending["description"].as_str().unwrap_or_default().to_owned();
    assert!(description.contains(&format!("from {BASE} to 99.0.0")), "{description}");
    assert!(description.contains(published["sha256"].as_str().expect("sha")), "{description}");
    assert!(description.contains("manifest expires"), "{description}");

    let started = Instant::now();
    let approved = host.central.approve(&id);
    let took = started.elapsed();
    let action = host.action(&id);
    assert_eq!(action["status"], "succeeded", "{approved}\n{action}\n{}", host.log());
    let data = &action["result"]["data"];
    assert_eq!(data["from_version"], BASE, "{action}");
    assert_eq!(data["to_version"], "99.0.0", "{action}");
    assert_eq!(host.current(), "99.0.0");
    host.wait_version("99.0.0");
    println!("update: approval to the new version connected and committed in {took:?} (agent: {} ms)", data["took_ms"]);
    assert!(!host.versions().join("update.json").exists());

    // At most once across the swap: the ledger holds the action once, and after another restart
    // of the new version (it reconnects, reporting its executed ids) nothing runs again.
    let ledger = std::fs::read_to_string(host.state_dir().join("executed-actions")).expect("ledger");
    assert_eq!(ledger.lines().filter(|l| *l == id).count(), 1, "{ledger}");
    let pid = host.supervisor.pid();
    let _ = nix_kill(pid);
    wait_for("the agent restarted", Duration::from_secs(20), || (host.supervisor.pid() != pid).then_some(()));
    host.wait_version("99.0.0");
    std::thread::sleep(Duration::from_secs(1));
    let ledger = std::fs::read_to_string(host.state_dir().join("executed-actions")).expect("ledger");
    assert_eq!(ledger.lines().filter(|l| *l == id).count(), 1, "{ledger}");
    assert_eq!(host.action(&id)["status"], "succeeded");
    assert_eq!(host.current(), "99.0.0");

    // The identity is proved at every start (by a child process of the same binary): a manifest
    // that no longer verifies makes the same binary report its compiled version, and says why.
    let manifest = host.versions().join("99.0.0").join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("99.0.0"), "{text}");
    std::fs::write(&manifest, text.replace("99.0.0", "99.0.7")).expect("tamper");
    let pid = host.supervisor.pid();
    let _ = nix_kill(pid);
    wait_for("the agent restarted", Duration::from_secs(20), || (host.supervisor.pid() != pid).then_some(()));
    host.wait_version(BASE);
    let log = host.log();
    assert!(log.contains("the installed release does not prove its identity"), "{log}");
    assert!(log.contains("does not verify"), "{log}");
}

fn nix_kill(pid: u32) -> bool {
    Command::new("kill").arg("-9").arg(pid.to_string()).status().is_ok_and(|s| s.success())
}

/// A flipped byte in the binary central serves, a replayed older manifest (a downgrade nobody
/// allowed), an expired manifest: each refused with its reason in the audit log; `current` and
/// the running version unchanged.
#[test]
fn tampered_old_and_expired_releases_are_refused_and_audited() {
    let host = Host::start();

    // A flipped byte on central's disk: the agent's hash check refuses it before staging. (The
    // refused releases need not run, so they are small files: nothing of them is ever executed.)
    let published = host.publish(&host.blob(2), "50.0.0", "1h");
    let blob = host.central.data_dir.join("releases").join(published["sha256"].as_str().expect("sha"));
    let mut bytes = std::fs::read(&blob).expect("stored binary");
    bytes[1000] ^= 0x01;
    std::fs::write(&blob, bytes).expect("flip a byte");
    let id = action_id(&host.request(json!({ "target_version": "50.0.0" })));
    host.central.approve(&id);
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}");
    assert_eq!(action["result"]["error"]["code"], "POLICY_DENIED", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "hash_mismatch", "{action}");
    assert!(!host.versions().join("50.0.0").exists(), "nothing is left staged");
    assert_eq!(host.current(), BASE);

    // An older release: refused before anyone is asked (and audited), unless explicitly allowed.
    host.publish(&host.blob(3), "0.0.1", "1h");
    let refused = host.request(json!({ "target_version": "0.0.1" }));
    assert_eq!(refused["code"], "POLICY_DENIED", "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("downgrade"), "{refused}");

    // A manifest that expires between the request and the approval: the agent refuses it.
    host.publish(&host.blob(4), "60.0.0", "5s");
    let id = action_id(&host.request(json!({ "target_version": "60.0.0" })));
    std::thread::sleep(Duration::from_secs(6));
    host.central.approve(&id);
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "manifest_expired", "{action}");

    let reasons: Vec<(String, String)> = host
        .refusals()
        .iter()
        .map(|e| {
            (
                e["parameters"]["stage"].as_str().unwrap_or_default().to_owned(),
                e["parameters"]["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for want in [("agent", "hash_mismatch"), ("central", "downgrade"), ("agent", "manifest_expired")] {
        assert!(reasons.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {reasons:?}");
    }
    assert_eq!(host.current(), BASE);
    host.wait_version(BASE);
    assert_eq!(host.central.cli_json(&["audit", "verify"])["ok"], true);
}

/// A release that cannot run (a shell script that exits at once): it is staged and started, dies
/// before it connects, the supervisor starts `current` (the old version), which rolls the update
/// back by itself well within the 30 s deadline and marks the version skipped; asking for it
/// again is refused.
#[test]
fn a_failing_release_rolls_back_by_itself_and_is_skipped() {
    let host = Host::start();
    let script = host.dir.path().join("broken.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'broken release' >&2\nexit 3\n").expect("script");
    host.publish(&script, "70.0.0", "1h");
    let id = action_id(&host.request(json!({ "target_version": "70.0.0" })));
    let started = Instant::now();
    host.central.approve(&id);
    let took = started.elapsed();
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}\n{}", host.log());
    assert_eq!(action["result"]["data"]["state"], "rolled_back", "{action}");
    assert_eq!(action["result"]["error"]["details"]["reason"], "exited_before_commit", "{action}");
    assert!(took < Duration::from_secs(30), "rolled back within the deadline ({took:?})");
    assert_eq!(host.current(), BASE);
    let skipped = std::fs::read_to_string(host.versions().join("skipped.json")).expect("skipped list");
    assert!(skipped.contains("70.0.0"), "{skipped}");
    host.wait_version(BASE);

    let again = action_id(&host.request(json!({ "target_version": "70.0.0" })));
    host.central.approve(&again);
    let action = host.action(&again);
    assert_eq!(action["result"]["error"]["details"]["reason"], "skipped_version", "{action}");
}

/// `kill -9` of the agent after it staged the release and before the new version committed:
/// `current` still names the old, complete version, which the supervisor starts; it rolls the
/// update back and the server is online again.
#[test]
fn kill_9_mid_update_leaves_a_runnable_agent() {
    let host = Host::start();
    host.publish(&host.agent_copy(5), "80.0.0", "1h");
    let id = action_id(&host.request(json!({ "target_version": "80.0.0" })));
    let marker = host.versions().join("update.json");
    let approving = {
        let grpc = host.central.grpc_url.clone();
        let token = host.central.admin_token.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            Command::new(binary("mttrly-cli"))
                .args(["--central", &grpc, "--token", &token, "--output", "json", "actions", "approve", &id, "--yes"])
                .output()
                .expect("approve runs")
        })
    };
    wait_for("the release staged", Duration::from_secs(60), || marker.exists().then_some(()));
    let pid = host.supervisor.pid();
    assert!(nix_kill(pid), "kill -9 {pid}");
    let _ = approving.join();
    wait_for("the action settled", Duration::from_secs(100), || {
        let action = host.action(&id);
        (action["status"] != "running" && action["status"] != "approved").then_some(action)
    });
    let action = host.action(&id);
    assert_eq!(action["status"], "failed", "{action}\n{}", host.log());
    assert_eq!(action["result"]["data"]["state"], "rolled_back", "{action}");
    assert_eq!(host.current(), BASE);
    assert!(host.versions().join(BASE).join("mttrly-agent").exists());
    host.wait_version(BASE);
    assert!(host.supervisor.starts.load(Ordering::SeqCst) >= 2);
    assert!(!marker.exists());
}
