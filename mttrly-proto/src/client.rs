//! Connecting to central with a bearer token: what the CLI and the standalone MCP server share.

use std::time::Duration;

use mttrly_core::{ErrorCode, MttrlyError};
use std::path::Path;
use tonic::service::interceptor::InterceptedService;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Adds `authorization: Bearer …` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel to central that carries the token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Connects to `central` with `token`; an `https://` central needs its CA certificate.
pub async fn connect(central: &str, token: Option<&str>, ca_cert: Option<&Path>) -> Result<Authed, MttrlyError> {
    let token = token.ok_or_else(|| {
        MttrlyError::new(ErrorCode::AuthFailed, "no token: run `mttrly-cli login`, pass --token or set MTTRLY_TOKEN")
            .with_detail("hint", "`mttrly-central init` and `quickstart` print an admin token")
    })?;
    let header = format!("Bearer {token}").parse().map_err(|_| {
        MttrlyError::new(ErrorCode::AuthFailed, "the token contains characters not allowed in a header")
    })?;
    let channel = connect_anonymous(central, ca_cert).await?;
    Ok(InterceptedService::new(channel, Bearer(header)))
}

/// Connects to `central` without a token: only for `LoginService`, which the caller uses to get
/// one (every other service refuses a call without a token).
pub async fn connect_anonymous(central: &str, ca_cert: Option<&Path>) -> Result<Channel, MttrlyError> {
    let invalid_url = || {
        MttrlyError::new(
            ErrorCode::ValidationError,
            format!("invalid central URL `{central}`: expected http://HOST:PORT or https://HOST:PORT"),
        )
        .with_detail("field", "central")
    };
    let mut endpoint = Endpoint::from_shared(central.to_owned())
        .map_err(|_| invalid_url())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    if central.starts_with("https://") {
        let path = ca_cert.ok_or_else(|| {
            MttrlyError::new(ErrorCode::ValidationError, "an https:// central needs --ca-cert FILE (or MTTRLY_CA_CERT)")
                .with_detail("field", "ca_cert")
        })?;
        let pem = std::fs::read_to_string(path).map_err(|e| {
            MttrlyError::new(ErrorCode::ValidationError, format!("cannot read CA certificate {}: {e}", path.display()))
                .with_detail("field", "ca_cert")
        })?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)).domain_name(crate::TLS_SERVER_NAME);
        endpoint = endpoint.tls_config(tls).map_err(|e| {
            MttrlyError::new(ErrorCode::ValidationError, format!("unusable CA certificate: {e}"))
                .with_detail("field", "ca_cert")
        })?;
    } else if !central.starts_with("http://") {
        return Err(invalid_url());
    }
    let channel = endpoint.connect().await.map_err(|e| {
        MttrlyError::new(ErrorCode::ConnectionError, format!("cannot reach central at {central}: {e}"))
            .with_detail("hint", "is mttrly-central running? check --central or MTTRLY_CENTRAL")
    })?;
    Ok(channel)
}
