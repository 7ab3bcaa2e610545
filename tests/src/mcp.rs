//! An rmcp client for end-to-end tests: real Streamable HTTP, a bearer token, and a scripted
//! human answering confirmation forms.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, FormElicitationCapability, Implementation, ProtocolVersion,
    ResourceUpdatedNotificationParam, UrlElicitationCapability,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient, ServiceExt};
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
    /// A client with URL-mode elicitation too, accepting everything: it "opens" every page it is
    /// sent to (records it) and ticks every form, as an auto-accepting client would.
    OpensPages,
    /// A client with URL-mode elicitation whose user declines to open the page.
    DeclinesPages,
}

/// The test client: declares elicitation support (unless built without) and records every form.
#[derive(Clone)]
pub struct TestClient {
    human: Option<Human>,
    /// The messages of the forms shown, in order.
    pub forms: Arc<Mutex<Vec<String>>>,
    /// The pages the client was asked to open (URL-mode elicitation), in order.
    pub pages: Arc<Mutex<Vec<String>>>,
    /// The `clientInfo.name` it announces.
    pub name: String,
    /// The resources the server said changed (`notifications/resources/updated`, 2025-11-25),
    /// in order.
    pub updated: Arc<Mutex<Vec<String>>>,
}

impl TestClient {
    /// A client named `name` without elicitation.
    pub fn named(name: &str) -> Self {
        Self {
            human: None,
            forms: Arc::default(),
            pages: Arc::default(),
            name: name.to_owned(),
            updated: Arc::default(),
        }
    }
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = if self.human.is_some() {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        if matches!(self.human, Some(Human::OpensPages | Human::DeclinesPages)) {
            capabilities.elicitation = Some(
                ElicitationCapability::new()
                    .with_form(FormElicitationCapability::new())
                    .with_url(UrlElicitationCapability::new()),
            );
        }
        ClientConfig::new(capabilities, Implementation::new(self.name.clone(), "1.0.0"))
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().expect("lock").push(params.uri);
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        match &request {
            ElicitRequestParams::FormElicitationParams { message, .. } => {
                self.forms.lock().expect("lock").push(message.clone());
            }
            ElicitRequestParams::UrlElicitationParams { url, .. } => self.pages.lock().expect("lock").push(url.clone()),
            _ => {}
        }
        let mut result = ElicitResult::new(match self.human {
            Some(Human::Confirms | Human::AcceptsUnticked | Human::OpensPages) => ElicitationAction::Accept,
            _ => ElicitationAction::Decline,
        });
        let is_form = matches!(request, ElicitRequestParams::FormElicitationParams { .. });
        result.content = match self.human {
            Some(Human::Confirms | Human::OpensPages) if is_form => Some(serde_json::json!({ "confirm": true })),
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
    let (session, forms, _) = connect_with_pages(url, token, human).await;
    (session, forms)
}

/// [`connect`], also returning the pages the client is asked to open.
pub async fn connect_with_pages(
    url: &str,
    token: &str,
    human: Option<Human>,
) -> (Session, Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>) {
    let forms = Arc::new(Mutex::new(Vec::new()));
    let pages = Arc::new(Mutex::new(Vec::new()));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let client = TestClient {
        human,
        forms: Arc::clone(&forms),
        pages: Arc::clone(&pages),
        name: "mttrly-e2e".into(),
        updated: Arc::default(),
    };
    let session = client.serve(transport).await.unwrap_or_else(|e| panic!("MCP session to {url}: {e}"));
    (session, forms, pages)
}

/// A session announcing itself as `client_name` (a person's own token names no assistant: the
/// client does).
pub async fn connect_as(url: &str, token: &str, client_name: &str) -> Session {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    TestClient::named(client_name).serve(transport).await.unwrap_or_else(|e| panic!("MCP session to {url}: {e}"))
}

/// A 2026-07-28 client announcing itself as `client_name`: `server/discover`, then stateless
/// requests each carrying the protocol version and client in `_meta` (no `initialize`, no
/// session).
pub async fn connect_stateless(url: &str, token: &str, client_name: &str) -> Session {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    TestClient::named(client_name)
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap_or_else(|e| panic!("2026-07-28 MCP client to {url}: {e}"))
}

/// [`connect_stateless`] with elicitation as `human` answers it (2026-07-28 asks for it in an
/// `input_required` result; the client fulfils it and retries the call), also returning the
/// pages the client is asked to open.
pub async fn connect_stateless_with_pages(
    url: &str,
    token: &str,
    human: Option<Human>,
) -> (Session, Arc<Mutex<Vec<String>>>) {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    );
    let pages = Arc::new(Mutex::new(Vec::new()));
    let client = TestClient { human, pages: Arc::clone(&pages), ..TestClient::named("mttrly-e2e-2026") };
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let session = client
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .unwrap_or_else(|e| panic!("2026-07-28 MCP client to {url}: {e}"));
    (session, pages)
}

/// Waits up to 10 s until `session`'s client was told `uri` changed at least `times` times.
pub async fn wait_updated(session: &Session, uri: &str, times: usize) {
    for _ in 0..200 {
        if updated_count(session, uri) >= times {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{uri} was not updated {times} times: {:?}", session.service().updated.lock().expect("lock"));
}

/// How many times `session`'s client was told `uri` changed.
pub fn updated_count(session: &Session, uri: &str) -> usize {
    session.service().updated.lock().expect("lock").iter().filter(|u| *u == uri).count()
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
