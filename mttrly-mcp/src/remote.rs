//! A remote central as the backend: the standalone `mttrly-mcp` server forwards every call over
//! the `mttrly.central.v1` gRPC API with one token. Central does all the enforcing (tenancy,
//! plan, surface, audit, approval rules); calls arrive there as the MCP client's assistant, and
//! `mttrly_approve_action` is answered there like on central's own `/mcp`: never a decision.

use std::future::Future;

use std::time::Duration;

use mttrly_core::action::ActionState;
use mttrly_core::{MttrlyError, ToolId};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{CallToolRequest, GetActionRequest, ListToolsRequest};
use mttrly_proto::client::Authed;
use serde_json::{Value, json};
use tokio::time::Instant;

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

    /// Polls central's `GetAction` (a read that is not a tool call, so waiting leaves no audit
    /// rows) from once a second, backing off to every five, until the action ends or the deadline passes, then fetches its view
    /// with one `mttrly_get_action_result` call, audited like any other.
    async fn await_action(
        &self,
        (): &(),
        session: &Session,
        action_id: &str,
        deadline: Instant,
    ) -> Result<Value, MttrlyError> {
        /// Between the first two polls; each later wait is half as long again, up to [`MAX_POLL`].
        const POLL: Duration = Duration::from_secs(1);
        /// The longest between two polls.
        const MAX_POLL: Duration = Duration::from_secs(5);
        let mut poll = POLL;
        loop {
            let action = ActionServiceClient::new(self.channel.clone())
                .get_action(GetActionRequest { action_id: action_id.to_owned() })
                .await
                .map_err(|s| status(&s))?
                .into_inner()
                .action;
            let ended = action
                .as_ref()
                .and_then(|a| ActionState::ALL.into_iter().find(|s| s.as_str() == a.status))
                .is_some_and(ActionState::is_terminal);
            let now = Instant::now();
            if ended || now >= deadline {
                break;
            }
            tokio::time::sleep_until(deadline.min(now + poll)).await;
            poll = (poll * 3 / 2).min(MAX_POLL);
        }
        self.call_raw(session, ToolId::GetActionResult, json!({ "action_id": action_id })).await
    }
}
