//! The MCP server: one instance per MCP session, built from the catalog and a [`Backend`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use mttrly_core::ids::AssistantSessionId;
use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::backend::{Backend, Session};
use crate::{page, prompts, resources, result, tools};

/// What an MCP server exposes on top of what the backend allows. It can only narrow.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Advertise and allow only these tools (after the backend's own list); `None` for all.
    pub surface: mttrly_core::ToolSurface,
    /// How long a `mttrly_approve_action` / `mttrly_cancel_action` call that sent the user to the
    /// action's page waits for a human to decide there ([`crate::page`]); zero uses
    /// [`DEFAULT_HUMAN_WAIT`].
    pub human_wait: std::time::Duration,
    /// The calls waiting for a human on an action's page, shared by every session of this
    /// server: bounded per caller and in all ([`crate::page::WaitSlots`]).
    pub page_waits: Arc<crate::page::WaitSlots>,
}

/// How long a call waits for a human on the action's page unless told otherwise: long enough to
/// sign in, read and decide; short enough that an assistant is not stuck when nobody comes.
pub const DEFAULT_HUMAN_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// The MCP server for one session.
pub struct McpServer<B: Backend> {
    backend: Arc<B>,
    options: Arc<Options>,
    /// Over stdio the caller is fixed for the process; over HTTP it comes with each request.
    fixed_caller: Option<B::Caller>,
    session_id: AssistantSessionId,
    client_name: OnceLock<String>,
    /// The caller that opened the session; nobody else may use it.
    bound_to: OnceLock<String>,
}

impl<B: Backend> McpServer<B> {
    /// A server whose callers come with each HTTP request (the transport's authentication puts
    /// them in the request's extensions).
    pub fn per_request(backend: Arc<B>, options: Arc<Options>) -> Self {
        Self::build(backend, options, None)
    }

    /// A server with one caller for its whole life (stdio).
    pub fn with_caller(backend: Arc<B>, options: Arc<Options>, caller: B::Caller) -> Self {
        Self::build(backend, options, Some(caller))
    }

    fn build(backend: Arc<B>, options: Arc<Options>, fixed_caller: Option<B::Caller>) -> Self {
        Self {
            backend,
            options,
            fixed_caller,
            session_id: AssistantSessionId::generate(),
            client_name: OnceLock::new(),
            bound_to: OnceLock::new(),
        }
    }

    fn session(&self) -> Session {
        Session {
            id: self.session_id.clone(),
            client_name: self.client_name.get().cloned().unwrap_or_else(|| "mcp-client".to_owned()),
        }
    }

    /// The request's caller, checked against the one the session is bound to.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<B::Caller, ErrorData> {
        let caller = match &self.fixed_caller {
            Some(c) => c.clone(),
            None => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<B::Caller>())
                .cloned()
                .ok_or_else(|| ErrorData::invalid_request("this request carries no authenticated caller", None))?,
        };
        let key = self.backend.caller_key(&caller);
        let bound = self.bound_to.get_or_init(|| key.clone());
        if *bound != key {
            tracing::warn!(session = %self.session_id, "a different caller tried to use an MCP session");
            return Err(ErrorData::invalid_request(
                "this MCP session belongs to another user; start a new session",
                None,
            ));
        }
        Ok(caller)
    }

    /// The tools this caller sees: the backend's, narrowed by this server's options.
    async fn visible_tools(&self, caller: &B::Caller) -> Result<Vec<ToolId>, MttrlyError> {
        let tools = self.backend.tools(caller).await?;
        Ok(tools.into_iter().filter(|t| self.options.surface.check(t.spec()).is_ok()).collect())
    }

    /// Whether `tool` is among [`Self::visible_tools`], judged for that tool alone.
    async fn is_visible(&self, caller: &B::Caller, tool: ToolId) -> Result<bool, MttrlyError> {
        Ok(self.options.surface.check(tool.spec()).is_ok() && self.backend.lists(caller, tool).await?)
    }

    /// Every tool, `mttrly_approve_action` included, goes to the backend as it is: this server
    /// never asks the client to confirm anything, because a client's answer is not a human's.
    async fn run_tool(&self, caller: &B::Caller, tool: ToolId, arguments: Value) -> Result<Value, MttrlyError> {
        self.backend.call(caller, &self.session(), tool, arguments).await
    }
}

