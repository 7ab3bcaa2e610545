//! Central in-process on loopback TCP, with real agents (the agent library) and scripted agents
//! (raw gRPC clients speaking the protocol) for the failure cases.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::{self, Harness, authed, code};
use mttrly_central::agents::registry::{ActionGrant, TaskSpec};
use mttrly_central::config::Config;
use mttrly_central::server::{StartError, start};
use mttrly_central::{db, secrets};
use mttrly_core::capability::{
    Capability, CapabilityId, CapabilitySet, FileDiffParams, FileDiffRun, HostSample, NoParams, PlaybookList,
};
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{Environment, ErrorCode, Plan};
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use mttrly_proto::agent::v1::{AgentMessage, EnrollRequest, Hello, agent_message, central_message};
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{
    AddServerRequest, CallToolRequest, GetServerRequest, ListServersRequest, RemoveServerRequest,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

fn config(dir: &std::path::Path) -> Config {
    let mut cfg = common::config(dir);
    common::fast_heartbeats(&mut cfg);
    cfg
}

async fn harness(plan: Plan) -> Harness {
    common::harness(|cfg| {
        common::fast_heartbeats(cfg);
        cfg.plan = plan;
    })
    .await
}

async fn add_server(h: &Harness, token: &str, name: &str) -> (String, String) {
    let resp = ServerServiceClient::new(h.channel().await)
        .add_server(authed(token, AddServerRequest { name: name.into(), environment: 2 }))
        .await
        .unwrap()
        .into_inner();
    (resp.server_id, resp.install_token)
}

async fn wait_until(mut check: impl FnMut() -> bool, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

#[tokio::test]
async fn install_tokens_are_single_use_and_unknown_ones_are_refused() {
    let h = harness(Plan::DeploymentCrew).await;
    let (_, token) = add_server(&h, &h.admin, "web-1").await;
    let mut agents = AgentServiceClient::new(h.channel().await);
    let enroll = |t: &str| EnrollRequest { install_token: t.into(), hostname: "h".into(), agent_version: "t".into() };
    assert!(agents.enroll(enroll(&token)).await.is_ok());
    let again = agents.enroll(enroll(&token)).await.unwrap_err();
    assert_eq!(code(&again), ErrorCode::AuthFailed);
    assert!(again.message().contains("already used"), "{}", again.message());
    let unknown = agents.enroll(enroll("mttrly_i_nope")).await.unwrap_err();
    assert!(unknown.message().contains("unknown install token"), "{}", unknown.message());
    h.central.shutdown().await;
}

#[tokio::test]
async fn expired_install_tokens_are_refused() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, _) = add_server(&h, &h.admin, "web-1").await;
    let token = "mttrly_i_expired-for-the-test";
    let hash = secrets::hash(token);
    let server = ServerId::parse(&server_id).unwrap();
    h.central
        .central
        .db
        .with_connection_for_tests(move |conn| {
            conn.execute(
                "INSERT INTO install_tokens (token_hash, server_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?3)",
                rusqlite::params![hash.as_slice(), server.as_str(), db::now_ms() - 1],
            )
        })
        .await
        .unwrap();
    let err = AgentServiceClient::new(h.channel().await)
        .enroll(EnrollRequest { install_token: token.into(), hostname: "h".into(), agent_version: "t".into() })
        .await
        .unwrap_err();
    assert!(err.message().contains("expired"), "{}", err.message());
    h.central.shutdown().await;
}

/// A scripted agent announcing every capability: enrolls, opens the stream, says hello, and
/// hands back both halves.
async fn scripted_agent(
    h: &Harness,
    install_token: &str,
) -> (String, mpsc::Sender<AgentMessage>, tonic::Streaming<mttrly_proto::agent::v1::CentralMessage>) {
    scripted_agent_announcing(h, install_token, "t", CapabilitySet::all().to_wire()).await
}

