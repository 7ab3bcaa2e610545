//! File capabilities: read (tail), privileged read, search, diff, Docker logs and images.
//!
//! Every path goes through the owner's file rules on this host ([`mttrly_core::files`]) and every
//! byte that leaves is redacted here, before it reaches central. Blocking file work runs on the
//! blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{
    FileDiffParams, FileDiffText, FileMatches, FileReadParams, FileRemoved, FileSearchParams, FileTail, FileWritten,
    PrivilegedReadParams,
};
use mttrly_core::files::{Allowed, FileAccess, FileRules, Opened, diff, open::open_checked, search, tail};
use mttrly_core::redactor::redact;
use mttrly_core::tools::files::{ReadTarget, RedactionCount, SearchMatch};
use mttrly_core::{ErrorCode, MttrlyError};

/// The largest file a diff reads, per side.
const MAX_DIFF_BYTES: u64 = 2 * 1024 * 1024;
/// How long a Docker CLI call may take.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);
/// The most lines a read returns, whatever was asked.
const MAX_LINES: u32 = 500;

/// Redacts text, counting what each rule removed.
#[derive(Default)]
struct Redactions(BTreeMap<&'static str, u32>);

impl Redactions {
    /// Redacts `text` as one piece: a multi-line secret (a private key's body under its BEGIN
    /// line) is seen with its context, and nothing is replaced across a newline.
    fn text(&mut self, text: &str) -> String {
        let r = redact(text);
        for hit in &r.hits {
            *self.0.entry(hit.rule).or_default() += hit.count;
        }
        r.text.into_owned()
    }

    fn counts(&self) -> Vec<RedactionCount> {
        self.0.iter().map(|(rule, count)| RedactionCount { rule: (*rule).to_owned(), count: *count }).collect()
    }
}

fn bad(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// Lines asked, within 1..=500 (central applies the plan's limit first).
fn line_cap(asked: u32) -> usize {
    usize::try_from(asked.clamp(1, MAX_LINES)).unwrap_or(1)
}

/// `file.read`. Path checks touch the file system (canonicalize, stat), so they run with the read
/// itself on the blocking pool, never on the runtime.
pub async fn read(rules: &Arc<FileRules>, p: FileReadParams) -> Result<FileTail, MttrlyError> {
    let rules = Arc::clone(rules);
    let lines = line_cap(p.lines);
    match p.target {
        ReadTarget::File { path } => {
            blocking(move || {
                let path = path.into_inner();
                let opened = rules.open(&path, FileAccess::Read)?;
                // A managed env file read by its path gets the same key-based redaction.
                let env = rules.is_env_file(&opened.allowed.path);
                tail_opened(opened, lines, &path, env)
            })
            .await
        }
        ReadTarget::EnvFile { name } => {
            blocking(move || {
                let name = name.into_inner();
                let allowed = rules.env_file(&name)?;
                let (file, meta) = open_checked(&allowed)?;
                tail_opened(Opened { allowed, file, meta }, lines, &format!("env_file:{name}"), true)
            })
            .await
        }
        ReadTarget::DockerLogs { container } => docker_logs(container.as_str(), lines).await,
        ReadTarget::DockerImages => docker_images(lines).await,
    }
}

/// `file.read_privileged`.
pub async fn read_privileged(rules: &Arc<FileRules>, p: PrivilegedReadParams) -> Result<FileTail, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || {
        let path = p.path.into_inner();
        let opened = rules.open(&path, FileAccess::Privileged)?;
        tail_opened(opened, line_cap(p.lines), &path, false)
    })
    .await
}

/// `file.search`.
pub async fn search(rules: &Arc<FileRules>, p: FileSearchParams) -> Result<FileMatches, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || search_files(&rules, &p)).await
}

