//! Playbooks end to end: a real agent with the owner's playbook directory and allowlist; read-only
//! playbooks run at once, others wait for a human; prechecks protect; bad parameters never run.

use mttrly_tests::TestCentral;
use serde_json::{Value, json};

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn list_run_approve_and_refuse_playbooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let books = root.join("playbooks");
    let work = root.join("work");
    std::fs::create_dir_all(&books).expect("mkdir");
    std::fs::create_dir_all(&work).expect("mkdir");
    let head = |id: &str, approval: bool| {
        format!(
            "id = \"{id}\"\nname = \"{id}\"\ndescription = \"test playbook\"\ncategory = \"system\"\n\
             requires_approval = {approval}\nrequires = [\"touch\", \"test\", \"uname\"]\nblast_radius = \"a file in a temp dir\"\ntimeout_seconds = 20\n"
        )
    };
    write(
        &books.join("touch-marker.toml"),
        &format!(
            "{}[[parameters]]\nname = \"name\"\ndescription = \"file name\"\nkind = \"string\"\nrequired = true\npattern = '^[a-z]+$'\n\
             [[prechecks]]\nargv = [\"test\", \"-d\", \"{w}\"]\n[[steps]]\nargv = [\"touch\", \"{w}/{{name}}\"]\n[verify]\nargv = [\"test\", \"-f\", \"{w}/{{name}}\"]\n",
            head("touch-marker", true),
            w = work.display()
        ),
    );
    write(
        &books.join("kernel-name.toml"),
        &format!("{}[[steps]]\nargv = [\"uname\", \"-s\"]\n", head("kernel-name", false)),
    );
    write(
        &books.join("guarded.toml"),
        &format!(
            "{}[[prechecks]]\nargv = [\"test\", \"-d\", \"{w}/missing\"]\n[[steps]]\nargv = [\"touch\", \"{w}/guarded\"]\n",
            head("guarded", true),
            w = work.display()
        ),
    );
    let policy = root.join("policy.toml");
    write(
        &policy,
        &format!(
            "playbooks_dir = \"{}\"\nallowed_playbooks = [\"touch-marker\", \"kernel-name\", \"guarded\"]\n",
            books.display()
        ),
    );

    let central = TestCentral::start(&root);
    let (server_id, _agent) = central.online_server("web-1", "staging", &root.join("agent"), Some(&policy));
    let assistant = central.assistant_token("claude-code");
    let call = |tool: &str, args: &Value| central.call_tool(&assistant, tool, args);
    let ids = |list: &Value| -> Vec<String> {
        list["playbooks"]
            .as_array()
            .expect("playbooks")
            .iter()
            .map(|p| p["playbook_id"].as_str().unwrap_or("").to_owned())
            .collect()
    };

    // The catalog without a server: the built-ins.
    let catalog = call("mttrly_list_playbooks", &json!({}));
    assert!(ids(&catalog).len() >= 12, "{catalog}");
    let web = call("mttrly_list_playbooks", &json!({ "category": "web" }));
    assert!(ids(&web).iter().all(|i| i.contains("nginx")), "{web}");
    // On the server: only what its owner allows and it can run.
    let here = ids(&call("mttrly_list_playbooks", &json!({ "server_id": server_id })));
    assert_eq!(here, vec!["guarded", "kernel-name", "touch-marker"], "{here:?}");

    // Read-only: runs at once.
    let ran = call("mttrly_run_playbook", &json!({ "server_id": server_id, "playbook_id": "kernel-name" }));
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert!(ran["result"]["output"].as_str().is_some_and(|o| o.contains("Linux")), "{ran}");

    // A change: pending, showing the exact commands; runs once a human approves.
    let pending = call(
        "mttrly_run_playbook",
        &json!({ "server_id": server_id, "playbook_id": "touch-marker", "parameters": { "name": "hello" } }),
    );
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let desc = pending["description"].as_str().expect("description");
    assert!(desc.contains(&format!("run: touch {}/hello", work.display())), "{desc}");
    assert!(!work.join("hello").exists());
    let id = pending["action_id"].as_str().expect("id");
    let done = central.cli_json(&["actions", "approve", id, "--yes"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(work.join("hello").exists());

    // A failing precheck changes nothing.
    let guarded = call("mttrly_run_playbook", &json!({ "server_id": server_id, "playbook_id": "guarded" }));
    let id = guarded["action_id"].as_str().expect("id");
    let failed = central.approve(id);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["result"]["error"]["message"].as_str().is_some_and(|m| m.contains("nothing was changed")),
        "{failed}"
    );
    assert!(!work.join("guarded").exists());

    // Refusals, each with the seed's code, and nothing created.
    let bad = call(
        "mttrly_run_playbook",
        &json!({ "server_id": server_id, "playbook_id": "touch-marker", "parameters": { "name": "x; rm -rf /" } }),
    );
    assert_eq!(bad["code"], "VALIDATION_ERROR", "{bad}");
    assert_eq!(bad["details"]["field"], "parameters.name", "{bad}");
    let missing = call("mttrly_run_playbook", &json!({ "server_id": server_id, "playbook_id": "no-such-book" }));
    assert_eq!(missing["code"], "PLAYBOOK_NOT_FOUND", "{missing}");
    let not_allowed = call("mttrly_run_playbook", &json!({ "server_id": server_id, "playbook_id": "disk-usage" }));
    assert_eq!(not_allowed["code"], "PLAYBOOK_NOT_AVAILABLE", "{not_allowed}");
    let pending = central.cli_json(&["actions", "list", "--status", "pending_approval"]);
    assert_eq!(pending["actions"].as_array().map(Vec::len), Some(0), "{pending}");
}
