//! `mttrly_compare_source_to_dist` end to end: a real central, a real agent with its owner's
//! policy, real trees in a temp dir, and an rmcp client on central's `/mcp`. A stale build is
//! named with both timestamps; roots outside the allowlist are refused; a 100,000-file tree stops
//! at each cap with `partial: true` and an answer that stays small.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mttrly_tests::mcp;
use mttrly_tests::{TestAgent, TestCentral};
use serde_json::{Value, json};

/// Files in the big tree (100 directories of 1,000 one-byte files).
const BIG: usize = 100_000;

const TOOL: &str = "mttrly_compare_source_to_dist";

struct Setup {
    root: PathBuf,
    central: TestCentral,
    assistant: String,
    server_id: String,
    _agent: TestAgent,
    _dir: tempfile::TempDir,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn set_mtime(path: &Path, seconds: u64) {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(seconds);
    std::fs::File::options().write(true).open(path).expect("open").set_modified(time).expect("mtime");
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let app = root.join("srv/app");
    write(&app.join("src/index.ts"), "export const version = 2;\n");
    write(&app.join("src/lib/util.ts"), "export const x = 1;\n");
    write(&app.join("src/.git/HEAD"), "ref: refs/heads/main\n");
    write(&app.join("dist/index.ts"), "export const version = 1;\n");
    write(&app.join("dist/lib/util.ts"), "export const x = 1;\n");
    write(&app.join("dist/stale.js"), "old\n");
    for (file, at) in [("src/index.ts", 2_000_000_000), ("src/lib/util.ts", 1_000), ("dist/index.ts", 1_900_000_000)] {
        set_mtime(&app.join(file), at);
    }
    set_mtime(&app.join("dist/lib/util.ts"), 1_000);
    set_mtime(&app.join("dist/stale.js"), 1_000);
    write(&root.join("secret/shadow"), "root:$6$secret\n");
    std::os::unix::fs::symlink(root.join("secret"), root.join("srv/escape")).expect("symlink");
    // The big tree: one-byte files, made with plain writes (a few seconds).
    let big = root.join("srv/big/src");
    for d in 0..BIG / 1000 {
        let sub = big.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..1000 {
            std::fs::write(sub.join(format!("f{f:04}")), b"x").expect("file");
        }
    }
    std::fs::create_dir_all(root.join("srv/big/dist")).expect("mkdir");
    let policy = root.join("policy.toml");
    std::fs::write(&policy, format!("file_roots = [\"{}/srv/**\"]\n", root.display())).expect("policy");
    let central = TestCentral::start(dir.path());
    let (server_id, agent) = central.online_server("web-1", "staging", &root.join("agent-state"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    Setup { root, central, assistant, server_id, _agent: agent, _dir: dir }
}

impl Setup {
    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    fn args(&self, source: &str, dist: &str, extra: &Value) -> Value {
        let mut args =
            json!({ "server_id": self.server_id, "source_dir": self.path(source), "dist_dir": self.path(dist) });
        if let (Some(map), Some(more)) = (args.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        args
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_build_is_named_and_a_huge_tree_stops_at_its_caps() {
    let s = tokio::task::spawn_blocking(setup).await.expect("setup");
    let (session, _forms) = mcp::connect(&s.central.mcp_url, &s.assistant, None).await;

    // The app: one edited file newer than every output, one identical, one stale output, .git
    // ignored by default.
    let r = mcp::call_ok(&session, TOOL, s.args("srv/app/src", "srv/app/dist", &json!({}))).await;
    assert_eq!(r["server_id"], s.server_id.as_str(), "{r}");
    assert_eq!(r["verdict"], "stale_build", "{r}");
    assert_eq!(r["partial"], false, "{r}");
    assert_eq!(r["counts"]["identical"], 1, "{r}");
    assert_eq!(r["counts"]["modified"], 1, "{r}");
    assert_eq!(r["counts"]["only_in_dist"], 1, "{r}");
    assert_eq!(r["counts"]["ignored"], 1, "{r}");
    assert_eq!(r["newest_source"]["path"], "index.ts", "{r}");
    assert_eq!(r["newest_source"]["mtime"], "2033-05-18T03:33:20Z", "{r}");
    assert_eq!(r["newest_dist"]["mtime"], "2030-03-17T17:46:40Z", "{r}");
    let modified = &r["entries"][0];
    assert_eq!((modified["path"].as_str(), modified["status"].as_str()), (Some("index.ts"), Some("modified")), "{r}");
    assert_eq!(modified["flags"], ".5?T", "{r}");
    assert_eq!(modified["source"]["sha256"].as_str().map(str::len), Some(64), "{r}");
    assert_eq!(r["entries"][1]["status"], "only_in_dist", "{r}");

    // Roots outside the allowlist, directly or through a symlink, are refused with no content.
    for source in [s.path("secret"), s.path("srv/escape"), s.path("srv/app/src/../../../secret")] {
        let args = json!({ "server_id": s.server_id, "source_dir": source, "dist_dir": s.path("srv/app/dist") });
        let err = mcp::call_err(&session, TOOL, args).await;
        assert_eq!(err["code"], "POLICY_DENIED", "{source}: {err}");
        assert!(!err.to_string().contains("$6$"), "{err}");
    }

    // 100,000 files against an empty output: stopped at max_files, the listing bounded.
    let started = Instant::now();
    let r = mcp::call_ok(&session, TOOL, s.args("srv/big/src", "srv/big/dist", &json!({ "max_files": 30_000 }))).await;
    assert_eq!((r["partial"].as_bool(), r["stopped_by"].as_str()), (Some(true), Some("max_files")), "{r}");
    assert_eq!((r["examined"].as_u64(), r["verdict"].as_str()), (Some(30_000), Some("incomplete")), "{r}");
    assert_eq!(r["entries"].as_array().map(Vec::len), Some(100), "the default listing cap");
    assert_eq!(r["entries_omitted"].as_u64(), Some(30_000 - 100), "{}", r["counts"]);
    assert!(r.to_string().len() < 64 * 1024, "the answer stays small: {} bytes", r.to_string().len());
    eprintln!("max_files stop after 30,000 paths: {:?}", started.elapsed());

    // The tree against itself: the byte budget stops it (two bytes per file).
    let r =
        mcp::call_ok(&session, TOOL, s.args("srv/big/src", "srv/big/src", &json!({ "max_bytes_hashed": 2_001 }))).await;
    assert_eq!((r["partial"].as_bool(), r["stopped_by"].as_str()), (Some(true), Some("max_bytes")), "{r}");
    assert_eq!((r["bytes_hashed"].as_u64(), r["counts"]["identical"].as_u64()), (Some(2_000), Some(1_000)), "{r}");

    // Everything asked, a short deadline: the walk stops at its deadline and still answers.
    let started = Instant::now();
    let r = mcp::call_ok(
        &session,
        TOOL,
        s.args("srv/big/src", "srv/big/src", &json!({ "max_files": 200_000, "deadline_ms": 150 })),
    )
    .await;
    assert_eq!((r["partial"].as_bool(), r["stopped_by"].as_str()), (Some(true), Some("deadline")), "{r}");
    assert_eq!(r["limits"]["max_files"], 100_000, "the owner's default [compare] cap applies: {r}");
    assert!(r["examined"].as_u64().is_some_and(|n| n > 0 && n < 100_000), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Within every cap the same walk completes: a 1,000-file subtree against itself is up to date.
    let r =
        mcp::call_ok(&session, TOOL, s.args("srv/big/src/d000", "srv/big/src/d000", &json!({ "deadline_ms": 60_000 })))
            .await;
    assert_eq!((r["verdict"].as_str(), r["counts"]["identical"].as_u64()), (Some("up_to_date"), Some(1000)), "{r}");

    // Bad input is refused before the agent is asked.
    let err =
        mcp::call_err(&session, TOOL, s.args("srv/app/src", "srv/app/dist", &json!({ "max_files": 200_001 }))).await;
    assert_eq!(err["code"], "VALIDATION_ERROR", "{err}");
    let _ = session.cancel().await;
    tokio::task::spawn_blocking(move || drop(s)).await.expect("teardown");
}

/// The simulated agent answers through the same row and tally; an older agent that does not
/// announce `files.compare` is refused by central naming its version, before anything is sent.
#[test]
fn the_simulated_agent_answers_and_an_older_agent_is_refused_by_name() {
    use mttrly_core::capability::{CapabilityId, CapabilitySet};
    use mttrly_tests::sim::{SimAgent, SimHost};

    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let assistant = central.assistant_token("claude");
    let start = |name: &str, version: &str, offered: CapabilitySet| {
        let added = central.cli_json(&["servers", "add", name, "--env", "staging"]);
        let token = added["install_token"].as_str().expect("install_token");
        let host = SimHost::default();
        for (path, text) in [("/srv/app/src/a.js", "1"), ("/srv/app/src/b.js", "2"), ("/srv/app/dist/a.js", "1")] {
            host.files.lock().expect("files").insert(path.to_owned(), text.to_owned());
        }
        let sim = SimAgent::start(&central.grpc_url, token, version, offered, host);
        mttrly_tests::wait_for("the simulated agent online", Duration::from_secs(15), || {
            (central.cli_json(&["servers", "status", &sim.server_id])["server"]["status"] == "online").then_some(())
        });
        sim
    };
    let args = |server: &str| json!({ "server_id": server, "source_dir": "/srv/app/src", "dist_dir": "/srv/app/dist" });

    let current = start("web-sim", "1.0.0-sim", CapabilitySet::all());
    let r = central.call_tool(&assistant, TOOL, &args(&current.server_id));
    assert_eq!((r["counts"]["identical"].as_u64(), r["counts"]["only_in_source"].as_u64()), (Some(1), Some(1)), "{r}");
    assert_eq!((r["verdict"].as_str(), r["entries"][0]["path"].as_str()), (Some("differs"), Some("b.js")), "{r}");

    let older: CapabilitySet = CapabilityId::ALL.iter().copied().filter(|c| *c != CapabilityId::FilesCompare).collect();
    let old = start("old-sim", "0.9.0-sim", older);
    let err = central.call_tool(&assistant, TOOL, &args(&old.server_id));
    assert_eq!(err["code"], "CONTRACT_VERSION_UNSUPPORTED", "{err}");
    let message = err["message"].as_str().expect("message");
    assert!(message.contains("0.9.0-sim") && message.contains("files.compare"), "{err}");
}
