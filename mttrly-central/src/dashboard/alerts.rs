//! `GET /alerts`: the account's alerts within the plan's retention, open ones first, then the
//! resolved ones newest first, paged ("Older"), filtered by status, severity and server through a
//! plain `<form method=get>`; then, in their own section, alerts monitoring sent for hosts no
//! server matches (an operator must see alerts that reached no server).
//!
//! Each alert shows its server (linked to its page), severity, rule, summary, where it came from
//! (an agent rule, or an inbound webhook: its rule is `<source>:<name>`, see `hooks`) and when it
//! opened and resolved. Who may see: anyone signed in to the account, viewers too, as gRPC
//! `ListAlerts` (any caller of the account); only the signed-in person's account, always.
//!
//! Paging is by offset into the resolved alerts (`older=N`): `AlertFilter` has no keyset bound
//! yet, so a page costs the rows before it, and paging stops at [`MAX_DEPTH`] (the page says so;
//! narrowing the filters reaches older alerts).

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::Severity;
use mttrly_core::tools::servers::{Alert, AlertStatus, UnmatchedAlert};
use mttrly_core::{ErrorCode, MttrlyError, display};

use super::audit::{Params, invalid};
use super::layout::{self, Live};
use super::show;
use crate::app_state::AppState;
use crate::db::alerts::AlertFilter;
use crate::signin::web::SignedIn;

/// Resolved alerts per page.
const PAGE: u32 = 50;
/// The most open alerts shown at once (a storm beyond this says so).
const MAX_OPEN: u32 = 500;
/// The deepest offset paging reaches.
const MAX_DEPTH: u32 = 5000;
/// The most unmatched alerts shown.
const MAX_UNMATCHED: u32 = 200;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The filters as given.
#[derive(Default)]
struct Given {
    status: String,
    severity: String,
    server: String,
}

