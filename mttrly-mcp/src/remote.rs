//! A remote central as the backend: the standalone `mttrly-mcp` server forwards every call over
//! the `mttrly.central.v1` gRPC API with one token. Central does all the enforcing (tenancy,
//! plan, surface, audit, approval rules); calls arrive there as the MCP client's assistant.

use std::future::Future;

use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{
    ApproveActionRequest, CallToolRequest, CancelActionRequest, ListToolsRequest, RejectActionRequest,
};
use mttrly_proto::client::Authed;
use serde_json::Value;

use crate::backend::{Backend, ConfirmedDecision, DecisionKind, Session};

/// How long an approval through the remote waits for the execution to finish.
const APPROVE_WAIT_SECONDS: u32 = 60;

/// Central over gRPC.
#[derive(Clone)]
pub struct RemoteCentral {
    channel: Authed,
}

impl RemoteCentral {
    /// Uses an authenticated channel (see [`mttrly_proto::client::connect`]).
    pub fn new(channel: Authed) -> Self {
        Self { channel }
    }
}

fn status(s: &tonic::Status) -> MttrlyError {
    mttrly_proto::status::from_status(s)
}

impl RemoteCentral {
    async fn view(&self, session: &Session, id: &str) -> Result<Value, MttrlyError> {
        self.call_raw(session, ToolId::GetActionResult, serde_json::json!({ "action_id": id })).await
    }

    fn call_raw(
        &self,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> impl Future<Output = Result<Value, MttrlyError>> + Send + '_ {
        let client_name = session.client_name.clone();
        async move {
            let reply = ToolServiceClient::new(self.channel.clone())
                .call_tool(CallToolRequest {
                    tool_id: tool.as_str().to_owned(),
                    arguments_json: arguments.to_string(),
                    client_name,
                })
                .await
                .map_err(|s| status(&s))?
                .into_inner();
            let value: Value = serde_json::from_str(&reply.structured_json).map_err(|e| {
                MttrlyError::new(ErrorCode::InternalError, format!("central's answer is not JSON: {e}"))
            })?;
            if reply.is_error {
                let body: mttrly_core::ErrorBody = serde_json::from_value(value).map_err(|e| {
                    MttrlyError::new(ErrorCode::InternalError, format!("central's error body is malformed: {e}"))
                })?;
                let mut err = MttrlyError::new(body.code, body.message);
                if let Value::Object(details) = body.details {
                    for (k, v) in details {
                        err = err.with_detail(&k, v);
                    }
                }
                return Err(err);
            }
            Ok(value)
        }
    }
}

impl Backend for RemoteCentral {
    /// One token for the whole process.
    type Caller = ();

    fn caller_key(&self, (): &()) -> String {
        "process".to_owned()
    }

    async fn tools(&self, (): &()) -> Result<Vec<ToolId>, MttrlyError> {
        let reply = ToolServiceClient::new(self.channel.clone())
            .list_tools(ListToolsRequest {})
            .await
            .map_err(|s| status(&s))?
            .into_inner();
        Ok(reply.tools.iter().filter(|t| t.available).filter_map(|t| t.id.parse::<ToolId>().ok()).collect())
    }

    async fn call(&self, (): &(), session: &Session, tool: ToolId, arguments: Value) -> Result<Value, MttrlyError> {
        self.call_raw(session, tool, arguments).await
    }

    async fn decide(&self, (): &(), session: &Session, d: ConfirmedDecision) -> Result<Value, MttrlyError> {
        let mut actions = ActionServiceClient::new(self.channel.clone());
        let id = d.action_id.as_str().to_owned();
        let done = match d.kind {
            DecisionKind::Approve => actions
                .approve_action(ApproveActionRequest {
                    action_id: id.clone(),
                    content_sha256: d.seen_sha256.clone(),
                    wait_seconds: APPROVE_WAIT_SECONDS,
                    via_mcp: true,
                })
                .await
                .map(|r| r.into_inner().action),
            DecisionKind::Reject => actions
                .reject_action(RejectActionRequest {
                    action_id: id.clone(),
                    reason: d.reason.clone().unwrap_or_default(),
                    via_mcp: true,
                })
                .await
                .map(|r| r.into_inner().action),
            DecisionKind::Cancel => actions
                .cancel_action(CancelActionRequest { action_id: id.clone(), via_mcp: true })
                .await
                .map(|r| r.into_inner().action),
        };
        done.map_err(|s| status(&s))?
            .ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "central returned no action"))?;
        // Answer in the shape `mttrly_approve_action` declares: the action's view.
        self.view(session, &id).await
    }
}
