//! The agent's installation on its host: where it lives ([`layout`]), laying it down and taking
//! it away ([`setup`]), what was laid down ([`receipt`]), the systemd units ([`unit`]), the real
//! host's side (root, user, systemd: [`system`]), and link-safe file operations ([`fsops`]).

pub mod fsops;
pub mod health;
pub mod layout;
pub mod receipt;
pub mod repair;
pub mod setup;
pub mod system;
pub mod unit;

use std::path::Path;

use mttrly_core::{ErrorCode, MttrlyError};

/// Why an install, uninstall, health check or repair failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A file operation failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something unexpected is at a path the installer owns.
    #[error("{path} is {what}")]
    Unexpected {
        /// The path.
        path: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A file's content is invalid.
    #[error("invalid {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A system command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command.
        command: String,
        /// What it said.
        stderr: String,
    },
    /// Installing on the real system needs root.
    #[error(
        "installing on this host needs root (run with sudo), or pass --root DIR to stage an install in a directory"
    )]
    NotRoot,
    /// Nothing was installed here.
    #[error("no install receipt at {0}: nothing was installed here by `mttrly-agent install`")]
    NoReceipt(String),
    /// Enrolling with central failed.
    #[error("cannot enroll with central")]
    Enroll(#[source] Box<crate::AgentError>),
}

/// The `install.health` capability: the report, computed on the blocking pool (it hashes files).
pub async fn install_health(
    layout: &layout::Layout,
    params: mttrly_core::tools::install::InstallHealthParams,
) -> Result<mttrly_core::tools::install::InstallReport, MttrlyError> {
    let layout = layout.clone();
    tokio::task::spawn_blocking(move || health::report(&layout, &params.issue_codes))
        .await
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("the install check failed: {e}")))?
        .map_err(|e| e.to_mttrly())
}

impl InstallError {
    pub(crate) fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { what, path: path.display().to_string(), source }
    }

    /// The seed error central and the assistant see.
    pub fn to_mttrly(&self) -> MttrlyError {
        let code = match self {
            Self::NotRoot => ErrorCode::PolicyDenied,
            Self::NoReceipt(_) => ErrorCode::NotFound,
            Self::Invalid { .. } | Self::Unexpected { .. } => ErrorCode::ValidationError,
            Self::Enroll(e) => match e.as_ref() {
                crate::AgentError::Central(inner) => return inner.clone(),
                _ => ErrorCode::ConnectionError,
            },
            Self::Io { .. } | Self::Command { .. } => ErrorCode::InternalError,
        };
        MttrlyError::new(code, mttrly_core::ErrorChain(self).to_string())
    }
}
