//! `mttrly-cli knowledge add|list|show|remove`: the knowledge base `mttrly_search_knowledge`
//! searches. Stored text is redacted by central before it is stored; what is printed here is
//! what central kept.

use std::io::Read as _;

use mttrly_core::display;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::knowledge_service_client::KnowledgeServiceClient;
use mttrly_proto::central::v1::{
    AddKnowledgeRequest, GetKnowledgeRequest, KnowledgeEntry, ListKnowledgeRequest, RemoveKnowledgeRequest,
};

use super::{ago, rfc3339};
use crate::cli::{KnowledgeCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

/// The most bytes a body may have (central refuses more than 65,536 characters anyway).
const MAX_BODY_BYTES: u64 = 4 * 65_536;

fn json(e: &KnowledgeEntry) -> serde_json::Value {
    serde_json::json!({
        "knowledge_id": e.knowledge_id,
        "kind": e.kind,
        "title": e.title,
        "body": e.body,
        "server_id": (!e.server_id.is_empty()).then_some(&e.server_id),
        "author": serde_json::from_str::<serde_json::Value>(&e.author_json).unwrap_or(serde_json::Value::Null),
        "source": e.source,
        "content_sha256": e.content_sha256,
        "created_at": rfc3339(e.created_at_unix_ms),
    })
}

/// The author as one short line: a person's name, or the assistant and whom it acted for.
fn author(e: &KnowledgeEntry) -> String {
    let v: serde_json::Value = serde_json::from_str(&e.author_json).unwrap_or(serde_json::Value::Null);
    match v.get("type").and_then(|t| t.as_str()) {
        Some("human") => v.get("name").and_then(|n| n.as_str()).unwrap_or("?").to_owned(),
        Some("assistant") => format!("assistant {}", v.get("client_name").and_then(|n| n.as_str()).unwrap_or("?")),
        _ => "?".to_owned(),
    }
}

fn body_from(body: Option<&String>, file: Option<&std::path::PathBuf>) -> Result<String, MttrlyError> {
    let invalid = |m: String| MttrlyError::new(ErrorCode::ValidationError, m);
    match (body, file) {
        (Some(b), None) => Ok(b.clone()),
        (None, Some(path)) if path.as_os_str() != "-" => {
            let f = std::fs::File::open(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            read_bounded(f, &path.display().to_string())
        }
        (None, _) => read_bounded(std::io::stdin(), "stdin"),
        (Some(_), Some(_)) => Err(invalid("give the body with --body or --file, not both".to_owned())),
    }
}

fn read_bounded(reader: impl std::io::Read, name: &str) -> Result<String, MttrlyError> {
    let mut text = String::new();
    reader
        .take(MAX_BODY_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| MttrlyError::new(ErrorCode::ValidationError, format!("cannot read {name} as UTF-8 text: {e}")))?;
    if text.len() as u64 > MAX_BODY_BYTES {
        return Err(MttrlyError::new(ErrorCode::ValidationError, format!("{name} is too long for a knowledge entry")));
    }
    Ok(text)
}

fn show(e: &KnowledgeEntry, printer: &Printer) {
    printer.text(&format!("{}  {}  {}", e.knowledge_id, e.kind, display::text(&e.title)));
    let server = if e.server_id.is_empty() { "(none)" } else { e.server_id.as_str() };
    printer.text(&format!(
        "server: {server}   by: {} via {}   {}   sha256: {}",
        display::text(&author(e)),
        e.source,
        ago(e.created_at_unix_ms),
        e.content_sha256
    ));
    printer.text("");
    printer.text(&display::lines(&e.body));
}

pub(crate) async fn run(cmd: &KnowledgeCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = KnowledgeServiceClient::new(channel);
    let entry = match cmd {
        KnowledgeCommand::Add { kind, title, body, file, server } => {
            let body = body_from(body.as_ref(), file.as_ref())?;
            let reply = client
                .add_knowledge(AddKnowledgeRequest {
                    kind: kind.clone(),
                    title: title.clone(),
                    body,
                    server_id: server.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            reply.entry
        }
        KnowledgeCommand::List { kind, server, limit } => {
            let reply = client
                .list_knowledge(ListKnowledgeRequest {
                    kind: kind.clone().unwrap_or_default(),
                    server_id: server.clone().unwrap_or_default(),
                    limit: *limit,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            return match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "entries": reply.entries.iter().map(json).collect::<Vec<_>>(),
                })),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = reply
                        .entries
                        .iter()
                        .map(|e| {
                            vec![
                                e.knowledge_id.clone(),
                                e.kind.clone(),
                                if e.server_id.is_empty() { "-".to_owned() } else { e.server_id.clone() },
                                author(e),
                                ago(e.created_at_unix_ms),
                                e.title.clone(),
                            ]
                        })
                        .collect();
                    printer.table(&["ID", "KIND", "SERVER", "BY", "WRITTEN", "TITLE"], &rows);
                    Ok(())
                }
            };
        }
        KnowledgeCommand::Show { id } => {
            client
                .get_knowledge(GetKnowledgeRequest { knowledge_id: id.clone() })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .entry
        }
        KnowledgeCommand::Remove { id } => {
            let removed = client
                .remove_knowledge(RemoveKnowledgeRequest { knowledge_id: id.clone() })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .entry;
            if let (OutputFormat::Table, Some(e)) = (printer.format(), &removed) {
                printer.text(&format!("removed {} ({})", e.knowledge_id, display::text(&e.title)));
                return Ok(());
            }
            removed
        }
    };
    let entry = entry.ok_or_else(|| MttrlyError::new(ErrorCode::InternalError, "central sent no entry"))?;
    match printer.format() {
        OutputFormat::Json => printer.json(&json(&entry)),
        OutputFormat::Table => {
            show(&entry, printer);
            Ok(())
        }
    }
}
