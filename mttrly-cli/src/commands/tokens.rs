//! `mttrly-cli tokens create --assistant NAME | --human`.

use mttrly_core::MttrlyError;
use mttrly_proto::central::v1::CreateTokenRequest;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;

use crate::cli::{OutputFormat, TokensCommand};
use crate::client::{Authed, error};
use crate::output::Printer;

pub(crate) async fn run(cmd: &TokensCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let TokensCommand::Create(args) = cmd;
    let created = AccountServiceClient::new(channel)
        .create_token(CreateTokenRequest {
            assistant_name: args.assistant.clone().unwrap_or_default(),
            human: args.human,
            read_only: args.read_only,
            toolsets: args.toolsets.clone().unwrap_or_default(),
        })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    match printer.format() {
        OutputFormat::Json => {
            printer.json(&serde_json::json!({ "token": created.token, "principal_type": created.principal_type }))
        }
        OutputFormat::Table => {
            printer.text(&format!("{} token (shown once; store it now):\n  {}", created.principal_type, created.token));
            Ok(())
        }
    }
}
