//! `mttrly.central.v1.ServerService`: the registry and enrollment tokens.

use std::sync::Arc;

use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::server_service_server::ServerService;
use mttrly_proto::central::v1::{
    AddServerRequest, AddServerResponse, GetServerRequest, GetServerResponse, ListServersRequest, ListServersResponse,
    RemoveServerRequest, RemoveServerResponse, Server,
};
use mttrly_proto::convert::{environment_from_wire, environment_to_wire};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::audit::events;
use crate::auth::{authenticate, require_operator};
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};
use crate::state::Central;
use crate::tools::servers as handlers;

/// The server service.
pub struct ServerApi {
    central: Arc<Central>,
}

impl ServerApi {
    /// Serves `central`'s registry.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn invalid(field: &str, message: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field)
}

/// Server names: 1 to 64 of letters, digits, `-`, `.`, `_`, starting with a letter or digit, so
/// they are safe in shell commands, URLs and file names.
pub fn check_server_name(name: &str) -> Result<(), MttrlyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "server name must be 1 to 64 of letters, digits, `-`, `.`, `_`, starting with a letter or digit",
        ))
    }
}

fn parse_server_id(s: &str) -> Result<ServerId, MttrlyError> {
    ServerId::parse(s).map_err(|e| invalid("server_id", &e.to_string()))
}

/// The command a server owner runs to enroll and start the agent. With TLS it carries central's
/// CA, which the agent pins.
pub fn agent_command(central: &Central, install_token: &str) -> String {
    let ca = central.tls.as_ref().map(|t| format!(" --ca-cert-b64 {}", t.ca_base64())).unwrap_or_default();
    format!("mttrly-agent enroll --central {} --token {install_token}{ca} && mttrly-agent run", central.grpc_url)
}

/// Registers a server and issues its install token (shared by the API and quickstart).
pub async fn add_server(
    central: &Central,
    account: &mttrly_core::ids::AccountId,
    plan: mttrly_core::Plan,
    name: String,
    environment: mttrly_core::Environment,
) -> Result<(ServerId, String, i64), MttrlyError> {
    check_server_name(&name)?;
    let token = secrets::generate(SecretKind::Install);
    let hash = secrets::hash(&token);
    let expires_at = now_ms() + i64::from(central.config.install_token_ttl_minutes) * 60_000;
    let account = account.clone();
    let limit = plan.limits().servers;
    let server_id = central
        .db
        .call(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db::internal)?;
            let count = db::servers::count_live(&tx, &account)?;
            if count >= limit {
                return Err(MttrlyError::new(
                    ErrorCode::PlanRequired,
                    format!("the {} plan allows {limit} server(s) and this account has {count}", plan.display_name()),
                )
                .with_detail("current_plan", plan.as_str())
                .with_detail("server_limit", limit));
            }
            let id = db::servers::insert(&tx, &account, &name, environment)?;
            db::servers::insert_install_token(&tx, &hash, &id, expires_at)?;
            tx.commit().map_err(db::internal)?;
            Ok(id)
        })
        .await?;
    Ok((server_id, token, expires_at))
}

#[tonic::async_trait]
impl ServerService for ServerApi {
    async fn add_server(&self, request: Request<AddServerRequest>) -> GrpcResult<AddServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let req = request.into_inner();
        let params = serde_json::json!({ "name": req.name, "environment": req.environment });
        let result = match environment_from_wire(req.environment) {
            Some(environment) => add_server(&self.central, &owner.account_id, owner.plan, req.name, environment).await,
            None => Err(invalid("environment", "environment must be production, staging or development")),
        };
        let server = result.as_ref().ok().map(|(id, _, _)| id.clone());
        self.central.audit(events::api_call(&owner, "AddServer", server, params, &result));
        let (server_id, token, expires_at) = result.map_err(|e| status(&e))?;
        Ok(Response::new(AddServerResponse {
            server_id: server_id.to_string(),
            agent_command: agent_command(&self.central, &token),
            install_token: token,
            install_token_expires_at_unix_ms: expires_at,
        }))
    }

    async fn list_servers(&self, request: Request<ListServersRequest>) -> GrpcResult<ListServersResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let account = owner.account_id.clone();
        let rows = self.central.db.call(move |conn| db::servers::list(conn, &account)).await.map_err(|e| status(&e))?;
        let now = now_ms();
        let servers = rows.iter().map(|row| wire_server(&self.central, row, now)).collect();
        Ok(Response::new(ListServersResponse { servers }))
    }

    async fn get_server(&self, request: Request<GetServerRequest>) -> GrpcResult<GetServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let server_id = parse_server_id(&request.get_ref().server_id).map_err(|e| status(&e))?;
        let row = handlers::find(&self.central, &owner, &server_id).await.map_err(|e| status(&e))?;
        let full = handlers::status_of(&self.central, &owner, &row).await.map_err(|e| status(&e))?;
        Ok(Response::new(GetServerResponse {
            server: Some(wire_server(&self.central, &row, now_ms())),
            status_json: serde_json::to_string(&full).unwrap_or_default(),
        }))
    }

    async fn remove_server(&self, request: Request<RemoveServerRequest>) -> GrpcResult<RemoveServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let server_id = parse_server_id(&request.get_ref().server_id).map_err(|e| status(&e))?;
        let result = remove_server(&self.central, &owner.account_id, &server_id).await;
        self.central.audit(events::api_call(&owner, "RemoveServer", Some(server_id), serde_json::json!({}), &result));
        result.map_err(|e| status(&e))?;
        Ok(Response::new(RemoveServerResponse {}))
    }
}

/// Removes an offline server from the registry; `SERVER_ONLINE` while its agent is connected.
pub async fn remove_server(
    central: &Central,
    account: &mttrly_core::ids::AccountId,
    server_id: &ServerId,
) -> Result<(), MttrlyError> {
    let not_found = || {
        MttrlyError::new(ErrorCode::ServerNotFound, format!("no server {server_id} in this account"))
            .with_detail("server_id", server_id.as_str())
    };
    let (a, s) = (account.clone(), server_id.clone());
    central.db.call(move |conn| db::servers::get(conn, &a, &s)).await?.ok_or_else(not_found)?;
    if central.agents.status(server_id, now_ms()).status == ConnectionStatus::Online {
        return Err(MttrlyError::new(
            ErrorCode::ServerOnline,
            "the server's agent is connected; stop or uninstall the agent first, then remove the server",
        )
        .with_detail("server_id", server_id.as_str()));
    }
    let (a, s) = (account.clone(), server_id.clone());
    if !central.db.call(move |conn| db::servers::decommission(conn, &a, &s)).await? {
        return Err(not_found());
    }
    central.agents.remove(server_id);
    central.write_alerts(account, server_id, central.alerts.forget(server_id, now_ms()));
    tracing::info!(server_id = %server_id, "server decommissioned");
    Ok(())
}

fn wire_server(central: &Central, row: &db::servers::ServerRow, now: i64) -> Server {
    let (summary, _) = handlers::summary(central, row, now);
    Server {
        server_id: row.id.to_string(),
        name: row.name.clone(),
        environment: environment_to_wire(row.environment),
        status: match summary.status {
            ConnectionStatus::Online => "online",
            ConnectionStatus::Offline => "offline",
            ConnectionStatus::Pending => "pending",
        }
        .to_owned(),
        last_seen_unix_ms: summary.last_seen_at.map_or(0, jiff::Timestamp::as_millisecond),
        agent_version: summary.agent_version.unwrap_or_default(),
        hostname: row.host.as_ref().map(|h| h.hostname.clone()).unwrap_or_default(),
    }
}