/// `file.diff`.
pub async fn diff(rules: &Arc<FileRules>, p: FileDiffParams) -> Result<FileDiffText, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || {
        let left = rules.check(p.left_path.as_str(), FileAccess::Read)?;
        let right = rules.check(p.right_path.as_str(), FileAccess::Read)?;
        diff_files(&rules, &left, &right, &p)
    })
    .await
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, MttrlyError> + Send + 'static,
) -> Result<T, MttrlyError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("file task failed: {e}")))?
}

/// Keys whose values are secrets in an env file, matched anywhere in the key.
const SECRET_KEY_PARTS: &[&str] = &[
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "PRIVATE",
    "SALT",
    "SIGN",
    "CERT",
    "COOKIE",
    "SESSION",
    "DSN",
    "CONNECTION",
    "DATABASE_URL",
    "WEBHOOK",
];

/// A managed env file: every value whose key names a secret is replaced whole (quoted or not,
/// however short), on top of the generic rules.
fn redact_env_values(text: &str, redactions: &mut Redactions) -> String {
    let mut hits = 0u32;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            match body.split_once('=') {
                Some((key, value))
                    if !key.trim().is_empty()
                        && !key.trim_start().starts_with('#')
                        && !value.trim().is_empty()
                        && !value.contains("[REDACTED")
                        && SECRET_KEY_PARTS.iter().any(|p| key.to_ascii_uppercase().contains(p)) =>
                {
                    hits += 1;
                    format!("{}=[REDACTED:env_secret]", &line[..line.len() - value.len() - 1])
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    if hits > 0 {
        *redactions.0.entry("env_secret").or_default() += hits;
    }
    out.join("\n")
}

/// The tail of a file already through every check ([`FileRules::open`]).
fn tail_opened(opened: Opened, lines: usize, source: &str, env: bool) -> Result<FileTail, MttrlyError> {
    let Opened { mut file, meta, .. } = opened;
    let t = tail::tail(&mut file, meta.len(), lines)?;
    let mut redactions = Redactions::default();
    // The whole text at once: a PEM private key spans lines, and its body alone matches no rule.
    let content = redactions.text(&t.lines.join("\n"));
    let content = if env { redact_env_values(&content, &mut redactions) } else { content };
    Ok(FileTail {
        source: source.to_owned(),
        content,
        line_count: u32::try_from(t.lines.len()).unwrap_or(u32::MAX),
        truncated: t.truncated,
        size_bytes: Some(t.size_bytes),
        redactions: redactions.counts(),
    })
}

fn search_files(rules: &FileRules, p: &FileSearchParams) -> Result<FileMatches, MttrlyError> {
    if p.query.as_str().is_empty() {
        return Err(bad("the query is empty"));
    }
    let glob = p.glob.as_ref().map(mttrly_core::tools::files::PathGlob::as_str);
    let found = search::search(rules, p.query.as_str(), glob, p.ignore_case, line_cap(p.max_matches))?;
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
    let context = usize::try_from(p.context_lines.min(20)).unwrap_or(20);
    let (text, identical, truncated) = diff::unified(p.left_path.as_str(), &a, p.right_path.as_str(), &b, context);
    let mut redactions = Redactions::default();
    // The whole diff at once: a key's body lines keep the BEGIN line above them as context.
    let mut diff = redactions.text(text.strip_suffix('\n').unwrap_or(&text));
    if rules.is_env_file(&left.path) || rules.is_env_file(&right.path) {
        // `+DB_PASS=x` keeps its key: the key-based pass applies to diff lines as to reads.
        diff = redact_env_values(&diff, &mut redactions);
    }
    if !diff.is_empty() {
        diff.push('\n');
    }
    Ok(FileDiffText { diff, identical, truncated, redactions: redactions.counts() })
}

fn docker_missing() -> MttrlyError {
    MttrlyError::new(ErrorCode::DockerNotAvailable, "Docker is not installed on this server (no `docker` on PATH)")
}

/// Runs the Docker CLI with `args` (no shell), capped by time.
async fn docker(args: &[&str]) -> Result<(String, String, bool), MttrlyError> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(DOCKER_TIMEOUT, cmd.output()).await {
        Err(_) => return Err(MttrlyError::new(ErrorCode::Timeout, "the Docker CLI did not answer within 15 s")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(docker_missing()),
        Ok(Err(e)) => return Err(MttrlyError::new(ErrorCode::InternalError, format!("cannot run docker: {e}"))),
        Ok(Ok(out)) => out,
    };
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    ))
}

