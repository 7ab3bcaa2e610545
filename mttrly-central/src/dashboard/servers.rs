//! `GET /servers`: the account's servers, a page at a time, with the fleet's totals above
//! (servers, online, offline, never connected, alerting), a filter by name, environment and
//! state, and previous / next links: all plain links and a GET form, so paging works without
//! JavaScript and a filtered page keeps its filter when `app.js` refreshes it.
//!
//! Why it stays fast with ten thousand servers: the whole account is read in brief (id, name,
//! environment: no metrics JSON, no host facts), classified online / offline / never under one
//! lock of the agent registry, counted and filtered in memory; open alerts come from one grouped
//! count; only the shown page's full rows are read, and only its metrics parsed or copied from
//! the registry.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::display;
use mttrly_core::ids::ServerId;
use mttrly_core::tools::common::{ConnectionStatus, HostMetrics};
use mttrly_core::{Environment, ErrorCode, MttrlyError};
use serde::Deserialize;

use super::layout::{self, Live};
use super::show;
use crate::app_state::AppState;
use crate::db::servers::ServerBrief;
use crate::signin::web::SignedIn;

/// Servers per page: a table a person can scan, rendered in well under a millisecond.
pub(super) const PAGE_SIZE: usize = 100;

/// The longest name filter accepted (names are at most this long anyway).
const MAX_QUERY_CHARS: usize = 200;

/// What the table shows of a server's metrics. Read from the stored JSON without the rest of
/// [`HostMetrics`] (its timestamps and byte counts).
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

/// A state to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    Online,
    Offline,
    Never,
    Alerting,
}

impl StateFilter {
    const ALL: [Self; 4] = [Self::Online, Self::Offline, Self::Never, Self::Alerting];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Never => "never",
            Self::Alerting => "alerting",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Never => "never connected",
            Self::Alerting => "with open alerts",
        }
    }
}

/// The filter and page asked for, as typed (echoed back into the form).
#[derive(Debug, Clone, Default)]
struct Given {
    q: String,
    env: String,
    state: String,
    page: String,
}

/// The filter and page, checked.
#[derive(Debug, Clone, Default)]
struct Wanted {
    /// Lower-cased name fragment; empty matches every name.
    q: String,
    env: Option<Environment>,
    state: Option<StateFilter>,
    /// 1-based.
    page: usize,
}

impl Given {
    /// The last value of each known parameter (unknown ones ignored).
    fn parse(raw: Option<&str>) -> Result<Self, MttrlyError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| MttrlyError::new(ErrorCode::ValidationError, "the address's query string is malformed"))?;
        let mut given = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "q" => given.q = v,
                "env" => given.env = v,
                "state" => given.state = v,
                "page" => given.page = v,
                _ => {}
            }
        }
        Ok(given)
    }

    fn check(&self) -> Result<Wanted, MttrlyError> {
        let invalid = |field: &str, message: String| {
            MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field.to_owned())
        };
        let q = self.q.trim();
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid("q", format!("the name filter is longer than {MAX_QUERY_CHARS} characters")));
        }
        let env = match self.env.as_str() {
            "" => None,
            e => Some(e.parse::<Environment>().map_err(|_| {
                invalid(
                    "env",
                    format!("unknown environment `{}` (production, staging or development)", display::exact(e)),
                )
            })?),
        };
        let state = match self.state.as_str() {
            "" => None,
            s => Some(StateFilter::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
                invalid("state", format!("unknown state `{}` (online, offline, never or alerting)", display::exact(s)))
            })?),
        };
        let page = match self.page.as_str() {
            "" => 1,
            p => p
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| invalid("page", format!("page `{}` is not a page number", display::exact(p))))?,
        };
        Ok(Wanted { q: q.to_lowercase(), env, state, page })
    }
}

