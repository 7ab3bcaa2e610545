//! The audit log: every call recorded with its actor, source and outcome; the hash chain catches
//! edits, deletions and truncation made directly in the SQLite file; tenants see only their own.

#![allow(clippy::unwrap_used)]

use mttrly_central::config::Config;
use mttrly_central::secrets;
use mttrly_central::server::{RunningCentral, start};
use mttrly_core::Plan;
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, CallToolRequest, ListAuditRequest, VerifyAuditRequest};
use serde_json::Value;
use tonic::transport::Channel;

struct Harness {
    dir: tempfile::TempDir,
    central: RunningCentral,
    token: String,
}

async fn harness(plan: Plan) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        plan,
        ..Config::default()
    };
    let init = mttrly_central::init::init(&cfg, None).unwrap();
    let central = start(cfg).await.unwrap();
    Harness { dir, central, token: init.admin_token }
}

fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

async fn channel(h: &Harness) -> Channel {
    Channel::from_shared(h.central.grpc_url().to_owned()).unwrap().connect().await.unwrap()
}

async fn call(h: &Harness, token: &str, tool: &str, args: &str, client: &str) -> Value {
    let resp = ToolServiceClient::new(channel(h).await)
        .call_tool(authed(
            token,
            CallToolRequest { tool_id: tool.into(), arguments_json: args.into(), client_name: client.into() },
        ))
        .await
        .unwrap()
        .into_inner();
    serde_json::from_str(&resp.structured_json).unwrap()
}

async fn entries(h: &Harness, token: &str, server: &str) -> Vec<Value> {
    let page = AuditServiceClient::new(channel(h).await)
        .list_audit(authed(token, ListAuditRequest { server_id: server.into(), before_seq: 0, limit: 500 }))
        .await
        .unwrap()
        .into_inner();
    page.entries_json.iter().map(|j| serde_json::from_str(j).unwrap()).collect()
}

async fn verify(h: &Harness) -> (bool, u64, String) {
    let v = AuditServiceClient::new(channel(h).await)
        .verify_audit(authed(&h.token, VerifyAuditRequest {}))
        .await
        .unwrap()
        .into_inner();
    (v.ok, v.first_bad_seq, v.problem)
}

