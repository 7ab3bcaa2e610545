//! Issue 12's "done when", without an identity provider, all real processes: the admin adds bob,
//! bob sets a password and a second factor through the invite, signs in with both in a fresh
//! browser and logs the CLI in with `mttrly-cli login`; the admin's assistant asks (over `/mcp`)
//! for a change on a production server; the admin cannot approve it, bob can, and it runs once on
//! the real agent; a revoked token then fails at once on gRPC and on `/mcp`. (The same flow with
//! SSO is `sso::the_teammate_flow_passes_with_sso`.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_tests::TestCentral;
use serde_json::{Value, json};

use crate::login::{Browser, cli_in, decide, input_value, json_of, sign_up_keeping_key, start_cli_login, wait_output};

/// The password `login::sign_up` chooses.
const PASSWORD: &str = "correct horse battery staple";

fn mcp_initialize(central: &TestCentral, token: &str) -> u16 {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "team", "version": "1" } }
    })
    .to_string();
    let auth = format!("Bearer {token}");
    mttrly_tests::http_request(
        &central.http_url,
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        &body,
    )
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_signs_in_logs_in_and_approves_what_the_admins_assistant_asked_for_on_production() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let central = tokio::task::spawn_blocking(move || TestCentral::start(&root)).await.unwrap();
    let central = std::sync::Arc::new(central);

    // The admin adds bob; bob takes the invite (password, then a TOTP code from the key shown).
    let c = central.clone();
    let (key, enrolled_step) = tokio::task::spawn_blocking(move || {
        let added = c.cli_json(&["users", "add", "bob", "--role", "operator"]);
        let (_, key, step) = sign_up_keeping_key(&c.http_url, added["invite_url"].as_str().unwrap());
        (key, step)
    })
    .await
    .unwrap();

    // Bob signs in on a fresh browser with password + TOTP (the next step's code: the one used at
    // enrolment is spent), then logs the CLI in through that browser.
    let c = central.clone();
    let home = dir.path().join("bob-home");
    let h = home.clone();
    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::new(&c.http_url);
        let page = browser.get("/signin?next=%2F");
        assert_eq!(page.status, 200, "{page:?}");
        let csrf = input_value(&page.body, "csrf").unwrap();
        let spent = format!("{:06}", key.code_at(enrolled_step));
        let replay = browser.post(
            "/signin",
            &[("csrf", &csrf), ("login", "bob"), ("password", PASSWORD), ("code", &spent), ("next", "/")],
        );
        assert_eq!(replay.status, 401, "the enrolment's code is spent: {replay:?}");
        let code = format!("{:06}", key.code_at(enrolled_step + 1));
        let signed = browser.post(
            "/signin",
            &[("csrf", &csrf), ("login", "bob"), ("password", PASSWORD), ("code", &code), ("next", "/")],
        );
        assert_eq!(signed.status, 303, "{signed:?}");
        let home_page = browser.get("/");
        assert!(home_page.body.contains("bob") && home_page.body.contains("operator"), "{home_page:?}");

        std::fs::create_dir_all(&h).unwrap();
        let (child, user_code, _, _lines) = start_cli_login(&c, &h);
        let allowed = decide(&mut browser, &user_code, "allow");
        assert_eq!(allowed.status, 200, "{allowed:?}");
        let out = wait_output(child, Duration::from_secs(30));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let logged_in = json_of(&out);
        assert_eq!((logged_in["user"].as_str(), logged_in["role"].as_str()), (Some("bob"), Some("operator")));
    })
    .await
    .unwrap();

    // A production server with a real agent; the admin's assistant asks over /mcp.
    let c = central.clone();
    let agent_dir = dir.path().join("agent");
    let (server_id, agent) =
        tokio::task::spawn_blocking(move || c.online_server("web-1", "production", &agent_dir, None)).await.unwrap();
    let c = central.clone();
    let assistant = tokio::task::spawn_blocking(move || c.assistant_token("claude-code")).await.unwrap();
    let marker = dir.path().join("ran-once");
    let (session, _) = mttrly_tests::mcp::connect(&central.mcp_url, &assistant, None).await;
    let pending = mttrly_tests::mcp::call_ok(
        &session,
        "mttrly_execute_command",
        json!({ "server_id": server_id, "command": format!("touch {}", marker.display()), "reason": "disk check" }),
    )
    .await;
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let id = pending["action_id"].as_str().unwrap().to_owned();

    let c = central.clone();
    let m = marker.clone();
    tokio::task::spawn_blocking(move || {
        // The admin (whose assistant asked) is refused: four eyes.
        let out = c.cli(&["--output", "json", "actions", "approve", &id, "--yes"]);
        assert_eq!(out.status.code(), Some(1));
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["code"], "FORBIDDEN", "{err}");
        assert!(!m.exists(), "nothing ran");

        // Bob, with the CLI he logged in (no --token, no MTTRLY_TOKEN: the credentials file).
        let out = cli_in(&home).args(["--output", "json", "actions", "approve", &id, "--yes"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let done: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(done["status"], "succeeded", "{done}");
        assert!(m.exists(), "it ran on the agent");
        let again = cli_in(&home).args(["--output", "json", "actions", "approve", &id, "--yes"]).output().unwrap();
        assert!(!again.status.success(), "it runs once; nothing is left to approve");

        // The audit names bob as the approver, through the CLI.
        let shown = c.cli_json(&["actions", "show", &id]);
        let approvals = shown["approvals"].as_array().unwrap_or_else(|| panic!("{shown}"));
        assert_eq!(approvals.len(), 1, "{shown}");
        assert_eq!(approvals[0]["decided_by"]["name"], "bob", "{shown}");
        assert_eq!(c.cli_json(&["audit", "verify"])["ok"], true);

        // Revoking bob's CLI token and the assistant's: refused at once on gRPC and on /mcp.
        let tokens = c.cli_json(&["tokens", "list"]);
        let id_of = |owner: &str, kind: &str| {
            tokens
                .as_array()
                .unwrap_or_else(|| panic!("{tokens}"))
                .iter()
                .find(|t| t["owner"] == owner && t["kind"] == kind)
                .and_then(|t| t["id"].as_str())
                .unwrap_or_else(|| panic!("no {kind} token of {owner}: {tokens}"))
                .to_owned()
        };
        let bobs = id_of("bob", "human");
        let assistants = id_of("admin", "assistant");
        assert_eq!(mcp_initialize(&c, &assistant), 200);
        c.cli_json(&["tokens", "revoke", &bobs]);
        c.cli_json(&["tokens", "revoke", &assistants]);
        let out = cli_in(&home).args(["--output", "json", "whoami"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["code"], "AUTH_FAILED", "{err}");
        assert_eq!(mcp_initialize(&c, &assistant), 401);
    })
    .await
    .unwrap();
    // The open MCP session of the revoked assistant token is refused too.
    let refused = session.call_tool(rmcp::model::CallToolRequestParams::new("mttrly_list_servers".to_owned())).await;
    assert!(refused.is_err(), "the revoked token's open session is refused: {refused:?}");
    drop(agent);
}
