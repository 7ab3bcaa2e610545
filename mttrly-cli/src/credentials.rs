//! The credentials file `mttrly-cli login` writes and every command reads when no token is given:
//! `$XDG_CONFIG_HOME/mttrly/credentials.toml`, else `~/.config/mttrly/credentials.toml`.
//!
//! ```toml
//! central = "https://central.example:50051"
//! token = "mttrly_h_…"
//! token_id = "tkn_…"      # what `logout` revokes
//! user = "bob"
//! ca_cert = "/etc/mttrly/ca.pem"   # only for an https:// central, as given to `login`
//! ```
//!
//! The file holds a bearer token, so it is created `0600` in a `0700` directory and replaced
//! atomically (a temporary file beside it, flushed, then renamed): a reader sees the old file or
//! the new one, never half of one, and the token is never readable by anyone else, not even for
//! the moment between creation and a `chmod`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// Central's gRPC URL the token belongs to.
    pub(crate) central: String,
    /// The human token.
    pub(crate) token: String,
    /// The token's public id (`tkn_…`), so `logout` can revoke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_id: Option<String>,
    /// Whose token it is, as central said at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    /// Central's CA certificate given to `login` (absolute), for an `https://` central.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_cert: Option<PathBuf>,
}

/// Where the token a command uses came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `--token`.
    Flag,
    /// `MTTRLY_TOKEN`.
    Env,
    /// The credentials file `login` wrote.
    File(PathBuf),
    /// Nowhere: the call will be refused, with a hint to log in.
    Nowhere,
}

impl TokenSource {
    /// The stable name `whoami --output json` prints.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Env => "env",
            Self::File(_) => "credentials_file",
            Self::Nowhere => "none",
        }
    }

    /// The sentence `whoami` prints.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Flag => "--token".to_owned(),
            Self::Env => "MTTRLY_TOKEN".to_owned(),
            Self::File(path) => path.display().to_string(),
            Self::Nowhere => "nowhere".to_owned(),
        }
    }
}

/// What a remote command connects with: the central, the token, and where the token came from.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Central's gRPC URL.
    pub(crate) central: String,
    /// The token, if any.
    pub(crate) token: Option<String>,
    /// Where it came from.
    pub(crate) source: TokenSource,
    /// The CA certificate: the one given, else the file's when its central is used.
    pub(crate) ca_cert: Option<PathBuf>,
}

/// The caller: `token` (from `--token` or `MTTRLY_TOKEN`, as `from_env` says) when given, else
/// the credentials file's; `central` unless it is only clap's default (`central_defaulted`),
/// else the credentials file's (with its CA certificate, unless one is given). The file is read
/// only when one of them is missing.
pub(crate) fn caller(
    central: &str,
    central_defaulted: bool,
    token: Option<String>,
    from_env: bool,
    ca_cert: Option<&Path>,
) -> Result<Caller, MttrlyError> {
    let stored = if token.is_none() || central_defaulted {
        match path() {
            Some(path) => load(&path)?.map(|stored| (path, stored)),
            None => None,
        }
    } else {
        None
    };
    let (central, ca_cert) = match (&stored, central_defaulted) {
        (Some((_, s)), true) => (s.central.clone(), ca_cert.map(Path::to_owned).or_else(|| s.ca_cert.clone())),
        _ => (central.to_owned(), ca_cert.map(Path::to_owned)),
    };
    let (token, source) = match (token, stored) {
        (Some(token), _) => (Some(token), if from_env { TokenSource::Env } else { TokenSource::Flag }),
        // The saved token belongs to the central it was issued by: sent to another one (a
        // `--central` flag, a stale `MTTRLY_CENTRAL`), it would hand that central's operator, or
        // anyone on the path, a full human token for the first.
        (None, Some((_, stored))) if !same_central(&stored.central, &central) => {
            return Err(MttrlyError::new(
                ErrorCode::AuthFailed,
                format!(
                    "your saved login is for {}, not {central}: run `mttrly-cli login --central {central}`, \
                     or pass --token",
                    stored.central
                ),
            ));
        }
        (None, Some((path, stored))) => (Some(stored.token), TokenSource::File(path)),
        (None, None) => (None, TokenSource::Nowhere),
    };
    Ok(Caller { central, token, source, ca_cert })
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("cannot {what} {}: {e}", path.display()))
        .with_detail("credentials_file", path.display().to_string())
}

/// Where the file lives, from the environment (`None` when neither `XDG_CONFIG_HOME` nor `HOME`
/// names an absolute directory).
pub(crate) fn path() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let config = absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|home| home.join(".config")))?;
    Some(config.join("mttrly").join("credentials.toml"))
}

/// The stored credentials, if the file exists. A file others may read is still used, with a
/// warning, since refusing it would only lock its owner out.
pub(crate) fn load(path: &Path) -> Result<Option<Stored>, MttrlyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path, &e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: {} holds a token and others may read it; run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    toml::from_str(&text).map(Some).map_err(|e| {
        MttrlyError::new(
            ErrorCode::ValidationError,
            format!("{} is not a credentials file mttrly-cli can read: {}", path.display(), e.message()),
        )
        .with_detail("credentials_file", path.display().to_string())
        .with_detail("hint", "run `mttrly-cli logout` to remove it, then `mttrly-cli login`")
    })
}

/// Writes `stored` to `path` atomically, `0600` in a `0700` directory.
pub(crate) fn save(path: &Path, stored: &Stored) -> Result<(), MttrlyError> {
    let dir = path
        .parent()
        .ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, format!("{} has no directory", path.display())))?;
    create_private_dir(dir)?;
    let text = toml::to_string(stored)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot encode the credentials: {e}")))?;
    let temp = dir.join(format!(".credentials.toml.{}.tmp", std::process::id()));
    let written = write_private(&temp, text.as_bytes())
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| io_error("replace", path, &e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    // The rename is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the file; `false` if there was none.
pub(crate) fn remove(path: &Path) -> Result<bool, MttrlyError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("remove", path, &e)),
    }
}

/// Creates `dir` (and its parents); `dir` itself ends up `0700`.
fn create_private_dir(dir: &Path) -> Result<(), MttrlyError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error("restrict", dir, &e))?;
    }
    Ok(())
}

/// Creates `path` new (never follows or reuses an existing file), `0600` from the first byte,
/// writes `bytes` and flushes them to disk.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), MttrlyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_error("create", path, &e))?;
    file.write_all(bytes).map_err(|e| io_error("write", path, &e))?;
    file.sync_all().map_err(|e| io_error("flush", path, &e))
}

/// Whether two central URLs name the same central (scheme, host and port; case and a trailing
/// slash do not matter).
fn same_central(a: &str, b: &str) -> bool {
    let norm = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Stored {
        Stored {
            central: "http://127.0.0.1:50051".into(),
            token: "mttrly_h_secret".into(),
            token_id: Some("tkn_1".into()),
            user: Some("bob".into()),
            ca_cert: None,
        }
    }

    #[test]
    fn saved_credentials_are_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join("mttrly").join("credentials.toml");
        save(&path, &stored()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(stored()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // Replaced, not appended; no temporary file left behind.
        let other = Stored { user: None, token_id: None, ..stored() };
        save(&path, &other).unwrap();
        assert_eq!(load(&path).unwrap(), Some(other));
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("credentials.toml")]);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(load(&path).unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.toml");
        std::fs::write(&path, "central = 1\n").unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationError);
        assert!(err.message().contains("credentials.toml"), "{}", err.message());
    }
}
