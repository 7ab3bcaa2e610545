//! File capabilities: read (tail), privileged read, search, diff, Docker logs and images.
//!
//! Every path goes through the owner's file rules on this host ([`mttrly_core::files`]) and every
//! byte that leaves is redacted here, before it reaches central. Blocking file work runs on the
//! blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::files::{Allowed, FileAccess, FileRules, Opened, diff, open::open_checked, search, tail};
use mttrly_core::redactor::redact;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Tail a file, a managed env file, Docker logs, or list Docker images.
pub const FILE_READ: &str = "file.read";
/// Tail a file from the privileged allowlist.
pub const FILE_READ_PRIVILEGED: &str = "file.read_privileged";
/// Literal search over allowlisted files.
pub const FILE_SEARCH: &str = "file.search";
/// Unified diff of two allowlisted files.
pub const FILE_DIFF: &str = "file.diff";

/// Write a managed file (an approved action; the previous content is kept as a backup).
pub const FILE_WRITE: &str = "file.write";
/// Delete a managed file (an approved action).
pub const FILE_CLEANUP: &str = "file.cleanup";

/// The largest file a diff reads, per side.
const MAX_DIFF_BYTES: u64 = 2 * 1024 * 1024;
/// How long a Docker CLI call may take.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);

/// Redacts lines, counting what each rule removed.
#[derive(Default)]
struct Redactions(BTreeMap<&'static str, u32>);

impl Redactions {
    fn line(&mut self, line: &str) -> String {
        let r = redact(line);
        for hit in &r.hits {
            *self.0.entry(hit.rule).or_default() += hit.count;
        }
        r.text.into_owned()
    }

    fn json(&self) -> Value {
        Value::Array(self.0.iter().map(|(rule, count)| json!({ "rule": rule, "count": count })).collect())
    }
}

fn bad(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Target {
    File { path: String },
    DockerLogs { container: String },
    DockerImages,
    EnvFile { name: String },
}

#[derive(Deserialize)]
struct ReadParams {
    target: Target,
    lines: usize,
}

#[derive(Deserialize)]
struct PrivilegedParams {
    path: String,
    lines: usize,
}

#[derive(Deserialize)]
struct SearchParams {
    query: String,
    glob: Option<String>,
    #[serde(default)]
    ignore_case: bool,
    max_matches: usize,
}

#[derive(Deserialize)]
struct DiffParams {
    left_path: String,
    right_path: String,
    context_lines: usize,
}

fn parse<T: serde::de::DeserializeOwned>(params: &[u8], what: &str) -> Result<T, MttrlyError> {
    serde_json::from_slice(params).map_err(|e| bad(format!("malformed {what} parameters: {e}")))
}

/// Runs a file capability. Path checks touch the file system (canonicalize, stat), so they run
/// with the read itself on the blocking pool, never on the runtime.
pub async fn invoke(rules: &Arc<FileRules>, capability: &str, params: &[u8]) -> Result<Value, MttrlyError> {
    let rules = Arc::clone(rules);
    match capability {
        FILE_READ => {
            let p: ReadParams = parse(params, "file.read")?;
            let lines = p.lines.clamp(1, 500);
            match p.target {
                Target::File { path } => {
                    blocking(move || {
                        let opened = rules.open(&path, FileAccess::Read)?;
                        // A managed env file read by its path gets the same key-based redaction.
                        let env = rules.is_env_file(&opened.allowed.path);
                        tail_opened(opened, lines, &path, env)
                    })
                    .await
                }
                Target::EnvFile { name } => {
                    blocking(move || {
                        let allowed = rules.env_file(&name)?;
                        let (file, meta) = open_checked(&allowed)?;
                        tail_opened(Opened { allowed, file, meta }, lines, &format!("env_file:{name}"), true)
                    })
                    .await
                }
                Target::DockerLogs { container } => docker_logs(&container, lines).await,
                Target::DockerImages => docker_images(lines).await,
            }
        }
        FILE_READ_PRIVILEGED => {
            let p: PrivilegedParams = parse(params, "file.read_privileged")?;
            blocking(move || {
                let opened = rules.open(&p.path, FileAccess::Privileged)?;
                tail_opened(opened, p.lines.clamp(1, 500), &p.path, false)
            })
            .await
        }
        FILE_SEARCH => {
            let p: SearchParams = parse(params, "file.search")?;
            blocking(move || search_files(&rules, &p)).await
        }
        FILE_DIFF => {
            let p: DiffParams = parse(params, "file.diff")?;
            blocking(move || {
                let left = rules.check(&p.left_path, FileAccess::Read)?;
                let right = rules.check(&p.right_path, FileAccess::Read)?;
                diff_files(&rules, &left, &right, &p)
            })
            .await
        }
        other => Err(MttrlyError::new(ErrorCode::PolicyDenied, format!("unknown file capability `{other}`"))),
    }
}

async fn blocking(job: impl FnOnce() -> Result<Value, MttrlyError> + Send + 'static) -> Result<Value, MttrlyError> {
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
fn tail_opened(opened: Opened, lines: usize, source: &str, env: bool) -> Result<Value, MttrlyError> {
    let Opened { mut file, meta, .. } = opened;
    let t = tail::tail(&mut file, meta.len(), lines)?;
    let mut redactions = Redactions::default();
    // The whole text at once: a PEM private key spans lines, and its body alone matches no rule.
    let content = redactions.line(&t.lines.join("\n"));
    let content = if env { redact_env_values(&content, &mut redactions) } else { content };
    Ok(json!({
        "source": source,
        "content": content,
        "line_count": t.lines.len(),
        "truncated": t.truncated,
        "size_bytes": t.size_bytes,
        "redactions": redactions.json(),
    }))
}

fn search_files(rules: &FileRules, p: &SearchParams) -> Result<Value, MttrlyError> {
    if p.query.is_empty() {
        return Err(bad("the query is empty"));
    }
    let found = search::search(rules, &p.query, p.glob.as_deref(), p.ignore_case, p.max_matches.clamp(1, 500))?;
    let mut redactions = Redactions::default();
    // Managed env files are read only whole, through key-based redaction: a search hit in one
    // would tell whether a secret value contains the query.
    let env_files = rules.env_file_paths();
    let matches: Vec<Value> = found
        .hits
        .iter()
        .filter(|h| !env_files.contains(&h.path))
        .map(|h| json!({ "path": h.path, "line_number": h.line_number, "line": redactions.line(&h.line) }))
        .collect();
    Ok(json!({
        "matches": matches,
        "files_searched": found.files_searched,
        "files_skipped": found.files_skipped,
        "truncated": found.truncated,
        "redactions": redactions.json(),
    }))
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

fn diff_files(rules: &FileRules, left: &Allowed, right: &Allowed, p: &DiffParams) -> Result<Value, MttrlyError> {
    let (a, b) = (read_small(left)?, read_small(right)?);
    let (text, identical, truncated) = diff::unified(&p.left_path, &a, &p.right_path, &b, p.context_lines.min(20));
    let mut redactions = Redactions::default();
    let redacted: Vec<String> = text.lines().map(|l| redactions.line(l)).collect();
    let mut diff = redacted.join("\n");
    if rules.is_env_file(&left.path) || rules.is_env_file(&right.path) {
        // `+DB_PASS=x` keeps its key: the key-based pass applies to diff lines as to reads.
        diff = redact_env_values(&diff, &mut redactions);
    }
    if !diff.is_empty() {
        diff.push('\n');
    }
    Ok(json!({ "diff": diff, "identical": identical, "truncated": truncated, "redactions": redactions.json() }))
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

fn lines_result(source: &str, text: &str, lines: usize) -> Value {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut redactions = Redactions::default();
    let content: Vec<String> = all[start..].iter().map(|l| redactions.line(l)).collect();
    json!({
        "source": source,
        "content": content.join("\n"),
        "line_count": content.len(),
        "truncated": start > 0,
        "size_bytes": null,
        "redactions": redactions.json(),
    })
}

async fn docker_logs(container: &str, lines: usize) -> Result<Value, MttrlyError> {
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
    Ok(lines_result(&format!("docker_logs:{container}"), &text, lines))
}

async fn docker_images(lines: usize) -> Result<Value, MttrlyError> {
    let (stdout, stderr, ok) =
        docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}"]).await?;
    if !ok {
        let reason: String = stderr.lines().next().unwrap_or("docker images failed").chars().take(300).collect();
        return Err(MttrlyError::new(ErrorCode::UnknownError, reason));
    }
    Ok(lines_result("docker_images", &stdout, lines))
}

/// Carries out an approved file change. `params` are the approved [`ActionContent`] bytes (the
/// session already checked their hash); `payload` must match the content's hash and size.
pub async fn change(rules: &Arc<FileRules>, params: &[u8], payload: &[u8]) -> Result<Value, MttrlyError> {
    let content: ActionContent = parse(params, "file change")?;
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
        ActionContent::FileCleanup { path } => {
            let rules = Arc::clone(rules);
            blocking(move || remove_managed(&rules.check(&path, FileAccess::Write)?)).await
        }
        _ => Err(bad("expected a file write or cleanup action")),
    }
}

fn io_failed(what: &str, path: &std::path::Path, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("cannot {what} `{}`: {e}", path.display()))
}

/// Writes through a temporary file in the same directory and renames it over the target (a
/// reader never sees half a file; a crash leaves the old file). The previous content is copied to
/// `NAME.mttrly-backup-UNIXMS` first, and the file keeps its permissions.
fn write_managed(allowed: &Allowed, bytes: &[u8]) -> Result<Value, MttrlyError> {
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
    Ok(json!({ "path": path, "bytes_written": bytes.len(), "backup": backup }))
}

/// `O_NOFOLLOW`: a name that became a symlink is refused instead of followed.
const fn libc_nofollow() -> i32 {
    mttrly_core::files::open::NOFOLLOW
}

fn remove_managed(allowed: &Allowed) -> Result<Value, MttrlyError> {
    if !allowed.exists {
        return Err(MttrlyError::new(ErrorCode::NotFound, format!("`{}` does not exist", allowed.path.display())));
    }
    // Opening checks it is still a regular file at this path (not a symlink swapped in).
    let (_, meta) = open_checked(allowed)?;
    std::fs::remove_file(&allowed.path).map_err(|e| io_failed("remove", &allowed.path, &e))?;
    Ok(json!({ "path": allowed.path, "bytes_freed": meta.len() }))
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