/// A scripted agent of `version` whose hello announces `capabilities` (wire names, any string).
async fn scripted_agent_announcing(
    h: &Harness,
    install_token: &str,
    version: &str,
    capabilities: Vec<String>,
) -> (String, mpsc::Sender<AgentMessage>, tonic::Streaming<mttrly_proto::agent::v1::CentralMessage>) {
    let mut client = AgentServiceClient::new(h.channel().await);
    let creds = client
        .enroll(EnrollRequest { install_token: install_token.into(), hostname: "h".into(), agent_version: "t".into() })
        .await
        .unwrap()
        .into_inner();
    let (tx, rx) = mpsc::channel(16);
    tx.send(AgentMessage {
        body: Some(agent_message::Body::Hello(Hello {
            agent_version: version.into(),
            protocol_revision: 1,
            capabilities,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut req = authed(&creds.agent_secret, ReceiverStream::new(rx));
    req.metadata_mut().insert("x-mttrly-server-id", creds.server_id.parse().unwrap());
    let mut inbound = client.session(req).await.unwrap().into_inner();
    let welcome = inbound.message().await.unwrap().unwrap();
    assert!(matches!(welcome.body, Some(central_message::Body::Welcome(_))));
    (creds.agent_secret, tx, inbound)
}

#[tokio::test]
async fn tasks_fail_fast_offline_and_clearly_when_the_agent_drops_mid_task() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let server = ServerId::parse(&server_id).unwrap();
    let registry = &h.central.central.agents;

    // Never connected: SERVER_OFFLINE at once.
    let started = std::time::Instant::now();
    let err = registry.ask::<HostSample>(&server, &NoParams, Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServerOffline);
    assert!(started.elapsed() < Duration::from_secs(1));

    // Connected, receives the task, then vanishes: the caller gets an error, not a hang.
    let (_secret, tx, mut inbound) = scripted_agent(&h, &token).await;
    let request = registry.ask::<HostSample>(&server, &NoParams, Duration::from_secs(30));
    let drop_agent = async {
        let msg = inbound.message().await.unwrap().unwrap();
        assert!(matches!(msg.body, Some(central_message::Body::TaskRequest(_))));
        drop(tx);
        drop(inbound);
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(request, drop_agent);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ServerOffline, "{err}");
    assert!(err.message().contains("disconnected while the task was running"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    h.central.shutdown().await;
}

#[tokio::test]
async fn central_refuses_a_capability_the_agent_did_not_announce_naming_its_version() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let server = ServerId::parse(&server_id).unwrap();
    // An older agent: metrics only, plus a name from some newer build that central ignores.
    let announced = vec![CapabilityId::HostSample.as_str().to_owned(), "agent.teleport".to_owned()];
    let (_secret, tx, mut inbound) = scripted_agent_announcing(&h, &token, "0.9.0-old", announced).await;
    let registry = &h.central.central.agents;

    let started = std::time::Instant::now();
    let params = FileDiffParams {
        left_path: serde_json::from_str("\"/var/log/a.log\"").unwrap(),
        right_path: serde_json::from_str("\"/var/log/b.log\"").unwrap(),
        context_lines: 3,
    };
    let err = registry.ask::<FileDiffRun>(&server, &params, Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ContractVersionUnsupported, "{err}");
    assert!(err.message().contains("0.9.0-old") && err.message().contains(FileDiffRun::ID.as_str()), "{err}");
    assert_eq!(err.details()["agent_version"], "0.9.0-old");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once, not at the deadline");
    // Nothing went down the stream for it...
    let nothing = tokio::time::timeout(Duration::from_millis(200), inbound.message()).await;
    assert!(nothing.is_err(), "an unannounced capability reached the agent: {nothing:?}");

    // ...while an announced one is dispatched.
    let ask = registry.ask::<HostSample>(&server, &NoParams, Duration::from_millis(500));
    let (answer, msg) = tokio::join!(ask, inbound.message());
    let Some(central_message::Body::TaskRequest(task)) = msg.unwrap().unwrap().body else { panic!("no task sent") };
    assert_eq!(task.capability, HostSample::ID.as_str());
    assert_eq!(answer.unwrap_err().code(), ErrorCode::Timeout);
    drop((tx, inbound));
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_silent_agent_times_out_at_the_deadline_and_is_told_to_cancel() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let server = ServerId::parse(&server_id).unwrap();
    let (_secret, tx, mut inbound) = scripted_agent(&h, &token).await;
    let err =
        h.central.central.agents.ask::<HostSample>(&server, &NoParams, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    let first = inbound.message().await.unwrap().unwrap();
    assert!(matches!(first.body, Some(central_message::Body::TaskRequest(_))));
    let second = inbound.message().await.unwrap().unwrap();
    assert!(matches!(second.body, Some(central_message::Body::CancelTask(_))), "{second:?}");
    drop((tx, inbound));
    h.central.shutdown().await;
}

#[tokio::test]
async fn a_real_agent_answers_tasks_and_reports_heartbeats() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let state = h.dir.path().join("agent");
    mttrly_agent::enroll::enroll(h.central.grpc_url(), &token, None, &state, false).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let agent = tokio::spawn(mttrly_agent::run(
        mttrly_agent::RunOptions::new(state, mttrly_agent::policy::LocalPolicy::default()),
        stopped,
    ));
    let server = ServerId::parse(&server_id).unwrap();
    let registry = &h.central.central.agents;
    assert!(wait_until(|| registry.status(&server, db::now_ms()).metrics.is_some(), Duration::from_secs(10)).await);

    let metrics = registry.ask::<HostSample>(&server, &NoParams, Duration::from_secs(10)).await.unwrap();
    assert!(metrics.memory_total_bytes > 0);
    // The real agent announced every row of the table, and answers each in its typed shape.
    let offers = registry.ask::<PlaybookList>(&server, &NoParams, Duration::from_secs(10)).await.unwrap();
    assert!(!offers.playbooks.is_empty());

    // An action id runs at most once on the agent, and only with exactly the approved content.
    let action = mttrly_core::ids::ActionId::generate();
    let params = b"{}".to_vec();
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&params))
    };
    let task = |id: &mttrly_core::ids::ActionId, params: &[u8]| TaskSpec {
        capability: CapabilityId::HostSample,
        params_json: params.to_vec(),
        payload: Vec::new(),
        deadline: Duration::from_secs(10),
        action: Some(ActionGrant { id: id.clone(), content_sha256: sha.clone(), human_approved: true }),
    };
    let first = registry.send(&server, task(&action, &params)).await.unwrap();
    assert!(first.error.is_none(), "{first:?}");
    let replay = registry.send(&server, task(&action, &params)).await.unwrap();
    let err = replay.error.expect("a replay is refused");
    assert!(err.message().contains("already ran"), "{err}");
    let other = mttrly_core::ids::ActionId::generate();
    let tampered = registry.send(&server, task(&other, b"{\"x\":1}")).await.unwrap();
    assert_eq!(tampered.error.map(|e| e.code()), Some(ErrorCode::PolicyDenied));

    stop.send(true).unwrap();
    agent.await.unwrap().unwrap();
    h.central.shutdown().await;
}

#[tokio::test]
async fn revoked_credentials_are_refused_and_the_stream_is_closed() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let (secret, agent_tx, mut inbound) = scripted_agent(&h, &token).await;
    let server = ServerId::parse(&server_id).unwrap();

    // Rotate: a new install token, the old credentials revoked, the live stream cut.
    let new_token = "mttrly_i_rotated-for-the-test";
    let hash = secrets::hash(new_token);
    let (account, _) = h.central.central.db.first_account().await.unwrap().unwrap();
    let rotated = h
        .central
        .central
        .db
        .account(&account)
        .servers()
        .rotate_credentials(&server, &hash, db::now_ms() + 60_000)
        .await
        .unwrap();
    assert!(rotated);
    h.central.central.agents.kick(&server);
    let closed = tokio::time::timeout(Duration::from_secs(5), inbound.message()).await.unwrap();
    assert!(closed.is_err() || closed.is_ok_and(|m| m.is_none()), "the stream must end");

    let (tx, rx) = mpsc::channel(1);
    tx.send(AgentMessage { body: Some(agent_message::Body::Hello(Hello::default())) }).await.unwrap();
    let mut req = authed(&secret, ReceiverStream::new(rx));
    req.metadata_mut().insert("x-mttrly-server-id", server_id.parse().unwrap());
    let err = AgentServiceClient::new(h.channel().await).session(req).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed);

    // The history is kept and the new token enrolls the same server.
    let creds = AgentServiceClient::new(h.channel().await)
        .enroll(EnrollRequest { install_token: new_token.into(), hostname: "h".into(), agent_version: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(creds.server_id, server_id);
    drop(agent_tx);
    h.central.shutdown().await;
}

#[tokio::test]
async fn another_account_sees_nothing_of_the_first() {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, _) = add_server(&h, &h.admin, "web-1").await;
    // A second tenant with its own admin token.
    let other_token = secrets::generate(secrets::SecretKind::Human);
    let hash = secrets::hash(&other_token);
    h.central.central.db.create_tenant("other", Plan::DeploymentCrew, "eve", &hash).await.unwrap();

    let mut servers = ServerServiceClient::new(h.channel().await);
    let listed = servers.list_servers(authed(&other_token, ListServersRequest {})).await.unwrap().into_inner();
    assert!(listed.servers.is_empty());
    let err =
        servers.get_server(authed(&other_token, GetServerRequest { server_id: server_id.clone() })).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::ServerNotFound);
    let err = servers
        .remove_server(authed(&other_token, RemoveServerRequest { server_id: server_id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::ServerNotFound);
    // The error for another tenant's server is exactly the error for a server that never existed.
    let missing = servers
        .get_server(authed(&other_token, GetServerRequest { server_id: ServerId::generate().to_string() }))
        .await
        .unwrap_err();
    assert_eq!(code(&missing), code(&err));

    let mut tools = ToolServiceClient::new(h.channel().await);
    for tool in ["mttrly_get_server_status", "mttrly_quick_triage"] {
        let resp = tools
            .call_tool(authed(
                &other_token,
                CallToolRequest {
                    tool_id: tool.into(),
                    arguments_json: format!("{{\"server_id\":\"{server_id}\"}}"),
                    client_name: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.is_error);
        let body: serde_json::Value = serde_json::from_str(&resp.structured_json).unwrap();
        assert_eq!(body["code"], "SERVER_NOT_FOUND");
    }
    let resp = tools
        .call_tool(authed(
            &other_token,
            CallToolRequest {
                tool_id: "mttrly_get_alerts".into(),
                arguments_json: format!("{{\"server_id\":\"{server_id}\"}}"),
                client_name: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.structured_json.contains("SERVER_NOT_FOUND"), "{}", resp.structured_json);
    h.central.shutdown().await;
}

#[tokio::test]
async fn the_plan_server_limit_is_enforced_and_bad_input_changes_nothing() {
    let h = harness(Plan::Watchdog).await;
    add_server(&h, &h.admin, "only-one").await;
    let mut servers = ServerServiceClient::new(h.channel().await);
    let err = servers
        .add_server(authed(&h.admin, AddServerRequest { name: "two".into(), environment: 1 }))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::PlanRequired);
    for (name, env) in [("bad name; rm -rf /", 1), ("", 1), ("ok", 0), ("ok", 42)] {
        let err = servers
            .add_server(authed(&h.admin, AddServerRequest { name: name.into(), environment: env }))
            .await
            .unwrap_err();
        assert_eq!(code(&err), ErrorCode::ValidationError, "{name:?} {env}");
    }
    let listed = servers.list_servers(authed(&h.admin, ListServersRequest {})).await.unwrap().into_inner();
    assert_eq!(listed.servers.len(), 1);
    let err = servers.list_servers(authed("mttrly_h_wrong", ListServersRequest {})).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed);
    let err = servers.list_servers(tonic::Request::new(ListServersRequest {})).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::AuthFailed);
    h.central.shutdown().await;
}

#[tokio::test]
async fn assistants_cannot_register_servers_or_mint_tokens() {
    let h = harness(Plan::DeploymentCrew).await;
    let token = secrets::generate(secrets::SecretKind::Assistant);
    let hash = secrets::hash(&token);
    let db = &h.central.central.db;
    let (account, _) = db.first_account().await.unwrap().unwrap();
    let users = db.account(&account).users();
    let admin = users.first_admin().await.unwrap().unwrap();
    users.insert_token(&hash, &admin, Some("claude-code"), &mttrly_core::ToolSurface::ALL).await.unwrap();
    let err = ServerServiceClient::new(h.channel().await)
        .add_server(authed(&token, AddServerRequest { name: "x".into(), environment: 1 }))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::Forbidden);
    // But it can read.
    let listed = ServerServiceClient::new(h.channel().await).list_servers(authed(&token, ListServersRequest {})).await;
    assert!(listed.is_ok());
    let _ = Environment::Production;
    h.central.shutdown().await;
}

#[tokio::test]
async fn plaintext_on_a_public_address_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    mttrly_central::init::init(&cfg, None).unwrap();
    cfg.grpc_listen = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(start(cfg.clone()).await, Err(StartError::Plaintext(_))));
    cfg.insecure = true;
    let running = start(cfg).await.unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn serve_refuses_an_uninitialised_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let err = start(config(dir.path())).await.err().unwrap();
    assert!(err.to_string().contains("mttrly-central init"), "{err}");
}