#[tokio::test]
async fn every_call_is_recorded_with_actor_source_and_outcome() {
    let h = harness(Plan::DeploymentCrew).await;
    let added = ServerServiceClient::new(channel(&h).await)
        .add_server(authed(&h.token, AddServerRequest { name: "web-1".into(), environment: 1 }))
        .await
        .unwrap()
        .into_inner();
    call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    call(
        &h,
        &h.token,
        "mttrly_get_server_status",
        &format!("{{\"server_id\":\"{}\"}}", added.server_id),
        "claude-code",
    )
    .await;
    call(&h, &h.token, "mttrly_get_server_status", "{\"server_id\":\"srv_bad\"}", "").await;
    call(&h, &h.token, "mttrly_no_such_tool", "{}", "").await;
    call(&h, &h.token, "mttrly_list_servers", "not json", "").await;

    let all = entries(&h, &h.token, "").await;
    let subjects: Vec<&str> = all.iter().map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(
        subjects,
        [
            "mttrly_list_servers",
            "mttrly_no_such_tool",
            "mttrly_get_server_status",
            "mttrly_get_server_status",
            "mttrly_list_servers",
            "AddServer"
        ],
        "newest first"
    );
    // Failures are recorded with the code the caller saw.
    assert_eq!(all[0]["outcome"], serde_json::json!({"status": "error", "code": "VALIDATION_ERROR"}));
    assert_eq!(all[1]["outcome"]["code"], "NOT_FOUND");
    assert_eq!(all[2]["outcome"]["code"], "VALIDATION_ERROR");
    // The source distinguishes the MCP front end from direct API callers; the actor is the human.
    assert_eq!(all[3]["source"], "mcp");
    assert_eq!(all[3]["server_id"], added.server_id);
    assert_eq!(all[4]["source"], "api");
    assert_eq!(all[4]["actor"]["type"], "human");
    assert_eq!(all[5]["kind"], "api_call");
    assert!(all[3]["duration_ms"].is_u64());

    // Filter by server, and through the tool.
    let for_server = entries(&h, &h.token, &added.server_id).await;
    assert!(for_server.iter().all(|e| e["server_id"] == added.server_id));
    let page = call(
        &h,
        &h.token,
        "mttrly_get_audit_log",
        &format!("{{\"server_id\":\"{}\",\"limit\":1}}", added.server_id),
        "",
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert!(page["next_before_seq"].is_u64());
    assert_eq!(page["retention_days"], 30);

    assert_eq!(verify(&h).await, (true, 0, String::new()));
    h.central.shutdown().await;
}

fn tamper(h: &Harness, sql: &str) {
    let conn = rusqlite::Connection::open(h.dir.path().join("data").join("central.db")).unwrap();
    let changed = conn.execute(sql, []).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

#[tokio::test]
async fn verify_catches_an_edited_a_deleted_and_a_truncated_row() {
    let h = harness(Plan::DeploymentCrew).await;
    for _ in 0..5 {
        call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    }
    assert!(verify(&h).await.0);

    tamper(
        &h,
        "UPDATE audit_log SET outcome_json = '{\"status\":\"ok\"}', subject = 'mttrly_get_capabilities' WHERE seq = 2",
    );
    let (ok, bad, problem) = verify(&h).await;
    assert!(!ok);
    assert_eq!(bad, 2);
    assert!(problem.contains("edited"), "{problem}");

    let h = harness(Plan::DeploymentCrew).await;
    for _ in 0..5 {
        call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    }
    h.central.central.audit.flush().await;
    tamper(&h, "DELETE FROM audit_log WHERE seq = 3");
    let (ok, bad, _) = verify(&h).await;
    assert!(!ok);
    assert_eq!(bad, 4);

    let h = harness(Plan::DeploymentCrew).await;
    for _ in 0..5 {
        call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    }
    h.central.central.audit.flush().await;
    tamper(&h, "DELETE FROM audit_log WHERE seq = 5");
    let (ok, _, problem) = verify(&h).await;
    assert!(!ok);
    assert!(problem.contains("removed from the end"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_verifications_shares_its_runs_and_another_tenant_waits_for_one_at_most() {
    let h = harness(Plan::DeploymentCrew).await;
    for _ in 0..5 {
        call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    }
    let other = secrets::generate(secrets::SecretKind::Human);
    h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &secrets::hash(&other)).await.unwrap();
    call(&h, &other, "mttrly_list_servers", "{}", "").await;
    let verifications = &h.central.central.verifications;
    let before = verifications.recomputations();

    // 24 at once from one account, one of the other's among them: every one answered, all checked,
    // and the first account's burst costs a few runs, not 24.
    let channel = channel(&h).await;
    let ask = |token: String| {
        let channel = channel.clone();
        tokio::spawn(async move {
            AuditServiceClient::new(channel)
                .verify_audit(authed(&token, VerifyAuditRequest {}))
                .await
                .unwrap()
                .into_inner()
        })
    };
    let burst: Vec<_> = (0..24).map(|_| ask(h.token.clone())).collect();
    let theirs = ask(other.clone());
    for answer in burst {
        let answer = answer.await.unwrap();
        assert!(answer.ok && answer.rows_checked >= 5, "{answer:?}");
    }
    let theirs = theirs.await.unwrap();
    assert!(theirs.ok && theirs.rows_checked >= 1, "{theirs:?}");
    let runs = verifications.recomputations() - before;
    assert!((2..=8).contains(&runs), "{runs} recomputations for 25 requests of two accounts");

    // Shared, never stale: an edit made before a request is found by it.
    h.central.central.audit.flush().await;
    let (account, _) = h.central.central.db.first_account().await.unwrap().unwrap();
    tamper(
        &h,
        &format!("UPDATE audit_log SET subject = 'mttrly_get_capabilities' WHERE seq = 2 AND account_id = '{account}'"),
    );
    let (ok, bad, _) = verify(&h).await;
    assert!(!ok);
    assert_eq!(bad, 2);
    h.central.shutdown().await;
}

#[tokio::test]
async fn tenants_see_only_their_own_audit_and_plans_gate_the_tool() {
    let h = harness(Plan::Watchdog).await;
    let added = ServerServiceClient::new(channel(&h).await)
        .add_server(authed(&h.token, AddServerRequest { name: "web-1".into(), environment: 1 }))
        .await
        .unwrap()
        .into_inner();
    call(&h, &h.token, "mttrly_list_servers", "{}", "").await;

    let other = secrets::generate(secrets::SecretKind::Human);
    let hash = secrets::hash(&other);
    h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &hash).await.unwrap();
    assert!(entries(&h, &other, "").await.is_empty());
    let err = AuditServiceClient::new(channel(&h).await)
        .list_audit(authed(&other, ListAuditRequest { server_id: added.server_id.clone(), before_seq: 0, limit: 10 }))
        .await
        .unwrap_err();
    assert_eq!(mttrly_proto::status::from_status(&err).code(), mttrly_core::ErrorCode::ServerNotFound);

    // Watchdog does not include the audit-log tool.
    let body = call(&h, &h.token, "mttrly_get_audit_log", "{}", "").await;
    assert_eq!(body["code"], "PLAN_REQUIRED");
    assert_eq!(body["details"]["required_plan"], "deployment_bro");
    h.central.shutdown().await;
}

#[tokio::test]
async fn calls_over_the_rate_limit_are_refused_with_a_retry_after_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        rate_limit_principal_per_minute: 3,
        ..Config::default()
    };
    let token = mttrly_central::init::init(&cfg, None).unwrap().admin_token;
    let h = Harness { dir, central: start(cfg).await.unwrap(), token };
    for _ in 0..3 {
        let ok = call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
        assert!(ok["servers"].is_array(), "{ok}");
    }
    let limited = call(&h, &h.token, "mttrly_list_servers", "{}", "").await;
    assert_eq!(limited["code"], "RATE_LIMITED");
    assert!(limited["details"]["retry_after_seconds"].as_u64().unwrap() >= 1);
    let newest = &entries(&h, &h.token, "").await[0];
    assert_eq!(newest["outcome"]["code"], "RATE_LIMITED");
    h.central.shutdown().await;
}

#[tokio::test]
async fn secrets_in_tool_arguments_never_reach_the_audit_log() {
    let h = harness(Plan::DeploymentCrew).await;
    call(&h, &h.token, "mttrly_list_servers", r#"{"password":"hunter2hunter2","note":"AKIAIOSFODNN7EXAMPLE"}"#, "")
        .await;
    let newest = &entries(&h, &h.token, "").await[0];
    let text = newest["parameters"].to_string();
    assert!(!text.contains("hunter2hunter2") && !text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    assert!(text.contains("[REDACTED:"), "{text}");
    assert!(verify(&h).await.0);
    h.central.shutdown().await;
}
