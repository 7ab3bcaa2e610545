//! The server owner's local policy file: the last word on what this agent will do.
//!
//! For now the agent reports its summary to central in `Hello`; the capabilities that consult it
//! (commands, files, playbooks) enforce it as they land.

use std::path::Path;

use mttrly_proto::agent::v1::PolicySummary;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AgentError;

/// The local policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalPolicy {
    /// Whether shell commands may run at all.
    pub commands_enabled: bool,
    /// Playbooks the owner allows; empty means every built-in playbook.
    pub allowed_playbooks: Vec<String>,
    /// Globs of files the agent may read.
    pub file_roots: Vec<String>,
    /// Whether the privileged file allowlist is on.
    pub privileged_files_enabled: bool,
    /// The user commands run as (the agent must run as root to switch); the agent's own user when
    /// absent.
    pub run_as_user: Option<String>,
    /// The most output lines one command may return.
    pub max_output_lines: usize,
    #[serde(skip)]
    sha256: String,
    #[serde(skip)]
    run_as_ids: Option<(u32, u32)>,
}

impl Default for LocalPolicy {
    fn default() -> Self {
        Self {
            commands_enabled: true,
            allowed_playbooks: Vec::new(),
            file_roots: vec!["/var/log/**".to_owned()],
            privileged_files_enabled: false,
            run_as_user: None,
            max_output_lines: 500,
            sha256: String::new(),
            run_as_ids: None,
        }
    }
}

impl LocalPolicy {
    /// Reads a TOML policy file; unknown keys are refused so a typo never widens nothing silently.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::State {
            what: "cannot read policy file",
            path: path.display().to_string(),
            source,
        })?;
        let mut policy: Self = toml::from_str(&text).map_err(|e| AgentError::Invalid {
            what: "policy file",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        policy.sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        if let Some(name) = &policy.run_as_user {
            let user = nix::unistd::User::from_name(name).ok().flatten().ok_or_else(|| AgentError::Invalid {
                what: "policy file",
                path: path.display().to_string(),
                reason: format!("run_as_user `{name}` does not exist on this host"),
            })?;
            policy.run_as_ids = Some((user.uid.as_raw(), user.gid.as_raw()));
        }
        if !(1..=100_000).contains(&policy.max_output_lines) {
            return Err(AgentError::Invalid {
                what: "policy file",
                path: path.display().to_string(),
                reason: "max_output_lines must be between 1 and 100000".to_owned(),
            });
        }
        Ok(policy)
    }

    /// The uid and gid commands run as, when the policy names a user.
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as_ids
    }

    /// The summary sent in `Hello`.
    pub fn summary(&self) -> PolicySummary {
        PolicySummary {
            commands_enabled: self.commands_enabled,
            allowed_playbooks: self.allowed_playbooks.clone(),
            file_roots: self.file_roots.clone(),
            privileged_files_enabled: self.privileged_files_enabled,
            policy_sha256: self.sha256.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_are_strict() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, "commands_enabled = false\nfile_roots = [\"/srv/app/logs/*.log\"]\n").unwrap();
        let policy = LocalPolicy::load(&file).unwrap();
        assert!(!policy.commands_enabled);
        assert_eq!(policy.summary().policy_sha256.len(), 64);
        std::fs::write(&file, "comands_enabled = false\n").unwrap();
        let err = LocalPolicy::load(&file).unwrap_err();
        assert!(err.to_string().contains("comands_enabled"), "{err}");
        assert!(LocalPolicy::load(&dir.path().join("missing.toml")).is_err());
    }
}
