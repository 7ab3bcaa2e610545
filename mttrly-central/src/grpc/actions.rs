//! `mttrly.central.v1.ActionService`: humans list, inspect, approve and reject actions.
//!
//! Decisions through this API count as the `cli` channel: they are made with a human's own token,
//! exactly as `mttrly-cli actions approve` makes them. Assistant tokens, read-only or scoped
//! tokens, and anything relayed from MCP are refused by the engine.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionState;
use mttrly_core::approval::config::Scope;
use mttrly_core::ids::{ActionId, ServerId};
use mttrly_core::tools::actions::ActionView;
use mttrly_core::{ErrorCode, MttrlyError, Source};
use mttrly_proto::central::v1::action_service_server::ActionService;
use mttrly_proto::central::v1::{
    Action, ApprovalRule, ApproveActionRequest, ApproveActionResponse, CancelActionRequest, CancelActionResponse,
    GetActionRequest, GetActionResponse, ListActionsRequest, ListActionsResponse, ListApprovalRulesRequest,
    ListApprovalRulesResponse, RejectActionRequest, RejectActionResponse,
};
use mttrly_proto::convert::environment_to_wire;
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::auth::authenticate;
use crate::db;
use crate::db::actions::ActionRow;
use crate::state::Central;
use crate::{actions, approvals};

/// The longest an approval call waits for the execution to finish.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The action service.
pub struct ActionApi {
    central: Arc<Central>,
}

impl ActionApi {
    /// Serves `central`'s actions.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

fn invalid(field: &str, message: String) -> tonic::Status {
    status(&MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field))
}

fn action_id(s: &str) -> Result<ActionId, tonic::Status> {
    ActionId::parse(s).map_err(|e| invalid("action_id", e.to_string()))
}

fn wire(row: &ActionRow, view: Option<&ActionView>) -> Action {
    Action {
        action_id: row.id.to_string(),
        server_id: row.server_id.to_string(),
        server_name: row.server_name.clone(),
        environment: environment_to_wire(row.environment),
        action_type: row.content.action_type().as_str().to_owned(),
        status: row.status.as_str().to_owned(),
        description: row.description.clone(),
        content_json: String::from_utf8(row.content.canonical_bytes()).unwrap_or_default(),
        content_sha256: row.content_sha256.clone(),
        requested_by: row.requested_by.to_string(),
        requested_via: row.requested_via.as_str().to_owned(),
        created_at_unix_ms: row.created_at,
        expires_at_unix_ms: if row.status == ActionState::PendingApproval { row.expires_at } else { 0 },
        view_json: view.and_then(|v| serde_json::to_string(v).ok()).unwrap_or_default(),
        approval_check: String::new(),
        approval_warning: String::new(),
        second_factor: String::new(),
    }
}

impl ActionApi {
    async fn full(
        &self,
        owner: &db::accounts::TokenOwner,
        id: &ActionId,
        view: Option<ActionView>,
    ) -> Result<Action, tonic::Status> {
        let row = actions::load(&self.central, owner, id).await.map_err(|e| status(&e))?;
        let view = match view {
            Some(v) => v,
            None => actions::view(&self.central, owner, id).await.map_err(|e| status(&e))?,
        };
        let check = match actions::approval_check(&self.central, owner, &row).await {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.message().to_owned(),
        };
        let warning = approvals::action_warning(&self.central, &row).await.map_err(|e| status(&e))?;
        let rule = actions::rule_for(&self.central, &row);
        Ok(Action {
            approval_check: check,
            approval_warning: warning.unwrap_or_default(),
            second_factor: rule.second_factor.as_str().to_owned(),
            ..wire(&row, Some(&view))
        })
    }
}

