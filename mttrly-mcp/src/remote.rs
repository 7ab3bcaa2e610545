//! A remote central as the backend: the standalone `mttrly-mcp` server forwards every call over
//! the `mttrly.central.v1` gRPC API with one token. Central does all the enforcing (tenancy,
//! plan, surface, audit, approval rules); calls arrive there as the MCP client's assistant, and
//! `mttrly_approve_action` is answered there like on central's own `/mcp`: never a decision.

use std::future::Future;

use mttrly_core::{MttrlyError, ToolId};
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
            mttrly_proto::convert::tool_result_from_wire(&reply)
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
        // What central's own MCP endpoint lists (`listed`); `available` for a central older than it.
        Ok(reply.tools.iter().filter(|t| t.listed || t.available).filter_map(|t| t.id.parse::<ToolId>().ok()).collect())
    }

    async fn call(&self, (): &(), session: &Session, tool: ToolId, arguments: Value) -> Result<Value, MttrlyError> {
        self.call_raw(session, tool, arguments).await
    }
}
