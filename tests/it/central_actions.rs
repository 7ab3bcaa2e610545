//! The action engine through the real gRPC API: assistants request, humans decide, actions run at
//! most once, expire, survive restarts as "outcome unknown", and stay inside their tenant.

#![allow(clippy::unwrap_used)]

use crate::common::{self, authed};
use mttrly_central::config::Config;
use mttrly_central::secrets;
use mttrly_central::server::{RunningCentral, start};
use mttrly_core::Role;
use mttrly_core::{ErrorCode, Plan};
use mttrly_proto::agent::v1::EnrollRequest;
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::{
    AddServerRequest, ApproveActionRequest, ListActionsRequest, ListAuditRequest, ListServersRequest,
    RejectActionRequest,
};
use serde_json::Value;
use tonic::transport::Channel;

struct Harness {
    dir: tempfile::TempDir,
    config: Config,
    central: RunningCentral,
    admin: String,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    let init = mttrly_central::init::init(&cfg, None).unwrap();
    let central = start(cfg.clone()).await.unwrap();
    Harness { dir, config: cfg, central, admin: init.admin_token }
}

impl Harness {
    async fn channel(&self) -> Channel {
        Channel::from_shared(self.central.grpc_url().to_owned()).unwrap().connect().await.unwrap()
    }

    /// A token for a new principal of the first account.
    async fn token(&self, name: &str, role: Role, assistant: Option<&str>) -> String {
        let token = secrets::generate(if assistant.is_some() {
            secrets::SecretKind::Assistant
        } else {
            secrets::SecretKind::Human
        });
        let hash = secrets::hash(&token);
        let db = &self.central.central.db;
        let (account, _) = db.first_account().await.unwrap().unwrap();
        let users = db.account(&account).users();
        let user = match assistant {
            Some(_) => users.first_admin().await.unwrap().unwrap(),
            None => users.create(name, role).await.unwrap(),
        };
        users.insert_token(&hash, &user, assistant, &mttrly_core::ToolSurface::ALL).await.unwrap();
        token
    }

    async fn add_server(&self, name: &str, env: i32) -> (String, String) {
        let r = ServerServiceClient::new(self.channel().await)
            .add_server(authed(&self.admin, AddServerRequest { name: name.into(), environment: env }))
            .await
            .unwrap()
            .into_inner();
        (r.server_id, r.install_token)
    }

    async fn tool(&self, token: &str, tool: &str, args: Value) -> (bool, Value) {
        common::call_tool(self.channel().await, token, tool, args).await
    }

    async fn approve(&self, token: &str, id: &str, sha: &str) -> Result<Value, ErrorCode> {
        ActionServiceClient::new(self.channel().await)
            .approve_action(authed(
                token,
                ApproveActionRequest {
                    action_id: id.into(),
                    content_sha256: sha.into(),
                    wait_seconds: 10,
                    via_mcp: false,
                    second_factor_code: String::new(),
                },
            ))
            .await
            .map(|r| serde_json::from_str(&r.into_inner().action.unwrap().view_json).unwrap())
            .map_err(|s| mttrly_proto::status::from_status(&s).code())
    }

    async fn sha(&self, id: &str) -> String {
        common::get_action(self.channel().await, &self.admin, id).await.content_sha256
    }

