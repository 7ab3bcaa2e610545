//! `mttrly-cli audit list | verify`.

use mttrly_core::audit::{AuditActor, AuditOutcome};
use mttrly_core::tools::actions::AuditEntry;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::audit_service_client::AuditServiceClient;
use mttrly_proto::central::v1::{ListAuditRequest, VerifyAuditRequest};

use super::ago;
use crate::cli::{AuditCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

fn actor(entry: &AuditEntry) -> String {
    match &entry.actor {
        AuditActor::Human { name, .. } => name.clone(),
        AuditActor::Assistant { client_name, .. } => format!("assistant:{client_name}"),
        AuditActor::Agent { .. } => "agent".to_owned(),
        AuditActor::System => "system".to_owned(),
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
                            let outcome = match e.outcome {
                                AuditOutcome::Ok => "ok",
                                AuditOutcome::Error { code } => code.as_str(),
                            };
                            vec![
                                e.seq.to_string(),
                                ago(e.at.as_millisecond()),
                                e.source.to_string(),
                                actor(e),
                                e.kind.as_str().to_owned(),
                                e.subject.clone(),
                                e.server_id.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
                                outcome.to_owned(),
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