fn valid_container(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn lines_result(source: &str, text: &str, lines: usize) -> FileTail {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let kept = &all[start..];
    let mut redactions = Redactions::default();
    // The kept lines as one text, so a key's body lines are judged with the lines around them.
    let content = redactions.text(&kept.join("\n"));
    FileTail {
        source: source.to_owned(),
        content,
        line_count: u32::try_from(kept.len()).unwrap_or(u32::MAX),
        truncated: start > 0,
        size_bytes: None,
        redactions: redactions.counts(),
    }
}

async fn docker_logs(container: &str, lines: usize) -> Result<FileTail, MttrlyError> {
    if !valid_container(container) {
        return Err(
            bad(format!("`{container}` is not a container name or id")).with_detail("field", "target.container")
        );
    }
    let tail = lines.to_string();
    let (stdout, stderr, ok) = docker(&["logs", "--tail", &tail, "--", container]).await?;
    if !ok {
        let reason: String = stderr.lines().next().unwrap_or("docker logs failed").chars().take(300).collect();
        let code = if reason.contains("No such container") { ErrorCode::NotFound } else { ErrorCode::UnknownError };
        return Err(MttrlyError::new(code, reason).with_detail("container", container));
    }
    // `docker logs` writes the container's stderr to its stderr: both are the log.
    let mut text = stdout;
    if !stderr.is_empty() {
        text.push_str(&stderr);
    }
    // Redacting up to 500 lines of arbitrary length is CPU work: off the runtime.
    let source = format!("docker_logs:{container}");
    blocking(move || Ok(lines_result(&source, &text, lines))).await
}

async fn docker_images(lines: usize) -> Result<FileTail, MttrlyError> {
    let (stdout, stderr, ok) =
        docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}"]).await?;
    if !ok {
        let reason: String = stderr.lines().next().unwrap_or("docker images failed").chars().take(300).collect();
        return Err(MttrlyError::new(ErrorCode::UnknownError, reason));
    }
    blocking(move || Ok(lines_result("docker_images", &stdout, lines))).await
}

/// `file.write`: carries out an approved write. `content` is the approved [`ActionContent`] (the
/// session already checked its hash); `payload` must match the content's hash and size.
pub async fn write(rules: &Arc<FileRules>, content: ActionContent, payload: &[u8]) -> Result<FileWritten, MttrlyError> {
    match content {
        ActionContent::FileWrite { path, sha256, size_bytes } => {
            use sha2::Digest as _;
            let actual = hex::encode(sha2::Sha256::digest(payload));
            if actual != sha256 || payload.len() as u64 != size_bytes {
                return Err(MttrlyError::new(
                    ErrorCode::PolicyDenied,
                    "the file content does not match what was approved; nothing was written",
                ));
            }
            let (rules, bytes) = (Arc::clone(rules), payload.to_vec());
            blocking(move || write_managed(&rules.check(&path, FileAccess::Write)?, &bytes)).await
        }
        _ => Err(bad("file.write expects a file write action")),
    }
}

/// `file.cleanup`: carries out an approved deletion of a managed file.
pub async fn cleanup(rules: &Arc<FileRules>, content: ActionContent) -> Result<FileRemoved, MttrlyError> {
    match content {
        ActionContent::FileCleanup { path } => {
            let rules = Arc::clone(rules);
            blocking(move || remove_managed(&rules.check(&path, FileAccess::Write)?)).await
        }
        _ => Err(bad("file.cleanup expects a file cleanup action")),
    }
}

fn io_failed(what: &str, path: &std::path::Path, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("cannot {what} `{}`: {e}", path.display()))
}

