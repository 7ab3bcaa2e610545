//! Fetching an approved release's binary from central over the agent's own authenticated channel
//! (same URL, TLS pin and credentials as its session), into `<version>/mttrly-agent.unverified`,
//! hashed as it arrives and cut off at the manifest's size: nothing larger than what was approved
//! ever lands on disk, and nothing is renamed into place before its hash matches.

use std::path::Path;

use mttrly_core::release::ReleaseRefusal;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::FetchReleaseRequest;
use mttrly_proto::central::v1::release_service_client::ReleaseServiceClient;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::credentials::Credentials;

/// Downloads the binary of `action_id` (`sha256`, `size` bytes) to `dest`, mode 0700. Removes
/// `dest` and refuses with the release refusal's error when the bytes are not the manifest's.
pub async fn fetch(
    credentials: &Credentials,
    action_id: &str,
    sha256: &str,
    size: u64,
    dest: &Path,
) -> Result<(), MttrlyError> {
    let result = download(credentials, action_id, sha256, size, dest).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

async fn download(
    credentials: &Credentials,
    action_id: &str,
    sha256: &str,
    size: u64,
    dest: &Path,
) -> Result<(), MttrlyError> {
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
    let mut stream = ReleaseServiceClient::new(channel)
        .fetch_release(request)
        .await
        .map_err(|s| mttrly_proto::status::from_status(&s))?
        .into_inner();

    let mut file = {
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true).mode(0o700);
        options.open(dest).await.map_err(|e| io("cannot write the release binary", &e))?
    };
    let mut hasher = sha2::Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.message().await.map_err(|s| mttrly_proto::status::from_status(&s))? {
        received += chunk.data.len() as u64;
        if received > size {
            return Err(ReleaseRefusal::TooLarge { expected: size }.to_error());
        }
        hasher.update(&chunk.data);
        file.write_all(&chunk.data).await.map_err(|e| io("cannot write the release binary", &e))?;
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

fn io(what: &str, e: &std::io::Error) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, format!("{what}: {e}"))
}
