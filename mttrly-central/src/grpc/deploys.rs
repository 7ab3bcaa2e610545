//! `mttrly.central.v1.DeployService`: `mttrly-cli deploys record|list`.

use std::sync::Arc;

use mttrly_core::tools::deploys::DeployRecord;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::deploy_service_server::DeployService;
use mttrly_proto::central::v1::{
    Deploy, ListDeploysRequest, ListDeploysResponse, RecordDeployRequest, RecordDeployResponse,
};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::{authenticate, require_operator};
use crate::db::deploys::{DeployFilter, Recorded};
use crate::deploys::record::server_by_ref;
use crate::deploys::{Actor, DeployReport, WireTime, record};
use crate::state::Central;

/// The most deploys one list returns.
const MAX_LIST: u32 = 500;

/// The deploy service.
pub struct DeployApi {
    central: Arc<Central>,
}

impl DeployApi {
    /// Serves `central`'s deploys.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn to_wire(d: DeployRecord) -> Deploy {
    Deploy {
        deploy_id: d.deploy_id.to_string(),
        server_id: d.server_id.to_string(),
        external_id: d.external_id,
        service: d.service,
        version: d.version,
        commit_sha: d.commit_sha.unwrap_or_default(),
        repo_url: d.repo_url.unwrap_or_default(),
        environment: d.environment.unwrap_or_default(),
        started_at_unix_ms: d.started_at.as_millisecond(),
        finished_at_unix_ms: d.finished_at.map_or(0, jiff::Timestamp::as_millisecond),
        status: d.status.as_str().to_owned(),
        source: d.source.as_str().to_owned(),
        url: d.url.unwrap_or_default(),
        recorded_at_unix_ms: d.recorded_at.as_millisecond(),
    }
}

fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn time(ms: i64) -> Option<WireTime> {
    (ms != 0).then_some(WireTime::Millis(ms))
}

#[tonic::async_trait]
impl DeployService for DeployApi {
    async fn record_deploy(&self, request: Request<RecordDeployRequest>) -> GrpcResult<RecordDeployResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        require_operator(&owner).map_err(|e| status(&e))?;
        let r = request.into_inner();
        let report = DeployReport {
            id: r.id,
            server: r.server,
            service: r.service,
            version: r.version,
            commit: optional(r.commit),
            repo_url: optional(r.repo_url),
            environment: optional(r.environment),
            started_at: time(r.started_at_unix_ms),
            finished_at: time(r.finished_at_unix_ms),
            status: r.status,
            url: optional(r.url),
        };
        let (user_id, name) = (owner.principal.accountable_user().clone(), owner.user_name.clone());
        let recorded = record(&self.central, &owner.account_id, Actor::Human { user_id, name }, &report)
            .await
            .map_err(|e| status(&e))?;
        let outcome = match &recorded {
            Recorded::Created(_) => "created",
            Recorded::Updated { .. } => "updated",
            Recorded::Unchanged(_) => "unchanged",
        };
        Ok(Response::new(RecordDeployResponse {
            deploy: Some(to_wire(recorded.row().clone())),
            outcome: outcome.to_owned(),
        }))
    }

    async fn list_deploys(&self, request: Request<ListDeploysRequest>) -> GrpcResult<ListDeploysResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 50,
            n if n <= MAX_LIST => n,
            n => {
                return Err(status(
                    &MttrlyError::new(ErrorCode::ValidationError, format!("limit {n} is over {MAX_LIST}"))
                        .with_detail("field", "limit"),
                ));
            }
        };
        let server_id = match r.server.as_str() {
            "" => None,
            s => Some(server_by_ref(&self.central, &owner.account_id, s).await.map_err(|e| status(&e))?.id),
        };
        let deploys = self
            .central
            .db
            .account(&owner.account_id)
            .deploys()
            .list(DeployFilter { server_id, service: optional(r.service), limit })
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(ListDeploysResponse { deploys: deploys.into_iter().map(to_wire).collect() }))
    }
}
