//! `GET /servers`: every server of the account with its agent's state now (online, last seen,
//! CPU, memory, fullest disk, load, agent version), its environment and its open alerts. Live
//! state comes from the agent registry (heartbeats in memory); a server whose agent is not
//! connected shows what was last flushed to the database.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::MttrlyError;
use mttrly_core::display;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};
use mttrly_core::tools::servers::AlertStatus;
use serde::Deserialize;

use super::layout::{self, Live};
use super::show;
use crate::app_state::AppState;
use crate::db::alerts::AlertFilter;
use crate::signin::web::SignedIn;

/// What the table shows of a server's metrics. Read from the stored JSON without the rest of
/// [`HostMetrics`] (its timestamps and byte counts): ten thousand rows parse in a few ms.
#[derive(Deserialize)]
struct Shown {
    cpu_percent: f64,
    memory_percent: f64,
    load_average: [f64; 3],
    filesystems: Vec<Disk>,
}

/// One filesystem, as the table shows it.
#[derive(Deserialize)]
struct Disk {
    mount_point: String,
    used_percent: f64,
}

impl From<HostMetrics> for Shown {
    fn from(m: HostMetrics) -> Self {
        Self {
            cpu_percent: m.cpu_percent,
            memory_percent: m.memory_percent,
            load_average: m.load_average,
            filesystems: m
                .filesystems
                .into_iter()
                .map(|f| Disk { mount_point: f.mount_point, used_percent: f.used_percent })
                .collect(),
        }
    }
}

/// One row of the table.
pub(super) struct Row {
    name: String,
    environment: &'static str,
    status: ConnectionStatus,
    last_seen_ms: Option<i64>,
    metrics: Option<Shown>,
    agent_version: Option<String>,
    open_alerts: usize,
}

async fn gather(state: &AppState, signed: &SignedIn) -> Result<Vec<Row>, MttrlyError> {
    let account = state.central.db.account(&signed.account_id);
    let servers = account.servers().list().await?;
    let open = AlertFilter { status: Some(AlertStatus::Open), limit: u32::MAX, ..AlertFilter::default() };
    let mut alerts: HashMap<ServerId, usize> = HashMap::new();
    for alert in state.central.db.account(&signed.account_id).alerts().list(&open).await? {
        *alerts.entry(alert.server_id).or_default() += 1;
    }
    let now = crate::db::now_ms();
    Ok(servers
        .into_iter()
        .map(|s| {
            let live = state.central.agents.status(&s.id, now);
            let metrics = live
                .metrics
                .map(Shown::from)
                .or_else(|| s.metrics_json.as_deref().and_then(|j| serde_json::from_str(j).ok()));
            Row {
                open_alerts: alerts.get(&s.id).copied().unwrap_or(0),
                name: s.name,
                environment: s.environment.as_str(),
                status: live.status,
                last_seen_ms: live.last_seen_ms.or(s.last_seen_at),
                metrics,
                agent_version: s.host.map(|h| h.agent_version),
            }
        })
        .collect())
}

/// `GET /servers`.
pub(super) async fn page(State(state): State<AppState>, signed: SignedIn, headers: HeaderMap) -> Response {
    let fragment = layout::wants_fragment(&headers);
    match gather(&state, &signed).await {
        Ok(rows) => layout::page(StatusCode::OK, &signed, "Servers", &Live::Servers, fragment, &table(&rows)),
        Err(e) => layout::failed(&signed, &Live::Servers, fragment, &e),
    }
}

fn percent(v: f64) -> String {
    format!("{v:.0}%")
}

/// The table.
pub(super) fn table(rows: &[Row]) -> Markup {
    html! {
        h1 { "Servers" }
        @if rows.is_empty() {
            p.empty { "No server yet: " code { "mttrly-cli servers add NAME" } " prints the command that installs an agent." }
        } @else {
            div.scroll {
                table.servers {
                    thead { tr {
                        th scope="col" { "Server" } th scope="col" { "Environment" } th scope="col" { "State" }
                        th scope="col" { "Last seen" } th scope="col" { "CPU" } th scope="col" { "Memory" }
                        th scope="col" { "Fullest disk" } th scope="col" { "Load (1/5/15 min)" }
                        th scope="col" { "Agent" } th scope="col" { "Open alerts" }
                    } }
                    tbody {
                        @for r in rows {
                            @let status = match r.status {
                                ConnectionStatus::Online => "online",
                                ConnectionStatus::Offline => "offline",
                                ConnectionStatus::Pending => "never connected",
                            };
                            tr {
                                th scope="row" { (display::text(&r.name)) }
                                td { (r.environment) }
                                td { span.conn.(status.replace(' ', "-")) { (status) } }
                                td { @if let Some(ms) = r.last_seen_ms { (show::time(ms)) } @else { "never" } }
                                @if let Some(m) = &r.metrics {
                                    td { (percent(m.cpu_percent)) }
                                    td { (percent(m.memory_percent)) }
                                    td {
                                        @if let Some(fs) = m.filesystems.iter().max_by(|a, b| a.used_percent.total_cmp(&b.used_percent)) {
                                            (percent(fs.used_percent)) " " (display::text(&fs.mount_point))
                                        }
                                    }
                                    td { (format!("{:.2} / {:.2} / {:.2}", m.load_average[0], m.load_average[1], m.load_average[2])) }
                                } @else {
                                    td { "—" } td { "—" } td { "—" } td { "—" }
                                }
                                td { (r.agent_version.as_deref().map_or_else(String::new, |v| display::text(v).into_owned())) }
                                td.(if r.open_alerts > 0 { "alerting" } else { "quiet" }) { (r.open_alerts) }
                            }
                        }
                    }
                }
            }
        }
    }
}
