//! File capabilities, one module per job: reads of allowlisted files and managed env files
//! ([`read`]), the Docker CLI behind the Docker read targets ([`docker`]), literal search
//! ([`search`]), unified diffs ([`diff`]), approved changes to managed files ([`write`]) and the
//! current content a pending write would replace, for its approver's diff ([`current`]), and the
//! bounded source-to-dist comparison of two allowlisted trees ([`compare`]).
//!
//! Every path goes through the owner's file rules on this host ([`mttrly_core::files`]) and every
//! byte that leaves is redacted here ([`redact`]), before it reaches central. Each public
//! function takes the parameters of its row in [`mttrly_core::capability`] and returns that row's
//! answer; `capabilities.rs` binds them to the [`mttrly_core::capability::Handler`] table.

mod compare;
mod current;
mod diff;
mod docker;
mod read;
mod redact;
mod search;
mod write;

pub use compare::{compare, compare_trees};
pub use current::current;
pub use diff::diff;
pub use read::{read, read_privileged};
pub use search::search;
pub use write::{cleanup, write};

use mttrly_core::{ErrorCode, MttrlyError};

/// The most lines a read returns, whatever was asked.
const MAX_LINES: u32 = 500;

/// A refusal of what was asked (the caller's input, not this host's policy).
fn bad(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// Lines asked, within 1..=500 (central applies the plan's limit first).
fn line_cap(asked: u32) -> usize {
    usize::try_from(asked.clamp(1, MAX_LINES)).unwrap_or(1)
}

/// Runs file work on the blocking pool: path checks canonicalize and stat, reads and redaction
/// are CPU and I/O, and none of it may hold a runtime worker.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, MttrlyError> + Send + 'static,
) -> Result<T, MttrlyError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("file task failed: {e}")))?
}
