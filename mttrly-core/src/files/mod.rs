//! Allowlisted files: which paths may be read, read with privilege, or written, and how they are
//! opened and read safely.
//!
//! The rules are data ([`FilePolicy`], part of the agent's local policy file). The requested
//! string is first judged as given ([`path::validate`]: absolute, printable, no `~`, no glob, within
//! `PATH_MAX`, taken literally), then **resolved** (symlinks and `..` included) and only the
//! resolved path is checked, so a symlink in an allowed directory cannot point outside it. What
//! the name points to must be a regular file with one link (a hard link is another name for a
//! file from anywhere), checked on the name and again on the opened descriptor
//! ([`open::open_checked`]): opened without following a final symlink and without opening anything
//! that is not a regular file (a FIFO cannot hang the agent), and still the resolved path once open,
//! so a swap between the check and the open cannot escape. `/proc`, `/sys` and `/dev` are refused
//! whatever the globs say.
//!
//! [`FileRules::open`] is the whole path a read takes; [`FileRules::verify`] runs it without
//! reading (what `mttrly-cli policy check-path` and the command classifier ask).

pub mod diff;
pub mod open;
pub mod path;
mod resolve;
pub mod search;
pub mod tail;

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// Globs of files allowed to have more than one hard link (empty by default: a file with a
    /// second name is refused, since that name may belong to a file outside the allowlist). Only
    /// for roots where the owner knows every link, such as a backup tool's hard-linked snapshots.
    pub hardlink_roots: Vec<String>,
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
            hardlink_roots: Vec::new(),
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
    /// Whether the owner's `hardlink_roots` let this file have more than one hard link.
    pub hard_links_allowed: bool,
}

/// An allowed file, open for reading: every check passed on the descriptor itself.
#[derive(Debug)]
pub struct Opened {
    /// What the rules allowed.
    pub allowed: Allowed,
    /// The open file.
    pub file: File,
    /// Its metadata, from the descriptor.
    pub meta: Metadata,
}

/// The rules: every glob checked when they are built, each kind's set compiled when first asked.
#[derive(Debug, Clone)]
pub struct FileRules {
    policy: FilePolicy,
    read: RuleSet,
    privileged: RuleSet,
    managed: RuleSet,
    hardlinks: RuleSet,
}

/// One kind of rule: its patterns, each parsed as a glob when the rules are built (a bad glob is
/// refused then, naming it; a [`Glob`] keeps the text it was parsed from), and their set, compiled
/// on the first path it is asked about.
///
/// Why not compile up front: a glob set is a set of regular expressions, and compiling it runs the
/// regex compiler. An agent that starts, connects and idles is never asked about a path; not
/// running that compiler at start keeps its code out of the agent's resident memory (issue 16,
/// BENCHMARKS.md). Parsing already refuses every malformed glob; what only compiling can refuse
/// is a set past the regex engine's size limit, which a policy's paths do not reach: such a set
/// matches nothing (fails closed), so a rule that cannot be compiled never allows anything.
#[derive(Debug, Clone)]
struct RuleSet {
    globs: Vec<Glob>,
    set: OnceLock<Option<GlobSet>>,
}

impl RuleSet {
    fn new(patterns: &[String]) -> Result<Self, MttrlyError> {
        let globs = patterns.iter().map(|p| glob(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { globs, set: OnceLock::new() })
    }

    fn build(&self) -> Result<GlobSet, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for g in &self.globs {
            builder.add(g.clone());
        }
        builder.build()
    }

    fn compiled(&self) -> Option<&GlobSet> {
        self.set.get_or_init(|| self.build().ok()).as_ref()
    }

    /// Compiles the set now (keeping it), or says why it cannot be.
    fn compile_now(&self, kind: &str) -> Result<(), MttrlyError> {
        if self.globs.is_empty() || self.set.get().is_some_and(Option::is_some) {
            return Ok(());
        }
        match self.build() {
            Ok(set) => {
                let _ = self.set.set(Some(set));
                Ok(())
            }
            Err(e) => Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!("the {kind} rules cannot be compiled together (they would allow nothing): {e}"),
            )),
        }
    }

    /// The first pattern (in the policy's order) matching `path`.
    fn first(&self, path: &Path) -> Option<String> {
        if self.globs.is_empty() {
            return None;
        }
        let i = self.compiled()?.matches(path).into_iter().min()?;
        self.globs.get(i).map(|g| g.glob().to_owned())
    }

    fn is_match(&self, path: &Path) -> bool {
        !self.globs.is_empty() && self.compiled().is_some_and(|set| set.is_match(path))
    }
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

