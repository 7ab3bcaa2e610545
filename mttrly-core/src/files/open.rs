//! Opening an allowed path without giving a swap a chance to escape.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use super::Allowed;
use crate::error::{ErrorCode, MttrlyError};

/// `O_NOFOLLOW`, for callers creating files next to an allowed one.
pub const NOFOLLOW: i32 = libc::O_NOFOLLOW;

fn denied(message: impl Into<String>, path: &Path) -> MttrlyError {
    MttrlyError::new(ErrorCode::PolicyDenied, message).with_detail("path", path.display().to_string())
}

/// Opens `allowed` for reading: the final component is not followed if it became a symlink,
/// a FIFO does not block (`O_NONBLOCK`), anything but a regular file is refused, and the open
/// descriptor must still name the resolved path (so a directory swapped for a symlink between
/// the check and the open is caught).
pub fn open_checked(allowed: &Allowed) -> Result<(File, Metadata), MttrlyError> {
    let path = &allowed.path;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                MttrlyError::new(ErrorCode::NotFound, format!("`{}` does not exist", path.display()))
            }
            _ if e.raw_os_error() == Some(libc::ELOOP) => {
                denied(format!("`{}` became a symlink after it was checked", path.display()), path)
            }
            _ => denied(format!("cannot open `{}`: {e}", path.display()), path),
        })?;
    let meta = file.metadata().map_err(|e| denied(format!("cannot stat `{}`: {e}", path.display()), path))?;
    if !meta.file_type().is_file() {
        return Err(denied(
            format!("`{}` is not a regular file (FIFOs, sockets, devices and directories are refused)", path.display()),
            path,
        ));
    }
    still_the_same(&file, &meta, path)?;
    Ok((file, meta))
}

/// The descriptor is the file at `path` right now: same device and inode, and (where /proc is
/// mounted) the kernel's name for the descriptor is `path`.
fn still_the_same(file: &File, meta: &Metadata, path: &Path) -> Result<(), MttrlyError> {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::io::AsRawFd as _;
    let now =
        std::fs::symlink_metadata(path).map_err(|e| denied(format!("`{}` changed: {e}", path.display()), path))?;
    if now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(denied(format!("`{}` was replaced while it was being opened", path.display()), path));
    }
    // Fail closed: without /proc the descriptor's name cannot be checked, so nothing is read.
    let name = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|e| {
        denied(format!("cannot verify what `{}` resolves to once open (/proc: {e}): refused", path.display()), path)
    })?;
    if name != path {
        return Err(denied(
            format!("`{}` resolves elsewhere once open (`{}`): refused", path.display(), name.display()),
            path,
        ));
    }
    Ok(())
}
