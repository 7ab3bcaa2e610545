//! `mttrly-cli releases keygen|publish|list`: signed agent releases (issue 16).
//!
//! `keygen` is offline: it writes a private key (mode 0600, never printed, never overwritten) and
//! prints its public half and key id; a signing key is certified at once by a root key
//! (`--root-key`), which writes the signing key's certificate (the root-signed statement).
//! `publish` hashes the binary, signs its manifest with the signing key and uploads both to
//! central (admin only); `list` shows what central holds.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Subcommand};
use mttrly_core::release::{
    KeyTier, Manifest, PrivateKeyFile, ReleaseBundle, ReleaseVersion, Signed, SignedStatement, SigningKeyStatement,
    this_target,
};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::release_service_client::ReleaseServiceClient;
use mttrly_proto::central::v1::{ListReleasesRequest, PublishReleaseChunk, Release, publish_release_chunk};
use sha2::Digest as _;

use super::{ago, rfc3339};
use crate::cli::OutputFormat;
use crate::client::{Authed, error};
use crate::output::Printer;

/// The largest binary `publish` reads (central refuses more anyway).
const MAX_BINARY: u64 = 512 * 1024 * 1024;
/// Bytes per upload message.
const CHUNK: usize = 1024 * 1024;

/// `mttrly-cli releases ...`
#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Make a root or a signing key (offline). Prints only the public half and the key id.
    ///
    /// A root key signs signing keys' certificates; its public half is what agents trust (built
    /// in with MTTRLY_RELEASE_ROOT_KEYS, or listed by the owner in the policy's
    /// `[updates] trusted_root_keys`). Keep it offline. A signing key signs release manifests
    /// until its certificate's --not-after.
    #[command(group(ArgGroup::new("tier").required(true).args(["root", "signing"])))]
    Keygen {
        /// Make a root key.
        #[arg(long)]
        root: bool,
        /// Make a signing key, certified by --root-key until --not-after.
        #[arg(long, requires_all = ["root_key", "not_after"])]
        signing: bool,
        /// Where to write the private key (created with mode 0600; an existing file is refused).
        #[arg(long)]
        out: PathBuf,
        /// The root key that certifies a new signing key.
        #[arg(long)]
        root_key: Option<PathBuf>,
        /// Until when the root vouches for the signing key: an RFC 3339 instant or a duration
        /// from now (`90d`, `12h`).
        #[arg(long)]
        not_after: Option<String>,
        /// Where to write the signing key's certificate (default: the key file's path + `.cert`).
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Sign a release of the agent binary and upload it to central (admin only).
    #[command(disable_version_flag = true)]
    Publish {
        /// The agent binary.
        #[arg(long)]
        binary: PathBuf,
        /// Its version (MAJOR.MINOR.PATCH[-PRE]).
        #[arg(long)]
        version: String,
        /// The target it runs on (default: this machine's, e.g. x86_64-linux).
        #[arg(long)]
        target: Option<String>,
        /// How long the manifest stays installable (`30d`, `12h`, `90s`): an old manifest cannot
        /// be replayed after it.
        #[arg(long)]
        expires_in: String,
        /// The signing key (from `keygen --signing`).
        #[arg(long)]
        signing_key: PathBuf,
        /// The signing key's certificate (from `keygen --signing`).
        #[arg(long)]
        signing_cert: PathBuf,
        /// The oldest central this release works with (default: this CLI's version).
        #[arg(long)]
        min_central: Option<String>,
    },
    /// The releases central holds, newest version first.
    List {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
}

impl ReleasesCommand {
    /// Whether the command runs without central.
    pub(crate) fn is_offline(&self) -> bool {
        matches!(self, Self::Keygen { .. })
    }
}

fn invalid(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// Parses `90d`, `12h`, `30m`, `45s`.
fn parse_duration(text: &str) -> Result<jiff::SignedDuration, MttrlyError> {
    let bad = || invalid(format!("`{text}` is not a duration like 90d, 12h, 30m or 45s"));
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s > 0 && *s <= 10 * 366 * 86_400)
    .ok_or_else(bad)?;
    Ok(jiff::SignedDuration::from_secs(secs))
}

/// An instant: RFC 3339, or a duration from now. Whole seconds (one spelling in the statement).
fn parse_instant(text: &str) -> Result<jiff::Timestamp, MttrlyError> {
    let at = match text.parse::<jiff::Timestamp>() {
        Ok(at) => at,
        Err(_) => jiff::Timestamp::now()
            .checked_add(parse_duration(text)?)
            .map_err(|e| invalid(format!("`{text}` is out of range: {e}")))?,
    };
    jiff::Timestamp::from_second(at.as_second()).map_err(|e| invalid(e.to_string()))
}

fn read_key(path: &Path, tier: KeyTier) -> Result<PrivateKeyFile, MttrlyError> {
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let key = PrivateKeyFile::from_json(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if key.tier() != tier {
        return Err(invalid(format!("{} is a {} key, not a {tier} key", path.display(), key.tier())));
    }
    Ok(key)
}

/// Creates `path` with mode 0600 and writes `text`; refuses an existing file.
fn write_private(path: &Path, text: &str) -> Result<(), MttrlyError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| invalid(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| invalid(format!("cannot write {}: {e}", path.display())))
}

/// Runs `keygen`.
pub(crate) fn run_offline(cmd: &ReleasesCommand, printer: &Printer) -> Result<(), MttrlyError> {
    let ReleasesCommand::Keygen { root, signing: _, out, root_key, not_after, cert_out } = cmd else {
        return Err(MttrlyError::new(ErrorCode::InternalError, "not an offline command"));
    };
    let tier = if *root { KeyTier::Root } else { KeyTier::Signing };
    // Everything that can fail is checked before a file is written.
    let certifier = match (tier, root_key, not_after) {
        (KeyTier::Signing, Some(root_key), Some(not_after)) => {
            Some((read_key(root_key, KeyTier::Root)?, parse_instant(not_after)?))
        }
        (KeyTier::Signing, _, _) => return Err(invalid("a signing key needs --root-key and --not-after")),
        (KeyTier::Root, _, _) => None,
    };
    let key = PrivateKeyFile::generate(tier).map_err(|e| MttrlyError::new(ErrorCode::InternalError, e.to_string()))?;
    let cert_path = cert_out.clone().unwrap_or_else(|| {
        let mut p = out.clone().into_os_string();
        p.push(".cert");
        PathBuf::from(p)
    });
    let cert = match &certifier {
        Some((root, not_after)) => {
            let statement = SigningKeyStatement {
                key_id: key.key_id().clone(),
                public_key: key.public_key().clone(),
                not_after: *not_after,
            };
            Some(
                Signed::sign(&statement, root)
                    .map_err(|e| MttrlyError::new(ErrorCode::InternalError, e.to_string()))?,
            )
        }
        None => None,
    };
    if cert.is_some() && cert_path.exists() {
        return Err(invalid(format!("{} already exists", cert_path.display())));
    }
    write_private(out, &key.to_json())?;
    if let Some(cert) = &cert {
        write_private(&cert_path, &cert.to_json())?;
    }
    match printer.format() {
        OutputFormat::Json => printer.json(&serde_json::json!({
            "tier": tier.to_string(),
            "key_id": key.key_id().as_str(),
            "public_key": key.public_key().to_string(),
            "key_file": out.display().to_string(),
            "cert_file": cert.as_ref().map(|_| cert_path.display().to_string()),
            "root_key_id": certifier.as_ref().map(|(r, _)| r.key_id().as_str().to_owned()),
            "not_after": certifier.as_ref().map(|(_, n)| n.to_string()),
        })),
        OutputFormat::Table => {
            printer.text(&format!("{tier} key {} written to {} (mode 0600)", key.key_id(), out.display()));
            printer.text(&format!("public key: {}", key.public_key()));
            if let Some((root, not_after)) = &certifier {
                printer.text(&format!(
                    "certified by root {} until {not_after}: {}",
                    root.key_id(),
                    cert_path.display()
                ));
            } else {
                printer.text("agents trust it when its public key is in MTTRLY_RELEASE_ROOT_KEYS at build time");
                printer.text("or in the host policy's [updates] trusted_root_keys");
            }
            Ok(())
        }
    }
}

/// Signs the manifest of `binary` and returns the bundle's JSON and the binary's bytes.
fn sign_release(
    binary: &Path,
    version: &str,
    target: Option<&String>,
    expires_in: &str,
    signing_key: &Path,
    signing_cert: &Path,
    min_central: Option<&String>,
) -> Result<(String, Vec<u8>), MttrlyError> {
    let version: ReleaseVersion = version.parse().map_err(|e| invalid(format!("--version: {e}")))?;
    let min_central: ReleaseVersion = min_central
        .map_or(env!("CARGO_PKG_VERSION"), String::as_str)
        .parse()
        .map_err(|e| invalid(format!("--min-central: {e}")))?;
    let expires_at = parse_instant(expires_in)?;
    let key = read_key(signing_key, KeyTier::Signing)?;
    let cert_text = std::fs::read_to_string(signing_cert)
        .map_err(|e| invalid(format!("cannot read {}: {e}", signing_cert.display())))?;
    let statement = SignedStatement::from_json(&cert_text)
        .map_err(|e| invalid(format!("{} is not a signing key's certificate: {e}", signing_cert.display())))?;
    let claimed = statement
        .claimed()
        .ok_or_else(|| invalid(format!("{} is not a signing key's certificate", signing_cert.display())))?;
    if claimed.key_id != *key.key_id() {
        return Err(invalid(format!(
            "{} certifies key {}, not the signing key {}",
            signing_cert.display(),
            claimed.key_id,
            key.key_id()
        )));
    }
    let size = std::fs::metadata(binary).map_err(|e| invalid(format!("cannot read {}: {e}", binary.display())))?.len();
    if size > MAX_BINARY {
        return Err(invalid(format!("{} is larger than {MAX_BINARY} bytes", binary.display())));
    }
    let bytes = std::fs::read(binary).map_err(|e| invalid(format!("cannot read {}: {e}", binary.display())))?;
    let manifest = Manifest {
        version,
        target: target.cloned().unwrap_or_else(this_target),
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        min_central,
        expires_at,
    };
    let signed =
        Signed::sign(&manifest, &key).map_err(|e| MttrlyError::new(ErrorCode::InternalError, e.to_string()))?;
    let bundle = ReleaseBundle { statement, manifest: signed };
    Ok((serde_json::to_string(&bundle).unwrap_or_default(), bytes))
}

fn json(r: &Release) -> serde_json::Value {
    serde_json::json!({
        "version": r.version,
        "target": r.target,
        "sha256": r.sha256,
        "size": r.size,
        "min_central": r.min_central,
        "expires_at": rfc3339(r.expires_at_unix_ms),
        "signing_key_id": r.signing_key_id,
        "root_key_id": r.root_key_id,
        "published_at": rfc3339(r.published_at_unix_ms),
        "published_by": r.published_by,
    })
}

/// Runs `publish` and `list`.
pub(crate) async fn run(cmd: &ReleasesCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = ReleaseServiceClient::new(channel);
    match cmd {
        ReleasesCommand::Keygen { .. } => run_offline(cmd, printer),
        ReleasesCommand::Publish { binary, version, target, expires_in, signing_key, signing_cert, min_central } => {
            // One cheap call first, on the same connection: central closes a connection whose
            // first request has not fully arrived within its handshake timeout, and an upload's
            // request arrives only when its last byte does. After a first request the upload is
            // simply a request in flight, however long it takes.
            client.list_releases(ListReleasesRequest { target: "-".to_owned() }).await.map_err(|s| error(&s))?;
            let (bundle_json, bytes) = sign_release(
                binary,
                version,
                target.as_ref(),
                expires_in,
                signing_key,
                signing_cert,
                min_central.as_ref(),
            )?;
            let mut messages =
                vec![PublishReleaseChunk { body: Some(publish_release_chunk::Body::BundleJson(bundle_json)) }];
            messages.extend(
                bytes
                    .chunks(CHUNK)
                    .map(|c| PublishReleaseChunk { body: Some(publish_release_chunk::Body::Data(c.to_vec())) }),
            );
            drop(bytes);
            let reply = client.publish_release(tokio_stream::iter(messages)).await.map_err(|s| error(&s))?.into_inner();
            let release =
                reply.release.ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "central sent no release"))?;
            match printer.format() {
                OutputFormat::Json => {
                    let mut value = json(&release);
                    value["already_published"] = serde_json::Value::Bool(reply.already_published);
                    printer.json(&value)
                }
                OutputFormat::Table => {
                    let what = if reply.already_published { "already published" } else { "published" };
                    printer.text(&format!(
                        "{what}: {} for {} ({} bytes, sha256 {}), expires {}",
                        release.version,
                        release.target,
                        release.size,
                        release.sha256,
                        rfc3339(release.expires_at_unix_ms).unwrap_or_default()
                    ));
                    Ok(())
                }
            }
        }
        ReleasesCommand::List { target } => {
            let reply = client
                .list_releases(ListReleasesRequest { target: target.clone().unwrap_or_default() })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "releases": reply.releases.iter().map(json).collect::<Vec<_>>(),
                })),
                OutputFormat::Table => {
                    let now = jiff::Timestamp::now().as_millisecond();
                    let rows: Vec<Vec<String>> = reply
                        .releases
                        .iter()
                        .map(|r| {
                            vec![
                                r.version.clone(),
                                r.target.clone(),
                                r.size.to_string(),
                                r.sha256.chars().take(12).collect(),
                                if r.expires_at_unix_ms < now {
                                    "expired".to_owned()
                                } else {
                                    rfc3339(r.expires_at_unix_ms).unwrap_or_default()
                                },
                                r.signing_key_id.clone(),
                                ago(r.published_at_unix_ms),
                            ]
                        })
                        .collect();
                    printer
                        .table(&["VERSION", "TARGET", "BYTES", "SHA256", "EXPIRES", "SIGNING KEY", "PUBLISHED"], &rows);
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_instants() {
        assert_eq!(parse_duration("90d").unwrap().as_secs(), 90 * 86_400);
        assert_eq!(parse_duration("45s").unwrap().as_secs(), 45);
        for bad in ["", "d", "10", "10y", "-5s", "0s", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_instant("2027-01-01T00:00:00Z").unwrap().to_string(), "2027-01-01T00:00:00Z");
        assert!(parse_instant("12h").unwrap() > jiff::Timestamp::now());
    }
}
