//! `mttrly.central.v1.ServerService`: the registry and enrollment tokens over gRPC. The rules
//! live in [`crate::servers`]; this module only authenticates, converts and audits.

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
use crate::state::Central;
use crate::tools::servers as handlers;
use crate::{approvals, servers};

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

fn parse_server_id(s: &str) -> Result<ServerId, MttrlyError> {
    ServerId::parse(s).map_err(|e| invalid("server_id", &e.to_string()))
}

#[tonic::async_trait]
impl ServerService for ServerApi {
    async fn add_server(&self, request: Request<AddServerRequest>) -> GrpcResult<AddServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let req = request.into_inner();
        let params = serde_json::json!({ "name": req.name, "environment": req.environment });
        let result = match environment_from_wire(req.environment) {
            Some(environment) => {
                servers::add(&self.central, &owner.account_id, owner.plan, req.name, environment).await
            }
            None => Err(invalid("environment", "environment must be production, staging or development")),
        };
        let server = result.as_ref().ok().map(|added| added.server_id.clone());
        self.central.audit(events::api_call(&owner, "AddServer", server, params, &result));
        let added = result.map_err(|e| status(&e))?;
        // Whether anyone can approve a change on the new server, said now rather than during an
        // incident. Advice: the server is registered whatever this finds (or fails to read).
        let approval_warning = match environment_from_wire(req.environment) {
            Some(environment) => approvals::environment_warning(&self.central, &owner.account_id, environment)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot check the approval rules for a new server");
                    None
                }),
            None => None,
        };
        Ok(Response::new(AddServerResponse {
            server_id: added.server_id.to_string(),
            agent_command: servers::agent_command(&self.central, &added.install_token),
            install_command: crate::dist::one_liner(&self.central, &added.install_token).await.unwrap_or_default(),
            install_token: added.install_token,
            install_token_expires_at_unix_ms: added.expires_at,
            approval_warning: approval_warning.unwrap_or_default(),
        }))
    }

    async fn list_servers(&self, request: Request<ListServersRequest>) -> GrpcResult<ListServersResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let mark = self.central.agents.mark();
        let rows = self.central.db.account(&owner.account_id).servers().list().await.map_err(|e| status(&e))?;
        let observed =
            servers::observe_rows(&self.central, &owner.account_id, mark, rows).await.map_err(|e| status(&e))?;
        let servers = observed.iter().map(wire_server).collect();
        Ok(Response::new(ListServersResponse { servers }))
    }

    async fn get_server(&self, request: Request<GetServerRequest>) -> GrpcResult<GetServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let server_id = parse_server_id(&request.get_ref().server_id).map_err(|e| status(&e))?;
        let observed = servers::observe(&self.central, &owner.account_id, &server_id).await.map_err(|e| status(&e))?;
        let server = wire_server(&observed);
        let full = handlers::status_of(&self.central, &owner, observed).await.map_err(|e| status(&e))?;
        Ok(Response::new(GetServerResponse {
            server: Some(server),
            status_json: serde_json::to_string(&full).unwrap_or_default(),
        }))
    }

    async fn remove_server(&self, request: Request<RemoveServerRequest>) -> GrpcResult<RemoveServerResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let server_id = parse_server_id(&request.get_ref().server_id).map_err(|e| status(&e))?;
        let result = servers::remove(&self.central, &owner.account_id, &server_id).await;
        self.central.audit(events::api_call(&owner, "RemoveServer", Some(server_id), serde_json::json!({}), &result));
        result.map_err(|e| status(&e))?;
        Ok(Response::new(RemoveServerResponse {}))
    }
}

fn wire_server(observed: &servers::Observed) -> Server {
    let row = &observed.row;
    let summary = handlers::summary(row, &observed.live);
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