impl Given {
    fn query(&self) -> String {
        [("status", &self.status), ("severity", &self.severity), ("server", &self.server)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", crate::web::page::urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// What the filters ask for.
struct Wanted {
    status: Option<AlertStatus>,
    severity: Option<Severity>,
    server: Option<ServerId>,
    /// How many resolved alerts to skip.
    older: u32,
}

fn wanted(params: &Params, servers: &HashMap<ServerId, String>) -> Result<Wanted, MttrlyError> {
    let status = match params.get("status") {
        "" => None,
        "open" => Some(AlertStatus::Open),
        "resolved" => Some(AlertStatus::Resolved),
        other => {
            return Err(invalid(
                "status",
                format!("unknown status `{}`: expected open or resolved", display::exact(other)),
            ));
        }
    };
    let severity = match params.get("severity") {
        "" => None,
        v => Some(Severity::ALL.into_iter().find(|s| s.as_str() == v).ok_or_else(|| {
            invalid("severity", format!("unknown severity `{}`: expected info, warning or critical", display::exact(v)))
        })?),
    };
    let server = match params.get("server") {
        "" => None,
        v => {
            let unknown = || invalid("server", format!("no server `{}` in this account", display::exact(v)));
            let id = ServerId::parse(v).map_err(|_| unknown())?;
            if !servers.contains_key(&id) {
                return Err(unknown());
            }
            Some(id)
        }
    };
    let older = match params.get("older") {
        "" => 0,
        v => v.parse::<u32>().ok().filter(|n| *n <= MAX_DEPTH).ok_or_else(|| {
            invalid("older", format!("`older` must be a whole number up to {MAX_DEPTH}, not `{}`", display::exact(v)))
        })?,
    };
    Ok(Wanted { status, severity, server, older })
}

/// Everything the page shows.
struct View {
    open: Vec<Alert>,
    resolved: Vec<Alert>,
    /// The offset of the next page of resolved alerts, when there is one within reach.
    older: Option<u32>,
    /// More resolved alerts exist beyond what paging reaches.
    beyond: bool,
    unmatched: Vec<UnmatchedAlert>,
    retention_days: u32,
}

async fn gather(state: &AppState, signed: &SignedIn, w: &Wanted) -> Result<View, MttrlyError> {
    let account = state.central.db.account(&signed.account_id);
    let plan =
        account.plan().await?.ok_or_else(|| MttrlyError::new(ErrorCode::Forbidden, "this account no longer exists"))?;
    let retention_days = plan.limits().log_retention_days;
    let base = AlertFilter {
        server_id: w.server.clone(),
        severity: w.severity,
        status: None,
        since: crate::db::now_ms() - i64::from(retention_days) * DAY_MS,
        limit: 0,
    };
    let alerts = account.alerts();
    let open = if w.status.is_none_or(|s| s == AlertStatus::Open) && w.older == 0 {
        alerts.list(&AlertFilter { status: Some(AlertStatus::Open), limit: MAX_OPEN, ..base.clone() }).await?
    } else {
        Vec::new()
    };
    let (mut resolved, mut older, mut beyond) = (Vec::new(), None, false);
    if w.status.is_none_or(|s| s == AlertStatus::Resolved) {
        let filter = AlertFilter { status: Some(AlertStatus::Resolved), limit: w.older + PAGE + 1, ..base.clone() };
        let mut rows = alerts.list(&filter).await?;
        let skip = usize::try_from(w.older).unwrap_or(usize::MAX).min(rows.len());
        rows.drain(..skip);
        let page = usize::try_from(PAGE).unwrap_or(usize::MAX);
        if rows.len() > page {
            rows.truncate(page);
            let next = w.older + PAGE;
            if next <= MAX_DEPTH { older = Some(next) } else { beyond = true }
        }
        resolved = rows;
    }
    let unmatched = if w.server.is_none() && w.older == 0 {
        alerts.list_unmatched(&AlertFilter { status: w.status, limit: MAX_UNMATCHED, ..base }).await?
    } else {
        Vec::new()
    };
    Ok(View { open, resolved, older, beyond, unmatched, retention_days })
}

/// `GET /alerts`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fragment = layout::wants_fragment(&headers);
    let servers = match state.central.db.account(&signed.account_id).servers().list().await {
        Ok(list) => list.into_iter().map(|s| (s.id, s.name)).collect::<HashMap<_, _>>(),
        Err(e) => return layout::failed(&signed, &Live::Alerts, fragment, &e),
    };
    let parsed = Params::parse(raw.as_deref());
    let given = parsed.as_ref().map_or_else(
        |_| Given::default(),
        |p| Given {
            status: p.get("status").to_owned(),
            severity: p.get("severity").to_owned(),
            server: p.get("server").to_owned(),
        },
    );
    let wanted = parsed.and_then(|p| wanted(&p, &servers));
    let mut url = with("/alerts", &given.query());
    let (status, main) = match wanted {
        Err(e) => (layout::status_of(&e), body(&given, &servers, Err(&e), 0)),
        Ok(w) => match gather(&state, &signed, &w).await {
            Ok(view) => {
                if w.older > 0 {
                    url = with(&url, &format!("older={}", w.older));
                }
                (StatusCode::OK, body(&given, &servers, Ok(&view), w.older))
            }
            Err(e) => return layout::failed(&signed, &Live::Alerts, fragment, &e),
        },
    };
    layout::page_at(status, &signed, "Alerts", &Live::Alerts, &url, fragment, &main)
}

/// `path` with `pair` added to its query.
fn with(path: &str, pair: &str) -> String {
    match (pair.is_empty(), path.contains('?')) {
        (true, _) => path.to_owned(),
        (false, true) => format!("{path}&{pair}"),
        (false, false) => format!("{path}?{pair}"),
    }
}

fn body(given: &Given, servers: &HashMap<ServerId, String>, view: Result<&View, &MttrlyError>, older: u32) -> Markup {
    html! {
        h1 { "Alerts" }
        (form(given, servers))
        @match view {
            Err(e) => { p.err role="alert" { "Cannot show the alerts (" (e.code().as_str()) "): " (e.message()) } }
            Ok(v) => {
                p.retention { "Alerts of the last " (v.retention_days) " days (this plan's retention)." }
                @if older == 0 && given.status != "resolved" {
                    section.open-alerts {
                        h2 { "Open" }
                        @if v.open.is_empty() {
                            p.empty { "No open alert matches." }
                        } @else {
                            (table(&v.open, servers))
                            @if v.open.len() >= usize::try_from(MAX_OPEN).unwrap_or(usize::MAX) {
                                p.warn { "Showing the newest " (MAX_OPEN) " open alerts: narrow by server or severity to see the rest." }
                            }
                        }
                    }
                }
                @if given.status != "open" {
                    section.resolved-alerts {
                        h2 { "Resolved" @if older > 0 { " (older)" } }
                        @if v.resolved.is_empty() {
                            p.empty { "No resolved alert matches." }
                        } @else {
                            (table(&v.resolved, servers))
                        }
                        nav.paging aria-label="Alert pages" {
                            @if older > 0 { a href=(with("/alerts", &given.query())) { "Newest" } }
                            @if let Some(next) = v.older {
                                a href=(with(&with("/alerts", &given.query()), &format!("older={next}"))) rel="next" { "Older" }
                            }
                        }
                        @if v.beyond {
                            p.warn { "Paging stops after " (MAX_DEPTH) " resolved alerts: narrow by server or severity to reach older ones." }
                        }
                    }
                }
                @if !v.unmatched.is_empty() {
                    section.unmatched {
                        h2 { "Alerts for no known server" }
                        p { "Monitoring sent these for hosts that match none of this account's servers (a typo in a label, a host not enrolled yet): they reached no server." }
                        (unmatched(&v.unmatched))
                    }
                }
            }
        }
    }
}

fn form(g: &Given, servers: &HashMap<ServerId, String>) -> Markup {
    let mut list: Vec<(&ServerId, &String)> = servers.iter().collect();
    list.sort_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
    html! {
        form.query method="get" action="/alerts" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in ["open", "resolved"] { option value=(s) selected[g.status == s] { (s) } }
                }
            }
            label { "Severity "
                select name="severity" {
                    option value="" { "any" }
                    @for s in Severity::ALL { option value=(s.as_str()) selected[g.severity == s.as_str()] { (s.as_str()) } }
                }
            }
            label { "Server "
                select name="server" {
                    option value="" { "any" }
                    @for (id, name) in &list {
                        option value=(id.as_str()) selected[g.server == id.as_str()] { (display::text(name)) }
                    }
                }
            }
            div.buttons {
                button type="submit" { "Filter" }
                " " a href="/alerts" { "Clear" }
            }
        }
    }
}

