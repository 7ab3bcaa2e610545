//! Issue 15, items 1 and 2: investigations bound to (human, client, server) and the bypass a
//! human grants with a fresh TOTP code, end to end through the tools (`ToolService.CallTool`, the
//! standalone MCP server's path, and `/mcp` for one call), the CLI (`mttrly-cli investigations
//! grant` reading the code on stdin) and the dashboard, against a central and a real agent in
//! this process.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mttrly_core::Environment;
use mttrly_core::approval::config::ApprovalsConfig;
use mttrly_core::ids::{AccountId, InvestigationId};
use mttrly_proto::central::v1::CreateTokenRequest;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use serde_json::{Value, json};

use crate::approvals::{add_server, cli, code_at, enroll_totp};
use crate::common::{Harness, RunningAgent, authed, call_tool, harness, run_agent};
use crate::dashboard::{Http, hidden, person};

/// A central with `approvals`, a server of `env` with a real agent online, and an assistant token
/// of the admin.
struct Setup {
    h: Harness,
    server: String,
    assistant: String,
    /// Runs for the setup's life; a test stops it to take the server offline.
    agent: RunningAgent,
}

async fn setup(env: Environment, approvals: Value) -> Setup {
    let approvals: ApprovalsConfig = serde_json::from_value(approvals).unwrap();
    let h = harness(|cfg| cfg.approvals = approvals).await;
    let added = add_server(&h, "web-1", env).await;
    let agent = run_agent(h.central.grpc_url(), &added.install_token, h.dir.path().join("agent")).await;
    h.wait_online(&added.server_id).await;
    let assistant = token(&h, &h.admin.clone(), "claude-code").await;
    Setup { h, server: added.server_id, assistant, agent }
}

