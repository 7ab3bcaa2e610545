//! Central's private CA and server certificate.
//!
//! `init --tls` creates a CA (ECDSA P-256) and a server certificate it signs, in `DATA_DIR/tls/`.
//! Agents pin that CA: the install command carries it, so an agent trusts exactly this central and
//! nothing a public CA might sign. The server certificate always names [`TLS_SERVER_NAME`], which
//! clients verify instead of whatever host or IP they dialled, so central can move addresses
//! without reissuing certificates.

use std::path::{Path, PathBuf};

use mttrly_core::{ErrorCode, MttrlyError};
pub use mttrly_proto::TLS_SERVER_NAME;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The PEM material central serves with.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA certificate agents and the CLI pin.
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate.
    pub chain_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

fn fail(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::InternalError, message)
}

fn write(path: &Path, body: &str, private: bool) -> Result<(), MttrlyError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(body.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
}

/// Generates the CA and server certificate under `data_dir/tls`. Refuses to overwrite existing
/// material: replacing the CA would lock every enrolled agent out.
pub fn generate(data_dir: &Path, extra_names: &[String]) -> Result<TlsMaterial, MttrlyError> {
    let tls = dir(data_dir);
    if tls.join("server.pem").exists() {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            format!(
                "{} already holds TLS material; remove it first to start over (agents must re-enroll)",
                tls.display()
            ),
        ));
    }
    std::fs::create_dir_all(&tls).map_err(|e| fail(format!("cannot create {}: {e}", tls.display())))?;
    let gen_err = |e: rcgen::Error| fail(format!("cannot generate certificates: {e}"));
    let year = jiff::Zoned::now().year();

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.distinguished_name.push(DnType::CommonName, "mttrly private CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(i32::from(year) - 1, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(i32::from(year) + 20, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec![TLS_SERVER_NAME.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    names.extend(extra_names.iter().cloned());
    let server_key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(names).map_err(gen_err)?;
    params.distinguished_name.push(DnType::CommonName, TLS_SERVER_NAME);
    params.not_before = rcgen::date_time_ymd(i32::from(year) - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(i32::from(year) + 5, 1, 1);
    let server_cert = params.signed_by(&server_key, &issuer).map_err(gen_err)?;

    let material = TlsMaterial {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", server_cert.pem(), ca_cert.pem()),
        key_pem: server_key.serialize_pem(),
    };
    write(&tls.join("ca.pem"), &material.ca_pem, false)?;
    write(&tls.join("ca.key"), &issuer.key().serialize_pem(), true)?;
    write(&tls.join("server.pem"), &material.chain_pem, false)?;
    write(&tls.join("server.key"), &material.key_pem, true)?;
    Ok(material)
}

impl TlsMaterial {
    /// SHA-256 of the CA certificate (DER), hex: what an operator compares out of band.
    pub fn ca_sha256(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let body: String = self.ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(der))
    }

    /// The CA certificate as one base64 token, for the agent install command.
    pub fn ca_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }
}

/// Loads the material, if `init --tls` created it.
pub fn load(data_dir: &Path) -> Result<Option<TlsMaterial>, MttrlyError> {
    let tls = dir(data_dir);
    if !tls.join("server.pem").exists() {
        return Ok(None);
    }
    let read = |name: &str| {
        let path = tls.join(name);
        std::fs::read_to_string(&path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))
    };
    Ok(Some(TlsMaterial { ca_pem: read("ca.pem")?, chain_pem: read("server.pem")?, key_pem: read("server.key")? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_keeps_keys_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let made = generate(dir.path(), &["central.example".to_owned()]).unwrap();
        assert!(made.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(made.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.ca_pem, made.ca_pem);
        assert!(generate(dir.path(), &[]).is_err(), "never overwrites a CA");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for key in ["ca.key", "server.key"] {
                let mode = std::fs::metadata(dir.path().join("tls").join(key)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{key}");
            }
        }
    }
}