#[tonic::async_trait]
impl ActionService for ActionApi {
    async fn list_actions(&self, request: Request<ListActionsRequest>) -> GrpcResult<ListActionsResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let server = match req.server_id.as_str() {
            "" => None,
            s => Some(ServerId::parse(s).map_err(|e| invalid("server_id", e.to_string()))?),
        };
        let state = match req.status.as_str() {
            "" => None,
            s => Some(
                ActionState::ALL
                    .into_iter()
                    .find(|st| st.as_str() == s)
                    .ok_or_else(|| invalid("status", format!("unknown status `{s}`")))?,
            ),
        };
        let limit = match req.limit {
            0 => 50,
            n @ 1..=500 => n,
            _ => return Err(invalid("limit", "limit must be between 1 and 500".to_owned())),
        };
        if let Some(server) = &server {
            crate::servers::find(&self.central, &owner, server).await.map_err(|e| status(&e))?;
        }
        let rows = self
            .central
            .db
            .account(&owner.account_id)
            .actions()
            .list(server.as_ref(), state, limit)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(ListActionsResponse { actions: rows.iter().map(|r| wire(r, None)).collect() }))
    }

    async fn get_action(&self, request: Request<GetActionRequest>) -> GrpcResult<GetActionResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let id = action_id(&request.get_ref().action_id)?;
        Ok(Response::new(GetActionResponse { action: Some(self.full(&owner, &id, None).await?) }))
    }

    async fn approve_action(&self, request: Request<ApproveActionRequest>) -> GrpcResult<ApproveActionResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let id = action_id(&req.action_id)?;
        let seen = (!req.content_sha256.is_empty()).then_some(req.content_sha256.as_str());
        let code = (!req.second_factor_code.is_empty()).then_some(req.second_factor_code.as_str());
        let wait = Duration::from_secs(u64::from(req.wait_seconds)).min(MAX_WAIT);
        let view = actions::approve(&self.central, &owner, &id, seen, code, channel(req.via_mcp), wait)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(ApproveActionResponse { action: Some(self.full(&owner, &id, Some(view)).await?) }))
    }

    async fn reject_action(&self, request: Request<RejectActionRequest>) -> GrpcResult<RejectActionResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let id = action_id(&req.action_id)?;
        let reason = (!req.reason.trim().is_empty()).then(|| req.reason.chars().take(500).collect::<String>());
        let view =
            actions::reject(&self.central, &owner, &id, reason, channel(req.via_mcp)).await.map_err(|e| status(&e))?;
        Ok(Response::new(RejectActionResponse { action: Some(self.full(&owner, &id, Some(view)).await?) }))
    }

    async fn cancel_action(&self, request: Request<CancelActionRequest>) -> GrpcResult<CancelActionResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let id = action_id(&req.action_id)?;
        let view =
            actions::cancel(&self.central, &owner, &id, None, channel(req.via_mcp)).await.map_err(|e| status(&e))?;
        Ok(Response::new(CancelActionResponse { action: Some(self.full(&owner, &id, Some(view)).await?) }))
    }

    async fn list_approval_rules(
        &self,
        request: Request<ListApprovalRulesRequest>,
    ) -> GrpcResult<ListApprovalRulesResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let rules = approvals::effective(&self.central, &owner).await.map_err(|e| status(&e))?;
        Ok(Response::new(ListApprovalRulesResponse { rules: rules.iter().map(rule_to_wire).collect() }))
    }
}

fn rule_to_wire(effective: &approvals::EffectiveRule) -> ApprovalRule {
    let rule = &effective.rule;
    let (action_type, playbook) = match &effective.scope {
        Scope::Environment(_) => (String::new(), String::new()),
        Scope::ActionType(_, t) => (t.as_str().to_owned(), String::new()),
        Scope::Playbook(_, p) => (String::new(), p.clone()),
    };
    let mut approvers: Vec<String> = rule.approvers.roles.iter().map(|r| r.as_str().to_owned()).collect();
    approvers.extend(rule.approvers.users.iter().map(|u| format!("user:{u}")));
    ApprovalRule {
        scope: effective.scope.to_string(),
        environment: environment_to_wire(approvals::scope_environment(&effective.scope)),
        action_type,
        playbook,
        approvers,
        quorum: rule.quorum,
        requester_may_approve: rule.requester_may_approve,
        channels: rule.channels.iter().map(|c| c.as_str().to_owned()).collect(),
        usable_channels: effective.usable_channels.iter().map(|c| c.as_str().to_owned()).collect(),
        ttl_minutes: u32::try_from(rule.ttl.as_secs() / 60).unwrap_or(u32::MAX),
        second_factor: rule.second_factor.as_str().to_owned(),
        no_four_eyes: approvals::no_four_eyes(rule),
        solo_mode: approvals::solo_mode(rule),
        infeasible: effective.infeasible.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

/// The channel a decision came through: the CLI, or an MCP client relayed by the standalone MCP
/// server. Claiming `mcp` can only narrow what the rules allow: no rule accepts it.
const fn channel(via_mcp: bool) -> Source {
    if via_mcp { Source::Mcp } else { Source::Cli }
}
