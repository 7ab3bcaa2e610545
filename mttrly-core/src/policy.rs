//! The server owner's local policy file, as data: what an agent will do on its host whatever
//! central asks. The agent enforces it; `mttrly-cli policy check-path --policy FILE` reads the same
//! file to try it before rolling it out.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, MttrlyError};
use crate::files::{FilePolicy, FileRules};

/// The policy file (TOML). Unknown keys are refused, so a typo never silently keeps a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools, reason = "an owner's policy file is a set of independent switches")]
pub struct PolicyFile {
    /// Whether shell commands may run at all.
    pub commands_enabled: bool,
    /// Playbooks the owner allows; empty means every built-in playbook.
    pub allowed_playbooks: Vec<String>,
    /// Globs of files the agent may read (`*` within a directory, `**` across).
    pub file_roots: Vec<String>,
    /// Whether the privileged file allowlist is on.
    pub privileged_files_enabled: bool,
    /// Globs of the privileged allowlist (sudoers overrides, authorized_keys, ...).
    pub privileged_files: Vec<String>,
    /// Globs of managed files (readable; writable and removable only with approval).
    pub managed_files: Vec<String>,
    /// Managed env files by name (`app = "/srv/app/.env"`), read with values redacted.
    pub env_files: std::collections::BTreeMap<String, String>,
    /// Globs of files that may have more than one hard link. Empty by default: a hard link under
    /// an allowlisted root is another name for a file that may live anywhere on the same file
    /// system (`/etc/shadow`), so every read, search, diff and managed write refuses a file with
    /// `st_nlink > 1` unless it matches here.
    pub hardlink_roots: Vec<String>,
    /// The user commands run as (the agent must run as root to switch); the agent's own user when
    /// absent.
    pub run_as_user: Option<String>,
    /// The most output lines one command may return.
    pub max_output_lines: usize,
    /// A directory of the owner's own playbook definitions (`*.toml`), added to the built-ins.
    pub playbooks_dir: Option<String>,
    /// Whether mttrly's own read-only probes (diagnostics, service discovery) may run.
    pub diagnostics_enabled: bool,
    /// Managed scripts by name (`rotate-keys = "/opt/ops/rotate-keys.sh"`): the only scripts
    /// `mttrly_execute_script` may run by name (always with a human's approval).
    pub managed_scripts: std::collections::BTreeMap<String, String>,
    /// `[deploys.SERVICE]`: what marks a release of each service (watched paths, its unit), its
    /// log and its healthcheck, for deploy detection and the deploy verifier. Empty: nothing is
    /// watched and nothing is probed.
    pub deploys: std::collections::BTreeMap<String, crate::deploys::ServiceDeploys>,
    /// How often the watched release paths and units are checked, in seconds (1 to 3600).
    pub deploy_watch_seconds: u64,
    /// Whether the proactive detectors judge this host's metrics (anomaly events to central).
    pub proactive_detectors: bool,
    /// Heartbeats in a row both detectors must agree before an event is raised (1 to 60).
    pub proactive_persist_intervals: u32,
    /// Linux capabilities the installed service keeps (`CAP_NET_BIND_SERVICE`, ...): the
    /// installer writes them as the unit's `CapabilityBoundingSet=` and `AmbientCapabilities=`.
    /// Empty by default: the agent runs with none.
    pub service_capabilities: Vec<String>,
    /// `[compare]`: whether source-to-dist comparisons run here and their largest caps.
    pub compare: crate::tools::files::ComparePolicy,
    /// `[updates]`: the release root keys this host trusts besides those compiled into the agent
    /// (`trusted_root_keys = ["ed25519:<base64>"]`). Only the owner, who writes this root-owned
    /// file, can add a root: the agent never can.
    pub updates: crate::release::UpdatesPolicy,
}

