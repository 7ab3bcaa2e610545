//! `mttrly.central.v1.ToolService`: the catalog, and tool calls exactly as MCP makes them.

use std::sync::Arc;

use mttrly_core::catalog::specs;
use mttrly_core::{MttrlyError, Source, ToolId};
use mttrly_proto::central::v1::tool_service_server::ToolService;
use mttrly_proto::central::v1::{CallToolRequest, CallToolResponse, ListToolsRequest, ListToolsResponse, Tool};
use serde_json::Value;
use tonic::{Request, Response};

use super::{GrpcResult, status};
use crate::audit::events;
use crate::auth::authenticate;
use crate::state::Central;
use crate::tools;

/// The tool service.
pub struct ToolApi {
    central: Arc<Central>,
}

impl ToolApi {
    /// Serves `central`'s tools.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

#[tonic::async_trait]
impl ToolService for ToolApi {
    async fn list_tools(&self, request: Request<ListToolsRequest>) -> GrpcResult<ListToolsResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        // The caller's reach: read-only mode and toolsets (deployment-wide and the token's), the
        // plan and what this central has built, exactly as admission and MCP judge them.
        let tools = specs()
            .iter()
            .zip(tools::reach(&self.central, &owner))
            .map(|(s, (_, reach))| Tool {
                id: s.id.as_str().to_owned(),
                title: s.title.to_owned(),
                description: s.description.to_owned(),
                kind: s.kind.as_str().to_owned(),
                min_plan: s.min_plan.as_str().to_owned(),
                toolset: s.toolset.as_str().to_owned(),
                read_only_hint: s.hints.read_only(),
                destructive_hint: s.hints.destructive(),
                idempotent_hint: s.hints.idempotent(),
                open_world_hint: s.hints.open_world(),
                input_schema_json: s.input_schema().to_string(),
                output_schema_json: s.output_schema().to_string(),
                available: reach.is_callable(),
                listed: reach.is_listed(),
            })
            .collect();
        Ok(Response::new(ListToolsResponse { tools }))
    }

    async fn call_tool(&self, request: Request<CallToolRequest>) -> GrpcResult<CallToolResponse> {
        let owner = authenticate(&self.central, request.metadata()).await.map_err(|e| status(&e))?;
        let req = request.into_inner();
        let started = std::time::Instant::now();
        let arguments: Result<Value, MttrlyError> = if req.arguments_json.trim().is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&req.arguments_json).map_err(|e| {
                MttrlyError::new(mttrly_core::ErrorCode::ValidationError, format!("arguments are not valid JSON: {e}"))
                    .with_detail("field", ".")
            })
        };
        // The standalone MCP binary names its client; anything else is a direct API caller. Calls
        // relayed from an MCP client are the assistant's, on behalf of the token's human.
        let source = if req.client_name.is_empty() { Source::Api } else { Source::Mcp };
        let owner =
            if source == Source::Mcp { crate::auth::relayed_assistant(&owner, &req.client_name) } else { owner };
        let outcome = match (req.tool_id.parse::<ToolId>(), arguments) {
            (Ok(tool), Ok(args)) => tools::call_audited(&self.central, &owner, source, tool, args).await,
            // Refused before any tool ran: audited here, under the id as sent.
            (Err(err), _) | (Ok(_), Err(err)) => {
                let outcome = Err(err);
                let subject: String = req.tool_id.chars().take(64).collect();
                self.central.audit(events::tool_call(
                    &owner,
                    source,
                    &subject,
                    &Value::Null,
                    &outcome,
                    started.elapsed(),
                ));
                outcome
            }
        };
        Ok(Response::new(match outcome {
            Ok(value) => CallToolResponse { text: render(&value), structured_json: value.to_string(), is_error: false },
            Err(err) => {
                let body = serde_json::to_value(err.body()).unwrap_or(Value::Null);
                CallToolResponse {
                    text: format!("{}: {}", err.code(), err.message()),
                    structured_json: body.to_string(),
                    is_error: true,
                }
            }
        }))
    }
}

fn render(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
