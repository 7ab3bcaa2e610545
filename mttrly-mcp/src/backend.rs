//! Where tools run: the seam between the MCP protocol and mttrly.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use mttrly_core::ids::AssistantSessionId;
use mttrly_core::{MttrlyError, ToolId};
use serde_json::Value;

/// One MCP session, as the backend needs to know it: every call is attributed to this assistant
/// session in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The assistant session; one per MCP session (a conversation in the client).
    pub id: AssistantSessionId,
    /// The client's self-reported name from `initialize` (`claude-code`), cleaned and capped.
    pub client_name: String,
}

/// A change to the war room a caller reads: a notification landed. Only the caller's account's
/// notifications ever arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A notification was stored in `channel`, in `thread_id`.
    Notification {
        /// Its channel.
        channel: String,
        /// Its thread.
        thread_id: String,
        /// Whether it passes the caller's own subscription filter on that channel (true when
        /// they set none): a channel resource is pushed only then, a thread resource always.
        wanted: bool,
    },
    /// Updates were missed (the listener fell behind): anything subscribed may have changed.
    Missed,
}

/// One caller's stream of [`Update`]s; `None` when the backend stops.
pub trait Updates: Send + 'static {
    /// The next update.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Update>> + Send + '_>>;
}

/// Runs tools for MCP sessions.
///
/// Implementations enforce everything (authentication, tenancy, plan, surface, approval rules,
/// audit); the MCP server adds no authority of its own and only narrows what it advertises. There
/// is no way to pass a decision through: approvals are made by humans on human channels.
pub trait Backend: Send + Sync + 'static {
    /// Who is calling. Over HTTP it is resolved by the transport's authentication and found in the
    /// request's extensions; over stdio it is fixed for the process.
    type Caller: Clone + Send + Sync + 'static;

    /// A stable identity of the caller (account and user). A session stays bound to the caller
    /// that opened it; a request from anyone else on that session is refused.
    fn caller_key(&self, caller: &Self::Caller) -> String;

    /// The tools this caller reaches, in catalog order: what `tools/list` advertises.
    fn tools(&self, caller: &Self::Caller) -> impl Future<Output = Result<Vec<ToolId>, MttrlyError>> + Send;

    /// Whether [`Backend::tools`] lists `tool` for this caller: asked on every `tools/call`, so a
    /// backend that can judge one tool without building the whole list should.
    fn lists(&self, caller: &Self::Caller, tool: ToolId) -> impl Future<Output = Result<bool, MttrlyError>> + Send {
        async move { Ok(self.tools(caller).await?.contains(&tool)) }
    }

    /// Runs a catalog tool; returns its structured result (conforming to the tool's output
    /// schema) or the error to show the assistant. Audited by the backend with source `mcp`.
    fn call(
        &self,
        caller: &Self::Caller,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> impl Future<Output = Result<Value, MttrlyError>> + Send;

    /// Whether [`Backend::updates`] works: the server then offers resource subscriptions.
    fn pushes(&self) -> bool {
        false
    }

    /// The war-room updates this caller may see, from now on. Backends without a live feed
    /// keep the default (and [`Backend::pushes`] false).
    fn updates(&self, _caller: &Self::Caller) -> impl Future<Output = Result<Box<dyn Updates>, MttrlyError>> + Send {
        async {
            Err(MttrlyError::new(
                mttrly_core::ErrorCode::ValidationError,
                "this server pushes no updates: read the resource again, or use mttrly_get_notifications with `since`",
            ))
        }
    }

    /// Waits until action `action_id` has reached an end (run, failed, rejected, expired,
    /// cancelled) or `deadline` passes, then returns its view, as `mttrly_get_action_result`
    /// would show it to this session. Decides nothing and shows nothing that tool would not:
    /// the MCP server uses it to report the outcome of a decision a human made on the action's
    /// page (see `crate::page`).
    fn await_action(
        &self,
        caller: &Self::Caller,
        session: &Session,
        action_id: &str,
        deadline: Instant,
    ) -> impl Future<Output = Result<Value, MttrlyError>> + Send;
}
