//! `file.current`: what a managed file holds now, so the approver of a pending write sees a diff
//! instead of a hash. Read-only, and no new read surface: the path goes through exactly the
//! checks `file.write` applies ([`FileRules::check`] with [`FileAccess::Write`], then
//! [`open_checked`] on the resolved path, as `write_managed` does), so a path the write would
//! refuse (outside `managed_files`, a `..` or a symlink leading out, a FIFO, a hard link) is
//! refused here with the same error. At most the write's own size cap is read.

use std::io::Read as _;
use std::sync::Arc;

use mttrly_core::MttrlyError;
use mttrly_core::capability::{FileCurrentParams, FileCurrentText};
use mttrly_core::files::{Allowed, FileAccess, FileRules, open::open_checked};
use sha2::Digest as _;

use super::redact::Redactions;
use super::{bad, blocking};

/// `file.current`. The checks stat and open files, so they run on the blocking pool.
pub async fn current(rules: &Arc<FileRules>, p: FileCurrentParams) -> Result<FileCurrentText, MttrlyError> {
    let rules = Arc::clone(rules);
    blocking(move || {
        let allowed = rules.check(p.path.as_str(), FileAccess::Write)?;
        let env_file = rules.is_env_file(&allowed.path);
        read_current(&allowed, env_file)
    })
    .await
}

