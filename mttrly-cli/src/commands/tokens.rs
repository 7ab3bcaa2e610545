//! `mttrly-cli tokens create --assistant NAME | --human`, `tokens list`, `tokens revoke ID`.

use mttrly_core::MttrlyError;
use mttrly_proto::central::v1::account_service_client::AccountServiceClient;
use mttrly_proto::central::v1::{CreateTokenRequest, ListTokensRequest, RevokeTokenRequest, TokenInfo};
use serde_json::{Value, json};

use super::{ago, rfc3339};
use crate::cli::{OutputFormat, TokensCommand, TokensCreateArgs};
use crate::client::{Authed, error};
use crate::output::Printer;

pub(crate) async fn run(cmd: &TokensCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = AccountServiceClient::new(channel);
    match cmd {
        TokensCommand::Create(args) => create(&mut client, args, printer).await,
        TokensCommand::List => {
            let tokens = client.list_tokens(ListTokensRequest {}).await.map_err(|s| error(&s))?.into_inner().tokens;
            match printer.format() {
                OutputFormat::Json => printer.json(&tokens.iter().map(token_json).collect::<Vec<_>>()),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.kind.clone(),
                                t.owner_name.clone(),
                                if t.name.is_empty() { "-".to_owned() } else { t.name.clone() },
                                scope(t),
                                if t.created_at > 0 { ago(t.created_at) } else { "-".to_owned() },
                                ago(t.last_used_at),
                            ]
                        })
                        .collect();
                    printer.table(&["ID", "KIND", "OWNER", "NAME", "SCOPE", "CREATED", "LAST USED"], &rows);
                    Ok(())
                }
            }
        }
        TokensCommand::Revoke { id } => {
            client.revoke_token(RevokeTokenRequest { id: id.clone() }).await.map_err(|s| error(&s))?;
            match printer.format() {
                OutputFormat::Json => printer.json(&json!({ "revoked": id })),
                OutputFormat::Table => {
                    printer.text(&format!("revoked {id}: it stops working at once, open sessions included"));
                    Ok(())
                }
            }
        }
    }
}

/// The scope as the flags that would create it.
fn scope(t: &TokenInfo) -> String {
    let mut parts = Vec::new();
    if t.read_only {
        parts.push("read-only".to_owned());
    }
    if !t.toolsets.is_empty() {
        parts.push(format!("toolsets {}", t.toolsets));
    }
    if parts.is_empty() { "all".to_owned() } else { parts.join(", ") }
}

/// A token as `--output json` prints it (field names are a contract with scripts).
fn token_json(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind,
        "owner": t.owner_name,
        "owner_id": t.owner_id,
        "name": (!t.name.is_empty()).then_some(&t.name),
        "read_only": t.read_only,
        "toolsets": (!t.toolsets.is_empty()).then_some(&t.toolsets),
        "created_at": rfc3339(t.created_at),
        "last_used_at": rfc3339(t.last_used_at),
    })
}

async fn create(
    client: &mut AccountServiceClient<Authed>,
    args: &TokensCreateArgs,
    printer: &Printer,
) -> Result<(), MttrlyError> {
    let created = client
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
        OutputFormat::Json => printer.json(
            &json!({ "token": created.token, "token_id": created.token_id, "principal_type": created.principal_type }),
        ),
        OutputFormat::Table => {
            printer.text(&format!("{} token (shown once; store it now):\n  {}", created.principal_type, created.token));
            Ok(())
        }
    }
}
