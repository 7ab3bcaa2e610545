//! File operations the installer and the root repair oneshot share, written for a directory the
//! unprivileged agent can write into: nothing here follows a symlink at the last component, so
//! a link planted in the state directory can never turn a root `chmod`/`chown`/write into one on
//! `/etc/shadow`.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::InstallError;

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools, reason = "a file's type, as the three tests callers make")]
pub struct Stat {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// A regular file.
    pub is_file: bool,
    /// A directory.
    pub is_dir: bool,
    /// A symlink.
    pub is_symlink: bool,
}

/// The path's facts, `None` when nothing is there.
pub fn stat(path: &Path) -> Result<Option<Stat>, InstallError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(Stat {
            mode: m.permissions().mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            is_file: m.file_type().is_file(),
            is_dir: m.file_type().is_dir(),
            is_symlink: m.file_type().is_symlink(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::io("cannot inspect", path, source)),
    }
}

/// Opens a file or directory for reading, refusing a symlink at the last component.
fn open_nofollow(path: &Path) -> Result<File, InstallError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| InstallError::io("cannot open", path, source))
}

/// What identifies one version of a file's bytes: any write, rename over or `touch` changes the
/// inode or the ctime, and nobody but the kernel sets a ctime.
type Identity = (u64, u64, u64, i64, i64, i64, i64);

/// Hashes already computed, by path and identity: health checks hash the same binaries (tens of
/// megabytes each) on every call.
static HASHES: std::sync::Mutex<Option<std::collections::HashMap<PathBuf, (Identity, String)>>> =
    std::sync::Mutex::new(None);

/// SHA-256 of a file's bytes, hex; `None` when the file is absent. A symlink is refused.
pub fn sha256_file(path: &Path) -> Result<Option<String>, InstallError> {
    match stat(path)? {
        None => return Ok(None),
        Some(s) if !s.is_file => {
            return Err(InstallError::Unexpected { path: path.display().to_string(), what: "not a regular file" });
        }
        Some(_) => {}
    }
    let mut file = open_nofollow(path)?;
    let meta = file.metadata().map_err(|source| InstallError::io("cannot inspect", path, source))?;
    let identity: Identity =
        (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec());
    let mut cache = HASHES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((known, hash)) = cache.get_or_insert_with(Default::default).get(path)
        && *known == identity
    {
        return Ok(Some(hash.clone()));
    }
    drop(cache);
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|source| InstallError::io("cannot read", path, source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hash = hex::encode(hasher.finalize());
    HASHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(Default::default)
        .insert(path.to_path_buf(), (identity, hash.clone()));
    Ok(Some(hash))
}

/// SHA-256 of bytes, hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a small file (at most `max` bytes) without following a final symlink.
pub fn read_small(path: &Path, max: u64) -> Result<Option<Vec<u8>>, InstallError> {
    if stat(path)?.is_none() {
        return Ok(None);
    }
    let file = open_nofollow(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|source| InstallError::io("cannot read", path, source))?;
    if bytes.len() as u64 > max {
        return Err(InstallError::Unexpected { path: path.display().to_string(), what: "larger than expected" });
    }
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` atomically with `mode`: a fresh temp file beside it (created
/// exclusively, so a planted link is never written through), fsync, rename over the old one (a
/// rename replaces a symlink itself, not its target).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.mttrly-tmp"));
    remove_file(&tmp)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|source| InstallError::io("cannot write", &tmp, source))?;
    // The umask may have narrowed the mode at creation: set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .map_err(|source| InstallError::io("cannot write", &tmp, source))?;
    std::fs::rename(&tmp, path).map_err(|source| InstallError::io("cannot replace", path, source))
}

/// Sets a file's or directory's mode and owner without following a final symlink (through a
/// descriptor opened with `O_NOFOLLOW`). The owner is left alone when `None`.
pub fn set_mode_owner(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), InstallError> {
    let file = open_nofollow(path)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|source| InstallError::io("cannot change the owner of", path, source))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|source| InstallError::io("cannot change the mode of", path, source))
}

/// Creates `dir` and any missing parents with `mode`, recording each directory it made (parents
/// first) in `created`, so uninstall removes exactly those.
pub fn ensure_dir(dir: &Path, mode: u32, created: &mut Vec<PathBuf>) -> Result<(), InstallError> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at {
        if stat(p)?.is_some() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    for p in missing.into_iter().rev() {
        std::fs::create_dir(&p).map_err(|source| InstallError::io("cannot create", &p, source))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|source| InstallError::io("cannot change the mode of", &p, source))?;
        created.push(p);
    }
    Ok(())
}

/// Points `link` at `target` (a relative name) atomically: a new link beside it, renamed over.
pub fn replace_symlink(link: &Path, target: &str) -> Result<(), InstallError> {
    let name = link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = link.with_file_name(format!(".{name}.mttrly-tmp"));
    remove_file(&tmp)?;
    std::os::unix::fs::symlink(target, &tmp).map_err(|source| InstallError::io("cannot link", &tmp, source))?;
    std::fs::rename(&tmp, link).map_err(|source| InstallError::io("cannot replace", link, source))
}

/// Removes a file or link; absent is fine. Says whether something was removed.
pub fn remove_file(path: &Path) -> Result<bool, InstallError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(InstallError::io("cannot remove", path, source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_exact_and_never_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.path().join("credentials.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        // A link at the file: the write replaces the link, the target is untouched.
        write_file(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(stat(&path).unwrap().unwrap().mode, 0o600);
        // chmod through a link is refused, not applied to the target.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(set_mode_owner(&link, 0o600, None).is_err());
        assert_eq!(stat(&target).unwrap().unwrap().mode, 0o644);
        assert!(sha256_file(&link).is_err());
        assert_eq!(sha256_file(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn ensure_dir_records_exactly_what_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let mut created = Vec::new();
        ensure_dir(&dir.path().join("a/b/c"), 0o755, &mut created).unwrap();
        assert_eq!(created, vec![dir.path().join("a"), dir.path().join("a/b"), dir.path().join("a/b/c")]);
        let mut again = Vec::new();
        ensure_dir(&dir.path().join("a/b/c"), 0o755, &mut again).unwrap();
        assert!(again.is_empty());
    }
}