fn denied(message: impl Into<String>, path: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message).with_detail("path", path::shown(path))
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
            read: RuleSet::new(&policy.file_roots)?,
            privileged: RuleSet::new(&policy.privileged_files)?,
            managed: RuleSet::new(&policy.managed_files)?,
            hardlinks: RuleSet::new(&policy.hardlink_roots)?,
            policy,
        })
    }

    /// Compiles every kind of rule now, or says which cannot be compiled. The agent compiles each
    /// kind on the first path asked (see [`RuleSet`]), where a set that cannot be compiled allows
    /// nothing; this is for the places that check a policy before it is used (`mttrly-cli policy
    /// check-path`, `mttrly-agent install --policy`), so the owner learns it there.
    pub fn check_compiles(&self) -> Result<(), MttrlyError> {
        self.read.compile_now("file_roots")?;
        self.privileged.compile_now("privileged_files")?;
        self.managed.compile_now("managed_files")?;
        self.hardlinks.compile_now("hardlink_roots")
    }

    /// The policy these rules were built from.
    pub fn policy(&self) -> &FilePolicy {
        &self.policy
    }

    /// The first rule allowing `path` for `access`, if any.
    fn rule_for(&self, path: &Path, access: FileAccess) -> Option<String> {
        let first = |rules: &RuleSet| rules.first(path);
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

    /// Whether a rule names `path` as written (no resolution, no file system): a cheap question for
    /// counting what a search skipped. Never a reason to read anything; [`Self::check`] decides.
    pub fn allows(&self, path: &Path, access: FileAccess) -> bool {
        self.rule_for(path, access).is_some()
    }

    /// Decides on `requested` for `access`: judges the string as given, resolves it, checks the
    /// resolved path against the rules, and checks what it names (a regular file with one link,
    /// [`open::check_kind`]). [`open::open_checked`] checks the descriptor again when it is opened.
    ///
    /// A path that does not exist is judged by where it would be: allowed → `NOT_FOUND` (except
    /// for a write, which may create it in an existing directory); not allowed → `POLICY_DENIED`,
    /// so existence outside the allowlist is never revealed.
    pub fn check(&self, requested: &str, access: FileAccess) -> Result<Allowed, MttrlyError> {
        path::validate(requested)?;
        if access == FileAccess::Privileged && !self.policy.privileged_files_enabled {
            return Err(denied("this server's local policy does not enable privileged files", requested));
        }
        let path = Path::new(requested);
        let resolved = resolve::resolve(path)
            .map_err(|e| denied(format!("cannot resolve `{requested}`: {}", resolve::reason(&e)), requested))?;
        let exists = resolved.exists;
        // A symlink can lead to a name the string check would have refused (a newline, an escape
        // sequence, bytes that are not UTF-8): the file really read must be nameable too.
        let resolved_text = resolved.path.to_string_lossy();
        if resolved_text.chars().any(|c| !path::allowed_char(c)) {
            return Err(denied(
                format!(
                    "`{requested}` resolves to `{}`, a name with control, invisible or non-UTF-8 characters",
                    path::shown(&resolved_text)
                ),
                requested,
            ));
        }
        if under_never(&resolved.path) {
            return Err(denied(
                format!("`{resolved_text}` is under /proc, /sys or /dev: not a file mttrly reads"),
                requested,
            ));
        }
        let Some(rule) = self.rule_for(&resolved.path, access) else {
            let what = match access {
                FileAccess::Read => "the file allowlist (file_roots, managed_files, env_files)",
                FileAccess::Privileged => "the privileged allowlist (privileged_files)",
                FileAccess::Write => "the managed files (managed_files)",
            };
            let as_written: PathBuf = path.components().collect();
            let via = if resolved.path == as_written {
                String::new()
            } else {
                format!(" (it resolves to `{resolved_text}`)")
            };
            return Err(denied(format!("`{requested}`{via} is not in {what}"), requested));
        };
        if !exists {
            if access != FileAccess::Write {
                return Err(MttrlyError::new(ErrorCode::NotFound, format!("`{requested}` does not exist"))
                    .with_detail("path", path::shown(requested)));
            }
            if !resolved.parent_exists {
                return Err(denied(format!("the directory of `{requested}` does not exist"), requested));
            }
        }
        let hard_links_allowed = self.hardlinks.is_match(&resolved.path);
        let allowed = Allowed { path: resolved.path, rule, exists, hard_links_allowed };
        if exists {
            // The name's own metadata (not followed: it was just resolved): a FIFO, socket, device,
            // directory or hard link is refused before anything opens it.
            let meta = std::fs::symlink_metadata(&allowed.path).map_err(|e| {
                denied(format!("cannot stat `{}`: {}", allowed.path.display(), resolve::reason(&e)), requested)
            })?;
            open::check_kind(&meta, &allowed)?;
        }
        Ok(allowed)
    }

    /// What a read (or a write's look at the current file) does, up to the first byte: checks
    /// `requested`, then opens it with [`open::open_checked`]. Every file mttrly reads for an
    /// assistant goes through here.
    pub fn open(&self, requested: &str, access: FileAccess) -> Result<Opened, MttrlyError> {
        let allowed = self.check(requested, access)?;
        let (file, meta) = open::open_checked(&allowed)?;
        Ok(Opened { allowed, file, meta })
    }

    /// Exactly what the agent would decide for `requested` on this host, reading nothing: the
    /// checks of [`Self::open`], with the file opened and closed again when it exists. A missing
    /// file is `NOT_FOUND` for a read; a write may create it.
    pub fn verify(&self, requested: &str, access: FileAccess) -> Result<Allowed, MttrlyError> {
        let allowed = self.check(requested, access)?;
        if allowed.exists {
            open::open_checked(&allowed)?;
        }
        Ok(allowed)
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
