//! Allowlisted files: which paths may be read, read with privilege, or written, and how they are
//! opened and read safely.
//!
//! The rules are data ([`FilePolicy`], part of the agent's local policy file). A requested path is
//! first **resolved** (symlinks and `..` included) and only the resolved path is checked, so a
//! symlink in an allowed directory cannot point outside it. The file is then opened without
//! following a final symlink and without blocking (a FIFO cannot hang the agent), must be a
//! regular file, and must still be the resolved path once open ([`open::open_checked`]), so a swap
//! between the check and the open cannot escape. `/proc`, `/sys` and `/dev` are refused whatever
//! the globs say.

pub mod diff;
pub mod open;
pub mod search;
pub mod tail;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, MttrlyError};

/// Roots no rule can open: kernel interfaces and devices are not files to read.
const NEVER: &[&str] = &["/proc", "/sys", "/dev"];

/// The file rules of an agent's local policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilePolicy {
    /// Globs of files `mttrly_read_file` and `mttrly_search_files` may read (`*` stays within a
    /// directory, `**` crosses directories).
    pub file_roots: Vec<String>,
    /// Whether the privileged allowlist is on (off by default: the owner opts in).
    pub privileged_files_enabled: bool,
    /// Globs `mttrly_read_privileged_file` may read when enabled.
    pub privileged_files: Vec<String>,
    /// Globs of managed files: readable, and the only files `mttrly_write_file` and
    /// `mttrly_cleanup_file` may change (always with a human's approval).
    pub managed_files: Vec<String>,
    /// Managed env files by name: `mttrly_read_file` reads them with every value redacted by key.
    pub env_files: BTreeMap<String, String>,
}

impl Default for FilePolicy {
    fn default() -> Self {
        Self {
            file_roots: vec!["/var/log/**".to_owned()],
            privileged_files_enabled: false,
            privileged_files: vec![
                "/etc/sudoers".to_owned(),
                "/etc/sudoers.d/*".to_owned(),
                "/root/.ssh/authorized_keys".to_owned(),
                "/home/*/.ssh/authorized_keys".to_owned(),
            ],
            managed_files: Vec::new(),
            env_files: BTreeMap::new(),
        }
    }
}

/// What a path is wanted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAccess {
    /// Reading a log or another allowlisted file.
    Read,
    /// Reading through the extended, privileged allowlist.
    Privileged,
    /// Writing or deleting a managed file.
    Write,
}

/// A path the rules allow: resolved, with the rule that allowed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowed {
    /// The resolved path (no symlinks, no `..`).
    pub path: PathBuf,
    /// The glob (or env file entry) that allowed it.
    pub rule: String,
    /// Whether the file exists (a write may create it).
    pub exists: bool,
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct FileRules {
    policy: FilePolicy,
    read: (GlobSet, Vec<String>),
    privileged: (GlobSet, Vec<String>),
    managed: (GlobSet, Vec<String>),
}

fn glob(pattern: &str) -> Result<Glob, MttrlyError> {
    if !pattern.starts_with('/') {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!("file rule `{pattern}` must be an absolute glob (start with /)"),
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid file rule `{pattern}`: {e}")))
}

fn compile(patterns: &[String]) -> Result<(GlobSet, Vec<String>), MttrlyError> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(glob(p)?);
    }
    let set = builder
        .build()
        .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("invalid file rules: {e}")))?;
    Ok((set, patterns.to_vec()))
}

fn denied(message: impl Into<String>, path: &str) -> MttrlyError {
    let shown: String = path.chars().take(512).collect();
    MttrlyError::new(ErrorCode::PolicyDenied, message).with_detail("path", shown)
}

/// `..` and `.` removed without touching the file system (for paths that do not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
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

fn under_never(path: &Path) -> bool {
    NEVER.iter().any(|root| path.starts_with(root))
}

