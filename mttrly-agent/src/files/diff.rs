//! `file.diff`: a unified diff of two allowlisted files, each read whole up to a size cap, the
//! diff redacted as one text.

use std::sync::Arc;

use mttrly_core::MttrlyError;
use mttrly_core::capability::{FileDiffParams, FileDiffText};
use mttrly_core::files::{Allowed, FileAccess, FileRules, diff as unified, open::open_checked};

use super::redact::Redactions;
use super::{bad, blocking};

/// The largest file a diff reads, per side.
const MAX_DIFF_BYTES: u64 = 2 * 1024 * 1024;

/// The most context lines a diff shows around a change, whatever was asked.
const MAX_CONTEXT: u32 = 20;

/// `file.diff`. Both paths are checked, opened and read on the blocking pool.
pub async fn diff(rules: &Arc<FileRules>, p: FileDiffParams) -> Result<FileDiffText, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || {
        let left = rules.check(p.left_path.as_str(), FileAccess::Read)?;
        let right = rules.check(p.right_path.as_str(), FileAccess::Read)?;
        diff_files(&rules, &left, &right, &p)
    })
    .await
}

/// One side of a diff: opened through its checks, refused above [`MAX_DIFF_BYTES`].
fn read_small(allowed: &Allowed) -> Result<String, MttrlyError> {
    use std::io::Read as _;
    let (file, meta) = open_checked(allowed)?;
    if meta.len() > MAX_DIFF_BYTES {
        return Err(bad(format!(
            "`{}` is {} bytes; diffs are limited to {MAX_DIFF_BYTES} bytes per file",
            allowed.path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_DIFF_BYTES).read_to_end(&mut bytes).map_err(|e| bad(format!("cannot read the file: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn diff_files(
    rules: &FileRules,
    left: &Allowed,
    right: &Allowed,
    p: &FileDiffParams,
) -> Result<FileDiffText, MttrlyError> {
    let (a, b) = (read_small(left)?, read_small(right)?);
    let context = usize::try_from(p.context_lines.min(MAX_CONTEXT)).unwrap_or(20);
    let (text, identical, truncated) = unified::unified(p.left_path.as_str(), &a, p.right_path.as_str(), &b, context);
    let mut redactions = Redactions::default();
    // The whole diff at once: a key's body lines keep the BEGIN line above them as context.
    let mut diff = redactions.text(text.strip_suffix('\n').unwrap_or(&text));
    if rules.is_env_file(&left.path) || rules.is_env_file(&right.path) {
        // `+DB_PASS=x` keeps its key: the key-based pass applies to diff lines as to reads.
        diff = redactions.env_values(&diff);
    }
    if !diff.is_empty() {
        diff.push('\n');
    }
    Ok(FileDiffText { diff, identical, truncated, redactions: redactions.counts() })
}
