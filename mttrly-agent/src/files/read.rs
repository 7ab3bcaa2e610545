//! `file.read` and `file.read_privileged`: the tail of an allowlisted file or a managed env file,
//! checked and opened by [`FileRules`] and redacted as a whole. The Docker targets of `file.read`
//! are answered by [`super::docker`].

use std::sync::Arc;

use mttrly_core::MttrlyError;
use mttrly_core::capability::{FileReadParams, FileTail, PrivilegedReadParams};
use mttrly_core::files::{FileAccess, FileRules, Opened, open::open_checked, tail};
use mttrly_core::tools::files::ReadTarget;

use super::redact::Redactions;
use super::{blocking, docker, line_cap};

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
        ReadTarget::DockerLogs { container } => docker::logs(container.as_str(), lines).await,
        ReadTarget::DockerImages => docker::images(lines).await,
    }
}

/// `file.read_privileged`: the same tail, from the privileged allowlist.
pub async fn read_privileged(rules: &Arc<FileRules>, p: PrivilegedReadParams) -> Result<FileTail, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || {
        let path = p.path.into_inner();
        let opened = rules.open(&path, FileAccess::Privileged)?;
        tail_opened(opened, line_cap(p.lines), &path, false)
    })
    .await
}

/// The tail of a file already through every check ([`FileRules::open`]); `env` adds the
/// key-based pass of a managed env file.
fn tail_opened(opened: Opened, lines: usize, source: &str, env: bool) -> Result<FileTail, MttrlyError> {
    let Opened { mut file, meta, .. } = opened;
    let t = tail::tail(&mut file, meta.len(), lines)?;
    let mut redactions = Redactions::default();
    // The whole text at once: a PEM private key spans lines, and its body alone matches no rule.
    let content = redactions.text(&t.lines.join("\n"));
    let content = if env { redactions.env_values(&content) } else { content };
    Ok(FileTail {
        source: source.to_owned(),
        content,
        line_count: u32::try_from(t.lines.len()).unwrap_or(u32::MAX),
        truncated: t.truncated,
        size_bytes: Some(t.size_bytes),
        redactions: redactions.counts(),
    })
}