/// Writes through a temporary file in the same directory and renames it over the target (a
/// reader never sees half a file; a crash leaves the old file). The previous content is copied to
/// `NAME.mttrly-backup-UNIXMS` first, and the file keeps its permissions.
fn write_managed(allowed: &Allowed, bytes: &[u8]) -> Result<FileWritten, MttrlyError> {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let path = &allowed.path;
    let dir = path.parent().ok_or_else(|| bad("a managed file needs a parent directory"))?;
    let stamp = jiff::Timestamp::now().as_millisecond();
    let mut backup = None;
    let mut mode = None;
    if allowed.exists {
        let (mut current, meta) = open_checked(allowed)?;
        let name = format!("{}.mttrly-backup-{stamp}", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"));
        let backup_path = dir.join(name);
        // Created 0600 and never touched by path again: permissions go through the descriptor, so
        // a symlink swapped in for the name can never redirect a chmod.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_nofollow())
            .open(&backup_path)
            .map_err(|e| io_failed("create the backup", &backup_path, &e))?;
        std::io::copy(&mut current, &mut out).map_err(|e| io_failed("back up", path, &e))?;
        out.sync_all().map_err(|e| io_failed("sync the backup", &backup_path, &e))?;
        // The file keeps its mode (without setuid/setgid/sticky bits) and its owner.
        mode = Some((meta.permissions().mode() & 0o777, meta.uid(), meta.gid()));
        backup = Some(backup_path);
    }
    let tmp = dir.join(format!(".{}.mttrly-tmp-{stamp}", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_nofollow())
            .open(&tmp)
            .map_err(|e| io_failed("create", &tmp, &e))?;
        f.write_all(bytes).map_err(|e| io_failed("write", &tmp, &e))?;
        if let Some((bits, uid, gid)) = mode {
            // fchown/fchmod on the open descriptor, never by name.
            let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
            f.set_permissions(std::fs::Permissions::from_mode(bits))
                .map_err(|e| io_failed("set permissions on", &tmp, &e))?;
        }
        f.sync_all().map_err(|e| io_failed("sync", &tmp, &e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_failed("replace", path, &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(FileWritten {
        path: path.to_string_lossy().into_owned(),
        bytes_written: bytes.len() as u64,
        backup: backup.map(|b| b.to_string_lossy().into_owned()),
    })
}

/// `O_NOFOLLOW`: a name that became a symlink is refused instead of followed.
const fn libc_nofollow() -> i32 {
    mttrly_core::files::open::NOFOLLOW
}

fn remove_managed(allowed: &Allowed) -> Result<FileRemoved, MttrlyError> {
    if !allowed.exists {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("`{}` does not exist", allowed.path.display())));
    }
    // Opening checks it is still a regular file at this path (not a symlink swapped in).
    let (_, meta) = open_checked(allowed)?;
    std::fs::remove_file(&allowed.path).map_err(|e| io_failed("remove", &allowed.path, &e))?;
    Ok(FileRemoved { path: allowed.path.to_string_lossy().into_owned(), bytes_freed: meta.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_redacted_by_key_whatever_their_shape() {
        let mut r = Redactions::default();
        let text =
            "PORT=8080\nDB_PASS=x\nSIGNING_KEY=\"a b c\"\nexport ENCRYPTION_KEY=zz\n# API_KEY=commented\nNAME=web";
        let out = redact_env_values(text, &mut r);
        assert!(out.contains("PORT=8080") && out.contains("NAME=web"), "{out}");
        for leaked in ["=x", "a b c", "zz"] {
            assert!(!out.contains(leaked), "{leaked} leaked: {out}");
        }
        assert!(out.contains("export ENCRYPTION_KEY=[REDACTED:env_secret]"), "{out}");
        // Diff lines keep their marker and lose the value.
        let diff = redact_env_values("-DB_PASS=old\n+DB_PASS=new\n PORT=1", &mut r);
        assert!(!diff.contains("old") && !diff.contains("new") && diff.contains(" PORT=1"), "{diff}");
    }
}
