//! `GET /servers/{id}`: one server: its name, environment, state and last heartbeat, what its
//! agent reported about the host, its metrics now and their history as a chart, its open alerts,
//! its recent actions and its recent audit rows. Live: `app.js` refreshes it on `server` events
//! for this id and on every `action` event. A server that is not the signed-in person's account's
//! (or does not exist, or was decommissioned) is a 404 page, the same for all three.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::display;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::actions::AuditEntry;
use mttrly_core::tools::common::HostMetrics;
use mttrly_core::tools::servers::{Alert, AlertStatus};
use mttrly_core::{ErrorCode, MttrlyError};

use super::layout::{self, Live};
use super::servers::{percent, status_word};
use super::show::{self, Names};
use super::{action, chart};
use crate::app_state::AppState;
use crate::db::actions::ActionRow;
use crate::db::alerts::AlertFilter;
use crate::db::audit::AuditFilter;
use crate::db::metrics::{HOUR_MS, MetricSample};
use crate::db::servers::ServerRow;
use crate::signin::web::SignedIn;

/// The chart's windows, in hours; the first is the default.
const WINDOWS: [i64; 3] = [6, 1, 24];

/// At most this many recent actions, audit rows and open alerts.
const RECENT: u32 = 20;

/// Everything the page shows.
struct View {
    server: ServerRow,
    status: mttrly_core::tools::common::ConnectionStatus,
    last_seen_ms: Option<i64>,
    metrics: Option<HostMetrics>,
    samples: Vec<MetricSample>,
    from_ms: i64,
    to_ms: i64,
    hours: i64,
    alerts: Vec<Alert>,
    actions: Vec<ActionRow>,
    audit: Vec<AuditEntry>,
    names: Names,
}

fn not_found(id: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::ServerNotFound, format!("no server {} in this account", display::exact(id)))
}

/// The chart window asked for (`?hours=1|6|24`); anything else is a validation error.
fn hours(raw: Option<&str>) -> Result<i64, MttrlyError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| MttrlyError::new(ErrorCode::ValidationError, "the address's query string is malformed"))?;
    match pairs.iter().rev().find(|(k, _)| k == "hours") {
        None => Ok(WINDOWS[0]),
        Some((_, v)) => v.parse::<i64>().ok().filter(|h| WINDOWS.contains(h)).ok_or_else(|| {
            MttrlyError::new(
                ErrorCode::ValidationError,
                format!("`{}` is not a chart window (1, 6 or 24 hours)", display::exact(v)),
            )
            .with_detail("field", "hours")
        }),
    }
}

async fn gather(state: &AppState, signed: &SignedIn, raw_id: &str, hours: i64) -> Result<View, MttrlyError> {
    let id = ServerId::parse(raw_id).map_err(|_| not_found(raw_id))?;
    let account = state.central.db.account(&signed.account_id);
    let crate::servers::Observed { row: server, live } =
        crate::servers::observe(&state.central, &signed.account_id, &id)
            .await
            .map_err(|e| if e.code() == ErrorCode::ServerNotFound { not_found(raw_id) } else { e })?;
    let now = crate::db::now_ms();
    let metrics = live.metrics.or_else(|| server.metrics_json.as_deref().and_then(|j| serde_json::from_str(j).ok()));
    let from_ms = now - hours * HOUR_MS;
    let samples = account.servers().metrics_history(&id, from_ms).await?;
    let open = AlertFilter {
        server_id: Some(id.clone()),
        status: Some(AlertStatus::Open),
        limit: RECENT,
        ..AlertFilter::default()
    };
    let alerts = account.alerts().list(&open).await?;
    let actions = account.actions().list(Some(&id), None, RECENT).await?;
    // A decision a moment ago may still be on its way into the audit log.
    state.central.audit.flush().await;
    let audit = account
        .audit()
        .list(&AuditFilter { server_id: Some(id.clone()), limit: RECENT, ..AuditFilter::default() })
        .await?;
    let names = account.users().list().await?.into_iter().map(|u| (u.id, u.name)).collect();
    Ok(View {
        last_seen_ms: live.last_seen_ms.or(server.last_seen_at),
        server,
        status: live.status,
        metrics,
        samples,
        from_ms,
        to_ms: now,
        hours,
        alerts,
        actions,
        audit,
        names,
    })
}