/// A new assistant token of `owner`'s human, named `name`.
pub(crate) async fn token(h: &Harness, owner: &str, name: &str) -> String {
    AccountServiceClient::new(h.channel().await)
        .create_token(authed(
            owner,
            CreateTokenRequest { assistant_name: name.into(), ..CreateTokenRequest::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .token
}

impl Setup {
    async fn tool(&self, token: &str, tool: &str, args: Value) -> (bool, Value) {
        call_tool(self.h.channel().await, token, tool, args).await
    }

    async fn ok(&self, tool: &str, args: Value) -> Value {
        let (is_error, answer) = self.tool(&self.assistant, tool, args).await;
        assert!(!is_error, "{tool}: {answer}");
        answer
    }

    async fn err(&self, token: &str, tool: &str, args: Value) -> String {
        let (is_error, answer) = self.tool(token, tool, args).await;
        assert!(is_error, "{tool} should fail: {answer}");
        answer["code"].as_str().unwrap().to_owned()
    }

    async fn start(&self) -> String {
        let args = json!({ "server_id": self.server, "title": "disk full on web-1" });
        self.ok("mttrly_start_investigation", args).await["investigation_id"].as_str().unwrap().to_owned()
    }

    /// Asks for a bypass of `execute_command` with `max` actions (and `patterns`); its id.
    async fn acquire(&self, investigation: &str, max: u32, patterns: Value) -> String {
        let args = json!({
            "investigation_id": investigation, "tools": ["execute_command"], "max_actions": max,
            "duration_minutes": 15, "patterns": patterns, "reason": "clean up the disk",
        });
        let state = self.ok("mttrly_acquire_investigation_bypass", args).await;
        assert_eq!(state["status"], "pending", "{state}");
        state["bypass_id"].as_str().unwrap().to_owned()
    }

    async fn bypass(&self, investigation: &str) -> Value {
        self.ok("mttrly_get_investigation_bypass", json!({ "investigation_id": investigation })).await
    }

    async fn exec(&self, investigation: &str, command: &str) -> Value {
        let args = json!({ "server_id": self.server, "command": command, "investigation_id": investigation });
        self.ok("mttrly_execute_command", args).await
    }

    /// `mttrly-cli --output json investigations grant BYPASS --yes ARGS` with `code` on stdin.
    async fn grant_by_cli(&self, token: &str, bypass: &str, args: &[&str], code: &str) -> std::process::Output {
        let mut all = vec!["--output", "json", "investigations", "grant", bypass, "--yes"];
        all.extend_from_slice(args);
        cli(&self.h, token, &all, &format!("{code}\n")).await
    }

    /// The admin's account (the only one).
    async fn account(&self) -> AccountId {
        self.h.central.central.db.first_account().await.unwrap().unwrap().0
    }
}

pub(crate) fn stdout(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "mttrly-cli failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr_code(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "mttrly-cli should have failed: {}", String::from_utf8_lossy(&out.stdout));
    let body: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("JSON error on stderr ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    body["code"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_bypass_runs_three_fixes_the_fourth_waits_and_revoke_ends_it() {
    let s = setup(Environment::Staging, json!({})).await;
    let (secret, enrolled_at, recovery) = enroll_totp(&s.h, &s.h.admin).await;

    // Start, then the same human, client and server resume the same handle.
    let investigation = s.start().await;
    assert!(investigation.starts_with("inv_"));
    let again = s.ok("mttrly_start_investigation", json!({ "server_id": s.server, "title": "again" })).await;
    assert_eq!(
        (again["investigation_id"].as_str(), again["resumed"].as_bool()),
        (Some(investigation.as_str()), Some(true))
    );
    assert_eq!(again["title"], "disk full on web-1", "a resumed investigation keeps its title");

    // Before a grant, exec under it waits like any other command.
    let dir = s.h.dir.path().join("marks");
    std::fs::create_dir_all(&dir).unwrap();
    let mark = |i: usize| dir.join(format!("fix-{i}"));
    let before = s.exec(&investigation, &format!("touch {}", mark(0).display())).await;
    assert_eq!(before["status"], "pending_approval", "{before}");

    // Acquire: pending, with the exact command and the page that grant it.
    let bypass = s.acquire(&investigation, 3, json!([])).await;
    let state = s.bypass(&investigation).await;
    assert_eq!(state["grant"]["cli_command"], format!("mttrly-cli investigations grant {bypass}"));
    assert!(state["grant"]["dashboard_url"].as_str().unwrap().ends_with(&format!("/investigations/{investigation}")));
    // A second request while one is pending.
    let args = json!({ "investigation_id": investigation, "tools": ["execute_command"] });
    assert_eq!(s.err(&s.assistant, "mttrly_acquire_investigation_bypass", args).await, "BYPASS_ALREADY_ACTIVE");

    // A wrong code, then the code the enrolment already spent: nothing is granted.
    let wrong = s.grant_by_cli(&s.h.admin, &bypass, &[], "000000").await;
    assert_eq!(stderr_code(&wrong), "AUTH_FAILED");
    let replayed = s.grant_by_cli(&s.h.admin, &bypass, &[], &code_at(&secret, enrolled_at)).await;
    assert_eq!(stderr_code(&replayed), "AUTH_FAILED");
    assert_eq!(s.bypass(&investigation).await["status"], "pending");
    // Widening is refused before any code is looked at.
    let wider = s.grant_by_cli(&s.h.admin, &bypass, &["--max-actions", "4"], &recovery[0]).await;
    assert_eq!(stderr_code(&wider), "VALIDATION_ERROR");
    assert!(String::from_utf8_lossy(&wider.stderr).contains("never widen"));

    // The human grants it on the CLI with a fresh TOTP code.
    let granted = stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &code_at(&secret, enrolled_at + 1)).await);
    assert_eq!(granted["bypass"]["status"], "active", "{granted}");
    assert_eq!(granted["bypass"]["granted_by"]["name"], "admin");

    // Three fixes run at once under it; the fourth waits for approval.
    for i in 1..=3 {
        let ran = s.exec(&investigation, &format!("touch {}", mark(i).display())).await;
        assert_eq!(
            (ran["status"].as_str(), ran["requires_approval"].as_bool()),
            (Some("succeeded"), Some(false)),
            "{ran}"
        );
        assert!(ran["description"].as_str().unwrap().contains(&format!("ran under bypass {bypass} granted by admin")));
        assert!(mark(i).exists());
    }
    let fourth = s.exec(&investigation, &format!("touch {}", mark(4).display())).await;
    assert_eq!(fourth["status"], "pending_approval", "{fourth}");
    assert!(!mark(4).exists() && !mark(0).exists());
    // Reading never consumes.
    let read = s.bypass(&investigation).await;
    assert_eq!((read["status"].as_str(), read["actions_used"].as_u64()), (Some("exhausted"), Some(3)));
    assert_eq!(s.bypass(&investigation).await["actions_used"], 3);

    // Each bypassed run's audit row names the bypass and the slots left.
    s.h.central.central.audit.flush().await;
    let filter = mttrly_central::db::audit::AuditFilter { limit: 500, ..Default::default() };
    let account = s.account().await;
    let rows = s.h.central.central.db.account(&account).audit().list(&filter).await.unwrap();
    let mut left: Vec<u64> = rows
        .iter()
        .filter(|r| r.parameters["bypass_id"] == bypass.as_str() && r.parameters.get("created").is_some())
        .map(|r| r.parameters["remaining_actions"].as_u64().unwrap())
        .collect();
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2]);
    assert!(rows.iter().any(|r| r.subject == bypass
        && r.parameters["decision"] == "grant_bypass"
        && r.parameters["second_factor"] == "totp"));
    assert_eq!(
        rows.iter()
            .filter(
                |r| r.parameters["investigation_id"] == investigation.as_str() && r.parameters.get("created").is_some()
            )
            .count(),
        5,
        "every action under it names the investigation"
    );

    // A new bypass (granted with a recovery code), revoked: exec waits again; revoking twice
    // answers the same state.
    let second = s.acquire(&investigation, 5, json!([])).await;
    stdout(&s.grant_by_cli(&s.h.admin, &second, &[], &recovery[1]).await);
    let revoked = s.ok("mttrly_revoke_investigation_bypass", json!({ "investigation_id": investigation })).await;
    assert_eq!(revoked["status"], "revoked");
    let twice = s.ok("mttrly_revoke_investigation_bypass", json!({ "investigation_id": investigation })).await;
    assert_eq!(revoked, twice, "revoke is idempotent");
    let after = s.exec(&investigation, &format!("touch {}", mark(5).display())).await;
    assert_eq!(after["status"], "pending_approval", "{after}");
    assert!(!mark(5).exists());
    s.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_n_concurrent_calls_on_n_slots_run_exactly_n() {
    const N: usize = 5;
    let s = setup(Environment::Development, json!({})).await;
    let (_, _, recovery) = enroll_totp(&s.h, &s.h.admin).await;
    let investigation = s.start().await;
    let bypass = s.acquire(&investigation, u32::try_from(N).unwrap(), json!([])).await;
    stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &recovery[0]).await);
    let dir = s.h.dir.path().join("race");
    std::fs::create_dir_all(&dir).unwrap();
    let channel = s.h.channel().await;
    let calls: Vec<_> = (0..2 * N)
        .map(|i| {
            let args = json!({
                "server_id": s.server,
                "command": format!("touch {}", dir.join(format!("r{i}")).display()),
                "investigation_id": investigation,
            });
            let (channel, token) = (channel.clone(), s.assistant.clone());
            tokio::spawn(async move { call_tool(channel, &token, "mttrly_execute_command", args).await.1 })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let ran = answers.iter().filter(|a| a["requires_approval"] == false).count();
    let waiting = answers.iter().filter(|a| a["status"] == "pending_approval").count();
    assert_eq!((ran, waiting), (N, N), "{answers:?}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), N, "exactly N ran on the host");
    let state = s.bypass(&investigation).await;
    assert_eq!((state["status"].as_str(), state["actions_used"].as_u64()), (Some("exhausted"), Some(N as u64)));
    s.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_answers_only_its_own_human_and_client() {
    let s = setup(Environment::Staging, json!({})).await;
    let investigation = s.start().await;
    let get = json!({ "investigation_id": investigation });
    // Through `/mcp`, two separate MCP sessions of the same token are the same client: the
    // handle does not rest on an MCP session, so both resume it.
    let mcp = crate::common::Mcp { addr: s.h.central.http_addr, token: s.assistant.clone(), client: "claude-code" };
    for _ in 0..2 {
        let session = mcp.open().await.unwrap();
        let args = json!({ "server_id": s.server, "title": "from MCP" });
        let answer = mcp
            .request(&session, "tools/call", json!({ "name": "mttrly_start_investigation", "arguments": args }))
            .await;
        let out = &answer["result"]["structuredContent"];
        assert_eq!(
            (out["investigation_id"].as_str(), out["resumed"].as_bool()),
            (Some(investigation.as_str()), Some(true)),
            "{answer}"
        );
        assert_eq!(mcp.delete(&session).await, 204);
    }
    // The same human through another client: not found, and starting there opens another one.
    let other_client = token(&s.h, &s.h.admin, "cursor").await;
    assert_eq!(s.err(&other_client, "mttrly_get_investigation_bypass", get.clone()).await, "NOT_FOUND");
    let (_, theirs) =
        s.tool(&other_client, "mttrly_start_investigation", json!({ "server_id": s.server, "title": "t" })).await;
    assert_ne!(theirs["investigation_id"], investigation.as_str());
    assert_eq!(theirs["resumed"], false);
    // Another human's assistant: not found for every tool taking it, and exec refuses it.
    let bob = crate::approvals::add_user(&s.h, "bob", "operator").await;
    let bobs = token(&s.h, &bob, "claude-code").await;
    assert_eq!(s.err(&bobs, "mttrly_get_investigation_bypass", get.clone()).await, "NOT_FOUND");
    assert_eq!(s.err(&bobs, "mttrly_revoke_investigation_bypass", get.clone()).await, "NOT_FOUND");
    let acquire = json!({ "investigation_id": investigation, "tools": ["execute_command"] });
    assert_eq!(s.err(&bobs, "mttrly_acquire_investigation_bypass", acquire).await, "NOT_FOUND");
    let exec = json!({ "server_id": s.server, "command": "touch /tmp/x", "investigation_id": investigation });
    assert_eq!(s.err(&bobs, "mttrly_execute_command", exec).await, "NOT_FOUND");
    // An unknown handle reads the same.
    let unknown = json!({ "investigation_id": InvestigationId::generate().as_str() });
    assert_eq!(s.err(&s.assistant, "mttrly_get_investigation_bypass", unknown).await, "NOT_FOUND");
    // Another account's alert (or one that does not exist) cannot be named.
    let alert =
        json!({ "server_id": s.server, "title": "t", "alert_id": mttrly_core::ids::AlertId::generate().as_str() });
    assert_eq!(s.err(&s.assistant, "mttrly_start_investigation", alert).await, "VALIDATION_ERROR");
    s.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_revokes_and_a_closed_investigation_acquires_nothing() {
    let s = setup(Environment::Staging, json!({})).await;
    let (_, _, recovery) = enroll_totp(&s.h, &s.h.admin).await;
    let investigation = s.start().await;
    let bypass = s.acquire(&investigation, 3, json!([])).await;
    stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &recovery[0]).await);
    let closed =
        stdout(&cli(&s.h, &s.h.admin, &["--output", "json", "investigations", "close", &investigation], "").await);
    assert_eq!(closed["investigation"]["status"], "closed");
    assert_eq!(closed["bypass"]["status"], "revoked", "closing revokes the bypass");
    let args = json!({ "investigation_id": investigation, "tools": ["execute_command"] });
    assert_eq!(s.err(&s.assistant, "mttrly_acquire_investigation_bypass", args).await, "INVESTIGATION_CLOSED");
    // Exec under a closed investigation is an ordinary pending action, never an error.
    let waits = s.exec(&investigation, "touch /tmp/never").await;
    assert_eq!(waits["status"], "pending_approval");
    // The same human and client get a fresh investigation now.
    assert_ne!(s.start().await, investigation);

    // The CAS: a request on a version that moved loses (BYPASS_ACQUIRE_FAILED's cause).
    let fresh = InvestigationId::parse(&s.start().await).unwrap();
    let account = s.account().await;
    let investigations = s.h.central.central.db.account(&account);
    let row = investigations.investigations().get(&fresh).await.unwrap().unwrap();
    let stale = mttrly_central::db::investigations::BypassRow {
        id: mttrly_core::ids::BypassId::generate(),
        account_id: account.clone(),
        investigation_id: fresh.clone(),
        server_id: row.server_id.clone(),
        scope: mttrly_core::tools::investigations::GrantScope {
            tools: mttrly_core::tools::investigations::BypassTools::new([
                mttrly_core::tools::investigations::BypassTool::ExecuteCommand,
            ])
            .unwrap(),
            patterns: Vec::new(),
            minutes: 15,
            max_actions: 1,
        },
        status: mttrly_core::tools::investigations::BypassStatus::Pending,
        requested_at: mttrly_central::db::now_ms(),
        requested_by: mttrly_core::Principal::Human { user_id: row.user_id.clone(), name: "admin".into() },
        reason: None,
        granted_by: None,
        granted_by_name: None,
        granted_at: None,
        expires_at: mttrly_central::db::now_ms() + 60_000,
        actions_used: 0,
        revoked_at: None,
    };
    let raced = investigations
        .investigations()
        .request_bypass(stale, row.version + 1, mttrly_central::db::now_ms())
        .await
        .unwrap();
    assert_eq!(raced, mttrly_central::db::investigations::Requested::Raced);
    s.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_grant_follows_the_environment_rule_and_production_forbids_bypasses() {
    // Four eyes on staging: the human whose assistant asked cannot grant it; another can.
    let s = setup(Environment::Staging, json!({ "staging": { "requester_may_approve": false } })).await;
    let (secret, enrolled_at, _) = enroll_totp(&s.h, &s.h.admin).await;
    // bob joins before the request; the admin adds `late` while it waits (below).
    let mut bob = person(&s.h, "bob", "operator").await;
    let investigation = s.start().await;
    let (ok, other) = (s.h.dir.path().join("inv-ok"), s.h.dir.path().join("inv-other"));
    let touch = |p: &std::path::Path| json!(["touch", p.display().to_string()]);
    let bypass = s.acquire(&investigation, 2, json!([touch(&ok), touch(&other)])).await;
    let own = s.grant_by_cli(&s.h.admin, &bypass, &[], &code_at(&secret, enrolled_at + 1)).await;
    assert_eq!(stderr_code(&own), "FORBIDDEN");
    assert!(String::from_utf8_lossy(&own.stderr).contains("four-eyes"));
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    // Someone the requester's human adds while the request waits is no second person.
    let base = s.h.central.http_url();
    let mut late = person(&s.h, "late", "operator").await;
    let mut http = Http::new(&base);
    http.sign_in(&mut late).await;
    let page_path = format!("/investigations/{investigation}");
    let (_, page) = http.get(&page_path).await;
    let code = late.fresh_code().await;
    let fields = [("csrf", hidden(&page, "csrf")), ("bypass_id", bypass.clone()), ("code", code)];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = http.post(&format!("{page_path}/grant"), &fields).await;
    assert_ne!(status, 303, "{page}");
    assert!(page.contains("late was added by admin after this was requested"), "{page}");
    assert_eq!(s.bypass(&investigation).await["status"], "pending");

    // Another person grants it on the dashboard, narrowed to one action and one pattern.
    let mut http = Http::new(&base);
    http.sign_in(&mut bob).await;
    let page_path = format!("/investigations/{investigation}");
    let (status, page) = http.get(&page_path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Grant bypass") && page.contains(&bypass), "{page}");
    let csrf = hidden(&page, "csrf");
    let grant = format!("{page_path}/grant");
    let base_form = |code: &str| vec![("csrf", csrf.clone()), ("bypass_id", bypass.clone()), ("code", code.to_owned())];
    // Without the CSRF token, nothing happens.
    let (status, _) = http.post(&grant, &[("bypass_id", &bypass), ("code", "123456")]).await;
    assert_eq!(status, 403);
    // Widening (a pattern outside the request) is refused and shown on the page.
    let mut wide = base_form("123456");
    wide.push(("patterns", "rm -rf".to_owned()));
    let fields: Vec<(&str, &str)> = wide.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = http.post(&grant, &fields).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("never widen"), "{page}");
    let code = bob.fresh_code().await;
    let mut narrow = base_form(&code);
    narrow.push(("max_actions", "1".to_owned()));
    narrow.push(("patterns", format!("touch {}", ok.display())));
    let fields: Vec<(&str, &str)> = narrow.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = http.post(&grant, &fields).await;
    assert_eq!(status, 303, "{page}");
    let state = s.bypass(&investigation).await;
    assert_eq!((state["status"].as_str(), state["max_actions"].as_u64()), (Some("active"), Some(1)), "{state}");
    assert_eq!(state["granted_by"]["name"], "bob");
    // Only the narrowed pattern runs at once.
    assert_eq!(s.exec(&investigation, &format!("touch {}", other.display())).await["status"], "pending_approval");
    assert_eq!(s.exec(&investigation, &format!("touch {}", ok.display())).await["requires_approval"], false);
    assert!(ok.exists() && !other.exists());
    let (_, page) = http.get(&page_path).await;
    assert!(page.contains("ran under bypass") && page.contains("exhausted"), "{page}");
    s.h.central.shutdown().await;

    // Production: forbidden by default, named in the refusal.
    let p = setup(Environment::Production, json!({})).await;
    let investigation = p.start().await;
    let args = json!({ "investigation_id": investigation, "tools": ["execute_command"] });
    let (is_error, refusal) = p.tool(&p.assistant, "mttrly_acquire_investigation_bypass", args).await;
    assert!(is_error);
    assert_eq!(refusal["code"], "FORBIDDEN");
    assert!(refusal["message"].as_str().unwrap().contains("bypass = \"allowed\""), "{refusal}");
    p.h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_investigations_close_by_themselves_and_revoke_their_bypass() {
    let s = setup(Environment::Staging, json!({})).await;
    let (_, _, recovery) = enroll_totp(&s.h, &s.h.admin).await;
    let investigation = s.start().await;
    let bypass = s.acquire(&investigation, 3, json!([])).await;
    stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &recovery[0]).await);
    // Two hours of silence.
    let id = investigation.clone();
    s.h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE investigations SET last_activity_at = last_activity_at - 7200000 WHERE id = ?1", [&id])
        })
        .await
        .unwrap();
    let mut closed = Value::Null;
    for _ in 0..100 {
        closed =
            stdout(&cli(&s.h, &s.h.admin, &["--output", "json", "investigations", "show", &investigation], "").await);
        if closed["investigation"]["status"] == "closed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(closed["investigation"]["close_reason"], "idle", "{closed}");
    assert_eq!(closed["bypass"]["status"], "revoked");
    assert_eq!(s.exec(&investigation, "touch /tmp/idle").await["status"], "pending_approval");
    s.h.central.shutdown().await;
}

// Central, its agent and the test share the runtime; chromedriver and Chromium are processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_investigation_page_grants_in_chromium_and_fits_a_phone() {
    use crate::dashboard::{LIVE, screenshot, sign_in};
    use mttrly_tests::webdriver::Driver;

    let s = setup(Environment::Staging, json!({})).await;
    let base = s.h.central.http_url();
    let investigation = s.start().await;
    let fix = s.h.dir.path().join("browser-fix");
    let patterns = json!([["touch", fix.display().to_string()], ["systemctl", "restart", "nginx"]]);
    let bypass = s.acquire(&investigation, 3, patterns).await;
    let mut bob = person(&s.h, "bob", "operator").await;
    let driver = Driver::start().await;
    let browser = driver.browser(1280, 900).await;
    sign_in(&browser, &base, &mut bob).await;

    browser.goto(&format!("{base}/investigations")).await;
    browser
        .wait_for(&format!("main[data-live='investigations'] a[href='/investigations/{investigation}']"), LIVE)
        .await;
    browser.goto(&format!("{base}/investigations/{investigation}")).await;
    let live = format!("main[data-live='investigation:{investigation}'][data-connected]");
    browser.wait_for(&format!("{live} form.grant"), LIVE).await;
    let facts = browser.text_of("section.bypass").await;
    assert!(
        facts.contains("pending")
            && facts.contains(&bypass)
            && facts.contains(r#""systemctl" "restart" "nginx" exactly"#)
            && facts.contains("web-1 (staging)")
            && facts.contains("clean up the disk"),
        "{facts}"
    );
    screenshot(&browser, "dashboard-investigation-desktop").await;
    browser.resize(390, 844).await;
    browser.wait_until("return document.documentElement.scrollWidth <= window.innerWidth;", LIVE).await;
    screenshot(&browser, "dashboard-investigation-phone").await;
    browser.resize(1280, 900).await;

    // Bob grants it, narrowed to two actions, with a fresh code.
    browser.type_into(&browser.wait_for("form.grant input[name=max_actions]", LIVE).await, "2").await;
    let code = bob.fresh_code().await;
    browser.type_into(&browser.wait_for("form.grant input[name=code]", LIVE).await, &code).await;
    browser.click(&browser.wait_for("form.grant button[type=submit]", LIVE).await).await;
    browser
        .wait_until(
            "return /active: 2 of 2 actions left/.test(document.querySelector('section.bypass').textContent);",
            LIVE,
        )
        .await;
    assert_eq!(s.bypass(&investigation).await["granted_by"]["name"], "bob");

    // A fix under it shows up on the open page by itself.
    let ran = s.exec(&investigation, &format!("touch {}", fix.display())).await;
    assert_eq!(ran["requires_approval"], false, "{ran}");
    browser.wait_until("return /ran under bypass/.test(document.querySelector('main').textContent);", LIVE).await;
    screenshot(&browser, "dashboard-investigation-granted").await;
    s.h.central.shutdown().await;
}

/// The text `mttrly-cli investigations show` prints (text mode).
async fn shown_by_cli(s: &Setup, investigation: &str) -> String {
    let out = cli(&s.h, &s.h.admin, &["investigations", "show", investigation], "").await;
    assert!(out.status.success(), "mttrly-cli failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Red-team mends: a pattern covers exactly its argv unless it asks to be a prefix (a final
/// `*`); under a prefix, extra words that would make the command something else (`find -exec`)
/// are not covered; compound commands and absolute paths never match; the grant screens show
/// the stored grant with its words quoted, exact or prefix, the server and the assistant's
/// labelled reason; and a bypassed run says whose grant it ran under, not "1 approval needed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_are_exact_unless_a_prefix_and_a_prefix_never_grows_into_another_command() {
    let s = setup(Environment::Staging, json!({})).await;
    let (_, _, recovery) = enroll_totp(&s.h, &s.h.admin).await;
    let dir = s.h.dir.path().join("exact");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, escaped) = (dir.join("a"), dir.join("b"), dir.join("escaped"));
    let d = |p: &std::path::Path| p.display().to_string();
    let investigation = s.start().await;
    let bypass = s.acquire(&investigation, 5, json!([["touch", d(&a)], ["find", d(&dir), "*"]])).await;

    // What a granting person sees is the stored grant, rendered the same way everywhere.
    let exact_shown = format!(r#""touch" "{}" exactly"#, d(&a));
    let prefix_shown = format!(r#""find" "{}" and any further arguments"#, d(&dir));
    let text = shown_by_cli(&s, &investigation).await;
    let facts = [
        exact_shown.as_str(),
        prefix_shown.as_str(),
        "web-1 (staging)",
        "15 minutes, at most 5 actions",
        "assistant's reason (unverified): clean up the disk",
    ];
    for fact in facts {
        assert!(text.contains(fact), "the CLI must show {fact:?}:\n{text}");
    }
    let mut bob = person(&s.h, "bob", "operator").await;
    let mut http = Http::new(&s.h.central.http_url());
    http.sign_in(&mut bob).await;
    let (status, page) = http.get(&format!("/investigations/{investigation}")).await;
    assert_eq!(status, 200, "{page}");
    let quoted = |t: &str| t.replace('"', "&quot;");
    for fact in [
        quoted(&exact_shown),
        quoted(&prefix_shown),
        "web-1 (staging)".to_owned(),
        "reason (unverified): clean up the disk".to_owned(),
        "15 minutes, at most 5 actions".to_owned(),
    ] {
        assert!(page.contains(&fact), "the page must show {fact:?}:\n{page}");
    }
    stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &recovery[0]).await);

    // Not covered: more words after an exact pattern, a prefix growing `-exec`, a compound
    // command whose every part is covered, another spelling of the program.
    for line in [
        format!("touch {} {}", d(&a), d(&b)),
        format!("find {} -exec touch {} +", d(&dir), d(&escaped)),
        format!("touch {} && touch {}", d(&a), d(&a)),
        format!("/usr/bin/touch {}", d(&a)),
        format!("env touch {}", d(&b)),
    ] {
        let waits = s.exec(&investigation, &line).await;
        assert_eq!(waits["status"], "pending_approval", "{line}: {waits}");
    }
    assert!(!escaped.exists() && !b.exists() && !a.exists(), "nothing ran");
    // Covered: the exact argv, and the prefix with nothing more.
    let ran = s.exec(&investigation, &format!("touch '{}'", d(&a))).await;
    assert_eq!((ran["status"].as_str(), ran["requires_approval"].as_bool()), (Some("succeeded"), Some(false)), "{ran}");
    assert!(a.exists());
    let listed = s.exec(&investigation, &format!("find {}", d(&dir))).await;
    assert_eq!(listed["requires_approval"], false, "{listed}");
    assert_eq!(s.bypass(&investigation).await["actions_used"], 2);

    // The run says whose grant it ran under, not that an approval is missing.
    let action = ran["action_id"].as_str().unwrap();
    let view = s.ok("mttrly_get_action_result", json!({ "action_id": action })).await;
    assert_eq!(view["approvals_required"], 0, "{view}");
    assert_eq!(view["ran_under_bypass"]["bypass_id"], bypass.as_str(), "{view}");
    assert_eq!(view["ran_under_bypass"]["investigation_id"], investigation.as_str());
    assert_eq!(view["ran_under_bypass"]["granted_by"]["name"], "admin");
    assert!(view["ran_under_bypass"]["granted_at"].is_string(), "{view}");
    let (status, page) = http.get(&format!("/actions/{action}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("No per-command approval: it ran under bypass") && page.contains(&bypass), "{page}");
    assert!(page.contains("granted by"), "{page}");
    s.h.central.central.audit.flush().await;
    let filter =
        mttrly_central::db::audit::AuditFilter { subject: Some(action.to_owned()), limit: 50, ..Default::default() };
    let rows = s.h.central.central.db.account(&s.account().await).audit().list(&filter).await.unwrap();
    let created = rows.iter().find(|r| r.parameters.get("created").is_some()).unwrap();
    assert_eq!(created.parameters["bypass_id"], bypass.as_str());
    assert_eq!(created.parameters["bypass_granted_by"]["name"], "admin", "{:?}", created.parameters);
    assert!(created.parameters["bypass_granted_at"].is_string());
    s.h.central.shutdown().await;
}

/// A run under a bypass that never reaches the agent (offline) is failed and its slot comes back
/// in the same transaction: nothing ran, so nothing of the grant was used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_reaches_the_agent_gives_its_slot_back() {
    let s = setup(Environment::Staging, json!({})).await;
    let (_, _, recovery) = enroll_totp(&s.h, &s.h.admin).await;
    let investigation = s.start().await;
    let bypass = s.acquire(&investigation, 1, json!([])).await;
    stdout(&s.grant_by_cli(&s.h.admin, &bypass, &[], &recovery[0]).await);
    s.agent.0.send(true).unwrap();
    let sid = mttrly_core::ids::ServerId::parse(&s.server).unwrap();
    for _ in 0..200 {
        if s.h.central.central.agents.status(&sid, mttrly_central::db::now_ms()).status
            != mttrly_core::tools::common::ConnectionStatus::Online
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = s.exec(&investigation, "touch /tmp/never-dispatched").await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let state = s.bypass(&investigation).await;
    assert_eq!(
        (state["status"].as_str(), state["actions_used"].as_u64(), state["remaining_actions"].as_u64()),
        (Some("active"), Some(0), Some(1)),
        "the slot came back: {state}"
    );
    s.h.central.central.audit.flush().await;
    let filter = mttrly_central::db::audit::AuditFilter {
        subject: Some(failed["action_id"].as_str().unwrap().to_owned()),
        limit: 50,
        ..Default::default()
    };
    let rows = s.h.central.central.db.account(&s.account().await).audit().list(&filter).await.unwrap();
    assert!(rows.iter().any(|r| r.parameters["bypass_slot_returned"] == true), "{rows:?}");
    s.h.central.shutdown().await;
}

/// An open dashboard page hears investigations start and close (`event: investigation` on the
/// live feed, with the id), so the investigations list and an investigation's page follow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_names_an_investigation_when_it_starts_and_closes() {
    use crate::dashboard::{Http, LIVE, person};

    let s = setup(Environment::Staging, json!({})).await;
    let base = s.h.central.http_url();
    let mut bob = person(&s.h, "bob", "viewer").await;
    let mut page = Http::new(&base);
    page.sign_in(&mut bob).await;
    let cookies = page.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let mut feed =
        page.http.get(format!("{base}/events")).header(reqwest::header::COOKIE, cookies).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    let mut heard = String::new();
    let mut hear = async |wanted: String| {
        let until = tokio::time::Instant::now() + LIVE;
        while !heard.contains(&wanted) {
            let chunk = tokio::time::timeout_at(until, feed.chunk()).await.unwrap_or_else(|_| panic!("{wanted}"));
            heard.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("the feed stays open")));
        }
        heard.clear();
    };

    let investigation = s.start().await;
    hear(format!("event: investigation\ndata: {investigation}\n")).await;
    let closed =
        stdout(&cli(&s.h, &s.h.admin, &["--output", "json", "investigations", "close", &investigation], "").await);
    assert_eq!(closed["investigation"]["status"], "closed");
    hear(format!("event: investigation\ndata: {investigation}\n")).await;
}
