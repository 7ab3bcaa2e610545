//! Fetching an approved release's binary from central over the agent's own authenticated channel
//! (same URL, TLS pin and credentials as its session), into `<version>/mttrly-agent.unverified`,
//! hashed as it arrives and cut off at the manifest's size: nothing larger than what was approved
//! ever lands on disk, and nothing is renamed into place before its hash matches.

use std::path::Path;
use std::time::Duration;

use mttrly_core::release::ReleaseRefusal;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::FetchReleaseRequest;
use mttrly_proto::central::v1::release_service_client::ReleaseServiceClient;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::credentials::Credentials;
use crate::install::layout::BINARY_WRITE_PIECE;

/// The longest central may go without sending the next chunk (or answering at all) before the
/// download is given up. HTTP/2 keep-alives catch a central that is gone; this catches one that
/// is there but stuck, which would otherwise hold the update (and its task) open for ever.
const STALL: Duration = Duration::from_secs(60);

/// The slowest transfer a download is allowed: 64 KiB/s, so a 50 MiB release gets 800 s on top of
/// two [`STALL`]s (about 15 minutes in all). Bounds a central that trickles a byte just inside each
/// stall.
const MIN_BYTES_PER_SECOND: u64 = 64 * 1024;

/// Downloads the binary of `action_id` (`sha256`, `size` bytes) to `dest`, mode 0700. Removes
/// `dest` and refuses with the release refusal's error when the bytes are not the manifest's, and
/// with `TIMEOUT` when central stalls or the transfer is slower than any real link.
pub async fn fetch(
    credentials: &Credentials,
    action_id: &str,
    sha256: &str,
    size: u64,
    dest: &Path,
) -> Result<(), MttrlyError> {
    fetch_within(credentials, Release { action_id, sha256, size }, dest, STALL).await
}

/// The whole download's time: two stalls (connecting and the first answer count too) and the
/// release's size at [`MIN_BYTES_PER_SECOND`].
fn budget(size: u64, stall: Duration) -> Duration {
    2 * stall + Duration::from_secs(size / MIN_BYTES_PER_SECOND)
}

/// What is fetched: the approved action's release, its hash and size.
struct Release<'a> {
    action_id: &'a str,
    sha256: &'a str,
    size: u64,
}

async fn fetch_within(
    credentials: &Credentials,
    release: Release<'_>,
    dest: &Path,
    stall: Duration,
) -> Result<(), MttrlyError> {
    let budget = budget(release.size, stall);
    let result = match tokio::time::timeout(budget, download(credentials, &release, dest, stall)).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(format!(
            "the release download did not finish within {:.1} s ({} bytes)",
            budget.as_secs_f32(),
            release.size
        ))),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

async fn download(
    credentials: &Credentials,
    release: &Release<'_>,
    dest: &Path,
    stall: Duration,
) -> Result<(), MttrlyError> {
    let Release { action_id, sha256, size } = *release;
    let stalled = || timed_out(format!("central sent nothing of the release for {} s", stall.as_secs_f32()));
    let channel = crate::enroll::connect(&credentials.central_url, credentials.ca_certificate_pem.as_deref())
        .await
        .map_err(|e| unavailable(&mttrly_core::ErrorChain(&e).to_string()))?;
    let mut request =
        tonic::Request::new(FetchReleaseRequest { action_id: action_id.to_owned(), sha256: sha256.to_owned() });
    let metadata = request.metadata_mut();
    let header = |v: &str| {
        v.parse().map_err(|_| MttrlyError::new(ErrorCode::ValidationError, "credentials are not valid in a header"))
    };
    metadata.insert("authorization", header(&format!("Bearer {}", credentials.agent_secret))?);
    metadata.insert("x-mttrly-server-id", header(&credentials.server_id)?);
    let mut stream = tokio::time::timeout(stall, ReleaseServiceClient::new(channel).fetch_release(request))
        .await
        .map_err(|_| stalled())?
        .map_err(|s| mttrly_proto::status::from_status(&s))?
        .into_inner();

    let mut file = {
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true).mode(0o700);
        options.open(dest).await.map_err(|e| io("cannot write the release binary", &e))?
    };
    let mut hasher = sha2::Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = tokio::time::timeout(stall, stream.message())
        .await
        .map_err(|_| stalled())?
        .map_err(|s| mttrly_proto::status::from_status(&s))?
    {
        received += chunk.data.len() as u64;
        if received > size {
            return Err(ReleaseRefusal::TooLarge { expected: size }.to_error());
        }
        hasher.update(&chunk.data);
        // In 64 KiB pieces, not in central's 256 KiB chunks: see `BINARY_WRITE_PIECE`.
        for piece in chunk.data.chunks(BINARY_WRITE_PIECE) {
            file.write_all(piece).await.map_err(|e| io("cannot write the release binary", &e))?;
        }
    }
    file.sync_all().await.map_err(|e| io("cannot write the release binary", &e))?;
    if received != size {
        return Err(ReleaseRefusal::SizeMismatch { expected: size, actual: received }.to_error());
    }
    let actual = hex::encode(hasher.finalize());
    if actual != sha256 {
        return Err(ReleaseRefusal::HashMismatch { expected: sha256.to_owned(), actual }.to_error());
    }
    Ok(())
}

fn unavailable(message: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::ConnectionError, format!("cannot reach central to fetch the release: {message}"))
}

fn timed_out(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::Timeout, message)
}

fn io(what: &str, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
