//! `mttrly-cli login` and `mttrly-cli logout`.
//!
//! `login` runs the device authorization flow against central's `LoginService` (RFC 8628's
//! shape): it prints a URL and a short code, the person approves in a browser where they are
//! signed in, and the CLI, polling at the interval central asks for (longer after `slow_down`),
//! receives a human token of that person. The token is written to the credentials file
//! ([`crate::credentials`]) and never printed. `logout` revokes that token on central when it can
//! and deletes the file either way.

use std::time::Duration;

use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::login_service_client::LoginServiceClient;
use mttrly_proto::central::v1::{PollDeviceLoginRequest, RevokeTokenRequest, StartDeviceLoginRequest};
use serde_json::json;

use crate::cli::{Cli, OutputFormat};
use crate::client::error;
use crate::credentials::{self, Stored};
use crate::output::Printer;

/// What the login is called on the confirmation page and in `tokens list`.
const CLIENT_NAME: &str = "mttrly-cli";
/// How much a `slow_down` adds at least (RFC 8628 §3.5), whatever the reply says.
const SLOW_DOWN_STEP: u64 = 5;

/// This machine's host name, shown on the confirmation page (a claim the page sets beside the
/// address central saw).
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_default()
}

fn no_credentials_path() -> MttrlyError {
    MttrlyError::new(
        ErrorCode::ValidationError,
        "no place for the credentials file: set HOME (or XDG_CONFIG_HOME) to an absolute directory",
    )
}

/// `mttrly-cli login`.
pub(crate) async fn login(cli: &Cli, printer: &Printer) -> Result<(), MttrlyError> {
    let path = credentials::path().ok_or_else(no_credentials_path)?;
    // The central named on the command line or in MTTRLY_CENTRAL; else the one logged in to
    // before (a damaged file is no reason to refuse a fresh login); else the default.
    let before = if cli.central_defaulted { credentials::load(&path).ok().flatten() } else { None };
    let (central, ca_cert) = match before {
        Some(s) => (s.central, cli.ca_cert.clone().or(s.ca_cert)),
        None => (cli.central.clone(), cli.ca_cert.clone()),
    };
    // Kept absolute, so later commands find it from any directory.
    let ca_cert = ca_cert.map(|p| std::path::absolute(&p).unwrap_or(p));
    let channel = mttrly_proto::client::connect_anonymous(&central, ca_cert.as_deref()).await?;
    let mut client = LoginServiceClient::new(channel);
    let started = client
        .start_device_login(StartDeviceLoginRequest { client_name: CLIENT_NAME.to_owned(), client_host: hostname() })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    // Listening for Ctrl-C from before the code is shown, so an interrupt right after it is
    // never missed (and the default action, dying mid-sentence, never happens).
    let mut interrupted = interrupt_listener()?;
    // Instructions on stderr: stdout carries only the result (JSON for scripts).
    eprintln!(
        "To sign in, open {uri}\nand enter the code {code}\n\n(or open {complete})\n\n\
         Check that the page names this computer before you allow it. Waiting for approval \
         (the code expires in {mins} minutes; Ctrl-C to stop)…",
        uri = started.verification_uri,
        code = started.user_code,
        complete = started.verification_uri_complete,
        mins = (started.expires_in + 59) / 60,
    );
    let expires_in = u64::try_from(started.expires_in).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in);
    let mut interval = u64::try_from(started.interval).unwrap_or(0).max(1);
    let approved = loop {
        if tokio::time::Instant::now() >= deadline {
            return Err(expired());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(interval)) => {}
            () = &mut interrupted => {
                return Err(MttrlyError::new(ErrorCode::AuthFailed, "login cancelled (Ctrl-C); nothing was stored"));
            }
        }
        let reply =
            match client.poll_device_login(PollDeviceLoginRequest { device_code: started.device_code.clone() }).await {
                Ok(reply) => reply.into_inner(),
                // Central restarting or the network blinking: keep waiting until the code expires.
                Err(s) if s.code() == tonic::Code::Unavailable => continue,
                Err(s) => return Err(error(&s)),
            };
        let asked = u64::try_from(reply.interval).unwrap_or(0);
        match reply.status.as_str() {
            "authorization_pending" => interval = interval.max(asked),
            "slow_down" => interval = asked.max(interval + SLOW_DOWN_STEP),
            "approved" => break reply,
            "access_denied" => {
                return Err(MttrlyError::new(
                    ErrorCode::AuthFailed,
                    "the login was denied in the browser; nothing was stored",
                ));
            }
            "expired_token" => return Err(expired()),
            _ => {
                return Err(MttrlyError::new(ErrorCode::AuthFailed, format!("the login failed: {}", reply.message)));
            }
        }
    };
    let stored = Stored {
        central: central.clone(),
        token: approved.token,
        token_id: Some(approved.token_id.clone()).filter(|id| !id.is_empty()),
        user: Some(approved.user_name.clone()),
        ca_cert,
    };
    // The login this one replaces: its token is revoked once the new one is safely stored, so
    // logging in again never leaves a forgotten token behind (best effort: said, not fatal).
    let previous = credentials::load(&path).ok().flatten();
    credentials::save(&path, &stored)?;
    if let Some(old) = previous.filter(|old| old.token != stored.token) {
        match revoke(&old, cli.ca_cert.as_deref()).await {
            Ok(id) => eprintln!("the previous login's token {id} was revoked"),
            Err(why) => eprintln!("note: the previous login's token was not revoked ({why})"),
        }
    }
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "user": approved.user_name,
            "role": approved.role,
            "central": central,
            "credentials_file": path.display().to_string(),
            "token_id": approved.token_id,
        })),
        OutputFormat::Table => {
            printer.text(&format!(
                "signed in as {} ({}) on {central}\ntoken {} stored in {}\nevery mttrly-cli command uses it unless --token or MTTRLY_TOKEN is given; `mttrly-cli logout` revokes it",
                approved.user_name,
                approved.role,
                approved.token_id,
                path.display()
            ));
            Ok(())
        }
    }
}

