//! File operations the installer and the root repair oneshot share, written for a directory the
//! unprivileged agent can write into: nothing here follows a symlink at the last component, so
//! a link planted in the state directory can never turn a root `chmod`/`chown`/write into one on
//! `/etc/shadow`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
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

/// The directory holding `path`'s last component, opened by walking from `/` one component at a
/// time, and that last component's name.
///
/// Why: the state and versions directories belong to the unprivileged agent, so a path under them
/// is only as safe as its *every* component. Refusing a symlink at the last component alone let an
/// agent swap `versions/<v>` (or `versions`) for a link to `/usr/local/sbin` and have root's repair
/// write, and `chown` to the agent, a file there. The rule is positive: a symlink is followed only
/// where nobody but root or this process's own user could have put it (in a directory they own
/// that neither group nor others may write, like a distribution's `/usr/local → /var/usrlocal`,
/// or a staging root in one's own home); every other component
/// must be a real directory, and the final operation is made relative to the descriptor walked
/// to, so nothing can be swapped between this check and the write.
fn open_parent(path: &Path) -> Result<(OwnedFd, OsString), InstallError> {
    use std::path::Component;
    let refused = |what| InstallError::Unexpected { path: path.display().to_string(), what };
    let walk = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part),
            Component::ParentDir | Component::Prefix(_) => return Err(refused("not a plain path (it has `..`)")),
        }
    }
    let name = parts.pop().ok_or_else(|| refused("not a path to a file"))?.to_owned();
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = nix::fcntl::open(start, walk, Mode::empty())
        .map_err(|e| InstallError::io("cannot open", Path::new(start), e.into()))?;
    for part in parts {
        let next = match nix::fcntl::openat(&dir, part, walk | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR)
                if nix::sys::stat::fstatat(&dir, part, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK) =>
            {
                let holder = nix::sys::stat::fstat(&dir)
                    .map_err(|e| InstallError::io("cannot inspect the directory of", path, e.into()))?;
                let trusted_owner = holder.st_uid == 0 || holder.st_uid == nix::unistd::geteuid().as_raw();
                if !trusted_owner || holder.st_mode & 0o022 != 0 {
                    return Err(refused("reached through a symlink in a directory others can write: not followed"));
                }
                nix::fcntl::openat(&dir, part, walk, Mode::empty())
                    .map_err(|e| InstallError::io("cannot open a directory of", path, e.into()))?
            }
            Err(e) => return Err(InstallError::io("cannot open a directory of", path, e.into())),
        };
        dir = next;
    }
    Ok((dir, name))
}

/// Opens a file or directory for reading through [`open_parent`], refusing a symlink at the last
/// component (`O_NONBLOCK`: a FIFO planted where a file belongs fails instead of blocking root).
fn open_nofollow(path: &Path) -> Result<File, InstallError> {
    let (dir, name) = open_parent(path)?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(&dir, name.as_os_str(), flags, Mode::empty())
        .map_err(|e| InstallError::io("cannot open", path, e.into()))?;
    Ok(File::from(fd))
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
    // Only a regular file's bytes are its content (a FIFO or device planted there is not).
    if !file.metadata().map_err(|source| InstallError::io("cannot inspect", path, source))?.is_file() {
        return Err(InstallError::Unexpected { path: path.display().to_string(), what: "not a regular file" });
    }
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
    let (dir, name) = open_parent(path)?;
    let tmp = temp_name(&name);
    let tmp_path = path.with_file_name(&tmp);
    unlink(&dir, &tmp, &tmp_path)?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(&dir, tmp.as_os_str(), flags, Mode::from_bits_truncate(mode & 0o7777))
        .map_err(|e| InstallError::io("cannot write", &tmp_path, e.into()))?;
    let mut file = File::from(fd);
    // The umask may have narrowed the mode at creation: set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| bytes.chunks(super::layout::BINARY_WRITE_PIECE).try_for_each(|piece| file.write_all(piece)))
        .and_then(|()| file.sync_all())
        .map_err(|source| InstallError::io("cannot write", &tmp_path, source))?;
    nix::fcntl::renameat(&dir, tmp.as_os_str(), &dir, name.as_os_str())
        .map_err(|e| InstallError::io("cannot replace", path, e.into()))
}

/// `.<name>.mttrly-tmp`: the temporary name beside `name`.
fn temp_name(name: &OsStr) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".mttrly-tmp");
    tmp
}

/// Removes `name` from `dir` (absent is fine); `shown` names it in errors.
fn unlink(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<bool, InstallError> {
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(InstallError::io("cannot remove", shown, e.into())),
    }
}

/// Changes the owner of the link (or file) at `path` itself, through [`open_parent`].
pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<(), InstallError> {
    let (dir, name) = open_parent(path)?;
    nix::unistd::fchownat(
        &dir,
        name.as_os_str(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| InstallError::io("cannot change the owner of", path, e.into()))
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
        let (dir, name) = open_parent(&p)?;
        nix::sys::stat::mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(mode & 0o7777))
            .map_err(|e| InstallError::io("cannot create", &p, e.into()))?;
        set_mode_owner(&p, mode, None)?;
        created.push(p);
    }
    Ok(())
}

