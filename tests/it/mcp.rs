//! MCP end to end: an rmcp client over real Streamable HTTP against a real central and agent.
//! The assistant proposes, a human decides with the CLI (never through MCP, whatever the client
//! answers), the agent runs it once, and the audit log shows it. Also: the HTTP gate (401 challenge, 403 for an
//! untrusted Origin, Host checks) and the tool surface per token.

use mttrly_tests::mcp::{self, Human};
use mttrly_tests::{TestAgent, TestCentral, http_request};
use serde_json::{Value, json};

struct Setup {
    dir: tempfile::TempDir,
    central: TestCentral,
    assistant: String,
    server_id: String,
    _agent: TestAgent,
}

fn setup(env: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let (server_id, agent) = central.online_server("web-1", env, &dir.path().join("agent"), None);
    let assistant = central.assistant_token("claude-code");
    Setup { dir, central, assistant, server_id, _agent: agent }
}

fn token(central: &TestCentral, args: &[&str]) -> String {
    let mut all = vec!["tokens", "create"];
    all.extend_from_slice(args);
    central.cli_json(&all)["token"].as_str().expect("token").to_owned()
}

fn tool_names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_flow_the_assistant_proposes_and_a_human_approves_with_the_cli() {
    let s = setup("staging");
    // A client that accepts every form it is shown: nothing it answers may count.
    let (session, forms) = mcp::connect(&s.central.mcp_url, &s.assistant, Some(Human::Confirms)).await;

    let tools = session.list_all_tools().await.expect("tools/list");
    let names = tool_names(&tools);
    for expected in ["mttrly_get_capabilities", "mttrly_execute_command", "mttrly_approve_action"] {
        assert!(names.iter().any(|n| n == expected), "{expected} advertised: {names:?}");
    }
    // Only tools that work end to end are advertised: the list is a contract, kept as a snapshot.
    let unbuilt: Vec<&str> = mttrly_core::catalog::specs()
        .iter()
        .filter(|spec| !mttrly_central::tools::is_available(spec.id))
        .map(|spec| spec.id.as_str())
        .collect();
    assert!(!names.iter().any(|n| unbuilt.contains(&n.as_str())), "{unbuilt:?} advertised: {names:?}");
    insta::assert_json_snapshot!("mcp_advertised_tools", names);
    let exec = tools.iter().find(|t| t.name == "mttrly_execute_command").expect("exec");
    assert!(exec.output_schema.is_some() && exec.annotations.is_some());

    let caps = mcp::call_ok(&session, "mttrly_get_capabilities", json!({})).await;
    assert_eq!(caps["plan"], "deployment_crew");
    let servers = mcp::call_ok(&session, "mttrly_list_servers", json!({})).await;
    assert_eq!(servers["servers"][0]["server_id"], s.server_id.as_str());

    // A read-only command runs at once.
    let ran =
        mcp::call_ok(&session, "mttrly_execute_command", json!({ "server_id": s.server_id, "command": "uptime" }))
            .await;
    assert_eq!(ran["status"], "succeeded", "{ran}");

    // A change waits for a human; the assistant's reason is kept apart from central's description.
    let marker = s.dir.path().join("mcp-approved");
    let command = format!("touch {}", marker.display());
    let pending = mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": s.server_id, "command": command, "reason": "the marker proves it ran" }),
    )
    .await;
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert!(!pending["description"].as_str().expect("d").contains("the marker proves"), "{pending}");
    let id = pending["action_id"].as_str().expect("id").to_owned();
    assert!(!marker.exists());

    // The assistant asks to approve: no form, no decision, the exact command for the human.
    let refused =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    let message = refused["message"].as_str().expect("message");
    assert!(message.contains(&format!("`mttrly-cli actions approve {id}`")), "{refused}");
    assert!(message.contains(&format!("`mttrly-cli actions reject {id}`")), "{refused}");
    assert_eq!(refused["details"]["allowed_channels"], json!(["cli", "dashboard"]), "{refused}");
    assert!(!message.contains("telegram") && !message.contains("slack"), "only channels that exist: {refused}");
    assert!(forms.lock().expect("lock").is_empty(), "no form is ever shown");
    assert!(!marker.exists());

    // The human approves from a terminal.
    let approved = tokio::task::block_in_place(|| s.central.cli_json(&["actions", "approve", &id, "--yes"]));
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert!(marker.exists(), "the agent ran the approved command");
    assert_eq!(approved["approvals"][0]["channel"], "cli", "{approved}");
    assert_eq!(approved["reason"], "the marker proves it ran", "{approved}");

    let result = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["approvals_required"], 1, "{result}");
    let audit = mcp::call_ok(&session, "mttrly_get_audit_log", json!({ "server_id": s.server_id })).await;
    let entries = audit["entries"].as_array().expect("entries");
    let from_mcp = entries.iter().filter(|e| e["source"] == "mcp").count();
    assert!(from_mcp >= 4, "tool calls through MCP are audited with source mcp: {audit}");
    assert!(
        entries.iter().any(|e| e["actor"]["type"] == "assistant" && e["actor"]["client_name"] == "claude-code"),
        "{audit}"
    );
    assert!(
        !entries.iter().any(|e| e["kind"] == "approval_decision" && e["source"] == "mcp"),
        "no decision ever comes through mcp: {audit}"
    );

    // Approving again: nothing pending, said in plain words.
    let again =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(again["code"], "VALIDATION_ERROR", "{again}");
    assert!(again["message"].as_str().is_some_and(|m| m.contains("has already succeeded")), "{again}");
    assert!(forms.lock().expect("lock").is_empty());

    // Prompts and resources.
    let prompts = session.list_prompts(None).await.expect("prompts/list");
    assert_eq!(prompts.prompts[0].name, "incident-investigation");
    let resources = session.list_resources(None).await.expect("resources/list");
    let uris: Vec<String> = resources.resources.iter().map(|r| r.uri.clone()).collect();
    assert!(uris.contains(&"mttrly://playbooks".to_owned()), "{uris:?}");
    let catalog = session
        .read_resource(rmcp::model::ReadResourceRequestParams::new("mttrly://playbooks"))
        .await
        .expect("resources/read playbooks");
    assert!(serde_json::to_string(&catalog).expect("json").contains("restart-systemd-unit"));
    let uri = uris.iter().find(|u| u.contains(&s.server_id)).expect("the server's status resource").clone();
    let read = session.read_resource(rmcp::model::ReadResourceRequestParams::new(uri)).await.expect("resources/read");
    let text = serde_json::to_string(&read).expect("json");
    assert!(text.contains("web-1"), "{text}");
    session.cancel().await.expect("close");
}

