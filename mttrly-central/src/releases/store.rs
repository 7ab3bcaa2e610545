//! Release binaries, content-addressed: `DATA_DIR/releases/<sha256>`. A file is written under a
//! temporary name while its hash is computed and renamed to its hash only when it matches the
//! manifest, so a name always denotes its bytes (unless someone edits the file afterwards, which
//! the agent's own hash check catches).

use std::path::{Path, PathBuf};

use mttrly_core::{ErrorCode, MttrlyError};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

/// The largest binary central accepts.
pub const MAX_BINARY: u64 = 512 * 1024 * 1024;

/// The directory of binaries.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("releases")
}

/// Where the binary with `sha256` lives (the hash is checked to be hex first: it names a file).
pub fn path(data_dir: &Path, sha256: &str) -> Result<PathBuf, MttrlyError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "a release's sha256 is 64 lowercase hex digits")
            .with_detail("field", "sha256"));
    }
    Ok(dir(data_dir).join(sha256))
}

fn io(what: &str, e: &std::io::Error) -> MttrlyError {
    tracing::error!(error = %e, "{what}");
    MttrlyError::new(ErrorCode::InternalError, format!("{what} on central"))
}

/// A binary being received.
pub struct Incoming {
    temp: PathBuf,
    file: tokio::fs::File,
    hasher: sha2::Sha256,
    size: u64,
    limit: u64,
}

impl Incoming {
    /// Starts receiving a binary of at most `limit` bytes.
    pub async fn start(data_dir: &Path, limit: u64) -> Result<Self, MttrlyError> {
        let dir = dir(data_dir);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io("cannot create the releases directory", &e))?;
        let mut name = [0u8; 8];
        getrandom::fill(&mut name).map_err(|_| MttrlyError::new(ErrorCode::InternalError, "no randomness"))?;
        let temp = dir.join(format!(".incoming-{}", hex::encode(name)));
        let file = tokio::fs::File::create(&temp).await.map_err(|e| io("cannot write a release binary", &e))?;
        Ok(Self { temp, file, hasher: sha2::Sha256::new(), size: 0, limit })
    }

    /// Appends `bytes`; refuses (and removes what arrived) past the limit.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), MttrlyError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            self.discard().await;
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!("the binary is larger than the manifest's {} bytes", self.limit),
            )
            .with_detail("reason", "too_large"));
        }
        self.hasher.update(bytes);
        if let Err(e) = self.file.write_all(bytes).await {
            self.discard().await;
            return Err(io("cannot write a release binary", &e));
        }
        Ok(())
    }

    /// Keeps the binary under its hash if it is `size` bytes hashing to `sha256`.
    pub async fn finish(mut self, data_dir: &Path, sha256: &str, size: u64) -> Result<(), MttrlyError> {
        let actual = hex::encode(self.hasher.clone().finalize());
        if self.size != size || actual != sha256 {
            self.discard().await;
            return Err(MttrlyError::new(
                ErrorCode::ValidationError,
                format!(
                    "the binary ({} bytes, sha256 {actual}) is not the one the manifest names ({size} bytes, sha256 {sha256})",
                    self.size
                ),
            )
            .with_detail("reason", if self.size == size { "hash_mismatch" } else { "size_mismatch" }));
        }
        let target = path(data_dir, sha256)?;
        if let Err(e) = self.file.sync_all().await {
            self.discard().await;
            return Err(io("cannot write a release binary", &e));
        }
        tokio::fs::rename(&self.temp, &target).await.map_err(|e| io("cannot store a release binary", &e))
    }

    async fn discard(&mut self) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.size
    }
}

impl Drop for Incoming {
    /// A publish that ended early (the client went away, a check failed) leaves no partial file.
    /// After [`Incoming::finish`] renamed it there is nothing at the temporary name any more.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}
