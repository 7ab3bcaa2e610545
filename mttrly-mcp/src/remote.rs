//! A remote central as the backend: the standalone `mttrly-mcp` server forwards every call over
//! the `mttrly.central.v1` gRPC API with one token. Central does all the enforcing (tenancy,
//! plan, surface, audit, approval rules); calls arrive there as the MCP client's assistant, and
//! `mttrly_approve_action` is answered there like on central's own `/mcp`: never a decision.

use std::future::Future;

use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{CallToolRequest, ListToolsRequest};
use mttrly_proto::client::Authed;
use serde_json::Value;

use crate::backend::{Backend, Session};

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
}
