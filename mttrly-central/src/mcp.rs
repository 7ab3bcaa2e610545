//! Central as an MCP backend: the tools run in-process, as the session's assistant principal.
//!
//! `/mcp` is mounted by [`crate::http`], which authenticates the request and puts the token's
//! [`TokenOwner`] in its extensions. Every call here is attributed to the MCP session's assistant
//! (on behalf of the token's human) with source `mcp`, and audited like any other tool call. No
//! call here ever decides an action: `mttrly_approve_action` answers with the command a human runs
//! (see `tools::decisions`), whatever the client claims a human confirmed.

use std::sync::Arc;

use mttrly_core::{MttrlyError, Source, ToolId};
use mttrly_mcp::{Backend, Session};
use serde_json::Value;

use crate::db::accounts::TokenOwner;
use crate::state::Central;
use crate::tools;

/// Central's tools for MCP sessions.
pub struct CentralBackend {
    central: Arc<Central>,
}

impl CentralBackend {
    /// Serves `central`'s tools.
    pub fn new(central: Arc<Central>) -> Self {
        Self { central }
    }
}

/// The caller as this MCP session's assistant (see [`crate::auth::as_assistant`]).
fn as_assistant(owner: &TokenOwner, session: &Session) -> TokenOwner {
    crate::auth::as_assistant(owner, session.id.clone(), &session.client_name)
}

impl Backend for CentralBackend {
    type Caller = TokenOwner;

    fn caller_key(&self, caller: &TokenOwner) -> String {
        caller.session_key()
    }

    async fn tools(&self, caller: &TokenOwner) -> Result<Vec<ToolId>, MttrlyError> {
        // Listed: callable, or held back only by the plan (calling it then names the plan).
        Ok(tools::reach(&self.central, caller).filter(|(_, reach)| reach.is_listed()).map(|(tool, _)| tool).collect())
    }

    async fn lists(&self, caller: &TokenOwner, tool: ToolId) -> Result<bool, MttrlyError> {
        Ok(tools::reach_of(&self.central, caller, tool).is_listed())
    }

    async fn call(
        &self,
        caller: &TokenOwner,
        session: &Session,
        tool: ToolId,
        arguments: Value,
    ) -> Result<Value, MttrlyError> {
        let assistant = as_assistant(caller, session);
        tools::call_audited(&self.central, &assistant, Source::Mcp, tool, arguments).await
    }
}
