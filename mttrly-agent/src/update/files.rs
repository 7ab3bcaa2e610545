//! The update's files in the versions directory, each written to a temporary name, fsynced and
//! renamed, so a `kill -9` at any instant leaves either the old or the new file, never half of one:
//!
//! - `update.json`, the **marker**: an update is under way (action, from, to, deadline, watchdog).
//!   Written after the new version is staged and before the restart; removed by whoever settles it.
//! - `last-update.json`: how the last update ended (committed or rolled back, and why), which the
//!   agent reports to central after its restart.
//! - `skipped.json`: versions that failed their self-test here and are never staged again.
//! - `current`: the symlink systemd starts through, swapped by rename.

use std::path::{Path, PathBuf};

use mttrly_core::tools::updates::UpdateState;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::install::layout::CURRENT;

/// An update under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// The update action.
    pub action_id: String,
    /// The version updated from.
    pub from_version: String,
    /// Its directory's name in the versions directory (what a rollback executes).
    pub from_dir: String,
    /// The version updated to (also its directory's name).
    pub to_version: String,
    /// When the new version must have committed, Unix milliseconds.
    pub deadline_unix_ms: i64,
    /// The watchdog process, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog_pid: Option<i32>,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settled {
    /// The update action.
    pub action_id: String,
    /// From.
    pub from_version: String,
    /// To.
    pub to_version: String,
    /// `Committed` or `RolledBack`.
    pub state: UpdateState,
    /// Why it rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, for a human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When, Unix milliseconds.
    pub at_unix_ms: i64,
}

/// The versions directory and its bookkeeping files.
#[derive(Debug, Clone)]
pub struct Versions {
    dir: PathBuf,
}

impl Versions {
    /// The versions directory `dir` (`Layout::versions_dir`).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn marker_path(&self) -> PathBuf {
        self.dir.join("update.json")
    }

    fn settled_path(&self) -> PathBuf {
        self.dir.join("last-update.json")
    }

    fn skipped_path(&self) -> PathBuf {
        self.dir.join("skipped.json")
    }

    /// The marker, if an update is under way.
    pub fn marker(&self) -> std::io::Result<Option<Marker>> {
        read_json(&self.marker_path())
    }

    /// Writes the marker.
    pub fn set_marker(&self, marker: &Marker) -> std::io::Result<()> {
        write_json(&self.marker_path(), marker)
    }

    /// Removes the marker (the update is settled).
    pub fn clear_marker(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.marker_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => sync_dir(&self.dir),
        }
    }

    /// How the last update ended.
    pub fn settled(&self) -> std::io::Result<Option<Settled>> {
        read_json(&self.settled_path())
    }

    /// Records how an update ended.
    pub fn set_settled(&self, settled: &Settled) -> std::io::Result<()> {
        write_json(&self.settled_path(), settled)
    }

    /// Versions that failed here.
    pub fn skipped(&self) -> std::io::Result<Vec<String>> {
        Ok(read_json(&self.skipped_path())?.unwrap_or_default())
    }

    /// Marks `version` skipped.
    pub fn skip(&self, version: &str) -> std::io::Result<()> {
        let mut skipped = self.skipped()?;
        if !skipped.iter().any(|v| v == version) {
            skipped.push(version.to_owned());
            write_json(&self.skipped_path(), &skipped)?;
        }
        Ok(())
    }

    /// The directory name `current` points at.
    pub fn current(&self) -> std::io::Result<String> {
        let target = std::fs::read_link(self.dir.join(CURRENT))?;
        target.file_name().and_then(|n| n.to_str()).map(str::to_owned).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "the current link does not name a version directory")
        })
    }

    /// Points `current` at `version_dir` (a name in this directory) by renaming a fresh relative
    /// symlink over it: at every instant `current` names a complete version.
    pub fn swap_current(&self, version_dir: &str) -> std::io::Result<()> {
        let temp = self.dir.join(".current.new");
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(version_dir, &temp)?;
        std::fs::rename(&temp, self.dir.join(CURRENT))?;
        sync_dir(&self.dir)
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `value` as JSON to `path` through a temporary file, fsynced, renamed, directory synced.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (mode 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.new"));
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    sync_dir(dir)
}

/// Fsyncs a directory, so a rename in it survives a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_settled_skipped_and_current_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let versions = Versions::new(dir.path().to_path_buf());
        assert_eq!(versions.marker().unwrap(), None);
        let marker = Marker {
            action_id: "act_1".into(),
            from_version: "0.1.0".into(),
            from_dir: "0.1.0".into(),
            to_version: "99.0.0".into(),
            deadline_unix_ms: 5,
            watchdog_pid: Some(7),
        };
        versions.set_marker(&marker).unwrap();
        assert_eq!(versions.marker().unwrap(), Some(marker));
        versions.clear_marker().unwrap();
        versions.clear_marker().unwrap();
        assert_eq!(versions.marker().unwrap(), None);
        versions.skip("99.0.0").unwrap();
        versions.skip("99.0.0").unwrap();
        assert_eq!(versions.skipped().unwrap(), vec!["99.0.0".to_owned()]);
        std::fs::create_dir(dir.path().join("0.1.0")).unwrap();
        std::fs::create_dir(dir.path().join("99.0.0")).unwrap();
        versions.swap_current("0.1.0").unwrap();
        assert_eq!(versions.current().unwrap(), "0.1.0");
        versions.swap_current("99.0.0").unwrap();
        assert_eq!(versions.current().unwrap(), "99.0.0");
        assert_eq!(std::fs::read_link(dir.path().join("current")).unwrap(), Path::new("99.0.0"));
    }
}
