//! Streaming a release binary to the agent that runs its update: only to the server whose running
//! `agent_update` action names that binary's SHA-256, so an agent credential cannot be used to
//! download arbitrary releases (or another tenant's).

use mttrly_core::action::{ActionContent, ActionState};
use mttrly_core::ids::{AccountId, ActionId, ServerId};
use mttrly_core::{ErrorCode, MttrlyError};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use crate::state::Central;

/// Bytes per streamed chunk.
pub const CHUNK: usize = 256 * 1024;

/// Opens the binary of `action_id` for `server`, if that action is its running update and names
/// `sha256`.
pub async fn open(
    central: &Central,
    account: &AccountId,
    server: &ServerId,
    action_id: &str,
    sha256: &str,
) -> Result<tokio::fs::File, MttrlyError> {
    let refused = || {
        MttrlyError::new(ErrorCode::Forbidden, "no running agent update of this server names that release")
            .with_detail("action_id", action_id.chars().take(64).collect::<String>())
    };
    let id = ActionId::parse(action_id).map_err(|_| refused())?;
    let action = central.db.account(account).actions().get(&id).await?.ok_or_else(refused)?;
    let names_it = matches!(&action.content, ActionContent::AgentUpdate { sha256: s, .. } if s == sha256);
    if action.server_id != *server || action.status != ActionState::Running || !names_it {
        return Err(refused());
    }
    let path = super::store::path(&central.config.data_dir, sha256)?;
    tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::error!(error = %e, path = %path.display(), "a published release binary is missing");
        MttrlyError::new(ErrorCode::NotFound, "the release binary is missing on central; publish it again")
    })
}

/// Reads `file` into chunks on a spawned task; the receiver ends after the last one (or the first
/// read error, sent as an error).
pub fn chunks(mut file: tokio::fs::File) -> mpsc::Receiver<Result<Vec<u8>, MttrlyError>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a release binary");
                    let _ = tx
                        .send(Err(MttrlyError::new(ErrorCode::InternalError, "cannot read the release binary")))
                        .await;
                    return;
                }
            }
        }
    });
    rx
}