fn internal(err: &MttrlyError) -> ErrorData {
    ErrorData::internal_error(format!("{}: {}", err.code(), err.message()), None)
}

impl<B: Backend> ServerHandler for McpServer<B> {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build();
        let mut info = InitializeResult::new(capabilities);
        info.server_info = Implementation::new("mttrly", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "mttrly: incident response on live servers. Call mttrly_get_capabilities first. Read tools run at once; \
             anything that changes a server becomes a pending action a human must approve. Use the \
             incident-investigation prompt for the full checklist."
                .to_owned(),
        );
        info
    }

    /// The protocol revisions this server is tested with. Its only server-to-client request is
    /// URL-mode elicitation pointing at an action's page ([`crate::page`]); nothing a client
    /// answers stands for a human's decision.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.caller(&context)?;
        let _ = self.client_name.set(mttrly_core::display::client_name(&request.client_info.name));
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&context)?;
        let tools = self.visible_tools(&caller).await.map_err(|e| internal(&e))?;
        Ok(ListToolsResult::with_all_items(tools.into_iter().map(tools::cached).collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let visible = match request.name.parse::<ToolId>() {
            Ok(tool) => self.is_visible(&caller, tool).await.map_err(|e| internal(&e))?.then_some(tool),
            Err(_) => None,
        };
        let Some(tool) = visible else {
            // Unknown or unadvertised: a protocol error, as the MCP specification asks.
            return Err(ErrorData::invalid_params(format!("unknown tool: {}", request.name), None));
        };
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        // What the assistant asked for, to say the outcome against it (see `page`).
        let asked = match (tool, arguments.get("decision").and_then(Value::as_str)) {
            (ToolId::CancelAction, _) => "cancel",
            (_, Some("reject")) => "reject",
            _ => "approve",
        };
        let outcome = self.run_tool(&caller, tool, arguments).await;
        let page = match &outcome {
            Err(refused) if matches!(tool, ToolId::ApproveAction | ToolId::CancelAction) => page::page_of(refused),
            _ => None,
        };
        let slot = page.as_ref().and_then(|_| self.options.page_waits.take(&self.backend.caller_key(&caller)));
        if let (Err(refused), Some((action_id, url)), Some(_slot)) = (outcome.as_ref(), page, slot) {
            // A human decides on the action's page; the call waits for what they decided.
            let wait = if self.options.human_wait.is_zero() { DEFAULT_HUMAN_WAIT } else { self.options.human_wait };
            let session = self.session();
            let visit = page::Visit {
                backend: self.backend.as_ref(),
                caller: &caller,
                session: &session,
                peer: &context.peer,
                progress: context.meta.get_progress_token(),
                wait,
                asked,
            };
            return Ok(tokio::select! {
                answer = visit.answer(refused.clone(), &action_id, &url) => answer,
                () = context.ct.cancelled() => result::failure(refused),
            }
            .into());
        }
        Ok(match outcome {
            Ok(value) => result::success(value),
            Err(err) => result::failure(&err),
        }
        .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.caller(&context)?;
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.caller(&context)?;
        if request.name != prompts::INCIDENT_INVESTIGATION {
            return Err(ErrorData::invalid_params(format!("unknown prompt: {}", request.name), None));
        }
        let arg = |name: &str| {
            request.arguments.as_ref().and_then(|a| a.get(name)).and_then(Value::as_str).map(|s| {
                let s: String = s.chars().take(500).collect();
                s
            })
        };
        Ok(prompts::incident_investigation(arg("server").as_deref(), arg("symptom").as_deref()).into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let list = resources::list(self.backend.as_ref(), &caller, &self.session()).await.map_err(|e| internal(&e))?;
        Ok(ListResourcesResult::with_all_items(list))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        match resources::read(self.backend.as_ref(), &caller, &self.session(), &request.uri).await {
            Ok(contents) => Ok(ReadResourceResult::new(vec![contents]).into()),
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::ServerNotFound) => {
                Err(ErrorData::resource_not_found(e.message().to_owned(), None))
            }
            Err(e) if e.code() == ErrorCode::ValidationError => {
                Err(ErrorData::invalid_params(e.message().to_owned(), None))
            }
            Err(e) => Err(internal(&e)),
        }
    }
}