/// Reads an allowed managed file: a missing one is an answer (the write creates it), not an
/// error; a binary or oversized one answers its size (and hash when read whole) without text.
fn read_current(allowed: &Allowed, env_file: bool) -> Result<FileCurrentText, MttrlyError> {
    let path = allowed.path.to_string_lossy().into_owned();
    let mut answer = FileCurrentText {
        path,
        exists: allowed.exists,
        size_bytes: 0,
        sha256: None,
        content: None,
        binary: false,
        truncated: false,
        env_file,
        redactions: Vec::new(),
    };
    if !allowed.exists {
        return Ok(answer);
    }
    let (file, meta) = open_checked(allowed)?;
    answer.size_bytes = meta.len();
    let cap = FileCurrentText::MAX_BYTES as u64;
    let mut bytes = Vec::new();
    // One byte past the cap tells a file that grew since the stat from one that fits.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|e| bad(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > cap {
        answer.truncated = true;
        answer.size_bytes = answer.size_bytes.max(bytes.len() as u64);
        return Ok(answer);
    }
    answer.size_bytes = bytes.len() as u64;
    answer.sha256 = Some(hex::encode(sha2::Sha256::digest(&bytes)));
    let Some(text) = FileCurrentText::text_of(&bytes) else {
        answer.binary = true;
        return Ok(answer);
    };
    let mut redactions = Redactions::default();
    // The whole text at once, as a read redacts it: a key's body keeps its BEGIN line as context.
    let masked = redactions.text(text);
    answer.content = Some(if env_file { redactions.env_values(&masked) } else { masked });
    answer.redactions = redactions.counts();
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use mttrly_core::ErrorCode;
    use mttrly_core::action::ActionContent;
    use mttrly_core::files::FilePolicy;
    use mttrly_core::tools::common::ServerPath;

    use super::*;

    /// Rules managing `ROOT/managed/*.conf`, reading `ROOT/logs/**`, with `ROOT/managed/.env` as a
    /// managed env file; the secret lives in `ROOT/secret.conf`, outside every rule.
    fn setup() -> (tempfile::TempDir, std::path::PathBuf, Arc<FileRules>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("managed")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("secret.conf"), "root:$6$secret\n").unwrap();
        std::fs::write(root.join("logs/app.log"), "readable but not managed\n").unwrap();
        let mut env_files = std::collections::BTreeMap::new();
        env_files.insert("app".to_owned(), root.join("managed/app.env").display().to_string());
        let rules = FileRules::new(FilePolicy {
            file_roots: vec![format!("{}/logs/**", root.display())],
            managed_files: vec![
                format!("{}/managed/*.conf", root.display()),
                format!("{}/managed/*.env", root.display()),
            ],
            env_files,
            ..FilePolicy::default()
        })
        .unwrap();
        (dir, root, Arc::new(rules))
    }

    fn params(path: &str) -> FileCurrentParams {
        FileCurrentParams { path: ServerPath::new(path).unwrap() }
    }

    /// What `file.write` answers for the same path (an approved write of `x`).
    async fn write_verdict(rules: &Arc<FileRules>, path: &str) -> Result<(), MttrlyError> {
        let content = ActionContent::FileWrite {
            path: path.to_owned(),
            sha256: hex::encode(sha2::Sha256::digest(b"x")),
            size_bytes: 1,
        };
        super::super::write(rules, content, b"x").await.map(|_| ())
    }

    #[tokio::test]
    async fn the_current_text_is_redacted_and_hashed_raw() {
        let (_dir, root, rules) = setup();
        let raw = "workers = 2\naws_key = AKIAIOSFODNN7EXAMPLE\n";
        std::fs::write(root.join("managed/app.conf"), raw).unwrap();
        let got = current(&rules, params(&root.join("managed/app.conf").display().to_string())).await.unwrap();
        assert!(got.exists && !got.binary && !got.truncated && !got.env_file, "{got:?}");
        assert_eq!(got.size_bytes, raw.len() as u64);
        assert_eq!(got.sha256.as_deref(), Some(hex::encode(sha2::Sha256::digest(raw.as_bytes())).as_str()));
        let text = got.content.unwrap();
        assert!(text.starts_with("workers = 2\n") && !text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert!(!got.redactions.is_empty());
    }

    #[tokio::test]
    async fn a_managed_env_file_loses_every_secret_value_by_key() {
        let (_dir, root, rules) = setup();
        std::fs::write(root.join("managed/app.env"), "PORT=8080\nDB_PASS=x\n").unwrap();
        let got = current(&rules, params(&root.join("managed/app.env").display().to_string())).await.unwrap();
        assert!(got.env_file);
        let text = got.content.unwrap();
        assert!(text.contains("PORT=8080") && text.contains("DB_PASS=[REDACTED:env_secret]"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_binary_or_oversized_file_answers_without_text() {
        let (_dir, root, rules) = setup();
        let missing = current(&rules, params(&root.join("managed/new.conf").display().to_string())).await.unwrap();
        assert!(!missing.exists && missing.content.is_none() && missing.sha256.is_none(), "{missing:?}");
        std::fs::write(root.join("managed/blob.conf"), b"\x00\xff\xfe binary").unwrap();
        let binary = current(&rules, params(&root.join("managed/blob.conf").display().to_string())).await.unwrap();
        assert!(binary.binary && binary.content.is_none() && binary.sha256.is_some(), "{binary:?}");
        let big = vec![b'a'; FileCurrentText::MAX_BYTES + 10];
        std::fs::write(root.join("managed/big.conf"), &big).unwrap();
        let big = current(&rules, params(&root.join("managed/big.conf").display().to_string())).await.unwrap();
        assert!(big.truncated && big.content.is_none() && big.sha256.is_none(), "{big:?}");
        assert_eq!(big.size_bytes, FileCurrentText::MAX_BYTES as u64 + 10);
    }

    /// Every path the write refuses is refused here, with the same code; nothing of the secret
    /// comes out.
    #[tokio::test]
    async fn a_path_the_write_refuses_is_refused_exactly_as_the_write_refuses_it() {
        let (_dir, root, rules) = setup();
        std::os::unix::fs::symlink(root.join("secret.conf"), root.join("managed/escape.conf")).unwrap();
        std::fs::write(root.join("managed/ok.conf"), "ok\n").unwrap();
        std::fs::hard_link(root.join("secret.conf"), root.join("managed/linked.conf")).unwrap();
        let refused = [
            root.join("secret.conf").display().to_string(),
            root.join("logs/app.log").display().to_string(),
            format!("{}/managed/../secret.conf", root.display()),
            root.join("managed/escape.conf").display().to_string(),
            root.join("managed/linked.conf").display().to_string(),
            format!("{}/missing-dir/new.conf", root.display()),
        ];
        for path in &refused {
            let read = current(&rules, params(path)).await.unwrap_err();
            let write = write_verdict(&rules, path).await.unwrap_err();
            assert_eq!(read.code(), write.code(), "{path}: {read} vs {write}");
            assert_eq!(read.code(), ErrorCode::PolicyDenied, "{path}: {read}");
            assert!(!format!("{read:?}").contains("$6$secret"), "{path}");
        }
        // And what the write accepts, this reads.
        assert!(current(&rules, params(&root.join("managed/ok.conf").display().to_string())).await.is_ok());
        assert!(write_verdict(&rules, &root.join("managed/ok.conf").display().to_string()).await.is_ok());
    }
}
