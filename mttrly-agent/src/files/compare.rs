//! `files.compare`: a source tree against its build output, read-only and bounded.
//!
//! Both roots are judged like every path mttrly reads ([`roots`]): the string as given, then the
//! resolved directory, which must sit under a *tree* rule of the owner's file allowlist (a
//! `…/**` glob of `file_roots`), outside `/proc`, `/sys` and `/dev`; a root that is itself a
//! symlink is judged where it leads. The walk ([`walk`]) then goes directory by directory through
//! descriptors (`openat` with `O_NOFOLLOW`), so no symlink is ever followed, not even one swapped
//! in for a directory mid-walk, and no path can leave a root. Files are hashed with streaming
//! SHA-256 only when both sides are regular files of the same size, against the byte budget; the
//! walk stops at the first cap it meets (paths, bytes, deadline) and says which. Nothing is
//! written and no content leaves the host: only names, kinds, sizes, mtimes, hashes and symlink
//! targets.
//!
//! It runs on the blocking pool: a walk is nothing but system calls and hashing.

mod roots;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use mttrly_core::MttrlyError;
use mttrly_core::files::FileRules;
use mttrly_core::tools::files::{CompareLimits, CompareParams, TreeReport};

use super::blocking;
use crate::policy::LocalPolicy;
use crate::task::denied;

/// `files.compare`: the owner's `[compare]` policy first (off → `POLICY_DENIED`; its caps bound
/// the request's), then the walk on the blocking pool.
pub async fn compare(policy: &Arc<LocalPolicy>, p: CompareParams) -> Result<TreeReport, MttrlyError> {
    if !policy.compare.enabled {
        return Err(denied(
            "this server's local policy disables source-to-dist comparisons ([compare] enabled = false)",
        ));
    }
    let limits = policy.compare.limits(p.limits);
    let rules = Arc::clone(policy.files());
    blocking(move || compare_trees(&rules, &p, limits)).await
}

/// The comparison itself, synchronous: what [`compare`] runs on the blocking pool (and what the
/// benchmark times). `limits` are taken as given (already capped by policy).
pub fn compare_trees(rules: &FileRules, p: &CompareParams, limits: CompareLimits) -> Result<TreeReport, MttrlyError> {
    let started = Instant::now();
    let deadline = started + std::time::Duration::from_millis(u64::from(limits.deadline_ms));
    compare_until(rules, p, limits, started, deadline)
}

/// [`compare_trees`] with an explicit deadline (tests pass one already past).
fn compare_until(
    rules: &FileRules,
    p: &CompareParams,
    limits: CompareLimits,
    started: Instant,
    deadline: Instant,
) -> Result<TreeReport, MttrlyError> {
    let ignore = walk::Ignore::new(&p.ignore)?;
    let source = roots::open(rules, p.source_dir.as_str(), "source_dir")?;
    let dist = roots::open(rules, p.dist_dir.as_str(), "dist_dir")?;
    let hardlinks = roots::hardlink_rules(rules)?;
    let walker =
        walk::Walker::new(walk::Setup { rules, hardlinks, ignore, source: &source, dist: &dist, limits, deadline });
    Ok(walker.run(started))
}
