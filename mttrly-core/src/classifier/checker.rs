//! The file checker the agent and `mttrly-cli policy classify` use: the same resolve, allowlist
//! and checked open as `mttrly_read_file` ([`FileRules::open`]: resolved, allowlisted, a regular
//! file with one link, still the resolved path once open), so a file a command may read at once is
//! exactly a file the assistant could read through the file tools.

use std::fs::File;

use super::FileChecker;
use crate::files::{FileAccess, FileRules};

/// A file that passed: the path as given and the descriptor opened by the checked open.
#[derive(Debug)]
pub struct CheckedFile {
    /// The path as it appears in the command.
    pub path: String,
    /// The open file (regular, allowlisted, still the resolved path once open).
    pub file: File,
}

/// Checks files against the host's file rules and keeps each one open, so what runs is what was
/// checked (the agent hands these descriptors to the command instead of the paths).
pub struct RulesChecker<'a> {
    rules: &'a FileRules,
    /// The files that passed, in order, open.
    pub opened: Vec<CheckedFile>,
}

impl<'a> RulesChecker<'a> {
    /// A checker over `rules`.
    pub fn new(rules: &'a FileRules) -> Self {
        Self { rules, opened: Vec::new() }
    }
}

impl FileChecker for RulesChecker<'_> {
    fn check(&mut self, path: &str) -> Result<(), String> {
        let opened = self.rules.open(path, FileAccess::Read).map_err(|e| e.message().to_owned())?;
        // Env files are read only through `mttrly_read_file`, which masks every value by key; a
        // command's output gets the generic redaction only.
        if self.rules.is_env_file(&opened.allowed.path) {
            return Err(format!("`{path}` is a managed env file: read it with mttrly_read_file (values masked)"));
        }
        self.opened.push(CheckedFile { path: path.to_owned(), file: opened.file });
        Ok(())
    }
}
