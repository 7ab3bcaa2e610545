//! `mttrly-agent enroll`: trades a single-use install token for credentials.

use std::path::Path;
use std::time::Duration;

use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::agent::v1::EnrollRequest;
use mttrly_proto::agent::v1::agent_service_client::AgentServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::credentials::Credentials;
use crate::{AgentError, VERSION, host};

/// Opens a channel to central. `https://` needs central's CA, which is the only CA trusted (the
/// certificate must name [`mttrly_proto::TLS_SERVER_NAME`]). Connection failures are
/// `CONNECTION_ERROR`.
pub async fn connect(url: &str, ca_pem: Option<&str>) -> Result<Channel, AgentError> {
    let parsed: tonic::codegen::http::Uri = url.parse().map_err(|_| AgentError::Url(url.to_owned()))?;
    let tls = match (parsed.scheme_str(), ca_pem) {
        (Some("http"), _) => None,
        (Some("https"), Some(ca)) => Some(
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name(mttrly_proto::TLS_SERVER_NAME),
        ),
        (Some("https"), None) => {
            return Err(AgentError::Invalid {
                what: "central URL",
                path: url.to_owned(),
                reason: "https needs central's CA certificate (--ca-cert-b64 or --ca-cert, as printed by `mttrly-cli servers add`)".to_owned(),
            });
        }
        _ => return Err(AgentError::Url(url.to_owned())),
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|_| AgentError::Url(url.to_owned()))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|source| AgentError::Tls { url: url.to_owned(), source })?;
    }
    endpoint.connect().await.map_err(|e| {
        AgentError::Central(
            MttrlyError::new(ErrorCode::ConnectionError, format!("cannot reach central at {url}: {e}"))
                .with_detail("central_url", url),
        )
    })
}

/// Enrolls with central and saves the credentials in `state_dir`. Refuses to replace existing
/// credentials unless `force` is set. `ca_pem` is central's CA for `https://` URLs.
pub async fn enroll(
    central_url: &str,
    install_token: &str,
    ca_pem: Option<String>,
    state_dir: &Path,
    force: bool,
) -> Result<Credentials, AgentError> {
    if !force && let Some(existing) = Credentials::load(state_dir)? {
        return Err(AgentError::AlreadyEnrolled {
            state_dir: state_dir.display().to_string(),
            server_id: existing.server_id,
        });
    }
    let channel = connect(central_url, ca_pem.as_deref()).await?;
    let response = AgentServiceClient::new(channel)
        .enroll(EnrollRequest {
            install_token: install_token.trim().to_owned(),
            hostname: host::facts().hostname,
            agent_version: VERSION.to_owned(),
        })
        .await
        .map_err(|s| AgentError::Central(mttrly_proto::status::from_status(&s)))?
        .into_inner();
    let credentials = Credentials {
        server_id: response.server_id,
        agent_secret: response.agent_secret,
        // The URL that just worked is the one this host can reach central at.
        central_url: central_url.to_owned(),
        ca_certificate_pem: ca_pem,
    };
    credentials.save(state_dir)?;
    Ok(credentials)
}

/// Central's CA certificate as the operator gave it: base64 of its PEM (`--ca-cert-b64`, what
/// `mttrly-cli servers add` prints) or a PEM file (`--ca-cert`); `None` when neither was given.
/// Only a PEM certificate is accepted, so a wrong argument fails here and not at the handshake.
pub fn ca_certificate(b64: Option<&str>, file: Option<&Path>) -> Result<Option<String>, AgentError> {
    use base64::Engine as _;
    const B64_FLAG: &str = "--ca-cert-b64";
    let unreadable = |origin: &str, source: Box<dyn std::error::Error + Send + Sync>| AgentError::CaCertificate {
        origin: origin.to_owned(),
        source,
    };
    let (origin, pem) = match (b64, file) {
        (Some(b64), _) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| unreadable(B64_FLAG, Box::new(e)))?;
            (B64_FLAG.to_owned(), String::from_utf8(bytes).map_err(|e| unreadable(B64_FLAG, Box::new(e)))?)
        }
        (None, Some(path)) => {
            let origin = path.display().to_string();
            let pem = std::fs::read_to_string(path).map_err(|source| AgentError::State {
                what: "cannot read",
                path: origin.clone(),
                source,
            })?;
            (origin, pem)
        }
        (None, None) => return Ok(None),
    };
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(AgentError::Invalid {
            what: "CA certificate",
            path: origin,
            reason: "not a PEM certificate".to_owned(),
        });
    }
    Ok(Some(pem))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_ca_certificate_is_read_from_base64_or_a_file_and_must_be_pem() {
        assert!(ca_certificate(None, None).unwrap().is_none());
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        assert_eq!(ca_certificate(Some(&format!(" {b64}\n")), None).unwrap().as_deref(), Some(PEM));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, PEM).unwrap();
        assert_eq!(ca_certificate(None, Some(&file)).unwrap().as_deref(), Some(PEM));
        // The base64 argument wins when both are given (clap refuses both; the library is explicit).
        assert_eq!(ca_certificate(Some(&b64), Some(&dir.path().join("missing"))).unwrap().as_deref(), Some(PEM));
    }

    #[test]
    fn an_unreadable_ca_certificate_says_where_it_came_from_and_why() {
        use std::error::Error as _;
        let err = ca_certificate(Some("not base64!"), None).unwrap_err();
        assert!(matches!(&err, AgentError::CaCertificate { origin, .. } if origin == "--ca-cert-b64"), "{err:?}");
        // The decoder's reason is the source, not repeated in the message.
        assert!(err.source().is_some() && !err.to_string().contains("symbol"), "{err}");
        let not_text = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]);
        assert!(matches!(ca_certificate(Some(&not_text), None), Err(AgentError::CaCertificate { .. })));
        let not_pem = base64::engine::general_purpose::STANDARD.encode("hello");
        let err = ca_certificate(Some(&not_pem), None).unwrap_err();
        assert!(err.to_string().contains("--ca-cert-b64: not a PEM certificate"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = ca_certificate(None, Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(matches!(err, AgentError::State { .. }), "{err:?}");
    }
}
