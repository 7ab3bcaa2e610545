//! An rmcp client for end-to-end tests: real Streamable HTTP, a bearer token, and a scripted
//! human answering confirmation forms.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, Implementation,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::Value;

/// How the scripted human answers a confirmation form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Human {
    /// Ticks the box and accepts.
    Confirms,
    /// Accepts without ticking the box.
    AcceptsUnticked,
    /// Declines.
    Declines,
}

/// The test client: declares elicitation support (unless built without) and records every form.
#[derive(Clone)]
pub struct TestClient {
    human: Option<Human>,
    /// The messages of the forms shown, in order.
    pub forms: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.human.is_some() {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("mttrly-e2e", "1.0.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.forms.lock().expect("lock").push(message.clone());
        }
        let mut result = ElicitResult::new(match self.human {
            Some(Human::Confirms | Human::AcceptsUnticked) => ElicitationAction::Accept,
            _ => ElicitationAction::Decline,
        });
        result.content = match self.human {
            Some(Human::Confirms) => Some(serde_json::json!({ "confirm": true })),
            Some(Human::AcceptsUnticked) => Some(serde_json::json!({ "confirm": false })),
            _ => None,
        };
        Ok(result)
    }
}

/// A connected session.
pub type Session = RunningService<RoleClient, TestClient>;

/// Connects to `url` with `token`; `human` is `None` for a client without elicitation.
pub async fn connect(url: &str, token: &str, human: Option<Human>) -> (Session, Arc<Mutex<Vec<String>>>) {
    let forms = Arc::new(Mutex::new(Vec::new()));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let client = TestClient { human, forms: Arc::clone(&forms) };
    let session = client.serve(transport).await.unwrap_or_else(|e| panic!("MCP session to {url}: {e}"));
    (session, forms)
}

/// Calls a tool; returns the raw result.
pub async fn call(session: &Session, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else { panic!("arguments must be an object") };
    session
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"))
}

/// Calls a tool that must succeed; returns its structured content.
pub async fn call_ok(session: &Session, tool: &str, arguments: Value) -> Value {
    let result = call(session, tool, arguments).await;
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    result.structured_content.unwrap_or_else(|| panic!("{tool} returned no structured content"))
}

/// Calls a tool that must fail; returns the error body.
pub async fn call_err(session: &Session, tool: &str, arguments: Value) -> Value {
    let result = call(session, tool, arguments).await;
    assert_eq!(result.is_error, Some(true), "{tool} should have failed: {result:?}");
    result.structured_content.unwrap_or_else(|| panic!("{tool} returned no error body"))
}
