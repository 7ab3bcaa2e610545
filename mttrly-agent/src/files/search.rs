//! `file.search`: a literal search over allowlisted files, each matching line redacted.

use std::sync::Arc;

use mttrly_core::MttrlyError;
use mttrly_core::capability::{FileMatches, FileSearchParams};
use mttrly_core::files::{FileRules, search as find};
use mttrly_core::tools::files::{PathGlob, SearchMatch};

use super::redact::Redactions;
use super::{bad, blocking, line_cap};

/// `file.search`. Walking the allowlist stats and reads files: on the blocking pool.
pub async fn search(rules: &Arc<FileRules>, p: FileSearchParams) -> Result<FileMatches, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || search_files(&rules, &p)).await
}

fn search_files(rules: &FileRules, p: &FileSearchParams) -> Result<FileMatches, MttrlyError> {
    if p.query.as_str().is_empty() {
        return Err(bad("the query is empty"));
    }
    let glob = p.glob.as_ref().map(PathGlob::as_str);
    let found = find::search(rules, p.query.as_str(), glob, p.ignore_case, line_cap(p.max_matches))?;
    let mut redactions = Redactions::default();
    // Managed env files are read only whole, through key-based redaction: a search hit in one
    // would tell whether a secret value contains the query.
    let env_files = rules.env_file_paths();
    let matches: Vec<SearchMatch> = found
        .hits
        .iter()
        .filter(|h| !env_files.contains(&h.path))
        .map(|h| SearchMatch {
            path: h.path.to_string_lossy().into_owned(),
            line_number: h.line_number,
            // One line out of its file: the line is all the context there is.
            line: redactions.text(&h.line),
        })
        .collect();
    Ok(FileMatches {
        matches,
        files_searched: found.files_searched,
        files_skipped: found.files_skipped,
        truncated: found.truncated,
        redactions: redactions.counts(),
    })
}
