//! The MCP server: one instance per MCP session, built from the catalog and a [`Backend`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use mttrly_core::ids::AssistantSessionId;
use mttrly_core::tools::notify::NotificationResource;
use mttrly_core::{ErrorCode, MttrlyError, ToolId};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::backend::{Backend, Session, Update, Updates};
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
    /// What this session subscribed to with `resources/subscribe` (2025-11-25), and the task
    /// that tells the client when one of them changes (started by the first subscription,
    /// stopped with the session).
    subscribed: Arc<Mutex<BTreeSet<NotificationResource>>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The most resources one session (or one `subscriptions/listen` stream) follows.
pub const MAX_SUBSCRIPTIONS: usize = 64;

impl<B: Backend> Drop for McpServer<B> {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.lock().unwrap_or_else(PoisonError::into_inner).take() {
            watcher.abort();
        }
    }
}

/// The subscribed resources an update changes: a thread's always, a channel's only when the
/// notification passes the person's own filter; everything on [`Update::Missed`].
pub fn changed_by(update: &Update, subscribed: &BTreeSet<NotificationResource>) -> Vec<String> {
    subscribed
        .iter()
        .filter(|r| match (update, r) {
            (Update::Missed, _) => true,
            (Update::Notification { channel, wanted, .. }, NotificationResource::Channel(c)) => {
                *wanted && c.as_str() == channel
            }
            (Update::Notification { thread_id, .. }, NotificationResource::Thread(t)) => t.as_str() == thread_id,
        })
        .map(ToString::to_string)
        .collect()
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
            subscribed: Arc::default(),
            watcher: Mutex::new(None),
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
        if self.client_name.get().is_none()
            && let Some(info) = context.client_info()
        {
            // 2026-07-28 has no `initialize`: each request names its client in `_meta`.
            let _ = self.client_name.set(mttrly_core::display::client_name(&info.name));
        }
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

/// Whether this request is 2026-07-28's (stateless: no server-to-client requests).
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::NO_INITIALIZE.as_str())
}

fn internal(err: &MttrlyError) -> ErrorData {
    ErrorData::internal_error(format!("{}: {}", err.code(), err.message()), None)
}

/// A resource error as MCP says it: not found, invalid, refused, or internal.
fn resource_error(e: &MttrlyError) -> ErrorData {
    match e.code() {
        ErrorCode::NotFound | ErrorCode::ServerNotFound => ErrorData::resource_not_found(e.message().to_owned(), None),
        ErrorCode::ValidationError => ErrorData::invalid_params(e.message().to_owned(), None),
        ErrorCode::Forbidden | ErrorCode::PlanRequired => {
            ErrorData::invalid_request(format!("{}: {}", e.code(), e.message()), None)
        }
        _ => internal(e),
    }
}

/// [`resource_error`] naming the URI in the error's data when it is not found (SEP-2164).
fn resource_error_for(e: &MttrlyError, uri: &str) -> ErrorData {
    match e.code() {
        ErrorCode::NotFound | ErrorCode::ServerNotFound => {
            ErrorData::resource_not_found(e.message().to_owned(), Some(serde_json::json!({ "uri": uri })))
        }
        _ => resource_error(e),
    }
}

/// Tells a 2025-11-25 session's client which of its subscribed resources changed, until the
/// session ends (its server is dropped, or a send fails) or the backend stops.
async fn relay_to_session(
    mut updates: Box<dyn Updates>,
    subscribed: Arc<Mutex<BTreeSet<NotificationResource>>>,
    peer: rmcp::Peer<RoleServer>,
) {
    while let Some(update) = updates.next().await {
        let uris = changed_by(&update, &subscribed.lock().unwrap_or_else(PoisonError::into_inner));
        for uri in uris {
            if peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await.is_err() {
                return;
            }
        }
    }
}