/// `GET /servers/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fragment = layout::wants_fragment(&headers);
    let live = Live::Server(display::exact(&id).into_owned());
    let view = match hours(raw.as_deref()) {
        Ok(h) => gather(&state, &signed, &id, h).await,
        Err(e) => Err(e),
    };
    match view {
        Ok(view) => {
            let title = format!("Server {}", display::text(&view.server.name));
            let url = if view.hours == WINDOWS[0] {
                format!("/servers/{}", view.server.id)
            } else {
                format!("/servers/{}?hours={}", view.server.id, view.hours)
            };
            layout::page_at(StatusCode::OK, &signed, &title, &live, &url, fragment, &body(&view))
        }
        Err(e) if e.code() == ErrorCode::ServerNotFound => {
            let main =
                html! { h1 { "No such server" } p.err { (e.message()) } p { a href="/servers" { "All servers" } } };
            layout::page(StatusCode::NOT_FOUND, &signed, "No such server", &live, fragment, &main)
        }
        Err(e) if e.code() == ErrorCode::ValidationError => {
            let main = html! { h1 { "Server" } p.err role="alert" { (e.message()) } };
            layout::page(layout::status_of(&e), &signed, "Server", &live, fragment, &main)
        }
        Err(e) => layout::failed(&signed, &live, fragment, &e),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // a size shown to one decimal
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

fn uptime(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    if days > 0 { format!("{days} d {hours} h") } else { format!("{hours} h {minutes} min") }
}

fn body(v: &View) -> Markup {
    let s = &v.server;
    let status = status_word(v.status);
    html! {
        p.crumbs { a href="/servers" { "← All servers" } }
        h1 { (display::text(&s.name)) " " span.env.(s.environment.as_str()) { (s.environment.as_str()) } }
        dl.facts {
            dt { "State" } dd { span.conn.(status.replace(' ', "-")) { (status) } }
            dt { "Last seen" } dd { @if let Some(ms) = v.last_seen_ms { (show::time(ms)) } @else { "never" } }
            dt { "Server id" } dd { code { (s.id) } }
            dt { "Registered" } dd { (show::time(s.created_at)) }
            @if let Some(h) = &s.host {
                dt { "Agent version" } dd { (display::text(&h.agent_version)) }
                dt { "Host name" } dd { (display::text(&h.hostname)) }
                dt { "Operating system" } dd { (display::text(&h.os)) }
                dt { "Kernel" } dd { (display::text(&h.kernel)) " (" (display::text(&h.arch)) ")" }
                dt { "Capabilities" } dd {
                    @let caps = h.capabilities.to_wire();
                    @if caps.is_empty() { "none" } @else {
                        ul.caps { @for c in &caps { li { code { (c) } } } }
                    }
                }
            } @else {
                dt { "Agent" } dd { "Not connected yet: no host facts." }
            }
        }
        section #metrics {
            h2 { "Metrics now" }
            (now_metrics(v.metrics.as_ref()))
        }
        section #history {
            h2 { "History" }
            nav.windows aria-label="Chart window" {
                @for h in [1, 6, 24] {
                    @let href = if h == WINDOWS[0] { format!("/servers/{}#history", s.id) } else { format!("/servers/{}?hours={h}#history", s.id) };
                    a href=(href) aria-current=[(h == v.hours).then_some("true")] { "Last " (h) " h" }
                }
            }
            (chart::history(&v.samples, v.from_ms, v.to_ms))
        }
        section #alerts {
            h2 { "Open alerts" }
            @if v.alerts.is_empty() { p.empty { "None." } } @else {
                ul.alerts {
                    @for a in &v.alerts {
                        li {
                            span.severity.(a.severity.as_str()) { (a.severity.as_str()) } " "
                            strong { (display::text(&a.rule)) } ": " (display::text(&a.summary))
                            " — since " (show::time(a.opened_at.as_millisecond()))
                        }
                    }
                }
            }
        }
        section #actions {
            h2 { "Recent actions" }
            @if v.actions.is_empty() { p.empty { "None." } } @else {
                div.scroll {
                    table.servers {
                        thead { tr { th scope="col" { "Action" } th scope="col" { "State" } th scope="col" { "Requested" } th scope="col" { "By" } } }
                        tbody {
                            @for a in &v.actions {
                                tr {
                                    th scope="row" { a href=(super::action_path(&a.id)) { (display::text(&a.description)) } }
                                    td { span.state.(a.status.as_str()) { (a.status.as_str()) } }
                                    td { (show::time(a.created_at)) }
                                    td { (show::principal(&a.requested_by, &v.names)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #audit {
            h2 { "Recent audit" }
            @if v.audit.is_empty() { p.empty { "None." } } @else {
                ol.life {
                    @for row in &v.audit {
                        li {
                            (show::time(row.at.as_millisecond())) " "
                            strong { (row.kind.as_str()) } " "
                            code { (display::text(&row.subject)) }
                            " by " (action::actor(&row.actor, &v.names)) " via " (row.source.as_str())
                            @if let mttrly_core::audit::AuditOutcome::Error { code } = &row.outcome {
                                " " span.err { "(refused: " (code.as_str()) ")" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn now_metrics(m: Option<&HostMetrics>) -> Markup {
    html! {
        @match m {
            None => p.empty { "No metrics reported yet." },
            Some(m) => {
                dl.facts {
                    dt { "CPU" } dd { (percent(m.cpu_percent)) }
                    dt { "Memory" } dd { (percent(m.memory_percent)) " of " (bytes(m.memory_total_bytes)) " (" (bytes(m.memory_used_bytes)) " used)" }
                    @if m.swap_total_bytes > 0 {
                        dt { "Swap" } dd { (bytes(m.swap_used_bytes)) " of " (bytes(m.swap_total_bytes)) }
                    }
                    dt { "Load (1/5/15 min)" } dd { (format!("{:.2} / {:.2} / {:.2}", m.load_average[0], m.load_average[1], m.load_average[2])) }
                    dt { "Up" } dd { (uptime(m.uptime_seconds)) }
                    dt { "Reported" } dd { (show::time(m.collected_at.as_millisecond())) }
                }
                @if !m.filesystems.is_empty() {
                    div.scroll {
                        table.servers {
                            thead { tr { th scope="col" { "Mount point" } th scope="col" { "Type" } th scope="col" { "Used" } th scope="col" { "Size" } } }
                            tbody {
                                @for fs in &m.filesystems {
                                    tr {
                                        th scope="row" { (display::text(&fs.mount_point)) }
                                        td { (display::text(&fs.fs_type)) }
                                        td { (percent(fs.used_percent)) }
                                        td { (bytes(fs.used_bytes)) " of " (bytes(fs.total_bytes)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_windows_are_accepted() {
        assert_eq!(hours(None).ok(), Some(6));
        assert_eq!(hours(Some("hours=24")).ok(), Some(24));
        assert_eq!(hours(Some("hours=1&x=2")).ok(), Some(1));
        for bad in ["hours=7", "hours=-1", "hours=a"] {
            assert_eq!(hours(Some(bad)).err().map(|e| e.code()), Some(ErrorCode::ValidationError), "{bad}");
        }
    }

    #[test]
    fn sizes_and_uptimes_read_for_people() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
        assert_eq!(uptime(90_061), "1 d 1 h");
        assert_eq!(uptime(3_720), "1 h 2 min");
    }
}