impl FileRules {
    /// Compiles a policy; a bad glob is a clear error naming it.
    pub fn new(policy: FilePolicy) -> Result<Self, MttrlyError> {
        for (name, path) in &policy.env_files {
            if !path.starts_with('/') {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("env file `{name}` must be an absolute path, not `{path}`"),
                ));
            }
        }
        Ok(Self {
            read: compile(&policy.file_roots)?,
            privileged: compile(&policy.privileged_files)?,
            managed: compile(&policy.managed_files)?,
            policy,
        })
    }

    /// The policy these rules were built from.
    pub fn policy(&self) -> &FilePolicy {
        &self.policy
    }

    /// The first rule allowing `path` for `access`, if any.
    fn rule_for(&self, path: &Path, access: FileAccess) -> Option<String> {
        let first =
            |(set, patterns): &(GlobSet, Vec<String>)| set.matches(path).into_iter().min().map(|i| patterns[i].clone());
        match access {
            FileAccess::Write => first(&self.managed),
            FileAccess::Privileged => {
                if self.policy.privileged_files_enabled {
                    first(&self.privileged)
                } else {
                    None
                }
            }
            FileAccess::Read => first(&self.read).or_else(|| first(&self.managed)).or_else(|| {
                self.policy
                    .env_files
                    .iter()
                    .find(|(_, p)| Path::new(p) == path)
                    .map(|(name, _)| format!("env_files.{name}"))
            }),
        }
    }

    /// Decides on `requested` for `access`: resolves it, then checks the resolved path.
    ///
    /// A path that does not exist is judged by its lexical form: allowed → `NOT_FOUND` (except
    /// for a write, which may create it); not allowed → `POLICY_DENIED`, so existence outside the
    /// allowlist is never revealed.
    pub fn check(&self, requested: &str, access: FileAccess) -> Result<Allowed, MttrlyError> {
        if requested.contains('\0') {
            return Err(denied("a path cannot contain a NUL byte", requested));
        }
        let path = Path::new(requested);
        if !path.is_absolute() {
            return Err(denied(format!("`{requested}` is not an absolute path"), requested));
        }
        if access == FileAccess::Privileged && !self.policy.privileged_files_enabled {
            return Err(denied("this server's local policy does not enable privileged files", requested));
        }
        let (resolved, exists) = match std::fs::canonicalize(path) {
            Ok(p) => (p, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The parent may exist (a write creating a file): resolve it and keep the name.
                let parent = path.parent().and_then(|p| std::fs::canonicalize(p).ok());
                match (parent, path.file_name()) {
                    (Some(parent), Some(name)) => (parent.join(name), false),
                    // A write needs a real parent directory: a dangling symlink is not one.
                    _ if access == FileAccess::Write => {
                        return Err(denied(format!("the directory of `{requested}` does not exist"), requested));
                    }
                    _ => (lexical(path), false),
                }
            }
            Err(e) => {
                return Err(denied(format!("cannot resolve `{requested}`: {e}"), requested));
            }
        };
        if under_never(&resolved) {
            return Err(denied(
                format!("`{}` is under /proc, /sys or /dev: not a file mttrly reads", resolved.display()),
                requested,
            ));
        }
        let Some(rule) = self.rule_for(&resolved, access) else {
            let what = match access {
                FileAccess::Read => "the file allowlist (file_roots, managed_files, env_files)",
                FileAccess::Privileged => "the privileged allowlist (privileged_files)",
                FileAccess::Write => "the managed files (managed_files)",
            };
            let via = if resolved == lexical(path) {
                String::new()
            } else {
                format!(" (it resolves to `{}`)", resolved.display())
            };
            return Err(denied(format!("`{requested}`{via} is not in {what}"), requested));
        };
        if !exists && access != FileAccess::Write {
            return Err(MttrlyError::new(ErrorCode::NotFound, format!("`{requested}` does not exist"))
                .with_detail("path", requested));
        }
        Ok(Allowed { path: resolved, rule, exists })
    }

    /// The managed env files' paths, as configured and resolved (they may be symlinks or not
    /// exist yet, so this is asked when needed, once per request).
    pub fn env_file_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in self.policy.env_files.values() {
            out.push(PathBuf::from(p));
            if let Ok(c) = std::fs::canonicalize(p) {
                out.push(c);
            }
        }
        out
    }

    /// Whether a resolved path is one of the managed env files (read with key-based redaction).
    pub fn is_env_file(&self, resolved: &Path) -> bool {
        self.env_file_paths().iter().any(|p| p == resolved)
    }

    /// The path of a managed env file by name.
    pub fn env_file(&self, name: &str) -> Result<Allowed, MttrlyError> {
        let Some(path) = self.policy.env_files.get(name) else {
            let names: Vec<&str> = self.policy.env_files.keys().map(String::as_str).collect();
            return Err(MttrlyError::new(
                ErrorCode::PolicyDenied,
                format!(
                    "`{name}` is not a managed env file on this server; known: {}",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                ),
            ));
        };
        let allowed = self.check(path, FileAccess::Read)?;
        Ok(Allowed { rule: format!("env_files.{name}"), ..allowed })
    }

    /// The literal directories the read globs start from (what a search walks).
    pub fn search_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self
            .policy
            .file_roots
            .iter()
            .chain(&self.policy.managed_files)
            .map(|g| {
                let literal: Vec<&str> = g.split('/').take_while(|seg| !seg.contains(['*', '?', '[', '{'])).collect();
                let joined = literal.join("/");
                if joined.is_empty() { PathBuf::from("/") } else { PathBuf::from(joined) }
            })
            .collect();
        roots.sort();
        roots.dedup();
        // A root inside another root is walked once, through the outer one.
        let all = roots.clone();
        roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
        roots
    }
}

#[cfg(test)]
mod tests;
