//! Central as an MCP backend: the tools run in-process, as the session's assistant principal.
//!
//! `/mcp` is mounted by [`crate::http`], which authenticates the request and puts the token's
//! [`TokenOwner`] in its extensions. Every call here is attributed to the MCP session's assistant
//! (on behalf of the token's human) with source `mcp`, and audited like any other tool call. No
//! call here ever decides an action: `mttrly_approve_action` answers with the command a human runs
//! (see `tools::decisions`), whatever the client claims a human confirmed.

use std::sync::Arc;

use mttrly_core::{MttrlyError, Principal, Source, ToolId};
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

/// The caller as the MCP session's assistant: the session's id and client name, on behalf of the
/// token's human. An assistant token keeps the name its human gave it.
fn as_assistant(owner: &TokenOwner, session: &Session) -> TokenOwner {
    let client_name = match &owner.principal {
        Principal::Assistant { client_name, .. } => client_name.clone(),
        Principal::Human { .. } => session.client_name.clone(),
    };
    TokenOwner {
        principal: Principal::Assistant {
            session_id: session.id.clone(),
            client_name,
            on_behalf_of: owner.principal.accountable_user().clone(),
        },
        ..owner.clone()
    }
}

/// The assistant behind a call the standalone MCP server relays over gRPC: one stable session id
/// per token and client name, so its audit rows group together. The token is part of it: names
/// are the caller's to choose (and assistant names are not unique), so without it another token
/// of the same human could claim the same client name, become the same principal, and withdraw
/// that assistant's requests as if they were its own.
pub fn relayed_assistant(owner: &TokenOwner, client_name: &str) -> TokenOwner {
    use sha2::Digest as _;
    let name: String = client_name.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect();
    let user = owner.principal.accountable_user().clone();
    let digest = sha2::Sha256::digest(format!("{}/{user}/{}/{name}", owner.account_id, owner.credential).as_bytes());
    let session_id = crate::db::accounts::derived_session_id(&digest);
    as_assistant(
        owner,
        &Session { id: session_id, client_name: if name.is_empty() { "mcp-client".to_owned() } else { name } },
    )
}

impl Backend for CentralBackend {
    type Caller = TokenOwner;

    fn caller_key(&self, caller: &TokenOwner) -> String {
        format!("{}/{}", caller.account_id, caller.principal.accountable_user())
    }

    async fn tools(&self, caller: &TokenOwner) -> Result<Vec<ToolId>, MttrlyError> {
        let surface = tools::surface(&self.central, caller);
        Ok(mttrly_core::catalog::specs()
            .iter()
            .filter(|s| tools::is_available(s.id) && surface.check(s).is_ok())
            .map(|s| s.id)
            .collect())
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