/// The stream's settings are sized for a fleet of idle agents (small initial message buffers,
/// explicit HTTP/2 windows), and still carry an agent's largest messages both ways, byte for byte:
/// a 1 MiB payload down (a file write's content), and up a 6 MiB answer (a full 4 MiB file tail
/// once JSON-escaped), above tonic's default 4 MiB message limit.
#[tokio::test]
async fn a_megabyte_payload_and_a_multi_megabyte_answer_cross_an_agent_stream_intact() {
    use mttrly_proto::agent::v1::{TaskResult, TaskStatus};
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, token) = add_server(&h, &h.admin, "web-1").await;
    let server = ServerId::parse(&server_id).unwrap();
    let (_secret, tx, mut inbound) = scripted_agent(&h, &token).await;
    let payload: Vec<u8> = (0..1u32 << 20).map(|i| u8::try_from(i % 251).unwrap()).collect();
    let answer: Vec<u8> = (0..6u32 << 20).map(|i| b'a' + u8::try_from(i % 26).unwrap()).collect();
    let spec = TaskSpec {
        capability: CapabilityId::FileWrite,
        params_json: b"{}".to_vec(),
        payload: payload.clone(),
        deadline: Duration::from_secs(30),
        action: None,
    };
    let agent = async {
        let msg = inbound.message().await.unwrap().unwrap();
        let Some(central_message::Body::TaskRequest(task)) = msg.body else { panic!("no task sent: {msg:?}") };
        assert!(task.payload == payload, "the payload changed in transit ({} bytes)", task.payload.len());
        let result = TaskResult {
            task_id: task.task_id,
            status: i32::from(TaskStatus::Succeeded),
            result_json: answer.clone(),
            ..Default::default()
        };
        tx.send(AgentMessage { body: Some(agent_message::Body::TaskResult(result)) }).await.unwrap();
        (tx, inbound)
    };
    let (reply, stream) = tokio::join!(h.central.central.agents.send(&server, spec), agent);
    let reply = reply.unwrap();
    assert_eq!(reply.status, TaskStatus::Succeeded);
    assert!(reply.answer == answer, "the answer changed in transit ({} bytes)", reply.answer.len());
    drop(stream);
    h.central.shutdown().await;
}