/// Points `link` at `target` (a relative name) atomically: a new link beside it, renamed over.
pub fn replace_symlink(link: &Path, target: &str) -> Result<(), InstallError> {
    let (dir, name) = open_parent(link)?;
    let tmp = temp_name(&name);
    let tmp_path = link.with_file_name(&tmp);
    unlink(&dir, &tmp, &tmp_path)?;
    nix::unistd::symlinkat(target, &dir, tmp.as_os_str())
        .map_err(|e| InstallError::io("cannot link", &tmp_path, e.into()))?;
    nix::fcntl::renameat(&dir, tmp.as_os_str(), &dir, name.as_os_str())
        .map_err(|e| InstallError::io("cannot replace", link, e.into()))
}

/// Removes an empty directory through [`open_parent`]: `Ok(false)` when it is not empty (or
/// absent), so uninstall keeps what someone else put there.
pub fn remove_empty_dir(path: &Path) -> Result<bool, InstallError> {
    let (dir, name) = match open_parent(path) {
        Ok(found) => found,
        Err(InstallError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match nix::unistd::unlinkat(&dir, name.as_os_str(), nix::unistd::UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOENT) => Ok(false),
        Err(e) => Err(InstallError::io("cannot remove", path, e.into())),
    }
}

/// Removes a file or link; absent (or its directory absent) is fine. Says whether something was
/// removed.
pub fn remove_file(path: &Path) -> Result<bool, InstallError> {
    let (dir, name) = match open_parent(path) {
        Ok(found) => found,
        Err(InstallError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    unlink(&dir, &name, path)
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

    /// Red team: the agent (which owns the state and versions directories) swaps a directory on
    /// the way to a file root writes for a symlink to a root-owned directory (`/usr/local/sbin`
    /// here): no write, chown, link, mkdir or removal lands there, and no read goes through it.
    #[test]
    fn no_root_operation_goes_through_a_symlink_the_agent_could_plant() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let sbin = dir.path().join("sbin");
        std::fs::create_dir_all(state.join("versions")).unwrap();
        std::fs::create_dir_all(&sbin).unwrap();
        std::fs::write(sbin.join("existing"), "root's").unwrap();
        std::fs::create_dir(sbin.join("empty")).unwrap();
        // Writable by others, as the agent's own directories are to the agent.
        for d in [&state, &state.join("versions")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::os::unix::fs::symlink(&sbin, state.join("versions/0.1.0")).unwrap();
        std::os::unix::fs::symlink(&sbin, state.join("swapped")).unwrap();
        let through = [state.join("versions/0.1.0/mttrly-agent"), state.join("swapped/mttrly-agent")];
        for path in &through {
            let err = write_file(path, b"agent's", 0o755).unwrap_err();
            assert!(err.to_string().contains("symlink"), "{err}");
            assert!(replace_symlink(path, "0.1.0").is_err());
            assert!(lchown(path, 0, 0).is_err());
            assert!(ensure_dir(&path.join("sub"), 0o755, &mut Vec::new()).is_err());
        }
        let existing = state.join("swapped/existing");
        assert!(set_mode_owner(&existing, 0o777, Some((65534, 65534))).is_err());
        assert!(read_small(&existing, 1024).is_err());
        assert!(sha256_file(&existing).is_err());
        assert!(remove_file(&existing).is_err());
        assert!(remove_empty_dir(&state.join("swapped/empty")).is_err());
        let mut names: Vec<_> = std::fs::read_dir(&sbin).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["empty", "existing"], "something landed behind the link, or went");
        let meta = std::fs::metadata(sbin.join("existing")).unwrap();
        assert_eq!(
            (meta.permissions().mode() & 0o777 != 0o777, std::fs::read_to_string(sbin.join("existing")).unwrap()),
            (true, "root's".to_owned())
        );

        // A FIFO planted where a file belongs fails at once instead of blocking root.
        std::fs::remove_file(state.join("swapped")).unwrap();
        std::fs::create_dir(state.join("swapped")).unwrap();
        nix::unistd::mkfifo(&state.join("swapped/credentials.json"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_small(&state.join("swapped/credentials.json"), 1024).is_err());
        set_mode_owner(&state.join("swapped/credentials.json"), 0o600, None).unwrap();

        // Where only root could have made the link (a root-owned directory nobody else may write),
        // it is followed, as a distribution's own links are.
        if nix::unistd::geteuid().is_root() {
            let anchor = dir.path().join("anchor");
            std::fs::create_dir(&anchor).unwrap();
            std::fs::set_permissions(&anchor, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::symlink(&sbin, anchor.join("local")).unwrap();
            write_file(&anchor.join("local/mttrly-agent"), b"root's copy", 0o755).unwrap();
            assert_eq!(std::fs::read(sbin.join("mttrly-agent")).unwrap(), b"root's copy");
        }
    }
}
