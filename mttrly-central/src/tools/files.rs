//! The `files` toolset: read, privileged read, search and diff of allowlisted files on a server.
//!
//! Central checks tenancy and the plan's line limit; the agent decides what is allowed on its
//! host (its local file rules) and redacts. Central redacts once more before returning, so a
//! secret an old agent missed still never reaches the assistant.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::MttrlyError;
use mttrly_core::action::ActionContent;
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::files::{
    CleanupFileInput, DiffFileInput, FileContent, FileDiff, ReadFileInput, ReadPrivilegedFileInput, SearchFilesInput,
    SearchResults, WriteFileInput,
};
use serde_json::{Value, json};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// How long a file task may take on the agent.
const FILE_DEADLINE: Duration = Duration::from_secs(30);

/// Asks the agent for a file capability and shapes its (redacted again) answer as `T`.
async fn ask<T: serde::de::DeserializeOwned>(
    central: &Arc<Central>,
    caller: &TokenOwner,
    server_id: &mttrly_core::ids::ServerId,
    capability: &str,
    params: Value,
) -> Result<T, MttrlyError> {
    let server = super::servers::find(central, caller, server_id).await?;
    let mut result = super::ask_agent(central, &server.id, capability, &params, FILE_DEADLINE).await?;
    super::scrub(&mut result);
    if let Value::Object(map) = &mut result {
        map.insert("server_id".to_owned(), Value::String(server.id.to_string()));
    }
    super::decode_answer(result, capability)
}

fn plan_lines(caller: &TokenOwner, asked: u32) -> u32 {
    asked.min(caller.plan.limits().log_lines)
}

pub(crate) async fn read_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ReadFileInput,
) -> Result<FileContent, MttrlyError> {
    let params = json!({ "target": input.target, "lines": plan_lines(caller, input.lines.get()) });
    ask(central, caller, &input.server_id, "file.read", params).await
}

pub(crate) async fn read_privileged_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ReadPrivilegedFileInput,
) -> Result<FileContent, MttrlyError> {
    let params = json!({ "path": input.path, "lines": plan_lines(caller, input.lines.get()) });
    ask(central, caller, &input.server_id, "file.read_privileged", params).await
}

pub(crate) async fn search_files(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: SearchFilesInput,
) -> Result<SearchResults, MttrlyError> {
    let params = json!({
        "query": input.query,
        "glob": input.glob,
        "ignore_case": input.ignore_case,
        "max_matches": plan_lines(caller, input.max_matches.get()),
    });
    ask(central, caller, &input.server_id, "file.search", params).await
}

pub(crate) async fn diff_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: DiffFileInput,
) -> Result<FileDiff, MttrlyError> {
    let params = json!({
        "left_path": input.left_path,
        "right_path": input.right_path,
        "context_lines": input.context_lines.get(),
    });
    ask(central, caller, &input.server_id, "file.diff", params).await
}

/// A write always needs a human: it becomes a pending action naming the path, the new content's
/// SHA-256 and size; the bytes are stored with it and checked against that hash by the agent.
pub(crate) async fn write_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: mttrly_core::Source,
    input: WriteFileInput,
) -> Result<ActionSubmission, MttrlyError> {
    use sha2::Digest as _;
    let server = super::servers::find(central, caller, &input.server_id).await?;
    let bytes = input.content_base64.decode();
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let path = input.path.into_inner();
    let description = format!(
        "Write {} bytes (sha256 {}) to `{path}` on {} ({}); the previous content is kept as a backup",
        bytes.len(),
        &sha256[..12],
        server.name,
        server.environment
    );
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let content = ActionContent::FileWrite { path, sha256, size_bytes: bytes.len() as u64 };
    actions::submit(
        central,
        caller,
        source,
        NewAction { server, content, description, reason, run_at_once: false, payload: Some(bytes) },
    )
    .await
}

/// Deleting a managed file always needs a human.
pub(crate) async fn cleanup_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    source: mttrly_core::Source,
    input: CleanupFileInput,
) -> Result<ActionSubmission, MttrlyError> {
    let server = super::servers::find(central, caller, &input.server_id).await?;
    let path = input.path.into_inner();
    let description = format!("Delete `{path}` on {} ({})", server.name, server.environment);
    let reason = input.reason.as_ref().map(|r| r.as_str().to_owned());
    let content = ActionContent::FileCleanup { path };
    actions::submit(
        central,
        caller,
        source,
        NewAction { server, content, description, reason, run_at_once: false, payload: None },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_redacts_what_an_agent_let_through() {
        let mut v = json!({
            "content": "ok\npassword=hunter2hunter2",
            "matches": [{ "line": "AKIAIOSFODNN7EXAMPLE" }],
            "redactions": [{ "rule": "x", "count": 1 }],
        });
        super::super::scrub(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2hunter2") && !text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert_eq!(v["redactions"][0]["rule"], "x");
    }
}
