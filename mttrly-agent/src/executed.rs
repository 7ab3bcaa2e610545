//! The agent's memory of the actions it has executed, so no action id ever runs twice here, even
//! if central (or an attacker replaying a stream) sends it again.
//!
//! One id per line in `STATE_DIR/executed-actions`, appended and fsynced *before* the action runs:
//! a crash between the write and the run loses that run, it never repeats it.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::AgentError;

/// How many ids the agent reports back in `Hello`.
const REPORTED: usize = 1000;

/// The executed-action ledger.
pub struct Executed {
    path: PathBuf,
    inner: Mutex<(HashSet<String>, Vec<String>)>,
}

impl Executed {
    /// Loads the ledger from `state_dir` (empty when there is none yet).
    pub fn load(state_dir: &Path) -> Result<Self, AgentError> {
        let path = state_dir.join("executed-actions");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(AgentError::State { what: "cannot read", path: path.display().to_string(), source });
            }
        };
        let order: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        let set = order.iter().cloned().collect();
        Ok(Self { path, inner: Mutex::new((set, order)) })
    }

    /// Records `id` as executed; returns `false` (and records nothing) when it already was.
    pub fn claim(&self, id: &str) -> Result<bool, AgentError> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.0.contains(id) {
            return Ok(false);
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let write = |source| AgentError::State {
            what: "cannot record an executed action in",
            path: self.path.display().to_string(),
            source,
        };
        let mut file = options.open(&self.path).map_err(write)?;
        file.write_all(format!("{id}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(write)?;
        inner.0.insert(id.to_owned());
        inner.1.push(id.to_owned());
        Ok(true)
    }

    /// The most recent executed ids, for `Hello`.
    pub fn recent(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let skip = inner.1.len().saturating_sub(REPORTED);
        inner.1[skip..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_claimed_once_even_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Executed::load(dir.path()).unwrap();
        assert!(ledger.claim("act_1").unwrap());
        assert!(!ledger.claim("act_1").unwrap());
        let reloaded = Executed::load(dir.path()).unwrap();
        assert!(!reloaded.claim("act_1").unwrap());
        assert!(reloaded.claim("act_2").unwrap());
        assert_eq!(reloaded.recent(), ["act_1", "act_2"]);
    }
}
