//! `mttrly-cli totp enroll|status`: a person's own second factor, from the terminal.
//!
//! Codes are read from standard input after a prompt on standard error, never taken from the
//! command line (shell history, process lists) — and a code is never a tool argument, so no
//! assistant ever relays one. The QR code is drawn with Unicode half blocks, light on dark as
//! terminals usually are, which authenticator apps scan like a printed one.

use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{ConfirmTotpEnrollmentRequest, GetTotpStatusRequest, StartTotpEnrollmentRequest};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use super::rfc3339;
use crate::cli::{OutputFormat, TotpCommand};
use crate::client::{Authed, error};
use crate::output::Printer;

/// Longest line read as a code.
const MAX_CODE_LINE: usize = 128;

pub(crate) async fn run(cmd: &TotpCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = UserServiceClient::new(channel);
    match cmd {
        TotpCommand::Status => {
            let s = client.get_totp_status(GetTotpStatusRequest {}).await.map_err(|s| error(&s))?.into_inner();
            match printer.format() {
                OutputFormat::Json => printer.json(&json!({
                    "enrolled": s.enrolled,
                    "recovery_codes_left": s.recovery_codes_left,
                    "locked_until": rfc3339(s.locked_until),
                })),
                OutputFormat::Table => {
                    let mut text = if s.enrolled {
                        format!("TOTP second factor: enrolled; {} recovery code(s) left", s.recovery_codes_left)
                    } else {
                        "TOTP second factor: not enrolled (mttrly-cli totp enroll)".to_owned()
                    };
                    if let Some(until) = rfc3339(s.locked_until) {
                        text.push_str(&format!("\nlocked after too many wrong codes until {until}"));
                    }
                    printer.text(&text);
                    Ok(())
                }
            }
        }
        TotpCommand::Enroll => enroll(&mut client, printer).await,
    }
}

async fn enroll(client: &mut UserServiceClient<Authed>, printer: &Printer) -> Result<(), MttrlyError> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let status = client.get_totp_status(GetTotpStatusRequest {}).await.map_err(|s| error(&s))?.into_inner();
    let current_code = if status.enrolled {
        prompt(&mut stdin, "A second factor is already enrolled. Current code from it (or a recovery code): ").await?
    } else {
        String::new()
    };
    let started = client
        .start_totp_enrollment(StartTotpEnrollmentRequest { current_code })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    let qr = qrcode::QrCode::new(started.otpauth_uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build()
        })
        .unwrap_or_default();
    let shown = format!(
        "Scan this with your authenticator app, or add the key by hand:\n\n{qr}\n  {}\n  key: {}\n",
        started.otpauth_uri, started.secret
    );
    // In JSON mode stdout carries only the final document; what the person reads goes to stderr.
    match printer.format() {
        OutputFormat::Table => printer.text(&shown),
        OutputFormat::Json => eprintln!("{shown}"),
    }
    let code = prompt(&mut stdin, "Code from the app, to confirm: ").await?;
    let confirmed = client
        .confirm_totp_enrollment(ConfirmTotpEnrollmentRequest { code })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "enrolled": true,
            "otpauth_uri": started.otpauth_uri,
            "recovery_codes": confirmed.recovery_codes,
        })),
        OutputFormat::Table => {
            printer.text(&format!(
                "Enrolled. Recovery codes (each works once in place of a code; keep them safe now, they are not shown again):\n  {}",
                confirmed.recovery_codes.join("\n  ")
            ));
            Ok(())
        }
    }
}

/// Asks on stderr and reads one line from stdin.
async fn prompt(stdin: &mut tokio::io::BufReader<tokio::io::Stdin>, question: &str) -> Result<String, MttrlyError> {
    let mut stderr = tokio::io::stderr();
    let io = |e: std::io::Error| MttrlyError::new(ErrorCode::ValidationError, format!("cannot read the code: {e}"));
    stderr.write_all(question.as_bytes()).await.map_err(io)?;
    stderr.flush().await.map_err(io)?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line).await.map_err(io)?;
    if read == 0 {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "no code was typed (standard input ended)"));
    }
    if line.len() > MAX_CODE_LINE {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "that is not a code"));
    }
    Ok(line.trim().to_owned())
}
