//! `mttrly-agent update-watchdog`: a small child started from the *old* binary before the agent
//! replaces itself with a new version. If that version neither commits nor rolls back by the
//! deadline (it hangs), the watchdog kills it, and the service manager starts `current` (still
//! the old version), which rolls the update back. It exits as soon as the update is settled or the
//! process it watches is gone.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::files::Versions;

/// Past the new version's own deadline, so its own rollback goes first.
const GRACE_MS: i64 = 2_000;

/// How often it looks.
const POLL: Duration = Duration::from_millis(100);

/// Starts the watchdog for `action_id` over this process, from `binary`.
pub fn spawn(binary: &Path, versions_dir: &Path, action_id: &str) -> std::io::Result<i32> {
    let child = std::process::Command::new(binary)
        .arg("update-watchdog")
        .arg("--versions-dir")
        .arg(versions_dir)
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg("--action")
        .arg(action_id)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    i32::try_from(child.id()).map_err(std::io::Error::other)
}

/// The watchdog's loop (blocking). Returns whether it had to kill.
pub fn watch(versions_dir: &Path, pid: i32, action_id: &str) -> bool {
    let versions = Versions::new(versions_dir.to_path_buf());
    let pid = Pid::from_raw(pid);
    loop {
        std::thread::sleep(POLL);
        let marker = match versions.marker() {
            Ok(Some(m)) if m.action_id == action_id => m,
            // Settled (committed or rolled back), or unreadable: nothing to watch.
            _ => return false,
        };
        if kill(pid, None).is_err() {
            return false;
        }
        if jiff::Timestamp::now().as_millisecond() > marker.deadline_unix_ms + GRACE_MS {
            tracing::warn!(pid = pid.as_raw(), "the new version passed its deadline without committing; killing it");
            let _ = kill(pid, Signal::SIGKILL);
            return true;
        }
    }
}
