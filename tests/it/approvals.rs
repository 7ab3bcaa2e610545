//! Issue 12, approval rules as configuration: `[approvals]` tables checked at start (every
//! problem listed, central refuses to start), the engine deciding by the configured rule (quorum,
//! named approvers, per-action-type and per-playbook overrides, ttl), a rule nobody can satisfy
//! reported at start, at `servers add`, in `actions show` and in `policy approvals` (and gone
//! once a teammate exists), and solo mode: a one-person team approves its own production fix
//! with a fresh TOTP code, audited as solo; no code, a wrong code or a replayed one is refused.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mttrly_central::config::Config;
use mttrly_core::approval::config::ApprovalsConfig;
use mttrly_core::capability::{CapabilityId, CapabilitySet};
use mttrly_core::second_factor::TotpSecret;
use mttrly_core::second_factor::totp::STEP_SECONDS;
use mttrly_core::{ErrorCode, Plan};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{
    Action, AddServerRequest, AddServerResponse, AddUserRequest, ApprovalRule, ApproveActionRequest,
    ConfirmTotpEnrollmentRequest, ListApprovalRulesRequest, ListAuditRequest, StartTotpEnrollmentRequest,
};
use mttrly_tests::sim::{SimAgent, SimHost};
use serde_json::{Value, json};

use crate::common::{Harness, authed, call_tool, code, get_action, harness};

/// An `[approvals]` configuration written as JSON (the same shape as the TOML tables).
fn approvals(value: Value) -> ApprovalsConfig {
    serde_json::from_value(value).unwrap()
}

