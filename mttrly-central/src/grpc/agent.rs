//! `mttrly.agent.v1.AgentService`: enrollment and the agent's stream.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mttrly_core::capability::CapabilitySet;
use mttrly_core::ids::ServerId;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::agent_service_server::{AgentService, AgentServiceServer};
use mttrly_proto::agent::v1::{
    AgentMessage, CentralMessage, EnrollRequest, EnrollResponse, Hello, Welcome, agent_message, central_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::{GrpcResult, status};
use crate::agents::registry::Announced;
use crate::audit::events;
use crate::db::servers::HostRow;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// The protocol revision this central speaks.
const PROTOCOL_REVISION: u32 = 1;
/// How long an agent has to say hello after opening its stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued towards one agent before sends wait (the queue grows to it only while a
/// burst of tasks is in flight; see [`crate::agents::registry::AgentSender`]).
const OUTBOUND_QUEUE: usize = 64;

/// The largest message an agent may send. Its biggest answer is a file tail of up to 4 MiB
/// (`mttrly_core::files::tail::MAX_TAIL_BYTES`), which JSON can escape to several times its size
/// (`\u00XX` for a control byte, six times); tonic's default limit, 4 MiB, ended the session of an
/// agent answering a full tail.
pub const MAX_AGENT_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// The agent service as central mounts it, with its message limit.
pub fn service(central: Arc<Central>) -> AgentServiceServer<AgentApi> {
    AgentServiceServer::new(AgentApi::new(central)).max_decoding_message_size(MAX_AGENT_MESSAGE_BYTES)
}

/// The agent service.
pub struct AgentApi {
    central: Arc<Central>,
}

impl AgentApi {
    /// Serves agents of `central`.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn bad_request(message: &str) -> Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message))
}

fn host_row(hello: &Hello) -> HostRow {
    let clip = |s: &str| s.chars().take(256).collect::<String>();
    HostRow {
        hostname: clip(&hello.hostname),
        os: clip(&hello.os),
        kernel: clip(&hello.kernel),
        arch: clip(&hello.arch),
        agent_version: clip(&hello.agent_version),
        capabilities: CapabilitySet::from_wire(&hello.capabilities),
        policy_json: hello
            .policy
            .as_ref()
            .map(|p| {
                serde_json::json!({
                    "commands_enabled": p.commands_enabled,
                    "allowed_playbooks": p.allowed_playbooks,
                    "file_roots": p.file_roots,
                    "privileged_files_enabled": p.privileged_files_enabled,
                    "policy_sha256": p.policy_sha256,
                })
                .to_string()
            })
            .unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn enroll(&self, request: Request<EnrollRequest>) -> GrpcResult<EnrollResponse> {
        let req = request.into_inner();
        if req.install_token.is_empty() || req.install_token.len() > 256 {
            return Err(status(&MttrlyError::new(ErrorCode::AuthFailed, "missing or malformed install token")));
        }
        let token_hash = secrets::hash(&req.install_token);
        let secret = secrets::generate(SecretKind::Agent);
        let secret_hash = secrets::hash(&secret);
        let (server_id, account) =
            self.central.db.fleet().enroll(&token_hash, &secret_hash, now_ms()).await.map_err(|e| status(&e))?;
        self.central.audit(events::agent_event(
            &account,
            &server_id,
            "enrolled",
            serde_json::json!({ "hostname": req.hostname.chars().take(256).collect::<String>(), "agent_version": req.agent_version.chars().take(64).collect::<String>() }),
            true,
        ));
        // A previous agent of this server (reinstall) loses its stream now.
        self.central.agents.kick(&server_id);
        tracing::info!(server_id = %server_id, hostname = %req.hostname, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            server_id: server_id.to_string(),
            agent_secret: secret,
            ca_certificate_pem: self.central.tls.as_ref().map(|t| t.ca_pem.clone()).unwrap_or_default(),
            central_url: self.central.grpc_url.clone(),
            heartbeat_interval_seconds: self.central.config.heartbeat_interval_seconds,
        }))
    }

    type SessionStream = Pin<Box<dyn Stream<Item = Result<CentralMessage, Status>> + Send>>;

    async fn session(&self, request: Request<Streaming<AgentMessage>>) -> GrpcResult<Self::SessionStream> {
        let metadata = request.metadata();
        let claimed =
            metadata.get("x-mttrly-server-id").and_then(|v| v.to_str().ok()).and_then(|s| ServerId::parse(s).ok());
        let (server, account) =
            crate::auth::resolve_agent(&self.central, crate::auth::grpc_credential(metadata), claimed)
                .await
                .map_err(|e| status(&e))?;

        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(AgentMessage { body: Some(agent_message::Body::Hello(hello)) }))) => hello,
            Ok(Ok(_)) => return Err(bad_request("the first message on a session must be Hello")),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(bad_request("no Hello within 10 seconds")),
        };
        let host = host_row(&hello);
        let announced = Announced { agent_version: host.agent_version.clone(), capabilities: host.capabilities };
        let now = now_ms();
        self.central.db.fleet().record_hello(&server, host, now).await.map_err(|e| status(&e))?;

        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let welcome = CentralMessage {
            body: Some(central_message::Body::Welcome(Welcome {
                server_id: server.to_string(),
                heartbeat_interval_seconds: self.central.config.heartbeat_interval_seconds,
                protocol_revision: PROTOCOL_REVISION.min(hello.protocol_revision.max(1)),
            })),
        };
        tx.send(Box::new(welcome)).await.map_err(|_| Status::cancelled("agent went away"))?;
        let connection = self.central.agents.connect(&server, &account, tx, announced, now);
        let changes =
            self.central.alerts.on_status(&account, &server, mttrly_core::tools::common::ConnectionStatus::Online, now);
        self.central.write_alerts(&account, &server, changes);
        tracing::info!(server_id = %server, connection, agent_version = %hello.agent_version, "agent connected");
        self.central.audit(crate::events::Recorded::new(
            events::agent_event(
                &account,
                &server,
                "connected",
                serde_json::json!({ "agent_version": hello.agent_version.chars().take(64).collect::<String>(), "hostname": hello.hostname.chars().take(256).collect::<String>() }),
                true,
            ),
            crate::events::Payload::AgentOnline,
        ));

        let central = Arc::clone(&self.central);
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(AgentMessage { body: Some(body) })) => {
                        handle(&central, &server, &account, connection, body);
                    }
                    Ok(Some(AgentMessage { body: None })) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(server_id = %server, error = %e, "agent stream error");
                        break;
                    }
                }
            }
            central.agents.disconnect(&server, connection);
            central.audit(crate::events::Recorded::new(
                events::agent_event(&account, &server, "disconnected", serde_json::json!({}), true),
                crate::events::Payload::AgentOffline,
            ));
            tracing::info!(server_id = %server, connection, "agent disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(|message| Ok(*message)))))
    }
}

fn handle(
    central: &Arc<Central>,
    server: &ServerId,
    account: &mttrly_core::ids::AccountId,
    connection: u64,
    body: agent_message::Body,
) {
    match body {
        agent_message::Body::Heartbeat(beat) => {
            let now = now_ms();
            let metrics = beat.metrics.unwrap_or_default();
            let metrics = mttrly_proto::convert::metrics_from_wire(&metrics, db::timestamp(now));
            let changes = central.alerts.on_metrics(account, server, &metrics, now);
            for near_miss in central.near_misses.on_metrics(central.alerts.rules(), server, &metrics, now) {
                crate::proactive::ingest::store(central, account, near_miss);
            }
            central.agents.heartbeat(server, connection, metrics, now);
            central.write_alerts(account, server, changes);
        }
        agent_message::Body::Hello(_) => tracing::debug!(server_id = %server, "ignoring a second Hello"),
        agent_message::Body::DeployDetected(seen) => crate::deploys::detected(central, server, account, &seen),
        agent_message::Body::ProactiveEvent(event) => {
            crate::proactive::ingest::on_agent_message(central, account, server, &event);
        }
        other => central.agents.task_message(server, connection, other),
    }
}
