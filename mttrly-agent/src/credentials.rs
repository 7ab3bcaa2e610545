//! The agent's credentials on disk: one JSON file, mode 0600, in a 0700 state directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AgentError;

/// What enrollment gives the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The server this agent is.
    pub server_id: String,
    /// The secret for the stream. Never logged.
    pub agent_secret: String,
    /// Central's gRPC URL.
    pub central_url: String,
    /// Central's CA certificate (PEM), pinned at enrollment, for `https://` centrals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_pem: Option<String>,
}

const FILE: &str = "credentials.json";

/// The credentials file inside `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl Credentials {
    /// Reads the credentials, if the agent is enrolled.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, AgentError> {
        let file = path(state_dir);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AgentError::State { what: "cannot read", path: file.display().to_string(), source });
            }
        };
        serde_json::from_str(&text).map(Some).map_err(|source| AgentError::Json {
            what: "credentials file",
            path: file.display().to_string(),
            source,
        })
    }

    /// Writes the credentials atomically (temp file, fsync, rename) with mode 0600.
    pub fn save(&self, state_dir: &Path) -> Result<(), AgentError> {
        let state_err = |what, path: &Path| {
            let path = path.display().to_string();
            move |source| AgentError::State { what, path, source }
        };
        std::fs::create_dir_all(state_dir).map_err(state_err("cannot create", state_dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(state_err("cannot restrict", state_dir))?;
        }
        let final_path = path(state_dir);
        let tmp = state_dir.join(format!("{FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(state_err("cannot write", &tmp))?;
        let body = serde_json::to_vec_pretty(self).map_err(|source| AgentError::Json {
            what: "credentials",
            path: tmp.display().to_string(),
            source,
        })?;
        file.write_all(&body).and_then(|()| file.sync_all()).map_err(state_err("cannot write", &tmp))?;
        std::fs::rename(&tmp, &final_path).map_err(state_err("cannot replace", &final_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let creds = Credentials {
            server_id: "srv_x".into(),
            agent_secret: "s".into(),
            central_url: "http://c".into(),
            ca_certificate_pem: None,
        };
        creds.save(&state).unwrap();
        assert_eq!(Credentials::load(&state).unwrap(), Some(creds));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(&state)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        assert_eq!(Credentials::load(&dir.path().join("none")).unwrap(), None);
        std::fs::write(path(&state), "{").unwrap();
        assert!(Credentials::load(&state).is_err());
    }
}
