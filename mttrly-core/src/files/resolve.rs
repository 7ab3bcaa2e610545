//! Resolving a requested path the way the kernel will walk it, so the allowlist judges the file
//! that would really be opened (symlinks and `..` followed), and a path that does not exist is
//! judged by where it would be.

use std::io;
use std::path::{Component, Path, PathBuf};

/// A resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The resolved path: no symlinks, no `..`, up to the deepest part that exists.
    pub path: PathBuf,
    /// Whether the whole path exists.
    pub exists: bool,
    /// For a missing path: whether its directory exists (only the last name is missing), which
    /// is what creating it needs.
    pub parent_exists: bool,
}

/// Why resolution failed, in the words the agent gives back. The errno is the kernel's answer for
/// the path as asked; each maps to one reason (as data), anything else keeps the kernel's text.
const REASONS: &[(i32, &str)] = &[
    (libc::ENOTDIR, "a component of the path is not a directory"),
    (libc::ELOOP, "the path has a symlink loop (or too many symlinks to follow)"),
    (libc::EACCES, "permission denied while resolving the path"),
    (libc::ENAMETOOLONG, "the path, once symlinks are followed, is too long"),
];

/// The agent's reason for an error met while resolving.
pub(crate) fn reason(e: &io::Error) -> String {
    e.raw_os_error()
        .and_then(|code| REASONS.iter().find(|(errno, _)| *errno == code))
        .map_or_else(|| e.to_string(), |(_, text)| (*text).to_owned())
}

/// `..` and `.` of `rest` applied to `base` without touching the file system.
fn join_lexically(base: PathBuf, rest: &Path) -> PathBuf {
    let mut out = base;
    for c in rest.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Resolves an absolute `path`. A missing path resolves its deepest existing ancestor (so a
/// symlinked directory on the way is followed even when the file is missing, and a missing file
/// behind a link out of the allowlist is judged outside it) and appends the rest lexically.
pub(crate) fn resolve(path: &Path) -> io::Result<Resolved> {
    match std::fs::canonicalize(path) {
        Ok(p) => return Ok(Resolved { path: p, exists: true, parent_exists: true }),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    for ancestor in path.ancestors().skip(1) {
        match std::fs::canonicalize(ancestor) {
            Ok(base) => {
                let rest = path.strip_prefix(ancestor).unwrap_or(path);
                let mut parts = rest.components();
                let parent_exists = matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None));
                return Ok(Resolved { path: join_lexically(base, rest), exists: false, parent_exists });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // Even `/` did not resolve (no file system to speak of): judge the path as written.
    Ok(Resolved { path: join_lexically(PathBuf::from("/"), path), exists: false, parent_exists: false })
}
