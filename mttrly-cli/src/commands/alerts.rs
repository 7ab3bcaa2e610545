//! `mttrly-cli alerts list`.

use mttrly_core::MttrlyError;
use mttrly_proto::central::v1::ListAlertsRequest;
use mttrly_proto::central::v1::alert_service_client::AlertServiceClient;

use super::{ago, rfc3339};
use crate::cli::{AlertsCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

pub(crate) async fn run(cmd: &AlertsCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let AlertsCommand::List { server, status } = cmd;
    let reply = AlertServiceClient::new(channel)
        .list_alerts(ListAlertsRequest {
            server_id: server.clone().unwrap_or_default(),
            status: status.clone().unwrap_or_default(),
            limit: 0,
        })
        .await
        .map_err(|s| error(&s))?
        .into_inner();
    let (alerts, unmatched) = (reply.alerts, reply.unmatched_alerts);
    match printer.format() {
        OutputFormat::Json => printer.json(&serde_json::json!({
            "alerts": alerts.iter().map(|a| serde_json::json!({
                "alert_id": a.alert_id,
                "server_id": a.server_id,
                "rule": a.rule,
                "severity": a.severity,
                "status": a.status,
                "summary": a.summary,
                "opened_at": rfc3339(a.opened_at_unix_ms),
                "resolved_at": rfc3339(a.resolved_at_unix_ms),
            })).collect::<Vec<_>>(),
            "unmatched_alerts": unmatched.iter().map(|a| serde_json::json!({
                "alert_id": a.alert_id,
                "source": a.source,
                "name": a.name,
                "host": (!a.host.is_empty()).then_some(&a.host),
                "severity": a.severity,
                "status": a.status,
                "summary": a.summary,
                "labels": a.labels.iter().collect::<std::collections::BTreeMap<_, _>>(),
                "opened_at": rfc3339(a.opened_at_unix_ms),
                "resolved_at": rfc3339(a.resolved_at_unix_ms),
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            // One table, newest first: alerts for a host no server matches show it as
            // `(unknown: HOST)` where the server would be.
            let mut rows: Vec<(i64, Vec<String>)> = alerts
                .iter()
                .map(|a| {
                    (
                        a.opened_at_unix_ms,
                        vec![
                            a.alert_id.clone(),
                            a.server_id.clone(),
                            a.severity.clone(),
                            a.status.clone(),
                            ago(a.opened_at_unix_ms),
                            a.summary.clone(),
                        ],
                    )
                })
                .chain(unmatched.iter().map(|a| {
                    let host = if a.host.is_empty() { "?" } else { a.host.as_str() };
                    (
                        a.opened_at_unix_ms,
                        vec![
                            a.alert_id.clone(),
                            format!("(unknown: {host})"),
                            a.severity.clone(),
                            a.status.clone(),
                            ago(a.opened_at_unix_ms),
                            a.summary.clone(),
                        ],
                    )
                }))
                .collect();
            rows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, row)| row).collect();
            printer.table(&["ID", "SERVER", "SEVERITY", "STATUS", "OPENED", "SUMMARY"], &rows);
            Ok(())
        }
    }
}
