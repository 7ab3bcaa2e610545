//! Opening an allowed path without giving a swap a chance to escape, and judging the descriptor
//! that was really opened (not the name that was checked).

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::io::AsRawFd as _;
use std::path::Path;

use super::Allowed;
use crate::error::{ErrorCode, MttrlyError};

/// `O_NOFOLLOW`, for callers creating files next to an allowed one.
pub const NOFOLLOW: i32 = libc::O_NOFOLLOW;

fn denied(message: impl Into<String>, path: &Path) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message).with_detail("path", disp(path))
}

/// A path as it may be shown: names on disk can hold anything, messages must not.
fn disp(path: &Path) -> String {
    super::path::shown(&path.to_string_lossy())
}

/// What a file is, for a refusal's reason; `None` for a regular file.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    let kinds: [(bool, &'static str); 6] = [
        (t.is_symlink(), "a symlink (it changed after it was resolved)"),
        (t.is_dir(), "a directory"),
        (t.is_fifo(), "a FIFO (named pipe)"),
        (t.is_socket(), "a Unix socket"),
        (t.is_char_device(), "a character device"),
        (t.is_block_device(), "a block device"),
    ];
    if t.is_file() {
        return None;
    }
    Some(kinds.iter().find(|(is, _)| *is).map_or("not a regular file", |(_, what)| *what))
}

/// The checks every file mttrly reads or changes must pass, on its metadata: a regular file (not
/// a FIFO, socket, device, directory or symlink), and exactly one name unless the owner's
/// `hardlink_roots` allow more for it. A second hard link under an allowlisted root is another
/// name for a file from anywhere on the same file system (`/etc/shadow`), so the allowlist of
/// names says nothing about it.
pub fn check_kind(meta: &Metadata, allowed: &Allowed) -> Result<(), MttrlyError> {
    let path = &allowed.path;
    if let Some(what) = not_regular(meta) {
        return Err(denied(
            format!(
                "`{}` is {what}: only regular files are read (FIFOs, sockets, devices and directories are refused)",
                disp(path)
            ),
            path,
        ));
    }
    match meta.nlink() {
        1 => Ok(()),
        0 => Err(denied(format!("`{}` was deleted while it was being opened", disp(path)), path)),
        _ if allowed.hard_links_allowed => Ok(()),
        n => Err(denied(
            format!(
                "`{}` has {n} hard links: another name for it may be a file outside the allowlist, so it is refused \
                 (the owner's policy can allow multiply-linked files under `hardlink_roots`)",
                disp(path)
            ),
            path,
        )),
    }
}

/// Opens `allowed` for reading. The name is first taken as a bare handle (`O_PATH`, final symlink
/// not followed), so nothing that is not a regular file is ever opened: a FIFO cannot block and a
/// device sees no `open`. The handle's metadata must pass [`check_kind`], then the file is opened
/// through the handle (the same inode, whatever the name points to by then), checked again, and
/// the descriptor must still be the file at the resolved path (so a directory swapped for a
/// symlink between the check and the open is caught).
pub fn open_checked(allowed: &Allowed) -> Result<(File, Metadata), MttrlyError> {
    let path = &allowed.path;
    let handle =
        OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_NOFOLLOW).open(path).map_err(|e| match e
            .kind()
        {
            std::io::ErrorKind::NotFound => {
                MttrlyError::new(ErrorCode::NotFound, format!("`{}` does not exist", disp(path)))
                    .with_detail("path", disp(path))
            }
            _ => denied(format!("cannot open `{}`: {}", disp(path), super::resolve::reason(&e)), path),
        })?;
    let first = handle.metadata().map_err(|e| denied(format!("cannot stat `{}`: {e}", disp(path)), path))?;
    check_kind(&first, allowed)?;
    // Fail closed: without /proc the handle cannot be reopened or its name checked.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .map_err(|e| {
            denied(format!("cannot open `{}` through its checked handle (/proc: {e}): refused", disp(path)), path)
        })?;
    drop(handle);
    let meta = file.metadata().map_err(|e| denied(format!("cannot stat `{}`: {e}", disp(path)), path))?;
    if meta.dev() != first.dev() || meta.ino() != first.ino() {
        return Err(denied(format!("`{}` was replaced while it was being opened", disp(path)), path));
    }
    check_kind(&meta, allowed)?;
    still_the_same(&file, &meta, path)?;
    Ok((file, meta))
}

/// The descriptor is the file at `path` right now: same device and inode, and the kernel's name
/// for the descriptor is `path`.
fn still_the_same(file: &File, meta: &Metadata, path: &Path) -> Result<(), MttrlyError> {
    let now = std::fs::symlink_metadata(path).map_err(|e| denied(format!("`{}` changed: {e}", disp(path)), path))?;
    if now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(denied(format!("`{}` was replaced while it was being opened", disp(path)), path));
    }
    // Fail closed: without /proc the descriptor's name cannot be checked, so nothing is read.
    let name = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|e| {
        denied(format!("cannot verify what `{}` resolves to once open (/proc: {e}): refused", disp(path)), path)
    })?;
    if name != path {
        return Err(denied(
            format!("`{}` resolves elsewhere once open (`{}`): refused", disp(path), disp(&name)),
            path,
        ));
    }
    Ok(())
}
