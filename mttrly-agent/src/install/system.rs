//! The real host's side of an install: root, the system user, systemd. Nothing here runs for an
//! install staged under `--root` (the callers check [`Layout::is_system`] first).
//!
//! [`Layout::is_system`]: super::layout::Layout::is_system

use std::path::Path;
use std::process::Command;

use super::InstallError;
use super::layout::SERVICE;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether systemd manages this host (what `sd_booted()` checks).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn run(program: &str, args: &[&str]) -> Result<String, InstallError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| InstallError::io("cannot run", Path::new(program), source))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(InstallError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `systemctl ARGS`, failing with its stderr.
pub fn systemctl(args: &[&str]) -> Result<String, InstallError> {
    run("systemctl", args)
}

/// A unit's `ActiveState` and `NRestarts`, from `systemctl show`.
pub fn unit_state(unit: &str) -> Result<(String, u32), InstallError> {
    let text = systemctl(&["show", unit, "--property=ActiveState,NRestarts"])?;
    let mut active = String::new();
    let mut restarts = 0;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => v.clone_into(&mut active),
            Some(("NRestarts", v)) => restarts = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    Ok((active, restarts))
}

/// The service user's uid and gid, creating it (a system user without a login shell, home the
/// state directory) when absent. Returns whether it was created.
pub fn ensure_user(state_dir: &Path) -> Result<(u32, u32, bool), InstallError> {
    if let Some((uid, gid)) = lookup(SERVICE)? {
        return Ok((uid, gid, false));
    }
    let state = state_dir.display().to_string();
    run(
        "useradd",
        &[
            "--system",
            "--no-create-home",
            "--home-dir",
            &state,
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            SERVICE,
        ],
    )?;
    let (uid, gid) = lookup(SERVICE)?.ok_or_else(|| InstallError::Command {
        command: format!("useradd --system {SERVICE}"),
        stderr: "the user does not exist after useradd".to_owned(),
    })?;
    Ok((uid, gid, true))
}

/// Removes the service user (only when the installer created it).
pub fn remove_user() -> Result<(), InstallError> {
    run("userdel", &[SERVICE]).map(drop)
}

/// A user's uid and gid by name.
pub fn lookup(name: &str) -> Result<Option<(u32, u32)>, InstallError> {
    nix::unistd::User::from_name(name)
        .map(|u| u.map(|u| (u.uid.as_raw(), u.gid.as_raw())))
        .map_err(|e| InstallError::Command { command: format!("getpwnam {name}"), stderr: e.to_string() })
}

/// This process's effective uid and gid: the service user of a staged (`--root`) install.
pub fn invoking_ids() -> (u32, u32) {
    (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
}
