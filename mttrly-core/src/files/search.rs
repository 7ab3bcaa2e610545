//! Literal search over allowlisted files.
//!
//! The walk lists real directories only: a symlink (to a file or a directory) is never followed,
//! so it cannot lead the search out of a root, and each file is read only after the same checks
//! as `mttrly_read_file` ([`FileRules::open`]). A file those checks refuse (a symlink, FIFO,
//! socket, device, a file with a second hard link, a name with control characters) is skipped and
//! counted, never an error for the whole search. Entries, files, bytes and time are all bounded.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};

use std::time::Instant;

use globset::GlobBuilder;

use super::{FileAccess, FileRules};
use crate::error::{ErrorCode, MttrlyError};

/// The most files one search opens.
pub const MAX_FILES: usize = 2000;
/// The most bytes one search reads per file.
pub const MAX_BYTES_PER_FILE: u64 = 64 * 1024 * 1024;
/// The most directory entries one search visits.
const MAX_ENTRIES: usize = 50_000;
/// The longest line read into memory; the rest of a longer line is skipped.
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// The wall-clock budget of one search.
const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// One hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line_number: u64,
    /// The line (not yet redacted; the caller redacts).
    pub line: String,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// The hits, in file then line order.
    pub hits: Vec<Hit>,
    /// How many files were read.
    pub files_searched: u32,
    /// How many allowlisted entries were skipped because the read checks refused them (symlinks,
    /// non-regular files, hard links, names that are not plain paths).
    pub files_skipped: u32,
    /// Whether a cap stopped the search early.
    pub truncated: bool,
}

/// Searches every readable file under the rules' roots (optionally only those matching
/// `path_glob`) for `query`, a literal string, up to `max_hits`.
pub fn search(
    rules: &FileRules,
    query: &str,
    path_glob: Option<&str>,
    ignore_case: bool,
    max_hits: usize,
) -> Result<Found, MttrlyError> {
    let filter = match path_glob {
        Some(g) => Some(
            GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    MttrlyError::new(ErrorCode::ValidationError, format!("invalid glob `{g}`: {e}"))
                        .with_detail("field", "glob")
                })?
                .compile_matcher(),
        ),
        None => None,
    };
    let needle = if ignore_case { query.to_lowercase() } else { query.to_owned() };
    let mut found = Found::default();
    let deadline = Instant::now() + TIME_BUDGET;
    let mut entries = 0usize;
    let mut stack: Vec<PathBuf> = rules.search_roots();
    stack.reverse();
    while let Some(path) = stack.pop() {
        entries += 1;
        if entries > MAX_ENTRIES || found.files_searched as usize >= MAX_FILES {
            found.truncated = true;
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(read) = std::fs::read_dir(&path) {
                let mut children: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                children.reverse();
                stack.extend(children);
            }
            continue;
        }
        if let Some(f) = &filter
            && !f.is_match(&path)
        {
            continue;
        }
        // Only entries the rules name count as skipped; the rest of a root is simply not searched.
        let listed = rules.allows(&path, FileAccess::Read);
        if !meta.file_type().is_file() {
            found.files_skipped += u32::from(listed);
            continue;
        }
        // Every file goes through the same checks as a read (string, resolution, allowlist, the
        // descriptor's kind and links).
        let Some(text) = path.to_str() else {
            found.files_skipped += u32::from(listed);
            continue;
        };
        let Ok(opened) = rules.open(text, FileAccess::Read) else {
            found.files_skipped += u32::from(listed);
            continue;
        };
        found.files_searched += 1;
        if scan(opened.file, &opened.allowed.path, &needle, ignore_case, max_hits, deadline, &mut found) {
            found.truncated = true;
            break;
        }
    }
    Ok(found)
}

/// Scans one file; true when `max_hits` is reached.
fn scan(
    file: std::fs::File,
    path: &Path,
    needle: &str,
    ignore_case: bool,
    max_hits: usize,
    deadline: Instant,
    found: &mut Found,
) -> bool {
    let mut reader = BufReader::new(file.take(MAX_BYTES_PER_FILE));
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        raw.clear();
        match (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if raw.last() != Some(&b'\n') && raw.len() as u64 == MAX_LINE_BYTES {
            // A huge line: keep its start, skip the rest without holding it in memory.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                match (&mut reader).take(MAX_LINE_BYTES).read_until(b'\n', &mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if sink.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
        }
        if Instant::now() > deadline {
            found.truncated = true;
            return true;
        }
        number += 1;
        let raw_line = String::from_utf8_lossy(&raw);
        // Match what may be shown: the redacted line. Matching the raw text would let repeated
        // queries (`PASSWORD=a`, `PASSWORD=b`, ...) recover a secret one character at a time.
        let redacted = crate::redactor::redact(raw_line.trim_end_matches(['\n', '\r'])).text.into_owned();
        let line = redacted.as_str();
        let hit = if ignore_case { line.to_lowercase().contains(needle) } else { line.contains(needle) };
        if hit {
            let shown: String = line.chars().take(super::tail::MAX_LINE_CHARS).collect();
            found.hits.push(Hit { path: path.to_owned(), line_number: number, line: shown });
            if found.hits.len() >= max_hits {
                return true;
            }
        }
    }
}