impl Default for PolicyFile {
    fn default() -> Self {
        let files = FilePolicy::default();
        Self {
            commands_enabled: true,
            allowed_playbooks: Vec::new(),
            file_roots: files.file_roots,
            privileged_files_enabled: files.privileged_files_enabled,
            privileged_files: files.privileged_files,
            managed_files: files.managed_files,
            env_files: files.env_files,
            hardlink_roots: files.hardlink_roots,
            run_as_user: None,
            max_output_lines: 500,
            playbooks_dir: None,
            managed_scripts: std::collections::BTreeMap::new(),
            diagnostics_enabled: true,
            deploys: std::collections::BTreeMap::new(),
            deploy_watch_seconds: 10,
            proactive_detectors: true,
            proactive_persist_intervals: 3,
            service_capabilities: Vec::new(),
            compare: crate::tools::files::ComparePolicy::default(),
            updates: crate::release::UpdatesPolicy::default(),
        }
    }
}

/// `CAP_` then upper-case letters and underscores (what systemd's capability directives take).
fn is_capability_name(name: &str) -> bool {
    name.len() <= 40
        && name
            .strip_prefix("CAP_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, format!("invalid policy file {}: {reason}", path.display()))
        .with_detail("path", path.display().to_string())
}

impl PolicyFile {
    /// Parses and validates policy text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, MttrlyError> {
        let policy: Self = toml::from_str(text).map_err(|e| invalid(path, e))?;
        if !(1..=100_000).contains(&policy.max_output_lines) {
            return Err(invalid(path, "max_output_lines must be between 1 and 100000"));
        }
        policy.file_rules().map_err(|e| invalid(path, e.message()))?;
        policy.playbook_catalog().map_err(|e| invalid(path, e.message()))?;
        if let Some((name, script)) = policy.managed_scripts.iter().find(|(_, p)| !p.starts_with('/')) {
            return Err(invalid(path, format!("managed script `{name}` must be an absolute path, not `{script}`")));
        }
        crate::deploys::validate(&policy.deploys).map_err(|e| invalid(path, e))?;
        if !(1..=3600).contains(&policy.deploy_watch_seconds) {
            return Err(invalid(path, "deploy_watch_seconds must be between 1 and 3600"));
        }
        if !(1..=60).contains(&policy.proactive_persist_intervals) {
            return Err(invalid(path, "proactive_persist_intervals must be between 1 and 60"));
        }
        policy.compare.validate().map_err(|e| invalid(path, e))?;
        if let Some(bad) = policy.service_capabilities.iter().find(|c| !is_capability_name(c)) {
            return Err(invalid(
                path,
                format!("service capability `{bad}` is not a capability name like CAP_NET_BIND_SERVICE"),
            ));
        }
        Ok(policy)
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self, MttrlyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            MttrlyError::new(ErrorCode::ValidationError, format!("cannot read policy file {}: {e}", path.display()))
                .with_detail("path", path.display().to_string())
        })?;
        Self::parse(&text, path)
    }

    /// The file part of the policy.
    pub fn file_policy(&self) -> FilePolicy {
        FilePolicy {
            file_roots: self.file_roots.clone(),
            privileged_files_enabled: self.privileged_files_enabled,
            privileged_files: self.privileged_files.clone(),
            managed_files: self.managed_files.clone(),
            env_files: self.env_files.clone(),
            hardlink_roots: self.hardlink_roots.clone(),
        }
    }

    /// The compiled file rules.
    pub fn file_rules(&self) -> Result<FileRules, MttrlyError> {
        FileRules::new(self.file_policy())
    }

    /// The playbooks this agent offers: the built-ins plus `playbooks_dir`.
    pub fn playbook_catalog(&self) -> Result<crate::playbook::Catalog, MttrlyError> {
        match &self.playbooks_dir {
            Some(dir) => crate::playbook::Catalog::with_dir(Path::new(dir)),
            None => Ok(crate::playbook::Catalog::built_in()),
        }
    }
}
