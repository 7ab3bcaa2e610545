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