pub(crate) async fn add_user(h: &Harness, name: &str, role: &str) -> String {
    UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &h.admin,
            AddUserRequest {
                name: name.into(),
                role: role.into(),
                email: String::new(),
                issue_token: true,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .token
}

pub(crate) async fn add_server(h: &Harness, name: &str, env: mttrly_core::Environment) -> AddServerResponse {
    ServerServiceClient::new(h.channel().await)
        .add_server(authed(
            &h.admin,
            AddServerRequest { name: name.into(), environment: mttrly_proto::convert::environment_to_wire(env) },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Asks for `tool` as `token` and returns the pending action's id.
pub(crate) async fn request(h: &Harness, token: &str, tool: &str, args: Value) -> String {
    let (is_error, answer) = call_tool(h.channel().await, token, tool, args).await;
    assert!(!is_error, "{tool}: {answer}");
    assert_eq!(answer["status"], "pending_approval", "{answer}");
    answer["action_id"].as_str().unwrap().to_owned()
}

/// Approves `id` as `token` (bound to the content shown), with a second-factor code if given.
pub(crate) async fn approve(h: &Harness, token: &str, id: &str, code: &str) -> Result<Action, tonic::Status> {
    let shown = get_action(h.channel().await, token, id).await;
    ActionServiceClient::new(h.channel().await)
        .approve_action(authed(
            token,
            ApproveActionRequest {
                action_id: id.into(),
                content_sha256: shown.content_sha256,
                wait_seconds: 10,
                via_mcp: false,
                second_factor_code: code.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().action.unwrap())
}

async fn status_of(h: &Harness, id: &str) -> String {
    get_action(h.channel().await, &h.admin, id).await.status
}

async fn rules(h: &Harness, token: &str) -> Result<Vec<ApprovalRule>, tonic::Status> {
    ActionServiceClient::new(h.channel().await)
        .list_approval_rules(authed(token, ListApprovalRulesRequest {}))
        .await
        .map(|r| r.into_inner().rules)
}

fn rule<'a>(rules: &'a [ApprovalRule], scope: &str) -> &'a ApprovalRule {
    rules.iter().find(|r| r.scope == scope).unwrap_or_else(|| panic!("no {scope} in {rules:?}"))
}

/// The refusal's error body.
pub(crate) fn body(status: &tonic::Status) -> mttrly_core::MttrlyError {
    mttrly_proto::status::from_status(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_rules_decide_quorum_approvers_overrides_and_ttl() {
    let h = harness(|cfg| {
        cfg.action_ttl_minutes = 50;
        cfg.approvals = approvals(json!({
            "production": {
                "quorum": 2,
                "ttl_minutes": 45,
                "action": {
                    "decommission": { "quorum": 1, "approvers": ["user:carol"] },
                    "playbook": { "ttl_minutes": 20 }
                },
                "playbook": { "restart-docker": { "quorum": 1, "ttl_minutes": 5 } }
            },
            "staging": { "approvers": ["admin"] }
        }));
    })
    .await;
    let bob = add_user(&h, "bob", "operator").await;
    let carol = add_user(&h, "carol", "operator").await;
    let dave = add_user(&h, "dave", "admin").await;

    // The effective rules, as `policy approvals` reads them: the layers resolved.
    let effective = rules(&h, &bob).await.unwrap();
    let prod = rule(&effective, "approvals.production");
    assert_eq!((prod.quorum, prod.ttl_minutes, prod.requester_may_approve), (2, 45, false), "{prod:?}");
    assert_eq!(prod.usable_channels, ["cli", "dashboard"], "only channels this central offers: {prod:?}");
    assert!(prod.infeasible.is_empty(), "admin, bob, carol, dave: two others for anyone: {prod:?}");
    let decommission = rule(&effective, "approvals.production.action.decommission");
    assert_eq!((decommission.quorum, decommission.approvers.as_slice()), (1, &["user:carol".to_owned()][..]));
    let docker = rule(&effective, "approvals.production.playbook.restart-docker");
    assert_eq!((docker.quorum, docker.ttl_minutes), (1, 5), "{docker:?}");
    assert_eq!(rule(&effective, "approvals.production.action.playbook").ttl_minutes, 20);
    assert_eq!(rule(&effective, "approvals.development").ttl_minutes, 50, "action_ttl_minutes is the default ttl");

    // Quorum 2 on production: one approval is recorded, the second human's runs it.
    // The server's environment is checked scope by scope: only carol can decide a decommission,
    // so one she asks for herself could never be approved; the rest of production is fine.
    let db1 = add_server(&h, "db-1", mttrly_core::Environment::Production).await;
    let lines: Vec<&str> = db1.approval_warning.lines().collect();
    assert_eq!(lines.len(), 1, "{}", db1.approval_warning);
    assert!(lines[0].starts_with("approvals.production.action.decommission:"), "{}", db1.approval_warning);
    assert!(!rule(&effective, "approvals.production.action.decommission").infeasible.is_empty());
    let id = request(&h, &h.admin, "mttrly_regenerate_install_token", json!({ "server_id": db1.server_id })).await;
    let shown = get_action(h.channel().await, &bob, &id).await;
    let view: Value = serde_json::from_str(&shown.view_json).unwrap();
    assert_eq!(view["approvals_required"], 2, "{view}");
    let ttl = shown.expires_at_unix_ms - shown.created_at_unix_ms;
    assert!((44 * 60_000..=45 * 60_000).contains(&ttl), "the rule's 45 minutes, not the default: {ttl} ms");
    assert_eq!(shown.second_factor, "none");
    let err = approve(&h, &h.admin, &id, "").await.unwrap_err();
    assert!(body(&err).message().contains("four-eyes"), "{err:?}");
    assert_eq!(approve(&h, &bob, &id, "").await.unwrap().status, "pending_approval", "one of two");
    let again = approve(&h, &bob, &id, "").await.unwrap_err();
    assert_eq!(code(&again), ErrorCode::ValidationError, "the same human twice counts once: {again:?}");
    assert_eq!(approve(&h, &carol, &id, "").await.unwrap().status, "succeeded", "the second human's approval runs it");

    // Per action type: only carol, by name, decides a production decommission; one is enough.
    let db2 = add_server(&h, "db-2", mttrly_core::Environment::Production).await;
    let id = request(&h, &h.admin, "mttrly_decommission_server", json!({ "server_id": db2.server_id })).await;
    for token in [&bob, &dave] {
        let err = approve(&h, token, &id, "").await.unwrap_err();
        assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
        assert!(body(&err).message().contains("user carol"), "{err:?}");
    }
    assert_eq!(status_of(&h, &id).await, "pending_approval");
    assert_eq!(approve(&h, &carol, &id, "").await.unwrap().status, "succeeded");

    // Per playbook, on a live (simulated) agent: restart-docker needs one approval and lives
    // 5 minutes; another playbook keeps the environment's quorum and the action type's ttl.
    let web = add_server(&h, "web-1", mttrly_core::Environment::Production).await;
    let all: CapabilitySet = CapabilityId::ALL.iter().copied().collect();
    let url = h.central.grpc_url().to_owned();
    let token = web.install_token.clone();
    let sim = tokio::task::spawn_blocking(move || SimAgent::start(&url, &token, "1.0.0-sim", all, SimHost::default()))
        .await
        .unwrap();
    let online = mttrly_tests::in_process::channel(&h.central).await;
    for _ in 0..100 {
        let (_, server) =
            call_tool(online.clone(), &h.admin, "mttrly_get_server_status", json!({ "server_id": sim.server_id }))
                .await;
        if server["server"]["status"] == "online" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let docker = request(
        &h,
        &h.admin,
        "mttrly_run_playbook",
        json!({ "server_id": sim.server_id, "playbook_id": "restart-docker" }),
    )
    .await;
    let shown = get_action(h.channel().await, &bob, &docker).await;
    let ttl = shown.expires_at_unix_ms - shown.created_at_unix_ms;
    assert!((4 * 60_000..=5 * 60_000).contains(&ttl), "the playbook's 5 minutes: {ttl} ms");
    let other = request(
        &h,
        &h.admin,
        "mttrly_run_playbook",
        json!({ "server_id": sim.server_id, "playbook_id": "clean-apt-cache" }),
    )
    .await;
    let shown = get_action(h.channel().await, &bob, &other).await;
    let ttl = shown.expires_at_unix_ms - shown.created_at_unix_ms;
    assert!((19 * 60_000..=20 * 60_000).contains(&ttl), "the playbook action type's 20 minutes: {ttl} ms");
    assert_eq!(approve(&h, &bob, &docker, "").await.unwrap().status, "succeeded", "one approval is its quorum");
    assert_eq!(approve(&h, &bob, &other, "").await.unwrap().status, "pending_approval", "two for the others");
    assert_eq!(sim.host.actions.lock().unwrap().len(), 1, "only the approved playbook ran");

    // Staging: admins only, so an operator is refused and an admin's own request is theirs.
    let stage = add_server(&h, "stage-1", mttrly_core::Environment::Staging).await;
    let id = request(&h, &h.admin, "mttrly_regenerate_install_token", json!({ "server_id": stage.server_id })).await;
    let err = approve(&h, &bob, &id, "").await.unwrap_err();
    assert!(body(&err).message().contains("only admins may decide"), "{err:?}");
    assert_eq!(approve(&h, &h.admin, &id, "").await.unwrap().status, "succeeded");
    drop(sim);
    h.central.shutdown().await;
}

#[tokio::test]
async fn an_invalid_approvals_config_is_refused_at_start_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = mttrly_tests::in_process::config(dir.path());
    cfg.approvals = approvals(json!({
        "prod": { "quorum": 1 },
        "production": {
            "requester_may_approve": true,
            "approvers": ["viewer", "user:../x"],
            "channels": ["mcp"],
            "quorum": 0,
            "second_factor": "sms",
            "action": { "reboot": { "quorum": 1 } }
        }
    }));
    let Err(mttrly_central::server::StartError::Config(err)) = mttrly_central::server::start(cfg).await else {
        panic!("central started with an invalid [approvals]");
    };
    assert_eq!(err.code(), ErrorCode::ValidationError);
    let problems = err.details()["problems"].as_array().unwrap().clone();
    assert!(problems.len() >= 8, "{problems:?}");
    for expected in [
        "approvals.prod: unknown environment",
        "viewers never decide",
        "`user:../x` does not name a user",
        "`mcp` cannot carry a human's decision",
        "quorum: 0 is outside",
        "`sms` is not one of none, totp",
        "approvals.production.action.reboot: unknown action type",
    ] {
        assert!(err.message().contains(expected), "missing {expected:?} in {}", err.message());
    }
    // `requester_may_approve` without TOTP in production is refused (solo mode needs a code).
    let cfg = Config {
        approvals: approvals(json!({ "production": { "requester_may_approve": true } })),
        ..Config::default()
    };
    assert!(cfg.validate().unwrap_err().message().contains("second_factor = \"totp\""));
}

/// Starts a TOTP enrolment for `token`'s owner and confirms it with the current code; returns the
/// secret, the step the confirmation used (now spent) and the recovery codes.
pub(crate) async fn enroll_totp(h: &Harness, token: &str) -> (TotpSecret, u64, Vec<String>) {
    let started = UserServiceClient::new(h.channel().await)
        .start_totp_enrollment(authed(token, StartTotpEnrollmentRequest { current_code: String::new() }))
        .await
        .unwrap()
        .into_inner();
    let secret = TotpSecret::from_base32(&started.secret).unwrap();
    let step = now_step();
    let confirmed = UserServiceClient::new(h.channel().await)
        .confirm_totp_enrollment(authed(token, ConfirmTotpEnrollmentRequest { code: code_at(&secret, step) }))
        .await
        .unwrap()
        .into_inner();
    (secret, step, confirmed.recovery_codes)
}

/// Consecutive second-factor failures counted against `user`.
async fn failures(h: &Harness, account: &mttrly_core::ids::AccountId, user: &mttrly_core::ids::UserId) -> u32 {
    h.central.central.db.account(account).people().factor(user).await.unwrap().unwrap().lockout.failures
}

pub(crate) fn now_step() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap() / STEP_SECONDS
}

pub(crate) fn code_at(secret: &TotpSecret, step: u64) -> String {
    format!("{:06}", secret.code_at(step))
}

/// Runs `mttrly-cli ARGS` against `h` as `token` on a blocking thread (the central runs on this
/// test's runtime), with `stdin` piped in.
pub(crate) async fn cli(h: &Harness, token: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = Command::new(mttrly_tests::binary("mttrly-cli"));
    command.args(["--central", h.central.grpc_url(), "--token", token]).args(args);
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("mttrly-cli");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_mode_approves_ones_own_production_fix_with_a_fresh_totp_code() {
    let h = harness(|cfg| {
        cfg.approvals = approvals(json!({
            "production": { "requester_may_approve": true, "second_factor": "totp" }
        }));
    })
    .await;
    let account = h.central.central.db.first_account().await.unwrap().unwrap().0;
    let admin_id =
        match mttrly_central::auth::resolve(&h.central.central, Some(&h.admin), mttrly_central::auth::Resource::Api)
            .await
            .unwrap()
            .principal
        {
            mttrly_core::Principal::Human { user_id, .. } => user_id,
            other @ mttrly_core::Principal::Assistant { .. } => panic!("{other:?}"),
        };

    // Solo mode, but nobody has a second factor yet: reported, with the fix.
    let effective = rules(&h, &h.admin).await.unwrap();
    let prod = rule(&effective, "approvals.production");
    assert!(prod.solo_mode && !prod.no_four_eyes, "{prod:?}");
    assert!(prod.infeasible.contains("enroll"), "{prod:?}");
    let db1 = add_server(&h, "db-1", mttrly_core::Environment::Production).await;
    assert!(db1.approval_warning.contains("approvals.production"), "{}", db1.approval_warning);
    let (_, submitted) = call_tool(
        h.channel().await,
        &h.admin,
        "mttrly_regenerate_install_token",
        json!({ "server_id": db1.server_id }),
    )
    .await;
    let first = submitted["action_id"].as_str().unwrap().to_owned();
    let next_step = submitted["next_step"].as_str().unwrap();
    assert!(next_step.contains("TOTP") && next_step.contains("Warning: nobody can approve"), "{next_step}");
    let shown = get_action(h.channel().await, &h.admin, &first).await;
    assert_eq!(shown.second_factor, "totp");
    assert!(shown.approval_warning.contains("second factor"), "{}", shown.approval_warning);

    // The admin enrols: the warning is gone (rules, servers add, actions show).
    let (secret, enrolled_at, recovery) = enroll_totp(&h, &h.admin).await;
    assert!(rule(&rules(&h, &h.admin).await.unwrap(), "approvals.production").infeasible.is_empty());
    assert!(add_server(&h, "db-2", mttrly_core::Environment::Production).await.approval_warning.is_empty());
    assert!(get_action(h.channel().await, &h.admin, &first).await.approval_warning.is_empty());

    // No code: refused, saying where to type one; nothing counted, nothing changed.
    let err = approve(&h, &h.admin, &first, "").await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden, "{err:?}");
    assert_eq!(body(&err).details()["second_factor"], "totp");
    assert!(body(&err).message().contains("mttrly-cli actions approve"), "{err:?}");
    // Through MCP: never a decision, and the answer says the code is the human's to type.
    let (is_error, refused) = call_tool(
        h.channel().await,
        &h.admin,
        "mttrly_approve_action",
        json!({ "action_id": first, "decision": "approve" }),
    )
    .await;
    assert!(is_error, "{refused}");
    assert_eq!(
        (refused["code"].as_str(), refused["details"]["second_factor"].as_str()),
        (Some("FORBIDDEN"), Some("totp"))
    );
    assert!(refused["message"].as_str().unwrap().contains("never ask them for the code"), "{refused}");
    // Relayed from MCP: refused by the channel, whatever code comes along.
    let relayed = ActionServiceClient::new(h.channel().await)
        .approve_action(authed(
            &h.admin,
            ApproveActionRequest {
                action_id: first.clone(),
                content_sha256: shown.content_sha256.clone(),
                wait_seconds: 0,
                via_mcp: true,
                second_factor_code: code_at(&secret, enrolled_at + 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(body(&relayed).details()["channel"], "mcp", "{relayed:?}");
    assert_eq!(failures(&h, &account, &admin_id).await, 0);

    // A wrong code: AUTH_FAILED, counted toward the lockout, still pending.
    let wrong = format!("{:06}", (secret.code_at(enrolled_at + 1) + 1) % 1_000_000);
    let err = approve(&h, &h.admin, &first, &wrong).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "{err:?}");
    assert_eq!(failures(&h, &account, &admin_id).await, 1);
    assert_eq!(status_of(&h, &first).await, "pending_approval");

    // A fresh code: the admin approves their own production fix; audited as solo with TOTP.
    let fresh = code_at(&secret, enrolled_at + 1);
    assert_eq!(approve(&h, &h.admin, &first, &fresh).await.unwrap().status, "succeeded");
    assert_eq!(failures(&h, &account, &admin_id).await, 0, "a success clears the count");

    // The same code again, for another action: refused as spent.
    let second = request(&h, &h.admin, "mttrly_regenerate_install_token", json!({ "server_id": db1.server_id })).await;
    let err = approve(&h, &h.admin, &second, &fresh).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed, "a replayed code: {err:?}");
    assert_eq!(status_of(&h, &second).await, "pending_approval");

    // The CLI asks for the code (here on stdin, as a script would pipe it) and sends it; a
    // recovery code stands in for a TOTP code (the next TOTP step may be half a minute away).
    let cli_code = recovery[0].clone();
    let out =
        cli(&h, &h.admin, &["--output", "json", "actions", "approve", &second, "--yes"], &format!("{cli_code}\n"))
            .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let approved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(approved["status"], "succeeded", "{approved}");
    // Without a code on stdin, the CLI refuses before calling central.
    let third = request(&h, &h.admin, "mttrly_regenerate_install_token", json!({ "server_id": db1.server_id })).await;
    let out = cli(&h, &h.admin, &["--output", "json", "actions", "approve", &third, "--yes"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no code entered"), "{out:?}");
    assert_eq!(status_of(&h, &third).await, "pending_approval");
    let shown = cli(&h, &h.admin, &["actions", "show", &third], "").await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("fresh TOTP code") && text.contains("asks for your TOTP code"), "{text}");

    // The audit says how each approval was made.
    h.central.central.audit.flush().await;
    let entries = AuditServiceClient::new(h.channel().await)
        .list_audit(authed(&h.admin, ListAuditRequest { server_id: String::new(), limit: 500, before_seq: 0 }))
        .await
        .unwrap()
        .into_inner()
        .entries_json;
    let decisions: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|e| e["kind"] == "approval_decision" && e["parameters"]["decision"] == "approve")
        .filter(|e| e["outcome"]["status"] == "ok")
        .map(|e| e["parameters"].clone())
        .collect();
    let ok: Vec<&Value> = decisions.iter().filter(|p| p["solo"] == true).collect();
    assert!(ok.len() >= 2, "{decisions:?}");
    assert!(ok.iter().all(|p| p["second_factor"] == "totp"), "{decisions:?}");
    let text = serde_json::to_string(&decisions).unwrap();
    assert!(!text.contains(&fresh) && !text.contains(&cli_code), "a code in the audit log");
    h.central.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_and_their_assistant_read_but_never_ask_for_a_change() {
    let h = harness(|_| {}).await;
    let vic = add_user(&h, "vic", "viewer").await;
    let staging = add_server(&h, "web-1", mttrly_core::Environment::Staging).await;
    let server = json!(staging.server_id);
    let refused = [
        ("mttrly_regenerate_install_token", json!({ "server_id": server }), "request changes"),
        (
            "mttrly_execute_command",
            json!({ "server_id": server, "command": "touch /tmp/vic-was-here" }),
            "request changes",
        ),
        ("mttrly_start_investigation", json!({ "server_id": server, "title": "disk" }), "open investigations"),
    ];
    for (tool, args, what) in refused {
        let (is_error, answer) = call_tool(h.channel().await, &vic, tool, args).await;
        assert!(is_error, "{tool}: {answer}");
        assert_eq!(answer["code"], "FORBIDDEN", "{tool}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains(&format!("vic has the viewer role, which reads but does not {what}")),
            "{tool}: {answer}"
        );
    }
    // Nothing was stored: no action, no investigation.
    let (_, actions) = call_tool(h.channel().await, &h.admin, "mttrly_get_pending_actions", json!({})).await;
    assert_eq!(actions["actions"], json!([]), "{actions}");
    // Reading is theirs: the fleet, a server's status.
    let (is_error, listed) = call_tool(h.channel().await, &vic, "mttrly_list_servers", json!({})).await;
    assert!(!is_error && listed["servers"].as_array().unwrap().len() == 1, "{listed}");
    let (is_error, status) =
        call_tool(h.channel().await, &vic, "mttrly_get_server_status", json!({ "server_id": server })).await;
    assert!(!is_error, "{status}");
    h.central.shutdown().await;
}

#[tokio::test]
async fn the_rules_are_for_humans_of_the_account_and_feasibility_is_per_account() {
    let h = harness(|_| {}).await;
    let vic = add_user(&h, "vic", "viewer").await;
    // Any human reads them, viewers too; the default production rule cannot be satisfied by an
    // admin alone (a viewer never approves).
    let seen = rules(&h, &vic).await.unwrap();
    let prod = rule(&seen, "approvals.production");
    assert!(prod.infeasible.contains("mttrly-cli users add NAME --role operator"), "{prod:?}");
    assert!(prod.infeasible.contains("requester_may_approve = true with second_factor"), "{prod:?}");
    assert!(rule(&seen, "approvals.staging").no_four_eyes, "the built-in staging rule: {seen:?}");
    // An assistant token is refused.
    let assistant = mttrly_proto::central::v1::account_service_client::AccountServiceClient::new(h.channel().await)
        .create_token(authed(
            &h.admin,
            mttrly_proto::central::v1::CreateTokenRequest { assistant_name: "claude".into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert_eq!(code(&rules(&h, &assistant).await.unwrap_err()), ErrorCode::Forbidden);
    // Another account, whose admin has an operator beside them, can satisfy it; this one still
    // cannot: feasibility is judged on the caller's own account.
    let eve = mttrly_central::secrets::generate(mttrly_central::secrets::SecretKind::Human);
    h.central
        .central
        .db
        .create_tenant("other", Plan::DeploymentCrew, "eve", &mttrly_central::secrets::hash(&eve))
        .await
        .unwrap();
    UserServiceClient::new(h.channel().await)
        .add_user(authed(
            &eve,
            AddUserRequest {
                name: "olga".into(),
                role: "operator".into(),
                email: String::new(),
                issue_token: true,
                second_factor_code: String::new(),
            },
        ))
        .await
        .unwrap();
    assert!(rule(&rules(&h, &eve).await.unwrap(), "approvals.production").infeasible.is_empty());
    assert!(!rule(&rules(&h, &h.admin).await.unwrap(), "approvals.production").infeasible.is_empty());
    h.central.shutdown().await;
}

/// A `mttrly-central serve` child whose log (stderr, at `warn`) is kept.
struct Served {
    child: Option<Child>,
    grpc_url: String,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(data_dir: &Path, config: Option<&Path>) -> Self {
        let mut command = Command::new(mttrly_tests::binary("mttrly-central"));
        command.args(["--output", "json", "serve", "--data-dir"]).arg(data_dir);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env(mttrly_central::env::LOG, "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let kept = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                kept.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        std::thread::spawn(move || {
            let _ = stdout.read_to_end(&mut Vec::new());
        });
        let ready: Value =
            serde_json::from_str(&ready).unwrap_or_else(|e| panic!("{e}: {ready:?}; log: {}", log.lock().unwrap()));
        Self { child: Some(child), grpc_url: ready["grpc_url"].as_str().unwrap().to_owned(), log, reader: Some(reader) }
    }

    /// Waits until the log (read on its own thread) has a line containing `text`.
    fn wait_for_log(&self, text: &str) -> String {
        mttrly_tests::wait_for(text, Duration::from_secs(10), || {
            let log = self.log.lock().unwrap().clone();
            log.contains(text).then_some(log)
        })
    }

    /// Stops the process and returns its whole log.
    fn finish(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            mttrly_tests::terminate(&mut child);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log.lock().unwrap().clone()
    }

    fn cli(&self, token: &str, args: &[&str]) -> std::process::Output {
        Command::new(mttrly_tests::binary("mttrly-cli"))
            .args(["--central", &self.grpc_url, "--token", token])
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.cli(token, &all);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            mttrly_tests::terminate(&mut child);
        }
    }
}

/// The log lines reporting a rule nobody can satisfy.
fn unsatisfiable(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("approval rule cannot be satisfied")).collect()
}

fn init(dir: &Path) -> (std::path::PathBuf, String) {
    let data_dir = dir.join("central");
    let out = Command::new(mttrly_tests::binary("mttrly-central"))
        .args(["--output", "json", "init", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let init: Value = serde_json::from_slice(&out.stdout).unwrap();
    (data_dir, init["admin_token"].as_str().unwrap().to_owned())
}

#[test]
fn a_rule_nobody_can_satisfy_is_reported_at_start_in_servers_add_actions_show_and_policy_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, admin) = init(dir.path());
    let central = Served::start(&data_dir, None);

    // At start: a WARN line for the production rule of the one account, with the fix.
    let log = central.wait_for_log("approval rule cannot be satisfied");
    let warned = unsatisfiable(&log);
    assert!(warned[0].contains("approvals.production") && warned[0].contains("WARN"), "{log}");
    assert!(warned[0].contains("mttrly-cli users add NAME --role operator"), "{log}");

    // servers add --env production: a `warning:` line (stderr), `approval_warning` in JSON.
    let out = central.cli(&admin, &["servers", "add", "db-1", "--env", "production"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("warning: approvals.production:"), "{stderr}");
    assert!(stderr.contains("mttrly-cli users add NAME --role operator"), "{stderr}");
    let added = central.json(&admin, &["servers", "add", "db-2", "--env", "production"]);
    assert!(added["approval_warning"].as_str().unwrap().contains("other than the requester"), "{added}");
    let staging = central.json(&admin, &["servers", "add", "stage-1", "--env", "staging"]);
    assert_eq!(staging["approval_warning"], Value::Null, "the admin may approve staging: {staging}");

    // An action the admin's assistant asks for on production: `actions show` says nobody can.
    let assistant =
        central.json(&admin, &["tokens", "create", "--assistant", "claude"])["token"].as_str().unwrap().to_owned();
    let server_id = added["server_id"].as_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let channel =
        runtime.block_on(tonic::transport::Channel::from_shared(central.grpc_url.clone()).unwrap().connect()).unwrap();
    let (_, asked) = runtime.block_on(call_tool(
        channel,
        &assistant,
        "mttrly_regenerate_install_token",
        json!({ "server_id": server_id }),
    ));
    let id = asked["action_id"].as_str().unwrap().to_owned();
    let shown = central.json(&admin, &["actions", "show", &id]);
    assert!(shown["approval_warning"].as_str().unwrap().contains("nobody can approve this action"), "{shown}");
    let text = String::from_utf8_lossy(&central.cli(&admin, &["actions", "show", &id]).stdout).into_owned();
    assert!(text.lines().any(|l| l.starts_with("warning:") && l.contains("users add NAME")), "{text}");

    // policy approvals: the table flags it, JSON says why.
    let out = central.cli(&admin, &["policy", "approvals"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("SATISFIABLE") && table.contains("four eyes"), "{table}");
    assert!(table.contains("may approve: no four eyes"), "staging and development say so: {table}");
    assert!(table.lines().any(|l| l.starts_with("warning: approvals.production:")), "{table}");
    let listed = central.json(&admin, &["policy", "approvals"]);
    let prod = listed["rules"].as_array().unwrap().iter().find(|r| r["scope"] == "approvals.production").unwrap();
    assert_eq!((prod["feasible"].as_bool(), prod["quorum"].as_u64()), (Some(false), Some(1)), "{prod}");
    assert_eq!(prod["usable_channels"], json!(["cli", "dashboard"]), "{prod}");

    // A teammate: the warning is gone everywhere, for the same action too.
    central.json(&admin, &["users", "add", "bob", "--role", "operator", "--print-token"]);
    assert_eq!(central.json(&admin, &["actions", "show", &id])["approval_warning"], Value::Null);
    assert_eq!(
        central.json(&admin, &["servers", "add", "db-3", "--env", "production"])["approval_warning"],
        Value::Null
    );
    let listed = central.json(&admin, &["policy", "approvals"]);
    assert!(listed["rules"].as_array().unwrap().iter().all(|r| r["feasible"] == true), "{listed}");
    let out = central.cli(&admin, &["policy", "approvals"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning:"));
    let log = central.finish();
    assert_eq!(unsatisfiable(&log).len(), 1, "one rule, one account, one line: {log}");

    // And at the next start.
    let log = Served::start(&data_dir, None).finish();
    assert!(unsatisfiable(&log).is_empty(), "{log}");
}

#[test]
fn policy_approvals_checks_a_config_file_offline_and_central_refuses_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "action_ttl_minutes = 40\n[approvals.production]\nrequester_may_approve = true\nsecond_factor = \"totp\"\n\
         [approvals.production.playbook.restart-docker]\nttl_minutes = 10\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[approvals.production]\nrequester_may_approve = true\nquorum = 0\nchannels = [\"mcp\"]\n[approvals.prod]\nquorum = 1\n",
    )
    .unwrap();
    let offline = |args: &[&str]| Command::new(mttrly_tests::binary("mttrly-cli")).args(args).output().unwrap();

    let out = offline(&["policy", "approvals", "--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("valid") && text.contains("solo (totp)"), "{text}");
    assert!(text.contains("approvals.production.playbook.restart-docker"), "{text}");
    let out = offline(&["--output", "json", "policy", "approvals", "--config", good.to_str().unwrap()]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    let rules = json["rules"].as_array().unwrap();
    let prod = rules.iter().find(|r| r["scope"] == "approvals.production").unwrap();
    assert_eq!((prod["solo_mode"].as_bool(), prod["ttl_minutes"].as_u64()), (Some(true), Some(40)), "{prod}");
    assert_eq!(prod["feasible"], Value::Null, "offline: no account to judge");

    let out = offline(&["policy", "approvals", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "approvals.prod: unknown environment",
        "quorum: 0 is outside",
        "`mcp` cannot carry",
        "second_factor = \"totp\"",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in {stderr}");
    }
    let out = offline(&["--output", "json", "policy", "approvals", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "VALIDATION_ERROR");
    assert_eq!(err["details"]["problems"].as_array().unwrap().len(), 4, "{err}");

    // Central refuses to start with the same file, listing the same problems.
    let (data_dir, _) = init(dir.path());
    let out = Command::new(mttrly_tests::binary("mttrly-central"))
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .arg("--config")
        .arg(&bad)
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("VALIDATION_ERROR"), "{stderr}");
    for expected in ["approvals.prod: unknown environment", "quorum: 0 is outside", "`mcp` cannot carry"] {
        assert!(stderr.contains(expected), "missing {expected:?} in {stderr}");
    }
    // The good file starts.
    let log = Served::start(&data_dir, Some(&good)).finish();
    let warned = unsatisfiable(&log);
    assert!(warned.iter().any(|l| l.contains("enroll")), "solo mode, and nobody has TOTP yet: {log}");
}
