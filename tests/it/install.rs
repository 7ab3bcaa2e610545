//! Issue 16: the agent's install, its health, repair and bootstrap recovery, end to end against a
//! real central and agent, with the install laid down under a throwaway root.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mttrly_tests::{TestCentral, binary};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Every path under `root` with its mode (`l` for links), relative to the root.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("l -> {}", std::fs::read_link(&path).expect("link").display()));
            } else {
                out.insert(rel, format!("{:o}", meta.permissions().mode() & 0o7777));
                if meta.is_dir() {
                    walk(root, &path, out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn agent(args: &[&str]) -> Output {
    Command::new(binary("mttrly-agent"))
        .args(args)
        .env_remove("MTTRLY_INSTALL_TOKEN")
        .output()
        .expect("mttrly-agent runs")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// Registers a server and returns its id and install token.
fn add_server(central: &TestCentral, name: &str) -> (String, String) {
    let added = central.cli_json(&["servers", "add", name, "--env", "staging"]);
    (added["server_id"].as_str().expect("id").to_owned(), added["install_token"].as_str().expect("token").to_owned())
}

fn install_into(central: &TestCentral, root: &Path, token: &str, extra: &[&str]) -> Output {
    let root = root.to_str().expect("utf-8 root");
    let mut args =
        vec!["--output", "json", "install", "--root", root, "--central", &central.grpc_url, "--token", token];
    args.extend_from_slice(extra);
    agent(&args)
}

#[test]
fn install_lays_down_every_file_with_its_mode_and_uninstall_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let central = TestCentral::start(tmp.path());
    let (server_id, token) = add_server(&central, "web-1");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("root");

    // Bad input is refused before anything is written: an invalid policy file.
    let bad_policy = tmp.path().join("bad.toml");
    std::fs::write(&bad_policy, "service_capabilities = [\"rm -rf\"]\n").expect("policy");
    let out = install_into(&central, &root, &token, &["--policy", bad_policy.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a capability name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree(&root).is_empty(), "a refused install wrote {:?}", tree(&root));
    // File rules that parse but cannot be compiled together (they would allow nothing).
    std::fs::write(&bad_policy, format!("file_roots = [\"/tmp/{}\", \"/tmp/**\"]\n", "?".repeat(300_000)))
        .expect("policy");
    let out = install_into(&central, &root, &token, &["--policy", bad_policy.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("file_roots rules cannot be compiled"), "{}", &stderr[..stderr.len().min(400)]);
    assert!(tree(&root).is_empty(), "a refused install wrote {:?}", tree(&root));
    // A wrong token: enrollment fails and what this run created is removed again.
    let out = install_into(&central, &root, "inst_wrong-token-0123456789", &[]);
    assert!(!out.status.success());
    assert!(tree(&root).is_empty(), "a failed enrollment left {:?}", tree(&root));

    let policy = tmp.path().join("policy.toml");
    std::fs::write(&policy, "service_capabilities = [\"CAP_NET_BIND_SERVICE\"]\n").expect("policy");
    let installed = json_of(&install_into(&central, &root, &token, &["--policy", policy.to_str().expect("utf-8")]));
    assert_eq!(installed["server_id"], server_id.as_str());
    assert_eq!(installed["enrolled"], true);
    let version = installed["version"].as_str().expect("version").to_owned();
    let binary_sha = sha256_file(&binary("mttrly-agent"));
    assert_eq!(installed["binary_sha256"], binary_sha.as_str());

    let files = tree(&root);
    let mode = |p: &str| files.get(Path::new(p)).cloned().unwrap_or_else(|| panic!("{p} missing in {files:#?}"));
    assert_eq!(mode("var/lib/mttrly-agent"), "700");
    assert_eq!(mode("var/lib/mttrly-agent/credentials.json"), "600");
    assert_eq!(mode(&format!("var/lib/mttrly-agent/versions/{version}/mttrly-agent")), "755");
    assert_eq!(mode("var/lib/mttrly-agent/versions/current"), format!("l -> {version}"));
    assert_eq!(mode("etc/mttrly-agent/install.json"), "644");
    assert_eq!(mode("etc/mttrly-agent/policy.toml"), "644");
    assert_eq!(mode("etc/systemd/system/mttrly-agent.service"), "644");
    assert_eq!(mode("etc/systemd/system/mttrly-agent-repair.path"), "644");
    assert_eq!(mode("etc/systemd/system/mttrly-agent-repair.service"), "644");
    assert_eq!(mode("usr/local/libexec/mttrly-agent/mttrly-agent"), "755");
    assert_eq!(sha256_file(&root.join(format!("var/lib/mttrly-agent/versions/{version}/mttrly-agent"))), binary_sha);
    assert_eq!(sha256_file(&root.join("usr/local/libexec/mttrly-agent/mttrly-agent")), binary_sha);
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/mttrly-agent.service")).expect("unit");
    assert!(unit.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE\n"), "{unit}");
    assert!(unit.contains("ProtectSystem=strict\n") && unit.contains("NoNewPrivileges=yes\n"), "{unit}");
    // The staged install's service user is whoever staged it (recorded in the receipt).
    let receipt: Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/mttrly-agent/install.json")).expect("receipt"))
            .expect("json");
    let me = std::fs::metadata(&root).expect("stat").uid();
    assert_eq!(receipt["uid"], me);
    assert_eq!(receipt["server_id"], server_id.as_str());
    assert_eq!(receipt["binary_sha256"], binary_sha.as_str());
    assert_eq!(receipt["capabilities"], serde_json::json!(["CAP_NET_BIND_SERVICE"]));
    let created: Vec<&str> = receipt["created"].as_array().expect("created").iter().filter_map(Value::as_str).collect();
    for p in
        ["/var/lib/mttrly-agent", "/etc/mttrly-agent/install.json", "/etc/systemd/system/mttrly-agent.service", "/etc"]
    {
        assert!(created.contains(&p), "{p} not listed in {created:?}");
    }
    let creds: Value =
        serde_json::from_slice(&std::fs::read(root.join("var/lib/mttrly-agent/credentials.json")).expect("creds"))
            .expect("json");
    assert_eq!(creds["server_id"], server_id.as_str());

    // Twice is harmless: the token is spent, credentials are kept, nothing changes but the time.
    let again = json_of(&install_into(&central, &root, &token, &[]));
    assert_eq!(again["enrolled"], false);
    assert_eq!(tree(&root), files);
    let receipt_again: Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/mttrly-agent/install.json")).expect("receipt"))
            .expect("json");
    assert_eq!(receipt_again["created"], receipt["created"]);
    // The policy the owner installed stays (a second run without --policy keeps it).
    assert_eq!(
        std::fs::read(root.join("etc/mttrly-agent/policy.toml")).expect("policy"),
        std::fs::read(&policy).expect("p")
    );

    // --keep-state keeps the state dir only.
    let kept =
        json_of(&agent(&["--output", "json", "uninstall", "--root", root.to_str().expect("utf-8"), "--keep-state"]));
    assert!(kept["kept"].as_array().expect("kept").iter().any(|p| p == "/var/lib/mttrly-agent"), "{kept}");
    assert!(root.join("var/lib/mttrly-agent/credentials.json").exists());
    assert!(!root.join("etc").exists(), "{:?}", tree(&root));
    // Reinstalling over a kept state dir reuses its credentials. That install did not create the
    // state dir (it was kept), so its uninstall leaves exactly it: the receipt lists what it made.
    assert_eq!(json_of(&install_into(&central, &root, &token, &[]))["enrolled"], false);
    json_of(&agent(&["--output", "json", "uninstall", "--root", root.to_str().expect("utf-8")]));
    let left = tree(&root);
    assert!(left.keys().all(|p| p.starts_with("var")), "uninstall left {left:#?}");
    assert!(left.contains_key(Path::new("var/lib/mttrly-agent/credentials.json")));
    std::fs::remove_dir_all(root.join("var")).expect("clean");
    // A fresh install on an empty root, then uninstall: nothing at all is left.
    let (_, token2) = add_server(&central, "web-2");
    json_of(&install_into(&central, &root, &token2, &[]));
    json_of(&agent(&["--output", "json", "uninstall", "--root", root.to_str().expect("utf-8")]));
    let left = tree(&root);
    assert!(left.is_empty(), "uninstall left {left:#?}");
    // Nothing installed: a clear refusal.
    let out = agent(&["uninstall", "--root", root.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was installed here"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn installing_on_the_host_needs_root() {
    // Run as an unprivileged user when the test runs as root; as itself otherwise.
    let mut command = if nix_is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(binary("mttrly-agent"));
        c
    } else {
        Command::new(binary("mttrly-agent"))
    };
    let out = command.args(["install", "--central", "http://127.0.0.1:1", "--token", "x"]).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(!Path::new("/etc/mttrly-agent/install.json").exists());
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The installed agent, run from `versions/current` as the unit would, against the temp root.
fn run_installed(root: &Path) -> std::process::Child {
    Command::new(root.join("var/lib/mttrly-agent/versions/current/mttrly-agent"))
        .arg("run")
        .arg("--state-dir")
        .arg(root.join("var/lib/mttrly-agent"))
        .arg("--policy")
        .arg(root.join("etc/mttrly-agent/policy.toml"))
        .arg("--install-root")
        .arg(root)
        .env("MTTRLY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the installed agent starts")
}

fn wait_online(central: &TestCentral, server_id: &str) {
    mttrly_tests::wait_for("the agent online", std::time::Duration::from_secs(20), || {
        (central.cli_json(&["servers", "status", server_id])["server"]["status"] == "online").then_some(())
    });
}

fn finding<'a>(health: &'a Value, code: &str) -> &'a Value {
    health["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {health:#}"))
}

fn plan_hash(health: &Value, strategy: &str) -> String {
    health["plans"].as_array().expect("plans").iter().find(|p| p["strategy"] == strategy).expect("plan")["plan_hash"]
        .as_str()
        .expect("hash")
        .to_owned()
}

/// Stands in for systemd's path unit: when the agent writes a repair request, runs the root
/// oneshot on the temp root.
fn oneshot_when_requested(root: PathBuf) -> std::thread::JoinHandle<Value> {
    std::thread::spawn(move || {
        let request = root.join("var/lib/mttrly-agent/repair-request.json");
        mttrly_tests::wait_for("a repair request", std::time::Duration::from_secs(30), || {
            request.exists().then_some(())
        });
        json_of(&agent(&["--output", "json", "repair", "--pending", "--root", root.to_str().expect("utf-8")]))
    })
}

#[test]
fn drift_is_found_through_mcp_and_repaired_only_by_the_approved_plan() {
    let tmp = tempfile::tempdir().expect("tmp");
    let central = TestCentral::start(tmp.path());
    let (server_id, token) = add_server(&central, "web-1");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let installed = json_of(&install_into(&central, &root, &token, &[]));
    let version = installed["version"].as_str().expect("version").to_owned();
    let mut child = run_installed(&root);
    wait_online(&central, &server_id);
    let assistant = central.assistant_token("claude");
    let health_of =
        || central.call_tool(&assistant, "mttrly_get_install_health", &serde_json::json!({ "server_id": server_id }));

    let healthy = health_of();
    assert_eq!(healthy["state"], "healthy", "{healthy:#}");
    assert_eq!(finding(&healthy, "connection")["status"], "ok");
    assert!(finding(&healthy, "clock_skew")["actual"].as_str().is_some_and(|s| s.ends_with(" ms")), "{healthy:#}");
    assert!(healthy["clock_skew_ms"].as_i64().is_some_and(|s| s.abs() < 5_000));
    // Nothing to repair: refused before anyone is asked.
    let nothing = central.call_tool(
        &assistant,
        "mttrly_repair_install",
        &serde_json::json!({ "server_id": server_id, "strategy": "converge" }),
    );
    assert!(nothing["message"].as_str().is_some_and(|m| m.contains("nothing to repair")), "{nothing}");
    let healthy_hash = plan_hash(&healthy, "converge");

    // Drift: the unit edited, the credentials opened up, the installed binary replaced.
    let unit = root.join("etc/systemd/system/mttrly-agent.service");
    let original = std::fs::read_to_string(&unit).expect("unit");
    let text = original.replace("NoNewPrivileges=yes\n", "NoNewPrivileges=no\n");
    std::fs::write(&unit, &text).expect("edit unit");
    std::fs::set_permissions(
        root.join("var/lib/mttrly-agent/credentials.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let binary = root.join(format!("var/lib/mttrly-agent/versions/{version}/mttrly-agent"));
    let swapped = binary.with_file_name("swapped");
    std::fs::write(&swapped, "#!/bin/sh\necho not the agent\n").expect("fake");
    std::fs::rename(&swapped, &binary).expect("replace the binary (the running one keeps its inode)");

    let drifted = health_of();
    assert_eq!(drifted["state"], "drifted", "{drifted:#}");
    for code in ["unit_file", "credentials_mode", "binary_sha256"] {
        let f = finding(&drifted, code);
        assert_eq!(f["status"], "drift", "{f}");
        assert_ne!(f["expected"], f["actual"]);
        assert!(f["repaired_by"].as_array().is_some_and(|s| s.contains(&Value::from("converge"))), "{f}");
    }
    assert_eq!(finding(&drifted, "credentials_mode")["actual"].as_str().map(|a| a.starts_with("0644")), Some(true));
    assert_eq!(finding(&drifted, "state_dir_mode")["status"], "ok");
    let drifted_hash = plan_hash(&drifted, "converge");
    assert_ne!(drifted_hash, healthy_hash, "drift changes the plan hash");

    // The plan read before the drift is refused at once, naming both hashes.
    let stale = central.call_tool(
        &assistant,
        "mttrly_repair_install",
        &serde_json::json!({ "server_id": server_id, "strategy": "converge", "plan_hash": healthy_hash }),
    );
    assert!(
        stale["message"].as_str().is_some_and(|m| m.contains("plan hash mismatch") && m.contains(&drifted_hash)),
        "{stale}"
    );

    // An issue repair of the unit alone (old name accepted), approved after someone else fixed
    // the unit by hand: the host's plan is no longer the approved one, so the agent refuses it.
    let only_unit = central.call_tool(
        &assistant,
        "mttrly_repair_install",
        &serde_json::json!({ "server_id": server_id, "strategy": "issue_driven", "finding_codes": ["unit_file"] }),
    );
    assert_eq!(only_unit["status"], "pending_approval", "{only_unit}");
    let only_unit_id = only_unit["action_id"].as_str().expect("id").to_owned();
    let shown = central.cli_json(&["actions", "show", &only_unit_id]);
    assert_eq!(shown["content"]["type"], "install_repair");
    assert_eq!(shown["content"]["changes"].as_array().map(Vec::len), Some(1), "{shown:#}");
    assert!(
        shown["description"]
            .as_str()
            .is_some_and(|d| d.contains("write_file /etc/systemd/system/mttrly-agent.service")),
        "{shown:#}"
    );
    std::fs::write(&unit, &original).expect("fixed by hand");
    let refused = central.approve(&only_unit_id);
    assert_eq!(refused["status"], "failed", "{refused:#}");
    assert!(refused.to_string().contains("plan hash mismatch"), "{refused:#}");
    assert!(!root.join("var/lib/mttrly-agent/repair-request.json").exists(), "nothing was handed to root");
    std::fs::write(&unit, &text).expect("drift again");

    // Converge with the current plan: approved, the root oneshot performs it, the result lists it.
    let now = health_of();
    let hash = plan_hash(&now, "converge");
    let submitted = central.call_tool(
        &assistant,
        "mttrly_repair_install",
        &serde_json::json!({ "server_id": server_id, "strategy": "converge", "plan_hash": hash }),
    );
    assert_eq!(submitted["status"], "pending_approval", "{submitted}");
    let id = submitted["action_id"].as_str().expect("id").to_owned();
    let oneshot = oneshot_when_requested(root.clone());
    let done = central.approve(&id);
    let performed = oneshot.join().expect("oneshot");
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let changed = performed["outcome"]["changed"].as_array().expect("changed");
    let kinds: Vec<&str> = changed.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(kinds, ["copy_binary", "write_file", "set_mode"], "{performed:#}");
    assert!(done.to_string().contains("copy_binary"), "the action's result says what changed: {done:#}");
    assert_eq!(sha256_file(&binary), installed["binary_sha256"].as_str().expect("sha"));
    assert_eq!(
        std::fs::metadata(root.join("var/lib/mttrly-agent/credentials.json")).expect("creds").permissions().mode()
            & 0o777,
        0o600
    );
    assert_eq!(health_of()["state"], "healthy");

    // The oneshot recomputes from the receipt: a request with any other hash changes nothing.
    std::fs::set_permissions(
        root.join("var/lib/mttrly-agent/credentials.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    std::fs::write(
        root.join("var/lib/mttrly-agent/repair-request.json"),
        serde_json::json!({ "action_id": "act_forged", "strategy": "converge", "finding_codes": [], "plan_hash": "0".repeat(64) }).to_string(),
    )
    .expect("forged request");
    let forged = json_of(&agent(&["--output", "json", "repair", "--pending", "--root", root.to_str().expect("utf-8")]));
    assert!(forged["error"].as_str().is_some_and(|e| e.contains("plan hash mismatch")), "{forged}");
    assert_eq!(
        std::fs::metadata(root.join("var/lib/mttrly-agent/credentials.json")).expect("creds").permissions().mode()
            & 0o777,
        0o640
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_install_script_is_served_and_checks_the_pinned_hash() {
    let tmp = tempfile::tempdir().expect("tmp");
    let central = TestCentral::start(tmp.path());
    let added = central.cli_json(&["servers", "add", "web-1", "--env", "staging"]);
    let line = added["install_command"].as_str().expect("install_command").to_owned();
    let token = added["install_token"].as_str().expect("token");
    // The existing contract holds; the one-liner is added.
    assert!(added["agent_command"].as_str().is_some_and(|c| c.contains("mttrly-agent enroll")));
    assert!(line.starts_with("curl -fsSL --proto '=http' "), "{line}");
    assert!(line.contains(&format!("MTTRLY_INSTALL_TOKEN='{token}' sh -s --")), "{line}");
    let url = line.split_whitespace().nth(4).expect("url").trim_matches('\'');
    assert!(!url.contains(token), "the token is never in a URL");
    let pins = line.split("--sha256 ").nth(1).and_then(|r| r.split_whitespace().next()).expect("pins").to_owned();
    let binary_sha = sha256_file(&binary("mttrly-agent"));
    assert!(pins.contains(&format!("={binary_sha}")), "{pins}");

    let script = central.http_get("/install.sh");
    let last = script.lines().rev().find(|l| !l.trim().is_empty()).expect("a last line");
    assert_eq!(last, "mttrly_install \"$@\"");
    // The script's download and check, against the real central.
    let run = |pins: &str, dir: &Path| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("curl -fsS {url} | sh -s -- --sha256 '{pins}' --download-only '{}'", dir.display()))
            .output()
            .expect("sh runs")
    };
    let dir = tmp.path().join("dl");
    let out = run(&pins, &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256_file(&dir.join("mttrly-agent")), binary_sha);
    let wrong = pins.replacen(&binary_sha, &"0".repeat(64), 1);
    let bad_dir = tmp.path().join("bad");
    let out = run(&wrong, &bad_dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SHA-256 mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!bad_dir.join("mttrly-agent").exists(), "a mismatched binary is not left behind");
    // A target central does not have, or one that tries to escape: 404.
    let raw = mttrly_tests::http_request(&central.http_url, "GET", "/dist/mttrly-agent/sparc-plan9", &[], "");
    assert_eq!(raw.status, 404);
    let raw = mttrly_tests::http_request(&central.http_url, "GET", "/dist/mttrly-agent/..%2Fetc", &[], "");
    assert_eq!(raw.status, 404);
}

#[test]
fn bootstrap_recovery_shows_the_token_once_to_the_approver_and_never_stores_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let central = TestCentral::start(tmp.path());
    let (server_id, _) = add_server(&central, "web-1");
    let assistant = central.assistant_token("claude");
    // An assistant never chooses a token.
    let refused = central.call_tool(
        &assistant,
        "mttrly_bootstrap_recover",
        &serde_json::json!({ "server_id": server_id, "install_token": "inst_chosen-by-the-assistant" }),
    );
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("install_token is not accepted")), "{refused}");
    let submitted =
        central.call_tool(&assistant, "mttrly_bootstrap_recover", &serde_json::json!({ "server_id": server_id }));
    assert_eq!(submitted["status"], "pending_approval", "{submitted}");
    assert!(!submitted.to_string().contains("mttrly_i_"), "{submitted}");
    let id = submitted["action_id"].as_str().expect("id").to_owned();
    let done = central.approve(&id);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    let line = done["result"]["data"]["install_command"].as_str().expect("the approver sees the one-liner").to_owned();
    let token =
        line.split("MTTRLY_INSTALL_TOKEN='").nth(1).and_then(|r| r.split('\'').next()).expect("token").to_owned();
    assert!(token.starts_with("mttrly_i_"), "{line}");
    assert!(line.contains("--sha256 ") && line.contains(&sha256_file(&binary("mttrly-agent"))), "{line}");

    // Shown once: not in the stored action, the assistant's view, the audit log or the database.
    let shown = central.cli_json(&["actions", "show", &id]);
    assert!(!shown.to_string().contains(&token), "{shown:#}");
    let seen = central.call_tool(&assistant, "mttrly_get_action_result", &serde_json::json!({ "action_id": id }));
    assert!(!seen.to_string().contains(&token), "{seen:#}");
    let audit = central.cli_json(&["audit", "list"]);
    assert!(!audit.to_string().contains(&token));
    for entry in std::fs::read_dir(&central.data_dir).expect("data dir").flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds the token",
                entry.path().display()
            );
        }
    }
    // The token works once, for the same server (its id and history are kept).
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let installed = json_of(&install_into(&central, &root, &token, &[]));
    assert_eq!(installed["server_id"], server_id.as_str());
}
