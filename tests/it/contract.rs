//! The central ↔ agent contract end to end, with the simulated agent: an agent answers what its
//! hello announced, through the typed table, and central refuses the rest at once, naming the
//! agent's version (nothing is sent down the stream for it).

use mttrly_core::capability::{CapabilityId, CapabilitySet};
use mttrly_tests::TestCentral;
use mttrly_tests::sim::{SimAgent, SimHost};
use serde_json::json;

#[test]
fn an_older_agent_answers_what_it_announced_and_central_names_its_version_for_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let added = central.cli_json(&["servers", "add", "web-sim", "--env", "staging"]);
    let token = added["install_token"].as_str().expect("install_token");
    let host = SimHost::default();
    host.files.lock().expect("files").insert(
        "/var/log/app.log".to_owned(),
        "boot ok\nERROR upstream failed: Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345\n".to_owned(),
    );
    let offered: CapabilitySet =
        [CapabilityId::HostSample, CapabilityId::FileRead, CapabilityId::FileSearch].into_iter().collect();
    let sim = SimAgent::start(&central.grpc_url, token, "0.9.0-sim", offered, host);
    mttrly_tests::wait_for("the simulated agent online", std::time::Duration::from_secs(15), || {
        (central.cli_json(&["servers", "status", &sim.server_id])["server"]["status"] == "online").then_some(())
    });
    let assistant = central.assistant_token("claude");

    // Announced: answered by the simulated host through the typed rows, redacted on the way.
    let read = central.call_tool(
        &assistant,
        "mttrly_read_file",
        &json!({ "server_id": sim.server_id, "target": { "type": "file", "path": "/var/log/app.log" }, "lines": 10 }),
    );
    assert_eq!(read["server_id"], sim.server_id.as_str(), "{read}");
    let content = read["content"].as_str().expect("content");
    assert!(content.starts_with("boot ok\nERROR upstream failed"), "{read}");
    assert!(!content.contains("abcdefghijklmnopqrstuvwxyz012345"), "a bearer token leaked: {read}");
    let found =
        central.call_tool(&assistant, "mttrly_search_files", &json!({ "server_id": sim.server_id, "query": "ERROR" }));
    assert_eq!(found["matches"][0]["path"], "/var/log/app.log", "{found}");

    // Not announced: refused by central with the agent's version, before anything is sent.
    let diff = central.call_tool(
        &assistant,
        "mttrly_diff_file",
        &json!({ "server_id": sim.server_id, "left_path": "/var/log/app.log", "right_path": "/var/log/app.log" }),
    );
    assert_eq!(diff["code"], "CONTRACT_VERSION_UNSUPPORTED", "{diff}");
    let message = diff["message"].as_str().expect("message");
    assert!(message.contains("0.9.0-sim") && message.contains(CapabilityId::FileDiffRun.as_str()), "{diff}");
    assert!(sim.host.actions.lock().expect("actions").is_empty());
}

/// The Rust sources under `dir`, recursively.
fn rust_sources(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The table is the only place a capability is named: central and the agent refer to its rows,
/// and the agent builds no parameters or answers as untyped JSON (`json!`), only the row types.
#[test]
fn no_capability_name_is_spelled_outside_the_table_and_the_agent_path_builds_no_json() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in ["mttrly-central/src", "mttrly-agent/src", "mttrly-mcp/src", "mttrly-cli/src"] {
        for file in rust_sources(&root.join(krate)) {
            let text = std::fs::read_to_string(&file).expect("source");
            for id in CapabilityId::ALL {
                if text.contains(&format!("\"{}\"", id.as_str())) {
                    found.push(format!("{}: \"{id}\"", file.display()));
                }
            }
            // The agent's CLI prints its own JSON (main.rs); everything else answers in rows.
            if krate == "mttrly-agent/src" && !file.ends_with("main.rs") && text.contains("json!") {
                found.push(format!("{}: json!", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "written outside mttrly-core/src/capability.rs: {found:#?}");
}
