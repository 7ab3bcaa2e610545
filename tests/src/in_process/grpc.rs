//! Authenticated gRPC requests to an in-process central, and the replies tests read most.

use mttrly_core::ErrorCode;
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::tool_service_client::ToolServiceClient;
use mttrly_proto::central::v1::{Action, CallToolRequest, GetActionRequest};
use serde_json::Value;
use tonic::transport::Channel;

/// `body` with `authorization: Bearer TOKEN`.
pub fn authed<T>(token: &str, body: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("a token fits a header"));
    req
}

/// The seed error code a refused call carries.
pub fn code(status: &tonic::Status) -> ErrorCode {
    mttrly_proto::status::from_status(status).code()
}

/// `CallTool` as `claude-code` on `channel`: whether it is an error, and its structured result.
pub async fn call_tool(channel: Channel, token: &str, tool: &str, args: Value) -> (bool, Value) {
    let r = ToolServiceClient::new(channel)
        .call_tool(authed(
            token,
            CallToolRequest {
                tool_id: tool.into(),
                arguments_json: args.to_string(),
                client_name: "claude-code".into(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("CallTool {tool}: {s:?}"))
        .into_inner();
    let value = serde_json::from_str(&r.structured_json)
        .unwrap_or_else(|e| panic!("{tool} answered no JSON ({e}): {}", r.structured_json));
    (r.is_error, value)
}

/// `GetAction` of `id` as `token`.
pub async fn get_action(channel: Channel, token: &str, id: &str) -> Action {
    ActionServiceClient::new(channel)
        .get_action(authed(token, GetActionRequest { action_id: id.into() }))
        .await
        .unwrap_or_else(|s| panic!("GetAction {id}: {s:?}"))
        .into_inner()
        .action
        .expect("GetAction answers an action")
}