/// The done-when of issue 10: a client that accepts every elicitation (or ticks nothing, or has no
/// elicitation at all), with an assistant token or the human's own token, gets no action decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_accepting_client_cannot_get_any_action_decided() {
    let s = setup("development");
    let marker = s.dir.path().join("never");
    let command = format!("touch {}", marker.display());
    let args = json!({ "server_id": s.server_id, "command": command });
    let human_token = token(&s.central, &["--human"]);

    for bearer in [s.assistant.as_str(), s.central.admin_token.as_str(), human_token.as_str()] {
        for human in [Some(Human::Confirms), Some(Human::AcceptsUnticked), Some(Human::Declines), None] {
            let (session, forms) = mcp::connect(&s.central.mcp_url, bearer, human).await;
            let (other, _) = mcp::connect(&s.central.mcp_url, bearer, human).await;
            let pending = mcp::call_ok(&session, "mttrly_execute_command", args.clone()).await;
            let id = pending["action_id"].as_str().expect("id").to_owned();
            for decision in ["approve", "reject"] {
                for who in [&session, &other] {
                    let refused = mcp::call_err(
                        who,
                        "mttrly_approve_action",
                        json!({ "action_id": id, "decision": decision, "reason": "yes, I am the human" }),
                    )
                    .await;
                    assert_eq!(refused["code"], "FORBIDDEN", "{human:?} {decision}: {refused}");
                    assert!(
                        refused["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(&format!("mttrly-cli actions approve {id}"))),
                        "{refused}"
                    );
                }
            }
            // Another session (even of the same token) cannot withdraw it: it is not its request.
            let refused = mcp::call_err(&other, "mttrly_cancel_action", json!({ "action_id": id })).await;
            assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
            let still = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
            assert_eq!(still["status"], "pending_approval", "{human:?}: {still}");
            assert!(still["approvals"].as_array().is_some_and(Vec::is_empty), "{still}");
            assert!(forms.lock().expect("lock").is_empty(), "no form is shown: {human:?}");

            // The session that asked may withdraw its own request, with no form: that never runs anything.
            let withdrawn =
                mcp::call_ok(&session, "mttrly_cancel_action", json!({ "action_id": id, "reason": "not needed" }))
                    .await;
            assert_eq!(withdrawn["status"], "cancelled", "{withdrawn}");
            assert!(withdrawn["approvals"].as_array().is_some_and(Vec::is_empty), "{withdrawn}");
            session.cancel().await.expect("close");
            other.cancel().await.expect("close");
        }
    }
    assert!(!marker.exists());

    // The withdrawal is the assistant's, in the audit log; no decision names a human.
    let audit = s.central.cli_json(&["audit", "list", "--server", &s.server_id]);
    let decisions: Vec<&Value> =
        audit["entries"].as_array().expect("entries").iter().filter(|e| e["kind"] == "approval_decision").collect();
    assert!(!decisions.is_empty(), "{audit}");
    for d in &decisions {
        assert_eq!(d["actor"]["type"], "assistant", "{d}");
        assert_eq!(d["parameters"]["decision"], "withdraw", "{d}");
    }

    // An argument the model could fill does not exist.
    let (session, _) = mcp::connect(&s.central.mcp_url, &s.assistant, Some(Human::Confirms)).await;
    let pending = mcp::call_ok(&session, "mttrly_execute_command", args.clone()).await;
    let id = pending["action_id"].as_str().expect("id").to_owned();
    let forged = mcp::call_err(
        &session,
        "mttrly_approve_action",
        json!({ "action_id": id, "decision": "approve", "confirm": true }),
    )
    .await;
    assert_eq!(forged["code"], "VALIDATION_ERROR", "{forged}");
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_through_mcp_before_anything_and_needs_another_human() {
    let s = setup("production");
    let (session, forms) = mcp::connect(&s.central.mcp_url, &s.assistant, Some(Human::Confirms)).await;
    let marker = s.dir.path().join("prod-approved");
    let command = format!("touch {}", marker.display());
    let pending =
        mcp::call_ok(&session, "mttrly_execute_command", json!({ "server_id": s.server_id, "command": command })).await;
    let id = pending["action_id"].as_str().expect("id").to_owned();
    let refused =
        mcp::call_err(&session, "mttrly_approve_action", json!({ "action_id": id, "decision": "approve" })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["details"]["four_eyes"], true, "{refused}");
    assert!(
        refused["message"].as_str().is_some_and(|m| m.contains("other than the one who requested it")),
        "a production approval needs a different human: {refused}"
    );
    assert!(forms.lock().expect("lock").is_empty(), "nothing is shown before the refusal");
    assert!(!marker.exists());

    // `actions show` tells the requester's human, before they try, that they cannot approve it.
    let shown = s.central.cli_json(&["actions", "show", &id]);
    assert_eq!(shown["status"], "pending_approval");
    assert_eq!(shown["you_may_approve"], false, "{shown}");
    assert!(shown["you_cannot_approve_because"].as_str().is_some_and(|w| w.contains("four-eyes")), "{shown}");
    assert_eq!(shown["approvals_required"], 1, "{shown}");
    assert_eq!(shown["approvals_received"], 0, "{shown}");
    assert!(shown["expires_at"].is_string(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_sees_and_reaches_only_read_tools() {
    let s = setup("staging");
    let reader = token(&s.central, &["--assistant", "viewer-bot", "--read-only", "--toolsets", "servers,actions"]);
    let (session, _) = mcp::connect(&s.central.mcp_url, &reader, Some(Human::Confirms)).await;
    let names = tool_names(&session.list_all_tools().await.expect("tools/list"));
    assert!(names.iter().any(|n| n == "mttrly_list_servers"), "{names:?}");
    for hidden in ["mttrly_execute_command", "mttrly_approve_action", "mttrly_decommission_server"] {
        assert!(!names.iter().any(|n| n == hidden), "{hidden} hidden: {names:?}");
    }
    let err = session
        .call_tool(rmcp::model::CallToolRequestParams::new("mttrly_execute_command").with_arguments(
            json!({ "server_id": s.server_id, "command": "uptime" }).as_object().cloned().expect("obj"),
        ))
        .await
        .expect_err("an unadvertised tool is not callable");
    assert!(err.to_string().contains("unknown tool"), "{err}");
    let caps = mcp::call_ok(&session, "mttrly_get_capabilities", json!({})).await;
    assert_eq!(caps["read_only"], true);
    assert_eq!(caps["toolsets"], json!(["servers", "actions"]));
    let why: Vec<&Value> = caps["restricted_tools"].as_array().expect("restricted").iter().collect();
    assert!(
        why.iter()
            .any(|r| r["tool_id"] == "mttrly_execute_command"
                && r["reason"].as_str().is_some_and(|t| t.contains("toolset"))),
        "{caps}"
    );
    // The gRPC API applies the same scope.
    let api = tokio::task::block_in_place(|| {
        s.central.call_tool(
            &reader,
            "mttrly_execute_command",
            &json!({ "server_id": s.server_id, "command": "uptime" }),
        )
    });
    assert_eq!(api["code"], "FORBIDDEN", "{api}");
}

#[test]
fn a_session_belongs_to_the_user_who_opened_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let intruder = "mttrly_h_another-tenant-entirely-0000000000000";
    let central = TestCentral::start_with(dir.path(), &[], &[], |data| {
        let db = mttrly_central::db::Db::open(&data.join("central.db")).expect("db");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime
            .block_on(db.create_tenant(
                "other",
                mttrly_core::Plan::DeploymentCrew,
                "mallory",
                &mttrly_central::secrets::hash(intruder),
            ))
            .expect("second tenant");
    });
    let assistant = token(&central, &["--assistant", "claude-code"]);
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "x", "version": "1" } }
    })
    .to_string();
    let post = |token: &str, session: Option<&str>, body: &str| {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Protocol-Version", "2025-06-18"),
        ];
        if let Some(id) = session {
            headers.push(("Mcp-Session-Id", id));
        }
        http_request(&central.http_url, "POST", "/mcp", &headers, body)
    };
    let opened = post(&assistant, None, &init);
    assert_eq!(opened.status, 200, "{opened:?}");
    let session_id = opened.header("mcp-session-id").expect("session id").to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string();
    assert_eq!(post(&assistant, Some(&session_id), &initialized).status, 202);
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }).to_string();

    // The same person with another of their tokens may continue the session.
    let human = central.cli_json(&["tokens", "create", "--human"])["token"].as_str().expect("t").to_owned();
    let mine = post(&human, Some(&session_id), &list);
    assert!(mine.body.contains("mttrly_list_servers"), "same person, other token: {mine:?}");
    // Another tenant's token on this session is refused before it reaches the session: it learns
    // nothing, and cannot answer the session's confirmation forms either.
    let stolen = post(intruder, Some(&session_id), &list);
    assert_eq!(stolen.status, 404, "{stolen:?}");
    assert!(!stolen.body.contains("mttrly_list_servers"), "{stolen:?}");
    let forged_answer =
        json!({ "jsonrpc": "2.0", "id": 0, "result": { "action": "accept", "content": { "confirm": true } } });
    assert_eq!(post(intruder, Some(&session_id), &forged_answer.to_string()).status, 404);

    // DELETE ends the session; it is gone afterwards.
    let bearer = format!("Bearer {assistant}");
    let ended = http_request(
        &central.http_url,
        "DELETE",
        "/mcp",
        &[
            ("Authorization", bearer.as_str()),
            ("Mcp-Session-Id", session_id.as_str()),
            ("Mcp-Protocol-Version", "2025-06-18"),
        ],
        "",
    );
    assert!((200..300).contains(&ended.status), "{ended:?}");
    let after = post(&assistant, Some(&session_id), &list);
    assert_eq!(after.status, 404, "{after:?}");
}

