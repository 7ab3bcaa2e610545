//! The two roots of a comparison: judged against the owner's file allowlist and opened as
//! directory descriptors that the walk goes through.
//!
//! A comparison reads a whole tree, so a root must be covered by a *tree* rule: a `file_roots`
//! glob ending in `/**` whose directory part matches the root or one of its ancestors
//! (`/srv/*/releases/**` covers `/srv/app/releases/v3`). A glob naming files (`/var/log/*.log`)
//! never lets a tree be walked. The root is resolved first (symlinks and `..` followed, as the
//! kernel would), and only the resolved directory is judged, so a symlink inside an allowlisted
//! directory cannot lead a comparison out of it. A root that does not exist is judged by where it
//! would be, so existence outside the allowlist is never revealed.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use mttrly_core::files::{FileRules, path};
use mttrly_core::{ErrorCode, MttrlyError};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Roots no rule opens: kernel interfaces and devices are not trees to compare.
const NEVER: &[&str] = &["/proc", "/sys", "/dev"];

/// An opened root.
#[derive(Debug)]
pub(super) struct Root {
    /// The resolved directory.
    pub path: PathBuf,
    /// Its descriptor, opened without following a final symlink and checked to be `path`.
    pub dir: OwnedFd,
}

fn denied(field: &str, requested: &str, message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message)
        .with_detail("field", field)
        .with_detail("path", path::shown(requested))
}

/// `..` and `.` of `rest` applied to `base` without touching the file system.
fn join_lexically(mut base: PathBuf, rest: &Path) -> PathBuf {
    for c in rest.components() {
        match c {
            Component::Normal(part) => base.push(part),
            Component::ParentDir => {
                base.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    base
}

/// Where `requested` leads: the resolved path, and whether it exists. A missing path resolves its
/// deepest existing ancestor (following any symlink on the way) and appends the rest lexically.
fn resolve(requested: &Path) -> std::io::Result<(PathBuf, bool)> {
    match std::fs::canonicalize(requested) {
        Ok(p) => return Ok((p, true)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    for ancestor in requested.ancestors().skip(1) {
        match std::fs::canonicalize(ancestor) {
            Ok(base) => {
                let rest = requested.strip_prefix(ancestor).unwrap_or(requested);
                return Ok((join_lexically(base, rest), false));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((join_lexically(PathBuf::from("/"), requested), false))
}

/// The directory parts of the tree rules: `…/**` globs of `file_roots`, without the `/**`.
fn tree_rules(rules: &FileRules) -> Result<GlobSet, MttrlyError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in &rules.policy().file_roots {
        let Some(dir) = pattern.strip_suffix("/**") else { continue };
        let dir = if dir.is_empty() { "/" } else { dir };
        builder.add(compile(dir)?);
    }
    builder.build().map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid file rules: {e}")))
}

fn compile(pattern: &str) -> Result<globset::Glob, MttrlyError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid file rule `{pattern}`: {e}")))
}

/// The owner's `hardlink_roots`, compiled: files there may have more than one name.
pub(super) fn hardlink_rules(rules: &FileRules) -> Result<GlobSet, MttrlyError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in &rules.policy().hardlink_roots {
        builder.add(compile(pattern)?);
    }
    builder.build().map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid hardlink_roots: {e}")))
}

/// Judges and opens one root (`field` names it in errors).
pub(super) fn open(rules: &FileRules, requested: &str, field: &str) -> Result<Root, MttrlyError> {
    path::validate(requested).map_err(|e| e.with_detail("field", field))?;
    let (resolved, exists) = resolve(Path::new(requested))
        .map_err(|e| denied(field, requested, format!("cannot resolve `{}`: {e}", path::shown(requested))))?;
    let shown = path::shown(&resolved.to_string_lossy());
    if resolved.to_str().is_none_or(|t| t.chars().any(|c| !path::allowed_char(c))) {
        return Err(denied(
            field,
            requested,
            format!(
                "`{}` resolves to `{shown}`, a name with control, invisible or non-UTF-8 characters",
                path::shown(requested)
            ),
        ));
    }
    if NEVER.iter().any(|n| resolved.starts_with(n)) {
        return Err(denied(
            field,
            requested,
            format!("`{shown}` is under /proc, /sys or /dev: not a tree mttrly reads"),
        ));
    }
    let trees = tree_rules(rules)?;
    if !resolved.ancestors().any(|a| trees.is_match(a)) {
        let as_written: PathBuf = Path::new(requested).components().collect();
        let via = if resolved == as_written { String::new() } else { format!(" (it resolves to `{shown}`)") };
        return Err(denied(
            field,
            requested,
            format!(
                "`{}`{via} is not under a tree rule of the file allowlist (a `file_roots` glob ending in `/**`)",
                path::shown(requested)
            ),
        ));
    }
    if !exists {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("`{}` does not exist", path::shown(requested)))
            .with_detail("field", field)
            .with_detail("path", path::shown(requested)));
    }
    let dir = nix::fcntl::open(
        &resolved,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ENOTDIR => MttrlyError::new(ErrorCode::ValidationError, format!("`{shown}` is not a directory"))
            .with_detail("field", field)
            .with_detail("path", path::shown(requested)),
        Errno::ELOOP => denied(field, requested, format!("`{shown}` changed into a symlink while it was being opened")),
        other => denied(field, requested, format!("cannot open `{shown}`: {}", other.desc())),
    })?;
    // Fail closed: the descriptor must be the directory that was judged, whatever was swapped on
    // the way there between the resolution and the open.
    let name = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(|e| {
        denied(field, requested, format!("cannot verify what `{shown}` is once open (/proc: {e}): refused"))
    })?;
    if name != resolved {
        return Err(denied(
            field,
            requested,
            format!("`{shown}` resolves elsewhere once open (`{}`): refused", path::shown(&name.to_string_lossy())),
        ));
    }
    Ok(Root { path: resolved, dir })
}

/// Whether `name` is a plain entry name (never `.` or `..`, never containing `/`).
pub(super) fn plain_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    !bytes.is_empty() && bytes != b"." && bytes != b".." && !bytes.contains(&b'/')
}