impl Wanted {
    /// The query string of this filter at `page` (empty for the first page unfiltered).
    fn query(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if let Some(env) = self.env {
            pairs.push(("env", env.as_str().to_owned()));
        }
        if let Some(state) = self.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    fn url(&self, page: usize) -> String {
        let query = self.query(page);
        if query.is_empty() { "/servers".to_owned() } else { format!("/servers?{query}") }
    }

    fn is_filtered(&self) -> bool {
        !self.q.is_empty() || self.env.is_some() || self.state.is_some()
    }
}

/// The account's totals, whatever the filter.
#[derive(Debug, Default)]
struct Totals {
    servers: usize,
    online: usize,
    offline: usize,
    never: usize,
    alerting: usize,
}

/// One row of the table.
struct Row {
    id: ServerId,
    name: String,
    environment: &'static str,
    status: ConnectionStatus,
    last_seen_ms: Option<i64>,
    metrics: Option<Shown>,
    agent_version: Option<String>,
    open_alerts: u32,
}

/// What the page shows.
struct View {
    totals: Totals,
    /// Servers matching the filter.
    matching: usize,
    rows: Vec<Row>,
}

async fn gather(state: &AppState, signed: &SignedIn, wanted: &Wanted) -> Result<View, MttrlyError> {
    let servers = state.central.db.account(&signed.account_id).servers();
    let briefs = servers.briefs().await?;
    let alerts = servers.open_alert_counts().await?;
    let now = crate::db::now_ms();
    let states = state.central.agents.connection_states(briefs.iter().map(|b| &b.id), now);
    let mut totals = Totals { servers: briefs.len(), ..Totals::default() };
    let mut matching: Vec<&ServerBrief> = Vec::new();
    for (brief, status) in briefs.iter().zip(&states) {
        let alerting = alerts.contains_key(&brief.id);
        match status {
            ConnectionStatus::Online => totals.online += 1,
            ConnectionStatus::Offline => totals.offline += 1,
            ConnectionStatus::Pending => totals.never += 1,
        }
        totals.alerting += usize::from(alerting);
        let state_matches = match wanted.state {
            None => true,
            Some(StateFilter::Online) => *status == ConnectionStatus::Online,
            Some(StateFilter::Offline) => *status == ConnectionStatus::Offline,
            Some(StateFilter::Never) => *status == ConnectionStatus::Pending,
            Some(StateFilter::Alerting) => alerting,
        };
        if state_matches
            && wanted.env.is_none_or(|e| e == brief.environment)
            && (wanted.q.is_empty() || brief.name.to_lowercase().contains(&wanted.q))
        {
            matching.push(brief);
        }
    }
    let shown: Vec<ServerId> = matching
        .iter()
        .skip((wanted.page - 1).saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
        .map(|b| b.id.clone())
        .collect();
    let mark = state.central.agents.mark();
    let full = if shown.is_empty() { Vec::new() } else { servers.get_many(shown).await? };
    let rows = crate::servers::observe_rows(&state.central, &signed.account_id, mark, full)
        .await?
        .into_iter()
        .map(|crate::servers::Observed { row: s, live }| {
            let metrics = live
                .metrics
                .map(Shown::from)
                .or_else(|| s.metrics_json.as_deref().and_then(|j| serde_json::from_str(j).ok()));
            Row {
                open_alerts: alerts.get(&s.id).copied().unwrap_or(0),
                environment: s.environment.as_str(),
                status: live.status,
                last_seen_ms: live.last_seen_ms.or(s.last_seen_at),
                metrics,
                agent_version: s.host.map(|h| h.agent_version),
                name: s.name,
                id: s.id,
            }
        })
        .collect();
    Ok(View { totals, matching: matching.len(), rows })
}

/// `GET /servers`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fragment = layout::wants_fragment(&headers);
    let (given, checked) = match Given::parse(raw.as_deref()) {
        Ok(given) => {
            let checked = given.check();
            (given, checked)
        }
        Err(e) => (Given::default(), Err(e)),
    };
    match checked {
        Err(e) => {
            let main = html! {
                h1 { "Servers" }
                (filter_form(&given))
                p.err role="alert" { (e.message()) }
            };
            layout::page(layout::status_of(&e), &signed, "Servers", &Live::Servers, fragment, &main)
        }
        Ok(wanted) => match gather(&state, &signed, &wanted).await {
            Ok(view) => {
                let url = wanted.url(wanted.page);
                let main = body(&given, &wanted, &view);
                layout::page_at(StatusCode::OK, &signed, "Servers", &Live::Servers, &url, fragment, &main)
            }
            Err(e) => layout::failed(&signed, &Live::Servers, fragment, &e),
        },
    }
}

pub(super) fn percent(v: f64) -> String {
    format!("{v:.0}%")
}

/// `1234567` as `1,234,567`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The filter: a GET form, so it works without JavaScript and its result is a link.
fn filter_form(given: &Given) -> Markup {
    html! {
        form.filters method="get" action="/servers" role="search" {
            label { "Name" input type="text" name="q" value=(given.q) maxlength="200" autocomplete="off"; }
            label {
                "Environment"
                select name="env" {
                    option value="" selected[given.env.is_empty()] { "any" }
                    @for e in [Environment::Production, Environment::Staging, Environment::Development] {
                        option value=(e.as_str()) selected[given.env == e.as_str()] { (e.as_str()) }
                    }
                }
            }
            label {
                "State"
                select name="state" {
                    option value="" selected[given.state.is_empty()] { "any" }
                    @for s in StateFilter::ALL {
                        option value=(s.as_str()) selected[given.state == s.as_str()] { (s.label()) }
                    }
                }
            }
            button type="submit" { "Filter" }
            a href="/servers" { "Clear" }
        }
    }
}

fn body(given: &Given, wanted: &Wanted, view: &View) -> Markup {
    let t = &view.totals;
    let pages = view.matching.div_ceil(PAGE_SIZE).max(1);
    let first = (wanted.page - 1).saturating_mul(PAGE_SIZE);
    html! {
        h1 { "Servers" }
        p.summary {
            strong { (count(t.servers)) " servers" } ": "
            span.conn.online { (count(t.online)) " online" } ", "
            span.conn.offline { (count(t.offline)) " offline" } ", "
            span.conn.never-connected { (count(t.never)) " never connected" } "; "
            span.(if t.alerting > 0 { "alerting" } else { "quiet" }) { (count(t.alerting)) " alerting" }
        }
        @if t.servers == 0 {
            p.empty { "No server yet: " code { "mttrly-cli servers add NAME" } " prints the command that installs an agent." }
        } @else {
            (filter_form(given))
            @if view.rows.is_empty() {
                p.empty {
                    @if view.matching == 0 { "No server matches this filter." }
                    @else { "No page " (wanted.page) ": " (count(view.matching)) " servers match, " (pages) " pages." }
                }
            } @else {
                p.showing aria-live="polite" {
                    "Showing " (count(first + 1)) "–" (count(first + view.rows.len())) " of " (count(view.matching))
                    @if wanted.is_filtered() { " matching" }
                    " (page " (wanted.page) " of " (pages) ")"
                }
                (table(&view.rows))
            }
            (pager(wanted, pages))
        }
    }
}

fn pager(wanted: &Wanted, pages: usize) -> Markup {
    html! {
        @if pages > 1 || wanted.page > 1 {
            nav.pager aria-label="Pages" {
                @if wanted.page > 1 {
                    a rel="prev" href=(wanted.url((wanted.page - 1).min(pages))) { "← Previous" }
                }
                @if wanted.page < pages {
                    a rel="next" href=(wanted.url(wanted.page + 1)) { "Next →" }
                }
            }
        }
    }
}

/// The table of one page.
fn table(rows: &[Row]) -> Markup {
    html! {
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
                        @let status = status_word(r.status);
                        tr {
                            th scope="row" { a href=(format!("/servers/{}", r.id)) { (display::text(&r.name)) } }
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

/// A connection state in words.
pub(super) const fn status_word(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Online => "online",
        ConnectionStatus::Offline => "offline",
        ConnectionStatus::Pending => "never connected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(raw: &str) -> Result<Wanted, MttrlyError> {
        Given::parse(Some(raw)).and_then(|g| g.check())
    }

    #[test]
    fn filters_are_checked_and_round_trip_into_links() {
        let w =
            given("q=Web%20&env=staging&state=alerting&page=3&other=x").map_err(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            (w.q.as_str(), w.env, w.state, w.page),
            ("web", Some(Environment::Staging), Some(StateFilter::Alerting), 3)
        );
        assert_eq!(w.url(4), "/servers?q=web&env=staging&state=alerting&page=4");
        assert_eq!(w.url(1), "/servers?q=web&env=staging&state=alerting");
        assert_eq!(given("").map(|w| w.url(1)).unwrap_or_default(), "/servers");
        for bad in ["env=prod", "state=up", "page=0", "page=-1", "page=x"] {
            let e = given(bad).err().map(|e| e.code());
            assert_eq!(e, Some(ErrorCode::ValidationError), "{bad}");
        }
        assert!(given(&format!("q={}", "a".repeat(201))).is_err());
    }

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