#[test]
fn the_http_gate_challenges_refuses_origins_and_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central =
        TestCentral::start_with(dir.path(), &[], &[("MCP_ALLOWED_ORIGINS", "https://console.example.com")], |_| {});
    let base = &central.http_url;
    let json_headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "x", "version": "1" } }
    })
    .to_string();

    // Protected resource metadata (RFC 9728).
    let meta = http_request(base, "GET", "/.well-known/oauth-protected-resource/mcp", &[], "");
    assert_eq!(meta.status, 200);
    let meta: Value = serde_json::from_str(&meta.body).expect("json");
    assert_eq!(meta["resource"], format!("{base}/mcp"));

    // No token: 401 with the challenge pointing at the metadata.
    let none = http_request(base, "POST", "/mcp", &json_headers, &init);
    assert_eq!(none.status, 401);
    let challenge = none.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"")),
        "{challenge}"
    );
    let body: Value = serde_json::from_str(&none.body).expect("error body");
    assert_eq!(body["code"], "AUTH_FAILED");
    insta::assert_json_snapshot!("mcp_401_body", body);

    // A bad token: 401 invalid_token.
    let mut bad = json_headers.to_vec();
    bad.push(("Authorization", "Bearer mttrly_a_not-a-real-token"));
    let refused = http_request(base, "POST", "/mcp", &bad, &init);
    assert_eq!(refused.status, 401);
    assert!(refused.header("www-authenticate").is_some_and(|c| c.contains("invalid_token")));

    // An untrusted Origin: 403 before authentication, with or without a token.
    let assistant = token(&central, &["--assistant", "web"]);
    let good_bearer = format!("Bearer {assistant}");
    for auth in [None, Some(good_bearer.as_str())] {
        let mut h = json_headers.to_vec();
        h.push(("Origin", "https://evil.example.net"));
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let r = http_request(base, "POST", "/mcp", &h, &init);
        assert_eq!(r.status, 403, "{r:?}");
        assert!(r.header("www-authenticate").is_none());
    }
    // An allowed Origin and a good token: served.
    let mut ok = json_headers.to_vec();
    ok.push(("Origin", "https://console.example.com"));
    ok.push(("Authorization", &good_bearer));
    let served = http_request(base, "POST", "/mcp", &ok, &init);
    assert_eq!(served.status, 200, "{served:?}");
    // No Origin at all: the normal path.
    let mut plain = json_headers.to_vec();
    plain.push(("Authorization", &good_bearer));
    assert_eq!(http_request(base, "POST", "/mcp", &plain, &init).status, 200);

    // DNS rebinding: a Host that is not ours gets 4xx even with a good token.
    let mut rebound = plain.clone();
    rebound.push(("Host", "attacker.example"));
    let r = http_request(base, "POST", "/mcp", &rebound, &init);
    assert!((400..500).contains(&r.status), "{r:?}");
}

