//! `file.write` and `file.cleanup`: approved changes to managed files. A write replaces the file
//! atomically and keeps the previous content as a backup; a cleanup removes a managed file. Both
//! re-check the path against this host's rules whatever central approved.

use std::path::Path;
use std::sync::Arc;

use mttrly_core::action::ActionContent;
use mttrly_core::capability::{FileRemoved, FileWritten};
use mttrly_core::files::{Allowed, FileAccess, FileRules, open::NOFOLLOW, open::open_checked};
use mttrly_core::{ErrorCode, MttrlyError};

use super::{bad, blocking};

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

fn io_failed(what: &str, path: &Path, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("cannot {what} `{}`: {e}", path.display()))
}

/// A new file beside the target, 0600, refusing a symlink at its name ([`NOFOLLOW`]) and any
/// existing file: nothing already there is ever written through.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(NOFOLLOW).open(path)
}

/// Writes through a temporary file in the same directory and renames it over the target (a
/// reader never sees half a file; a crash leaves the old file). The previous content is copied to
/// `NAME.mttrly-backup-UNIXMS` first, and the file keeps its permissions.
fn write_managed(allowed: &Allowed, bytes: &[u8]) -> Result<FileWritten, MttrlyError> {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let path = &allowed.path;
    let dir = path.parent().ok_or_else(|| bad("a managed file needs a parent directory"))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let stamp = jiff::Timestamp::now().as_millisecond();
    let mut backup = None;
    let mut mode = None;
    if allowed.exists {
        let (mut current, meta) = open_checked(allowed)?;
        let backup_path = dir.join(format!("{name}.mttrly-backup-{stamp}"));
        // Created 0600 and never touched by path again: permissions go through the descriptor, so
        // a symlink swapped in for the name can never redirect a chmod.
        let mut out = create_private(&backup_path).map_err(|e| io_failed("create the backup", &backup_path, &e))?;
        std::io::copy(&mut current, &mut out).map_err(|e| io_failed("back up", path, &e))?;
        out.sync_all().map_err(|e| io_failed("sync the backup", &backup_path, &e))?;
        // The file keeps its mode (without setuid/setgid/sticky bits) and its owner.
        mode = Some((meta.permissions().mode() & 0o777, meta.uid(), meta.gid()));
        backup = Some(backup_path);
    }
    let tmp = dir.join(format!(".{name}.mttrly-tmp-{stamp}"));
    let result = (|| {
        let mut f = create_private(&tmp).map_err(|e| io_failed("create", &tmp, &e))?;
        f.write_all(bytes).map_err(|e| io_failed("write", &tmp, &e))?;
        if let Some((bits, uid, gid)) = mode {
            // fchown/fchmod on the open descriptor, never by name. Ownership is best effort: an
            // agent not running as root keeps the file its own, with the old mode.
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
    use std::os::unix::fs::PermissionsExt as _;

    use mttrly_core::files::FilePolicy;

    use super::*;

    /// File rules managing `DIR/app.conf` only, and the content that writes `bytes` to it.
    fn managed(dir: &Path, bytes: &[u8]) -> (Arc<FileRules>, ActionContent) {
        use sha2::Digest as _;
        let path = dir.join("app.conf").display().to_string();
        let rules = FileRules::new(FilePolicy {
            file_roots: Vec::new(),
            managed_files: vec![path.clone()],
            ..FilePolicy::default()
        })
        .unwrap();
        let content = ActionContent::FileWrite {
            path,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            size_bytes: bytes.len() as u64,
        };
        (Arc::new(rules), content)
    }

    #[tokio::test]
    async fn a_write_keeps_the_mode_and_a_private_backup_of_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let target = root.join("app.conf");
        std::fs::write(&target, "workers = 2\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (rules, content) = managed(&root, b"workers = 4\n");
        let written = write(&rules, content, b"workers = 4\n").await.unwrap();
        assert_eq!(written.bytes_written, 12);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "workers = 4\n");
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o640);
        let backup = written.backup.expect("the old content was kept");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "workers = 2\n");
        assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
        // No temporary file is left beside it.
        let names: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| n.contains("mttrly-tmp")), "{names:?}");
    }

    #[tokio::test]
    async fn content_other_than_what_was_approved_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (rules, content) = managed(&root, b"approved\n");
        let err = write(&rules, content.clone(), b"swapped\n").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
        assert!(!root.join("app.conf").exists());
        // The wrong kind of action is refused by both handlers.
        assert_eq!(cleanup(&rules, content).await.unwrap_err().code(), ErrorCode::ValidationError);
        let cleanup_content = ActionContent::FileCleanup { path: root.join("app.conf").display().to_string() };
        assert_eq!(write(&rules, cleanup_content.clone(), b"").await.unwrap_err().code(), ErrorCode::ValidationError);
        // Removing a managed file that is not there says so.
        assert_eq!(cleanup(&rules, cleanup_content).await.unwrap_err().code(), ErrorCode::NotFound);
    }
}