/// A future that ends at the first Ctrl-C (SIGINT), listening from the moment this returns.
fn interrupt_listener() -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>, MttrlyError> {
    #[cfg(unix)]
    {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot listen for Ctrl-C: {e}")))?;
        Ok(Box::pin(async move {
            sigint.recv().await;
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        }))
    }
}

/// Revokes a stored token on its own central, with itself (a person may revoke their own):
/// its id, or why not.
async fn revoke(stored: &Stored, ca_cert: Option<&std::path::Path>) -> Result<String, String> {
    let Some(id) = &stored.token_id else { return Err("the file names no token id".to_owned()) };
    let ca_cert = ca_cert.or(stored.ca_cert.as_deref());
    let channel = crate::client::connect(&stored.central, Some(&stored.token), ca_cert)
        .await
        .map_err(|e| e.message().to_owned())?;
    AccountServiceClient::new(channel)
        .revoke_token(RevokeTokenRequest { id: id.clone() })
        .await
        .map(|_| id.clone())
        .map_err(|status| error(&status).message().to_owned())
}

fn expired() -> MttrlyError {
    MttrlyError::new(ErrorCode::AuthFailed, "the code expired before it was approved; nothing was stored")
        .with_detail("hint", "run `mttrly-cli login` again and approve within 10 minutes")
}

/// `mttrly-cli logout`: revokes the stored token on its central (when reachable and it still
/// works), then deletes the file either way.
pub(crate) async fn logout(cli: &Cli, printer: &Printer) -> Result<(), MttrlyError> {
    let path = credentials::path().ok_or_else(no_credentials_path)?;
    // A damaged file is still deleted: that is what the person asked for.
    let stored = match credentials::load(&path) {
        Ok(stored) => stored,
        Err(e) => {
            eprintln!("warning: {}", e.message());
            None
        }
    };
    let revoked = match &stored {
        None => Err("no stored token".to_owned()),
        Some(s) => revoke(s, cli.ca_cert.as_deref()).await,
    };
    let existed = credentials::remove(&path)?;
    let token_id = stored.as_ref().and_then(|s| s.token_id.clone());
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "credentials_file": path.display().to_string(),
            "deleted": existed,
            "token_id": token_id,
            "revoked": revoked.is_ok(),
            "revoke_error": revoked.as_ref().err(),
        })),
        OutputFormat::Table => {
            let file = if existed { format!("deleted {}", path.display()) } else { format!("no {}", path.display()) };
            let token = match (&revoked, &token_id) {
                (Ok(id), _) => format!("token {id} revoked on central"),
                (Err(why), Some(id)) => {
                    format!("token {id} NOT revoked on central ({why}); revoke it with `mttrly-cli tokens revoke {id}`")
                }
                (Err(_), None) => "no token to revoke".to_owned(),
            };
            printer.text(&format!("{token}\n{file}"));
            Ok(())
        }
    }
}
