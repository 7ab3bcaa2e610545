//! The `files` toolset: read, privileged read, search and diff of allowlisted files on a server.
//!
//! Central checks tenancy and the plan's line limit; the agent decides what is allowed on its
//! host (its local file rules) and redacts. Central redacts once more before returning, so a
//! secret an old agent missed still never reaches the assistant.

use std::sync::Arc;
use std::time::Duration;

use mttrly_core::MttrlyError;
use mttrly_core::action::ActionContent;
use mttrly_core::capability::{
    FileDiffParams, FileDiffRun, FileRead, FileReadParams, FileReadPrivileged, FileSearch, FileSearchParams,
    PrivilegedReadParams,
};
use mttrly_core::tools::actions::ActionSubmission;
use mttrly_core::tools::files::{
    CleanupFileInput, DiffFileInput, FileContent, FileDiff, ReadFileInput, ReadPrivilegedFileInput, SearchFilesInput,
    SearchResults, WriteFileInput,
};

use crate::actions::{self, NewAction};
use crate::db::accounts::TokenOwner;
use crate::state::Central;

/// How long a file task may take on the agent.
const FILE_DEADLINE: Duration = Duration::from_secs(30);

fn plan_lines(caller: &TokenOwner, asked: u32) -> u32 {
    asked.min(caller.plan.limits().log_lines)
}

pub(crate) async fn read_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ReadFileInput,
) -> Result<FileContent, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = FileReadParams { target: input.target, lines: plan_lines(caller, input.lines.get()) };
    Ok(central.agents.ask::<FileRead>(&server.id, &params, FILE_DEADLINE).await?.on(server.id))
}

pub(crate) async fn read_privileged_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: ReadPrivilegedFileInput,
) -> Result<FileContent, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = PrivilegedReadParams { path: input.path, lines: plan_lines(caller, input.lines.get()) };
    Ok(central.agents.ask::<FileReadPrivileged>(&server.id, &params, FILE_DEADLINE).await?.on(server.id))
}

pub(crate) async fn search_files(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: SearchFilesInput,
) -> Result<SearchResults, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = FileSearchParams {
        query: input.query,
        glob: input.glob,
        ignore_case: input.ignore_case,
        max_matches: plan_lines(caller, input.max_matches.get()),
    };
    Ok(central.agents.ask::<FileSearch>(&server.id, &params, FILE_DEADLINE).await?.on(server.id))
}

pub(crate) async fn diff_file(
    central: &Arc<Central>,
    caller: &TokenOwner,
    input: DiffFileInput,
) -> Result<FileDiff, MttrlyError> {
    let server = crate::servers::find(central, caller, &input.server_id).await?;
    let params = FileDiffParams {
        left_path: input.left_path,
        right_path: input.right_path,
        context_lines: input.context_lines.get(),
    };
    Ok(central.agents.ask::<FileDiffRun>(&server.id, &params, FILE_DEADLINE).await?.on(server.id))
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
    let server = crate::servers::find(central, caller, &input.server_id).await?;
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
    let server = crate::servers::find(central, caller, &input.server_id).await?;
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