/// A central with server `web-1` registered and no agent yet: the admin's account, a mark taken
/// and then the account's rows read after it, as a server view reads them.
struct ReadBeforeHello {
    h: Harness,
    server: ServerId,
    install_token: String,
    account: mttrly_core::ids::AccountId,
    mark: mttrly_central::agents::registry::HelloMark,
    before: Vec<mttrly_central::db::servers::ServerRow>,
}

async fn read_before_hello() -> ReadBeforeHello {
    let h = harness(Plan::DeploymentCrew).await;
    let (server_id, install_token) = add_server(&h, &h.admin, "web-1").await;
    let account = h.owner(&h.admin).await.account_id;
    let mark = h.central.central.agents.mark();
    let before = h.central.central.db.account(&account).servers().list().await.unwrap();
    assert!(before[0].host.is_none(), "no hello yet");
    ReadBeforeHello { server: ServerId::parse(&server_id).unwrap(), install_token, account, mark, before, h }
}

/// A server's row read just before its agent connected must not be shown with the new stream's
/// live status: the view would say online with no host (the race a loaded CI machine hit in
/// `fleet::enroll_live_metrics_central_restart_and_offline`). Rows read after a mark are read
/// again when their agent's stream is newer than the mark; rows whose stream is older are not.
#[tokio::test]
async fn a_row_read_before_its_agent_connected_is_read_again_for_the_live_view() {
    let ReadBeforeHello { h, server, install_token, account, mark, before } = read_before_hello().await;
    let central = &h.central.central;
    // The agent says hello and its stream opens after the row was read.
    let (_secret, _tx, _inbound) = scripted_agent(&h, &install_token).await;

    let seen = mttrly_central::servers::observe_rows(central, &account, mark, before).await.unwrap();
    assert_eq!(seen[0].live.status, ConnectionStatus::Online);
    assert_eq!(seen[0].row.host.as_ref().map(|h| h.agent_version.as_str()), Some("t"), "the row was read again");

    // A stream older than the mark is not newer than a row read after it: nothing to read again.
    let later = central.agents.mark();
    assert!(!seen[0].live.newer_than(later));
    let one = mttrly_central::servers::observe(central, &account, &server).await.unwrap();
    assert!(one.row.host.is_some() && !one.live.newer_than(later));
    h.central.shutdown().await;
}

/// The same race when the agent connected and is gone again by the time its status is read
/// (offline, with the heartbeat it sent shown): the row is still read again.
#[tokio::test]
async fn a_row_read_before_a_stream_that_already_closed_is_read_again() {
    let ReadBeforeHello { h, server, install_token, account, mark, before } = read_before_hello().await;
    let central = &h.central.central;
    let (_secret, tx, inbound) = scripted_agent(&h, &install_token).await;
    drop((tx, inbound));
    let offline = || central.agents.status(&server, db::now_ms()).status == ConnectionStatus::Offline;
    assert!(wait_until(offline, Duration::from_secs(10)).await, "the stream closed");

    let seen = mttrly_central::servers::observe_rows(central, &account, mark, before).await.unwrap();
    assert!(seen[0].live.last_seen_ms.is_some(), "the closed stream's last heartbeat is shown");
    assert!(seen[0].row.host.is_some(), "so the row was read again");
    h.central.shutdown().await;
}
