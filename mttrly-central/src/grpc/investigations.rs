//! `InvestigationService`: people's investigations API for `mttrly-cli investigations`, thin over
//! `crate::investigations`. Decisions come through it as the CLI channel.

use std::str::FromStr as _;
use std::sync::Arc;

use mttrly_core::ids::{BypassId, InvestigationId};
use mttrly_core::tools::investigations::{ArgvPattern, BypassTool, BypassTools, GrantScope};
use mttrly_core::{ErrorCode, MttrlyError, Source};
use mttrly_proto::central::v1::investigation_service_server::InvestigationService;
use mttrly_proto::central::v1::{
    CloseInvestigationRequest, GetInvestigationRequest, GrantInvestigationBypassRequest, InvestigationReply,
    ListInvestigationsRequest, ListInvestigationsResponse, RevokeInvestigationBypassRequest,
};
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::db::accounts::TokenOwner;
use crate::investigations::{self, GrantRequest, InvestigationView};
use crate::state::Central;

/// The service.
pub struct InvestigationApi {
    central: Arc<Central>,
}

impl InvestigationApi {
    /// Serves `central`.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> tonic::Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field))
}

fn investigation_id(raw: &str) -> Result<InvestigationId, tonic::Status> {
    InvestigationId::parse(raw.trim()).map_err(|e| invalid("investigation_id", e.to_string()))
}

fn reply(view: &InvestigationView) -> InvestigationReply {
    InvestigationReply { investigation_json: view.to_json().to_string() }
}

/// The narrowed scope a request asks for, over the bypass's requested one (`None`: as asked).
async fn narrowed(
    central: &Central,
    owner: &TokenOwner,
    id: &BypassId,
    req: &GrantInvestigationBypassRequest,
) -> Result<Option<GrantScope>, tonic::Status> {
    if req.duration_minutes == 0 && req.max_actions == 0 && req.tools.is_empty() && req.patterns.is_empty() {
        return Ok(None);
    }
    let Some(bypass) =
        central.db.account(&owner.account_id).investigations().bypass(id).await.map_err(|e| status(&e))?
    else {
        return Err(status(&MttrlyError::new(ErrorCode::NotFound, format!("no bypass {id} in this account"))));
    };
    let mut scope = bypass.scope;
    if req.duration_minutes > 0 {
        scope.minutes = req.duration_minutes;
    }
    if req.max_actions > 0 {
        scope.max_actions = req.max_actions;
    }
    if !req.tools.is_empty() {
        let tools = req.tools.iter().map(|t| BypassTool::from_str(t)).collect::<Result<Vec<_>, _>>();
        scope.tools = BypassTools::new(tools.map_err(|e| invalid("tools", e))?).map_err(|e| invalid("tools", e))?;
    }
    if !req.patterns.is_empty() {
        scope.patterns = req
            .patterns
            .iter()
            .map(|p| ArgvPattern::from_words(&p.words))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("patterns", e))?;
    }
    Ok(Some(scope))
}

#[tonic::async_trait]
impl InvestigationService for InvestigationApi {
    async fn list_investigations(
        &self,
        request: Request<ListInvestigationsRequest>,
    ) -> GrpcResult<ListInvestigationsResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let limit = if req.limit == 0 { 50 } else { req.limit };
        let views = investigations::list(&self.central, &owner, !req.all, limit).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListInvestigationsResponse { investigations: views.iter().map(reply).collect() }))
    }

    async fn get_investigation(&self, request: Request<GetInvestigationRequest>) -> GrpcResult<InvestigationReply> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let id = if req.investigation_id.is_empty() && !req.bypass_id.is_empty() {
            let bypass = BypassId::parse(req.bypass_id.trim()).map_err(|e| invalid("bypass_id", e.to_string()))?;
            investigations::of_bypass(&self.central, &owner, &bypass).await.map_err(|e| status(&e))?
        } else {
            investigation_id(&req.investigation_id)?
        };
        let view = investigations::show(&self.central, &owner, &id).await.map_err(|e| status(&e))?;
        Ok(Response::new(reply(&view)))
    }

    async fn close_investigation(&self, request: Request<CloseInvestigationRequest>) -> GrpcResult<InvestigationReply> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = investigation_id(&request.get_ref().investigation_id)?;
        let view = investigations::close(&self.central, &owner, &id, Source::Cli).await.map_err(|e| status(&e))?;
        Ok(Response::new(reply(&view)))
    }

    async fn revoke_investigation_bypass(
        &self,
        request: Request<RevokeInvestigationBypassRequest>,
    ) -> GrpcResult<InvestigationReply> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = investigation_id(&request.get_ref().investigation_id)?;
        let view =
            investigations::revoke_as_human(&self.central, &owner, &id, Source::Cli).await.map_err(|e| status(&e))?;
        Ok(Response::new(reply(&view)))
    }

    async fn grant_investigation_bypass(
        &self,
        request: Request<GrantInvestigationBypassRequest>,
    ) -> GrpcResult<InvestigationReply> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let id = BypassId::parse(req.bypass_id.trim()).map_err(|e| invalid("bypass_id", e.to_string()))?;
        let scope = narrowed(&self.central, &owner, &id, &req).await?;
        let grant = GrantRequest { bypass_id: id, scope, code: req.second_factor_code };
        let state = investigations::grant(&self.central, &owner, grant, Source::Cli).await.map_err(|e| status(&e))?;
        let view =
            investigations::show(&self.central, &owner, &state.investigation_id).await.map_err(|e| status(&e))?;
        Ok(Response::new(reply(&view)))
    }
}
