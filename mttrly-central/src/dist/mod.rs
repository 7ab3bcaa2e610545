//! Agent binaries by target and the install script, for the one-line install `servers add`
//! prints: `curl … /install.sh | MTTRLY_INSTALL_TOKEN=… sh -s -- --central … --sha256 T=HEX`.
//!
//! Central serves the `mttrly-agent` next to its own executable for its own target, plus every
//! `DIR/<target>/mttrly-agent` of the `agent_dist_dir` config key. The one-liner pins each
//! target's SHA-256, so a binary changed on the way (or on central's disk after the line was
//! printed) is refused by the script before anything runs. The install token travels in the
//! environment of the shell that runs the script, never in a URL or an argument.

pub mod script;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::app_state::AppState;
use crate::state::Central;

/// The binary's name in a target directory.
pub const BINARY: &str = "mttrly-agent";

/// Central's own target, `<arch>-<os>` as the install script derives it from `uname`.
pub fn own_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// Whether `name` is a target name (`x86_64-linux`): what the URL may name, so a request can
/// never reach outside the dist directory.
pub fn is_target(name: &str) -> bool {
    let mut parts = name.split('-');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    };
    name.len() <= 64 && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// One servable binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `<arch>-<os>`.
    pub target: String,
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// Hashes keyed by path, kept while the file's size and mtime stay the same (binaries are tens
/// of megabytes; hashing one per `servers add` would be wasteful).
static HASHES: Mutex<Option<HashMap<PathBuf, Known>>> = Mutex::new(None);

/// A file's size and mtime when it was hashed, and the hash.
type Known = (u64, SystemTime, String);

fn hash_of(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file)?;
    let mtime = meta.modified().ok()?;
    if let Some((len, at, hash)) =
        HASHES.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(HashMap::new).get(path)
        && *len == meta.len()
        && *at == mtime
    {
        return Some(hash.clone());
    }
    let hash = hex::encode(Sha256::digest(std::fs::read(path).ok()?));
    HASHES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(path.to_path_buf(), (meta.len(), mtime, hash.clone()));
    Some(hash)
}

/// Every binary central can serve, by target (the configured directory wins over the sibling for
/// the same target: an operator who configures one means it).
pub fn artifacts(central: &Central) -> Vec<Artifact> {
    let mut found: Vec<Artifact> = Vec::new();
    if let Some(dir) = &central.config.agent_dist_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            let target = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path().join(BINARY);
            if is_target(&target)
                && let Some(sha256) = hash_of(&path)
            {
                found.push(Artifact { target, path, sha256 });
            }
        }
    }
    let own = own_target();
    if !found.iter().any(|a| a.target == own)
        && let Some(path) = std::env::current_exe().ok().map(|exe| exe.with_file_name(BINARY))
        && let Some(sha256) = hash_of(&path)
    {
        found.push(Artifact { target: own, path, sha256 });
    }
    found.sort_by(|a, b| a.target.cmp(&b.target));
    found
}

/// Central's HTTP base URL (its public one when configured).
pub fn http_base(central: &Central) -> String {
    central
        .site_url
        .get()
        .cloned()
        .unwrap_or_else(|| crate::app_state::public_base_url(&central.config, central.config.http_listen))
}

/// [`artifacts`] off the async runtime: the first look at a binary hashes it (tens of MB), which
/// must not stall the other requests a runtime thread is serving.
pub async fn artifacts_off_runtime(central: &std::sync::Arc<Central>) -> Vec<Artifact> {
    let central = std::sync::Arc::clone(central);
    tokio::task::spawn_blocking(move || artifacts(&central)).await.unwrap_or_default()
}

/// The one-line install for `install_token`, or `None` when central has no binary to serve.
pub async fn one_liner(central: &std::sync::Arc<Central>, install_token: &str) -> Option<String> {
    let pins: Vec<String> =
        artifacts_off_runtime(central).await.iter().map(|a| format!("{}={}", a.target, a.sha256)).collect();
    if pins.is_empty() {
        return None;
    }
    let base = http_base(central);
    let ca = central.tls.as_ref().map(|t| format!(" --ca-cert-b64 {}", t.ca_base64())).unwrap_or_default();
    Some(format!(
        "curl -fsSL --proto {proto} {url} | MTTRLY_INSTALL_TOKEN={token} sh -s -- --central {grpc} --sha256 {pins}{ca}",
        proto = script::sh_quote(script::proto_of(&base)),
        url = script::sh_quote(&format!("{base}/install.sh")),
        token = script::sh_quote(install_token),
        grpc = script::sh_quote(&central.grpc_url),
        pins = pins.join(","),
    ))
}

/// `GET /install.sh`.
pub(crate) async fn install_script(State(state): State<AppState>) -> Response {
    let body = script::render(&state.site.base_url);
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /dist/mttrly-agent/{target}`: the binary, with its SHA-256 in `X-Mttrly-Sha256`.
pub(crate) async fn binary(State(state): State<AppState>, UrlPath(target): UrlPath<String>) -> Response {
    if !is_target(&target) {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    }
    let central = std::sync::Arc::clone(&state.central);
    let found = tokio::task::spawn_blocking(move || {
        artifacts(&central).into_iter().find(|a| a.target == target).map(|a| (std::fs::read(&a.path), a.sha256))
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((Ok(bytes), sha256)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::HeaderName::from_static("x-mttrly-sha256"), sha256),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Some((Err(e), _)) => {
            tracing::warn!(error = %e, "cannot read an agent binary");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the binary\n").into_response()
        }
        None => (StatusCode::NOT_FOUND, "central has no agent binary for this target\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_cannot_escape_the_dist_directory() {
        assert!(is_target("x86_64-linux"));
        assert!(is_target("aarch64-linux"));
        assert!(is_target(&own_target()));
        for bad in ["..", "../etc", "x86_64-linux/..", "x86_64", "a-b-c", "X86-linux", "-linux", "x86_64-", ""] {
            assert!(!is_target(bad), "{bad}");
        }
    }
}
