//! `mttrly-cli users link|unlink|links`: a person's chat accounts (Telegram, Slack), where
//! approval messages reach them.

use mttrly_core::{ChatProvider, MttrlyError};
use mttrly_proto::central::v1::user_service_client::UserServiceClient;
use mttrly_proto::central::v1::{LinkChatRequest, ListChatLinksRequest, UnlinkChatRequest};
use serde_json::json;

use super::rfc3339;
use crate::cli::OutputFormat;
use crate::client::{Authed, error};
use crate::output::Printer;

/// `users link PROVIDER`: a single-use code to send to the bot or app.
pub(crate) async fn link(
    client: &mut UserServiceClient<Authed>,
    printer: &Printer,
    provider: ChatProvider,
) -> Result<(), MttrlyError> {
    let code = client
        .link_chat(LinkChatRequest { provider: provider.as_str().to_owned() })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({
            "code": code.code,
            "provider": code.provider,
            "expires_at": rfc3339(code.expires_at),
            "instructions": code.instructions,
        })),
        OutputFormat::Table => {
            printer.text(&format!(
                "{}\n\ncode: {}\nexpires: {}",
                code.instructions,
                code.code,
                rfc3339(code.expires_at).unwrap_or_default()
            ));
            Ok(())
        }
    }
}

/// `users unlink PROVIDER [--user NAME]`.
pub(crate) async fn unlink(
    client: &mut UserServiceClient<Authed>,
    printer: &Printer,
    provider: ChatProvider,
    user: Option<&str>,
) -> Result<(), MttrlyError> {
    let removed = client
        .unlink_chat(UnlinkChatRequest { provider: provider.as_str().to_owned(), name: user.unwrap_or("").to_owned() })
        .await
        .map_err(|s| error(&s))?
        .into_inner()
        .removed;
    match printer.format() {
        OutputFormat::Json => printer.json(&json!({ "provider": provider.as_str(), "removed": removed })),
        OutputFormat::Table => {
            let whose = user.map_or_else(|| "your".to_owned(), |u| format!("{}'s", mttrly_core::display::text(u)));
            printer.text(&if removed {
                format!("removed {whose} {} link; approval messages no longer go there", provider.display_name())
            } else {
                format!("{whose} {} account was not linked; nothing changed", provider.display_name())
            });
            Ok(())
        }
    }
}

/// `users links`: the caller's chat links.
pub(crate) async fn list(client: &mut UserServiceClient<Authed>, printer: &Printer) -> Result<(), MttrlyError> {
    let links = client.list_chat_links(ListChatLinksRequest {}).await.map_err(|s| error(&s))?.into_inner().links;
    match printer.format() {
        OutputFormat::Json => printer.json(
            &links
                .iter()
                .map(|l| {
                    json!({
                        "provider": l.provider,
                        "external_id": l.external_id,
                        "label": l.label,
                        "linked_at": rfc3339(l.linked_at),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        OutputFormat::Table => {
            if links.is_empty() {
                printer
                    .text("no chat account linked: `mttrly-cli users link telegram` (or slack) prints a code to send");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = links
                .iter()
                .map(|l| {
                    vec![
                        l.provider.clone(),
                        mttrly_core::display::text(&l.label).into_owned(),
                        l.external_id.clone(),
                        super::ago(l.linked_at),
                    ]
                })
                .collect();
            printer.table(&["PROVIDER", "ACCOUNT", "ID", "LINKED"], &rows);
            Ok(())
        }
    }
}