impl<B: Backend> ServerHandler for McpServer<B> {
    fn get_info(&self) -> ServerConfig {
        let capabilities = if self.backend.pushes() {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build()
        };
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

    /// The protocol revisions this server is tested with, both eras: the 2025 revisions with
    /// `initialize` and sessions, and 2026-07-28's stateless requests (each request carries its
    /// client in `_meta`; pushes come on `subscriptions/listen`). Its only server-to-client
    /// request is URL-mode elicitation pointing at an action's page ([`crate::page`]); nothing a
    /// client answers stands for a human's decision.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2026_07_28))
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
            if stateless(&context) {
                let supports_url =
                    context.client_capabilities().and_then(|c| c.elicitation).is_some_and(|e| e.url.is_some());
                let responses = request.input_responses.as_ref();
                // The visits are boxed: inline, they made every tool call's future ~5 KB larger
                // (see `the_mcp_layer_adds_little_to_a_tool_call_future`).
                return Ok(tokio::select! {
                    answer = Box::pin(visit.answer_stateless(refused.clone(), &action_id, &url, supports_url, responses)) => answer,
                    () = context.ct.cancelled() => result::failure(refused).into(),
                });
            }
            return Ok(tokio::select! {
                answer = Box::pin(visit.answer(refused.clone(), &action_id, &url)) => answer,
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

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let list = resources::templates(self.backend.as_ref(), &caller).await.map_err(|e| internal(&e))?;
        Ok(ListResourceTemplatesResult::with_all_items(list))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        match resources::read(self.backend.as_ref(), &caller, &self.session(), &request.uri).await {
            Ok(contents) => Ok(ReadResourceResult::new(vec![contents]).into()),
            Err(e) => Err(resource_error_for(&e, &request.uri)),
        }
    }

    /// 2025-11-25: follows one war-room resource for this session. The resource must be one the
    /// caller can read now (it is read once, as `resources/read` would).
    #[allow(deprecated)] // the 2025 revisions' method, served next to 2026-07-28's listen
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&context)?;
        let Some(resource) = NotificationResource::parse(&request.uri) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "`{}` has no updates to subscribe to: subscribe to {} or {}",
                    request.uri,
                    NotificationResource::CHANNEL_TEMPLATE,
                    NotificationResource::THREAD_TEMPLATE
                ),
                None,
            ));
        };
        resources::read(self.backend.as_ref(), &caller, &self.session(), &request.uri)
            .await
            .map_err(|e| resource_error(&e))?;
        {
            let mut subscribed = self.subscribed.lock().unwrap_or_else(PoisonError::into_inner);
            if !subscribed.contains(&resource) && subscribed.len() >= MAX_SUBSCRIPTIONS {
                return Err(ErrorData::invalid_params(
                    format!("a session follows at most {MAX_SUBSCRIPTIONS} resources; unsubscribe from one first"),
                    None,
                ));
            }
            subscribed.insert(resource);
        }
        let running = |w: &Option<tokio::task::JoinHandle<()>>| w.as_ref().is_some_and(|h| !h.is_finished());
        if !running(&self.watcher.lock().unwrap_or_else(PoisonError::into_inner)) {
            // The feed is opened outside the lock; the task starts unless another request
            // started one meanwhile.
            let updates = self.backend.updates(&caller).await.map_err(|e| resource_error(&e))?;
            let mut watcher = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
            if !running(&watcher) {
                *watcher = Some(tokio::spawn(relay_to_session(updates, Arc::clone(&self.subscribed), context.peer)));
            }
        }
        Ok(())
    }

    #[allow(deprecated)] // the 2025 revisions' method
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.caller(&context)?;
        if let Some(resource) = NotificationResource::parse(&request.uri) {
            self.subscribed.lock().unwrap_or_else(PoisonError::into_inner).remove(&resource);
        }
        Ok(())
    }

    /// 2026-07-28: the war-room resources of a `subscriptions/listen` request (at most
    /// [`MAX_SUBSCRIPTIONS`]); list-change notifications are not offered (the lists change only
    /// when a channel is created).
    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        if !self.backend.pushes() {
            return None;
        }
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| NotificationResource::parse(uri).is_some())
            .take(MAX_SUBSCRIPTIONS)
            .cloned()
            .collect();
        Some(SubscriptionFilter::builder().resource_subscriptions(uris).build())
    }

    /// 2026-07-28: tells the listener whenever one of its accepted resources changes, until it
    /// cancels or central stops.
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = self.caller(subscription.request_context())?;
        let followed: BTreeSet<NotificationResource> = subscription
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .filter_map(|uri| NotificationResource::parse(uri))
            .collect();
        let mut updates = self.backend.updates(&caller).await.map_err(|e| resource_error(&e))?;
        loop {
            let update = tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                update = updates.next() => update,
            };
            let Some(update) = update else { return Ok(()) };
            for uri in changed_by(&update, &followed) {
                if subscription.sink().notify_resource_updated(uri).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn followed(uris: &[&str]) -> BTreeSet<NotificationResource> {
        uris.iter().map(|u| NotificationResource::parse(u).expect("a war-room uri")).collect()
    }

    #[test]
    fn a_channel_is_pushed_only_past_the_persons_filter_a_thread_always() {
        let set =
            followed(&["notification://incidents/recent", "notification://thread/t1", "notification://deploys/recent"]);
        let note = |wanted| Update::Notification { channel: "incidents".into(), thread_id: "t1".into(), wanted };
        assert_eq!(changed_by(&note(true), &set), ["notification://incidents/recent", "notification://thread/t1"]);
        assert_eq!(changed_by(&note(false), &set), ["notification://thread/t1"]);
        let other = Update::Notification { channel: "other".into(), thread_id: "t2".into(), wanted: true };
        assert!(changed_by(&other, &set).is_empty());
        assert_eq!(changed_by(&Update::Missed, &set).len(), 3);
    }

    /// A tool call's future is the backend's plus little. Why it matters: the future is moved
    /// by value through rmcp's request handling and into `tokio::spawn` at every call, and the
    /// rare approval-page visits inline made it ~5 KB larger for every call (`memmove` was ~6 %
    /// of central's CPU on the MCP call path). They are boxed instead.
    #[test]
    fn the_mcp_layer_adds_little_to_a_tool_call_future() {
        use crate::remote::RemoteCentral;
        type Caller = <RemoteCentral as Backend>::Caller;
        fn backend_call<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(&'a RemoteCentral, &'a Caller, &'a Session, ToolId, Value) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        fn mcp_call<'a, F, Fut>(_: F) -> usize
        where
            F: FnOnce(&'a McpServer<RemoteCentral>, CallToolRequestParams, RequestContext<RoleServer>) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        let backend = backend_call(<RemoteCentral as Backend>::call);
        let mcp = mcp_call(<McpServer<RemoteCentral> as ServerHandler>::call_tool);
        assert!(mcp <= backend + 2_048, "a tool call's future is {mcp} bytes over the backend's {backend}");
    }
}