    async fn audit(&self) -> Vec<Value> {
        self.central.central.audit.flush().await;
        AuditServiceClient::new(self.channel().await)
            .list_audit(authed(&self.admin, ListAuditRequest { server_id: String::new(), before_seq: 0, limit: 500 }))
            .await
            .unwrap()
            .into_inner()
            .entries_json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn an_assistant_requests_a_human_approves_and_it_runs_once() {
    let h = harness().await;
    let assistant = h.token("", Role::Admin, Some("claude-code")).await;
    let (server_id, token) = h.add_server("web-1", 2).await;
    let mut agents = AgentServiceClient::new(h.channel().await);
    let old = agents
        .enroll(EnrollRequest { install_token: token, hostname: "h".into(), agent_version: "t".into() })
        .await
        .unwrap()
        .into_inner();

    let (is_error, submitted) =
        h.tool(&assistant, "mttrly_regenerate_install_token", serde_json::json!({ "server_id": server_id })).await;
    assert!(!is_error, "{submitted}");
    assert_eq!(submitted["status"], "pending_approval");
    assert_eq!(submitted["requires_approval"], true);
    assert!(submitted["next_step"].as_str().unwrap().contains("mttrly-cli actions approve"));
    let id = submitted["action_id"].as_str().unwrap().to_owned();

    // Pending actions are listed with their expiry.
    let (_, pending) = h.tool(&assistant, "mttrly_get_pending_actions", serde_json::json!({})).await;
    assert_eq!(pending["actions"][0]["action_id"], id.as_str());
    assert!(pending["actions"][0]["expires_at"].is_string());

    // The assistant cannot approve its own action, whatever it tries; the attempt is audited.
    let sha = h.sha(&id).await;
    assert_eq!(h.approve(&assistant, &id, &sha).await.unwrap_err(), ErrorCode::Forbidden);
    let refused = h.audit().await;
    assert!(refused.iter().any(|e| e["kind"] == "approval_decision"
        && e["actor"]["type"] == "assistant"
        && e["outcome"]["code"] == "FORBIDDEN"));

    // A human approves what they were shown; it runs, once.
    let done = h.approve(&h.admin, &id, &sha).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let command = done["result"]["data"]["agent_command"].as_str().unwrap();
    assert!(command.contains("mttrly_i_"), "the approver sees the reinstall command once: {command}");
    // Stored results never keep the token.
    let (_, stored) = h.tool(&assistant, "mttrly_get_action_result", serde_json::json!({ "action_id": id })).await;
    assert!(!stored.to_string().contains("mttrly_i_"), "{stored}");
    assert_eq!(stored["approvals"][0]["channel"], "cli");

    // Approving twice is a clear error, and nothing runs a second time.
    assert_eq!(h.approve(&h.admin, &id, &sha).await.unwrap_err(), ErrorCode::ValidationError);
    let executions =
        h.audit().await.iter().filter(|e| e["kind"] == "execution_result" && e["subject"] == id.as_str()).count();
    assert_eq!(executions, 1);

    // The old credentials stopped working; the new install token enrolls the same server.
    let new_token = command.split_whitespace().skip_while(|w| *w != "--token").nth(1).unwrap().to_owned();
    let mut tx_req = tonic::Request::new(tokio_stream::iter(Vec::<mttrly_proto::agent::v1::AgentMessage>::new()));
    tx_req.metadata_mut().insert("authorization", format!("Bearer {}", old.agent_secret).parse().unwrap());
    tx_req.metadata_mut().insert("x-mttrly-server-id", old.server_id.parse().unwrap());
    let err = agents.session(tx_req).await.unwrap_err();
    assert_eq!(mttrly_proto::status::from_status(&err).code(), ErrorCode::AuthFailed);
    let again = agents
        .enroll(EnrollRequest { install_token: new_token, hostname: "h".into(), agent_version: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.server_id, server_id);
    h.central.shutdown().await;
}

#[tokio::test]
async fn expired_changed_and_cross_tenant_approvals_are_refused() {
    let h = harness().await;
    let (server_id, _) = h.add_server("web-1", 2).await;
    let (_, submitted) =
        h.tool(&h.admin, "mttrly_decommission_server", serde_json::json!({ "server_id": server_id })).await;
    let id = submitted["action_id"].as_str().unwrap().to_owned();
    let sha = h.sha(&id).await;

    // The content a human saw must be the content that runs.
    assert_eq!(h.approve(&h.admin, &id, &"0".repeat(64)).await.unwrap_err(), ErrorCode::ValidationError);

    // Another tenant cannot see or decide it.
    let other = secrets::generate(secrets::SecretKind::Human);
    let hash = secrets::hash(&other);
    h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &hash).await.unwrap();
    assert_eq!(h.approve(&other, &id, &sha).await.unwrap_err(), ErrorCode::ActionNotFound);
    let listed = ActionServiceClient::new(h.channel().await)
        .list_actions(authed(&other, ListActionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.actions.is_empty());
    let err = ActionServiceClient::new(h.channel().await)
        .reject_action(authed(
            &other,
            RejectActionRequest { action_id: id.clone(), reason: String::new(), via_mcp: false },
        ))
        .await
        .unwrap_err();
    assert_eq!(mttrly_proto::status::from_status(&err).code(), ErrorCode::ActionNotFound);

    // Time runs out: the approval is ACTION_EXPIRED and the action is expired, not pending.
    let stale = id.clone();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE actions SET expires_at = 1 WHERE id = ?1", [&stale])
        })
        .await
        .unwrap();
    assert_eq!(h.approve(&h.admin, &id, &sha).await.unwrap_err(), ErrorCode::ActionExpired);
    let (_, view) = h.tool(&h.admin, "mttrly_get_action_result", serde_json::json!({ "action_id": id })).await;
    assert_eq!(view["status"], "expired");
    let servers = ServerServiceClient::new(h.channel().await)
        .list_servers(authed(&h.admin, ListServersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(servers.servers.len(), 1, "the expired decommission did not run");
    h.central.shutdown().await;
}

#[tokio::test]
async fn production_needs_a_second_human_and_racing_approvals_run_once() {
    let h = harness().await;
    let (server_id, _) = h.add_server("db-1", 1).await;
    let (_, submitted) =
        h.tool(&h.admin, "mttrly_decommission_server", serde_json::json!({ "server_id": server_id })).await;
    let id = submitted["action_id"].as_str().unwrap().to_owned();
    let sha = h.sha(&id).await;

    // Four eyes: the requester cannot approve in production.
    assert_eq!(h.approve(&h.admin, &id, &sha).await.unwrap_err(), ErrorCode::Forbidden);
    // A viewer cannot either.
    let viewer = h.token("vic", Role::Viewer, None).await;
    assert_eq!(h.approve(&viewer, &id, &sha).await.unwrap_err(), ErrorCode::Forbidden);

    // Two other humans race; exactly one decision runs the action.
    let (bob, carol) = (h.token("bob", Role::Operator, None).await, h.token("carol", Role::Operator, None).await);
    let (a, b) = tokio::join!(h.approve(&bob, &id, &sha), h.approve(&carol, &id, &sha));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let winner = a.or(b).unwrap();
    assert_eq!(winner["status"], "succeeded", "{winner}");
    let executions =
        h.audit().await.iter().filter(|e| e["kind"] == "execution_result" && e["subject"] == id.as_str()).count();
    assert_eq!(executions, 1);
    h.central.shutdown().await;
}

#[tokio::test]
async fn online_servers_are_refused_before_anyone_is_asked() {
    let h = harness().await;
    let (server_id, token) = h.add_server("web-1", 2).await;
    let state = h.dir.path().join("agent");
    let (stop, agent) = common::run_agent(h.central.grpc_url(), &token, state).await;
    common::wait_online(&h.central, &server_id).await;
    for tool in ["mttrly_decommission_server", "mttrly_regenerate_install_token"] {
        let (is_error, body) = h.tool(&h.admin, tool, serde_json::json!({ "server_id": server_id })).await;
        assert!(is_error);
        assert_eq!(body["code"], "SERVER_ONLINE");
    }
    stop.send(true).unwrap();
    agent.await.unwrap().unwrap();
    h.central.shutdown().await;
}

#[tokio::test]
async fn actions_left_running_by_a_crash_fail_and_are_never_resent() {
    let h = harness().await;
    let (server_id, _) = h.add_server("web-1", 2).await;
    let (_, submitted) =
        h.tool(&h.admin, "mttrly_decommission_server", serde_json::json!({ "server_id": server_id })).await;
    let id = submitted["action_id"].as_str().unwrap().to_owned();
    // Simulate a crash after `approved → running` was committed but before any result arrived.
    let stuck = id.clone();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute("UPDATE actions SET status = 'running' WHERE id = ?1", [&stuck])
        })
        .await
        .unwrap();
    let Harness { dir, config, central, admin } = h;
    central.shutdown().await;
    let central = start(config.clone()).await.unwrap();
    let h = Harness { dir, config, central, admin };

    let (_, view) = h.tool(&h.admin, "mttrly_get_action_result", serde_json::json!({ "action_id": id })).await;
    assert_eq!(view["status"], "failed");
    assert!(view["result"]["error"]["message"].as_str().unwrap().contains("outcome unknown"), "{view}");
    let servers = ServerServiceClient::new(h.channel().await)
        .list_servers(authed(&h.admin, ListServersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(servers.servers.len(), 1, "the interrupted action was not re-run");
    h.central.shutdown().await;
}