/// The seed's response flow, for real: capabilities → list servers → run a diagnostic → list
/// playbooks → run a playbook (pending) → a human approves with `mttrly-cli actions approve` →
/// the agent executes → `mttrly_get_action_result` and `mttrly_get_audit_log` show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_response_flow_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let books = root.join("playbooks");
    std::fs::create_dir_all(&books).expect("mkdir");
    let marker = root.join("restarted");
    std::fs::write(
        books.join("restart-app.toml"),
        format!(
            "id = \"restart-app\"\nname = \"Restart the app\"\ndescription = \"Restart the demo app\"\ncategory = \"services\"\n\
             requires_approval = true\nrequires = [\"touch\"]\nblast_radius = \"the demo app\"\ntimeout_seconds = 20\n\
             [[steps]]\nargv = [\"touch\", \"{}\"]\n",
            marker.display()
        ),
    )
    .expect("playbook");
    let policy = root.join("policy.toml");
    std::fs::write(&policy, format!("playbooks_dir = \"{}\"\n", books.display())).expect("policy");
    let (central, server_id, assistant, _agent) = tokio::task::block_in_place(|| {
        let central = TestCentral::start(&root);
        let (server_id, agent) = central.online_server("web-1", "staging", &root.join("agent"), Some(&policy));
        let assistant = central.assistant_token("claude-code");
        (central, server_id, assistant, agent)
    });
    let (session, _) = mcp::connect(&central.mcp_url, &assistant, None).await;

    let caps = mcp::call_ok(&session, "mttrly_get_capabilities", json!({})).await;
    assert!(caps["available_tools"].as_array().expect("tools").iter().any(|t| t == "mttrly_run_playbook"));
    let servers = mcp::call_ok(&session, "mttrly_list_servers", json!({})).await;
    assert_eq!(servers["servers"][0]["server_id"], server_id.as_str());
    let report = mcp::call_ok(
        &session,
        "mttrly_run_diagnostic",
        json!({ "server_id": server_id, "problem": "the app stopped answering after a deploy" }),
    )
    .await;
    assert!(report["summary"].is_string() && report["probes"].is_array(), "{report}");
    let books = mcp::call_ok(&session, "mttrly_list_playbooks", json!({ "server_id": server_id })).await;
    assert!(books["playbooks"].as_array().expect("list").iter().any(|p| p["playbook_id"] == "restart-app"), "{books}");
    let pending = mcp::call_ok(
        &session,
        "mttrly_run_playbook",
        json!({ "server_id": server_id, "playbook_id": "restart-app", "reason": "the app hangs" }),
    )
    .await;
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let id = pending["action_id"].as_str().expect("id").to_owned();
    assert!(!marker.exists());

    // A human approves from a terminal.
    let approved = tokio::task::block_in_place(|| central.cli_json(&["actions", "approve", &id, "--yes"]));
    assert_eq!(approved["status"], "succeeded", "{approved}");
    assert!(marker.exists(), "the agent ran the playbook");

    let result = mcp::call_ok(&session, "mttrly_get_action_result", json!({ "action_id": id })).await;
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["approvals"][0]["channel"], "cli");
    let audit = mcp::call_ok(&session, "mttrly_get_audit_log", json!({ "server_id": server_id })).await;
    let text = audit.to_string();
    for expected in ["mttrly_run_diagnostic", "mttrly_run_playbook", id.as_str()] {
        assert!(text.contains(expected), "{expected} in the audit log: {audit}");
    }
}

