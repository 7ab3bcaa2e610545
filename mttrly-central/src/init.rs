//! `mttrly-central init`: a data directory with a database, the first account and its admin.

use std::path::Path;

use mttrly_core::ids::{AccountId, UserId};
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Serialize;

use crate::config::Config;
use crate::db::Db;
use crate::secrets::{self, SecretKind};

/// What `init` created. `admin_token` is shown once and never stored in plaintext.
#[derive(Debug, Clone, Serialize)]
pub struct Initialised {
    /// The data directory.
    pub data_dir: String,
    /// The first account.
    pub account_id: AccountId,
    /// Its plan.
    pub plan: mttrly_core::Plan,
    /// The first admin.
    pub admin_user_id: UserId,
    /// The admin's CLI token.
    pub admin_token: String,
    /// SHA-256 of the generated CA certificate, when `--tls` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_sha256: Option<String>,
}

/// Creates the data directory (mode 0700) if needed.
pub fn create_data_dir(path: &Path) -> Result<(), MttrlyError> {
    std::fs::create_dir_all(path).map_err(|e| {
        MttrlyError::new(ErrorCode::InternalError, format!("cannot create data directory {}: {e}", path.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Initialises `config.data_dir`. Refuses a data directory that already has an account, so an
/// accidental second `init` can never mint a second admin. With `tls`, also generates the private
/// CA and server certificate (naming the extra host names given).
pub fn init(config: &Config, tls: Option<&[String]>) -> Result<Initialised, MttrlyError> {
    config.validate()?;
    create_data_dir(&config.data_dir)?;
    let db = Db::open(&config.database_path())
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("{e}: {}", source_text(&e))))?;
    let token = secrets::generate(SecretKind::Human);
    let hash = secrets::hash(&token);
    let plan = config.plan;
    let Some((account_id, admin_user_id)) = db.init(&config.account_name, plan, "admin", &hash)? else {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "{} is already initialised; its admin token was printed when it was created \
                 (create more with `mttrly-cli tokens create --human`)",
                config.data_dir.display()
            ),
        ));
    };
    let tls_ca_sha256 = match tls {
        Some(names) => Some(crate::tls::generate(&config.data_dir, names)?.ca_sha256()),
        None => None,
    };
    Ok(Initialised {
        data_dir: config.data_dir.display().to_string(),
        account_id,
        plan,
        admin_user_id,
        admin_token: token,
        tls_ca_sha256,
    })
}

fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}
