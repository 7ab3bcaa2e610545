//! The server owner's local policy file: the last word on what this agent will do.
//!
//! The document is [`mttrly_core::policy::PolicyFile`] (shared with `mttrly-cli policy
//! check-path`); this wrapper adds what only the running agent needs: the file's hash (reported to
//! central in `Hello`), the resolved run-as user and the compiled file rules.

use std::ops::Deref;
use std::path::Path;

use mttrly_core::files::FileRules;
use mttrly_core::policy::PolicyFile;
use mttrly_proto::agent::v1::PolicySummary;
use sha2::{Digest, Sha256};

use crate::AgentError;

/// The local policy, loaded.
#[derive(Debug, Clone)]
pub struct LocalPolicy {
    doc: PolicyFile,
    files: std::sync::Arc<FileRules>,
    playbooks: mttrly_core::playbook::Catalog,
    sha256: String,
    run_as_ids: Option<(u32, u32)>,
}

impl Default for LocalPolicy {
    fn default() -> Self {
        let doc = PolicyFile::default();
        // The default rules are constants that compile; an error here would be a bug.
        let files = doc.file_rules().unwrap_or_else(|_| {
            FileRules::new(mttrly_core::files::FilePolicy { file_roots: Vec::new(), ..Default::default() })
                .unwrap_or_else(|e| panic!("empty file rules compile: {e}"))
        });
        Self {
            doc,
            files: std::sync::Arc::new(files),
            playbooks: mttrly_core::playbook::Catalog::built_in(),
            sha256: String::new(),
            run_as_ids: None,
        }
    }
}

impl Deref for LocalPolicy {
    type Target = PolicyFile;

    fn deref(&self) -> &PolicyFile {
        &self.doc
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
        let invalid =
            |reason: String| AgentError::Invalid { what: "policy file", path: path.display().to_string(), reason };
        let doc = PolicyFile::parse(&text, path).map_err(|e| invalid(e.message().to_owned()))?;
        let files = std::sync::Arc::new(doc.file_rules().map_err(|e| invalid(e.message().to_owned()))?);
        let playbooks = doc.playbook_catalog().map_err(|e| invalid(e.message().to_owned()))?;
        let run_as_ids = match &doc.run_as_user {
            Some(name) => {
                let user = nix::unistd::User::from_name(name)
                    .ok()
                    .flatten()
                    .ok_or_else(|| invalid(format!("run_as_user `{name}` does not exist on this host")))?;
                Some((user.uid.as_raw(), user.gid.as_raw()))
            }
            None => None,
        };
        Ok(Self { doc, files, playbooks, sha256: hex::encode(Sha256::digest(text.as_bytes())), run_as_ids })
    }

    /// The uid and gid commands run as, when the policy names a user.
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as_ids
    }

    /// The compiled file rules (shared with the blocking tasks that use them).
    pub fn files(&self) -> &std::sync::Arc<FileRules> {
        &self.files
    }

    /// The playbooks this agent offers.
    pub fn playbooks(&self) -> &mttrly_core::playbook::Catalog {
        &self.playbooks
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
        std::fs::write(&file, "file_roots = [\"relative/*.log\"]\n").unwrap();
        let err = LocalPolicy::load(&file).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
        assert!(LocalPolicy::load(&dir.path().join("missing.toml")).is_err());
    }
}