#[test]
fn a_tool_beyond_the_plan_says_which_plan_unlocks_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start_with(dir.path(), &["--plan", "watchdog"], &[], |_| {});
    let assistant = token(&central, &["--assistant", "claude-code"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (session, _) = mcp::connect(&central.mcp_url, &assistant, None).await;
        let err = mcp::call_err(
            &session,
            "mttrly_run_diagnostic",
            json!({ "server_id": "srv_00000000000000000000000000000000", "problem": "x" }),
        )
        .await;
        assert_eq!(err["code"], "PLAN_REQUIRED", "{err}");
        assert_eq!(err["details"]["required_plan"], "deployment_bro", "{err}");
        let bad = mcp::call_err(&session, "mttrly_get_server_status", json!({ "server_id": 42 })).await;
        assert_eq!(bad["code"], "VALIDATION_ERROR", "{bad}");
        assert_eq!(bad["details"]["field"], "server_id", "{bad}");
    });
}

#[test]
fn a_read_only_deployment_narrows_every_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start_with(
        dir.path(),
        &[],
        &[("MTTRLY_READ_ONLY", "1"), ("MTTRLY_TOOLSETS", "servers,commands")],
        |_| {},
    );
    let assistant = central.assistant_token("claude-code");
    let caps = central.call_tool(&assistant, "mttrly_get_capabilities", &json!({}));
    assert_eq!(caps["read_only"], true, "{caps}");
    assert_eq!(caps["toolsets"], json!(["servers", "commands"]), "{caps}");
    // Even the admin's own token cannot reach a tool the deployment switched off.
    let refused = central.call_tool(
        &central.admin_token,
        "mttrly_execute_command",
        &json!({ "server_id": "srv_00000000000000000000000000000000", "command": "uptime" }),
    );
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("read-only")), "{refused}");
}

/// A 2026-07-28 request answered by one message gets it as plain JSON (no one-event SSE stream),
/// with the caller's result in it; what the client announced in `_meta` names the assistant.
#[test]
fn a_stateless_call_is_answered_with_one_json_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = TestCentral::start(dir.path());
    let bearer = format!("Bearer {}", central.admin_token);
    let call = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "mttrly_create_channel", "arguments": { "channel": "ops" },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": { "name": "raw-2026", "version": "1" },
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
    .to_string();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "mttrly_create_channel"),
    ];
    let answer = http_request(&central.http_url, "POST", "/mcp", &headers, &call);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{answer:?}");
    assert!(answer.header("mcp-session-id").is_none(), "no session on 2026-07-28: {answer:?}");
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("one JSON message");
    assert_eq!(body["id"], 7);
    let created = &body["result"]["structuredContent"];
    assert_eq!(created["channel"], "ops", "{body}");
    assert_eq!(created["created_by"]["ai_tool"], "raw-2026", "{body}");
}
