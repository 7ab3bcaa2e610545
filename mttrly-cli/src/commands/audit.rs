//! `mttrly-cli audit list | verify`.

use mttrly_core::tools::actions::AuditEntry;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::{ListAuditRequest, VerifyAuditRequest};

use super::ago;
use crate::cli::{AuditCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

fn actor(entry: &AuditEntry) -> String {
    match serde_json::to_value(&entry.actor) {
        Ok(v) => match v["type"].as_str() {
            Some("human") => v["name"].as_str().unwrap_or("human").to_owned(),
            Some("assistant") => format!("assistant:{}", v["client_name"].as_str().unwrap_or("?")),
            Some("agent") => "agent".to_owned(),
            Some(other) => other.to_owned(),
            None => "?".to_owned(),
        },
        Err(_) => "?".to_owned(),
    }
}

pub(crate) async fn run(cmd: &AuditCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = AuditServiceClient::new(channel);
    match cmd {
        AuditCommand::List { server, limit, before } => {
            let page = client
                .list_audit(ListAuditRequest {
                    server_id: server.clone().unwrap_or_default(),
                    before_seq: before.unwrap_or(0),
                    limit: *limit,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            let entries: Vec<AuditEntry> =
                page.entries_json.iter().filter_map(|j| serde_json::from_str(j).ok()).collect();
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "entries": entries,
                    "next_before_seq": (page.next_before_seq > 0).then_some(page.next_before_seq),
                })),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| {
                            let outcome = serde_json::to_value(e.outcome).ok();
                            let outcome = match outcome.as_ref().and_then(|o| o["code"].as_str()) {
                                Some(code) => code.to_owned(),
                                None => "ok".to_owned(),
                            };
                            vec![
                                e.seq.to_string(),
                                ago(e.at.as_millisecond()),
                                e.source.to_string(),
                                actor(e),
                                serde_json::to_value(e.kind)
                                    .ok()
                                    .and_then(|k| k.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                e.subject.clone(),
                                e.server_id.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
                                outcome,
                            ]
                        })
                        .collect();
                    printer.table(&["SEQ", "WHEN", "SOURCE", "ACTOR", "KIND", "SUBJECT", "SERVER", "OUTCOME"], &rows);
                    Ok(())
                }
            }
        }
        AuditCommand::Verify => {
            let v = client.verify_audit(VerifyAuditRequest {}).await.map_err(|s| error(&s))?.into_inner();
            if v.ok {
                match printer.format() {
                    OutputFormat::Json => {
                        printer.json(&serde_json::json!({ "ok": true, "rows_checked": v.rows_checked }))
                    }
                    OutputFormat::Table => {
                        printer.text(&format!("audit log intact: {} entries checked", v.rows_checked));
                        Ok(())
                    }
                }
            } else {
                if printer.format() == OutputFormat::Json {
                    printer.json(&serde_json::json!({
                        "ok": false,
                        "rows_checked": v.rows_checked,
                        "first_bad_seq": v.first_bad_seq,
                        "problem": v.problem,
                    }))?;
                }
                Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!("audit log broken at entry {}: {}", v.first_bad_seq, v.problem),
                )
                .with_detail("first_bad_seq", v.first_bad_seq)
                .with_detail("rows_checked", v.rows_checked)
                .with_detail(
                    "hint",
                    "the database was modified outside mttrly: restore it from a backup and investigate",
                ))
            }
        }
    }
}