/// Where an alert came from: its rule's prefix names the webhook for inbound alerts.
fn source(rule: &str) -> &'static str {
    match rule.split_once(':').map(|(s, _)| s) {
        Some("alertmanager") => "Alertmanager",
        Some("grafana") => "Grafana",
        Some("pagerduty") => "PagerDuty",
        _ => "agent rule",
    }
}

/// When it opened and, below, when it resolved (or that it is open).
fn when(opened: jiff::Timestamp, resolved: Option<jiff::Timestamp>) -> Markup {
    html! {
        (show::time(opened.as_millisecond())) br;
        @match resolved {
            Some(t) => { "resolved " (show::time(t.as_millisecond())) },
            None => span.open { "open" },
        }
    }
}

fn table(alerts: &[Alert], servers: &HashMap<ServerId, String>) -> Markup {
    html! {
        div.scroll {
            table.alerts {
                thead { tr {
                    th scope="col" { "Server" } th scope="col" { "Severity" } th scope="col" { "Rule and source" }
                    th scope="col" { "Summary" } th scope="col" { "Opened / resolved" }
                } }
                tbody {
                    @for a in alerts {
                        tr #(format!("alert-{}", a.alert_id)) {
                            td {
                                a href=(format!("/servers/{}", crate::web::page::urlencode(a.server_id.as_str()))) {
                                    (servers.get(&a.server_id).map_or_else(|| a.server_id.to_string(), |n| display::text(n).into_owned()))
                                }
                            }
                            td { span.severity.(a.severity.as_str()) { (a.severity.as_str()) } }
                            td.rule { code { (display::exact(&a.rule)) } br; span.source { (source(&a.rule)) } }
                            td.summary { (display::text(&a.summary)) }
                            td { (when(a.opened_at, a.resolved_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn unmatched(alerts: &[UnmatchedAlert]) -> Markup {
    html! {
        div.scroll {
            table.alerts.unmatched {
                thead { tr {
                    th scope="col" { "Host" } th scope="col" { "Severity" } th scope="col" { "Name and source" }
                    th scope="col" { "Summary" } th scope="col" { "Opened / resolved" }
                } }
                tbody {
                    @for a in alerts {
                        tr #(format!("alert-{}", a.alert_id)) {
                            td { @match &a.host { Some(h) => code { (display::exact(h)) }, None => "—" } }
                            td { span.severity.(a.severity.as_str()) { (a.severity.as_str()) } }
                            td.rule { (display::text(&a.name)) br; span.source { (source(&format!("{}:", a.source))) } }
                            td.summary { (display::text(&a.summary)) }
                            td { (when(a.opened_at, a.resolved_at)) }
                        }
                    }
                }
            }
        }
    }
}
