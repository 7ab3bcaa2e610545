//! `GET /audit`: the account's audit log, newest first, filtered by server, actor, source, kind,
//! subject and time, paged by sequence number (`before_seq`), with links to the same rows as CSV
//! and JSON ([`export`]) and, on request, the hash chain's verification.
//!
//! The chain is not verified on every view: `Audit::verify` recomputes the account's whole chain
//! (every row hashed again, linearly in the log's size), and this page is fetched again on every
//! live refresh. It runs when asked (`?verify=1`, the "Verify the chain" button, kept in the live
//! refresh's URL so the result stays on the page), at most once at a time per account, and a
//! result is shown again, with its age, while the chain head it checked has not moved
//! ([`crate::audit::verified`] has the rules).
//!
//! Who may see: anyone signed in to the account, viewers too, as over gRPC (`ListAudit` and
//! `VerifyAudit` ask only for a caller of the account). Only the signed-in person's account, always:
//! every read is `db.account(signed.account_id)`.

mod export;
mod query;

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::audit::{AuditActor, AuditKind, AuditOutcome};
use mttrly_core::ids::ServerId;
use mttrly_core::tools::actions::AuditEntry;
use mttrly_core::{ErrorCode, MttrlyError, Source, display};

pub(super) use self::export::{csv, json};
use self::query::Given;
pub(super) use self::query::{Params, invalid};
use super::layout::{self, Live};
use super::show::{self, Names};
use crate::app_state::AppState;
use crate::audit::chain::Verification;
use crate::audit::verified::Checked;
use crate::db::audit::AuditFilter;
use crate::signin::web::SignedIn;

/// Rows per page.
const PAGE: u32 = 100;

/// What the page shows besides the rows: the account's servers and people by id, for names and
/// the filter form.
struct Known {
    servers: HashMap<ServerId, String>,
    names: Names,
}

async fn known(state: &AppState, signed: &SignedIn) -> Result<Known, MttrlyError> {
    let account = state.central.db.account(&signed.account_id);
    let servers = account.servers().list().await?.into_iter().map(|s| (s.id, s.name)).collect();
    let names = account.users().list().await?.into_iter().map(|u| (u.id, u.name)).collect();
    Ok(Known { servers, names })
}

/// One page of rows.
struct Rows {
    entries: Vec<AuditEntry>,
    /// The `before_seq` of the next (older) page, when there is one.
    older: Option<u64>,
    /// Rows of this page that could not be decoded (left out, said on the page).
    undecodable: u32,
}

/// The parsed request: the filters as given, and the filter they ask for, or why not.
struct Request {
    given: Given,
    filter: Result<AuditFilter, MttrlyError>,
    verify: bool,
}

fn request(raw: Option<&str>, known: &Known) -> Request {
    let params = match Params::parse(raw) {
        Ok(p) => p,
        Err(e) => return Request { given: Given::default(), filter: Err(e), verify: false },
    };
    let given = Given::of(&params);
    let filter = given.filter(&known.servers).and_then(|mut f| {
        f.before_seq = query::before_seq(&params)?;
        Ok(f)
    });
    Request { given, filter, verify: params.get("verify") == "1" }
}

async fn rows(state: &AppState, signed: &SignedIn, filter: &AuditFilter) -> Result<Rows, MttrlyError> {
    let filter = AuditFilter { limit: PAGE, ..filter.clone() };
    let page = state.central.db.account(&signed.account_id).audit().page(&filter).await?;
    // A full page may be the last one: the "Older" link then leads to an empty page, which says so.
    Ok(Rows { older: page.older(PAGE), undecodable: page.undecodable, entries: page.entries })
}

/// The chain's verification, kept or recomputed by [`crate::audit::verified`]'s rules; `fragment`: a live
/// refresh.
async fn verify(state: &AppState, signed: &SignedIn, fragment: bool) -> Result<Checked, MttrlyError> {
    state.central.verifications.check(&state.central, &signed.account_id, fragment).await
}

/// `GET /audit`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fragment = layout::wants_fragment(&headers);
    // Rows recorded a moment ago (this person's own sign-in, a decision) are on their way to the
    // log: show them.
    state.central.audit.flush().await;
    let known = match known(&state, &signed).await {
        Ok(k) => k,
        Err(e) => return layout::failed(&signed, &Live::Audit, fragment, &e),
    };
    let req = request(raw.as_deref(), &known);
    let url = match raw.as_deref().filter(|q| !q.is_empty()) {
        Some(_) => format!("/audit?{}", self_query(&req)),
        None => "/audit".to_owned(),
    };
    let (status, main) = match &req.filter {
        Err(e) => (layout::status_of(e), body(&req, &known, Err(e), None)),
        Ok(filter) => {
            let rows = match rows(&state, &signed, filter).await {
                Ok(r) => r,
                Err(e) => return layout::failed(&signed, &Live::Audit, fragment, &e),
            };
            let checked = if req.verify {
                match verify(&state, &signed, fragment).await {
                    Ok(c) => Some(c),
                    Err(e) => return layout::failed(&signed, &Live::Audit, fragment, &e),
                }
            } else {
                None
            };
            (StatusCode::OK, body(&req, &known, Ok(&rows), checked.as_ref()))
        }
    };
    layout::page_at(status, &signed, "Audit log", &Live::Audit, &url, fragment, &main)
}

/// The page's own query, normalised (what a live refresh fetches again).
fn self_query(req: &Request) -> String {
    let mut q = req.given.query();
    if let Ok(Some(before)) = req.filter.as_ref().map(|f| f.before_seq) {
        push(&mut q, &format!("before_seq={before}"));
    }
    if req.verify {
        push(&mut q, "verify=1");
    }
    q
}

/// `query` with `pair` added.
fn with(query: &str, pair: &str) -> String {
    let mut q = query.to_owned();
    push(&mut q, pair);
    q
}

fn push(query: &mut String, pair: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(pair);
}

/// `path` with `query` (none when empty).
fn link(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
}

fn body(req: &Request, known: &Known, rows: Result<&Rows, &MttrlyError>, checked: Option<&Checked>) -> Markup {
    let filters = req.given.query();
    html! {
        h1 { "Audit log" }
        (chain(req, checked))
        (form(&req.given, known))
        @match rows {
            Err(e) => {
                p.err role="alert" { "Cannot show the log (" (e.code().as_str()) "): " (e.message()) }
            }
            Ok(rows) => {
                p.exports {
                    "Download every row matching these filters (all of them, not only this page; newest first): "
                    a href=(link("/audit.csv", &filters)) download { "CSV" } " · "
                    a href=(link("/audit.json", &filters)) download { "JSON" }
                }
                @if rows.undecodable > 0 {
                    p.err role="alert" {
                        (rows.undecodable) " row(s) of this page cannot be read by this version of mttrly and are not shown "
                        "(written by a newer version, or changed outside mttrly: verify the chain)."
                    }
                }
                @if rows.entries.is_empty() {
                    p.empty { "No audit row matches these filters." }
                } @else {
                    (table(&rows.entries, known))
                }
                nav.paging aria-label="Audit pages" {
                    @if req.filter.as_ref().is_ok_and(|f| f.before_seq.is_some()) {
                        a href=(link("/audit", &filters)) { "Newest" }
                    }
                    @if let Some(older) = rows.older {
                        a href=(link("/audit", &with(&filters, &format!("before_seq={older}")))) rel="next" { "Older" }
                    }
                }
            }
        }
    }
}

/// The chain's status when it was verified for this request, or the button that asks for it.
fn chain(req: &Request, checked: Option<&Checked>) -> Markup {
    let mut again = req.given.query();
    push(&mut again, "verify=1");
    html! {
        section.chain {
            @match checked {
                Some(c @ Checked { verification: Verification { rows_checked, first_bad: None }, took, .. }) => {
                    p.verified {
                        strong { "Chain verified" } ": all " (rows_checked) " rows of this account's log check out"
                        " (recomputed in " (took.as_millis()) " ms" (ago(c)) ")."
                    }
                }
                Some(c @ Checked { verification: Verification { rows_checked, first_bad: Some((seq, why)) }, .. }) => {
                    p.broken role="alert" {
                        strong { "Chain broken at row " (seq) } ": " (why) " (" (rows_checked) " rows read" (ago(c)) "). "
                        "The database was changed outside mttrly: restore it from a backup and investigate."
                    }
                }
                None => {
                    p.unchecked {
                        "The hash chain is checked on request: it recomputes every row of the log."
                    }
                }
            }
            form.inline method="get" action="/audit" {
                @for (name, value) in hidden_filters(req) {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name="verify" value="1";
                button type="submit" { @if checked.is_some() { "Verify again" } @else { "Verify the chain" } }
            }
        }
    }
}

/// When a verification shown again finished, and what was recorded since (nothing for one
/// computed for this request).
fn ago(checked: &Checked) -> String {
    let age = checked.age().as_secs();
    if age == 0 && checked.unchecked == 0 {
        return String::new();
    }
    let when = match age {
        0 => ", under a second ago".to_owned(),
        1 => ", 1 second ago".to_owned(),
        s => format!(", {s} seconds ago"),
    };
    match checked.unchecked {
        0 => format!("{when}; no row recorded since"),
        1 => format!("{when}; 1 row recorded since is not checked yet"),
        n => format!("{when}; {n} rows recorded since are not checked yet"),
    }
}

/// The filters as hidden fields, for the verify button's form.
fn hidden_filters(req: &Request) -> Vec<(&'static str, String)> {
    let g = &req.given;
    [
        ("server", &g.server),
        ("actor", &g.actor),
        ("source", &g.source),
        ("kind", &g.kind),
        ("subject", &g.subject),
        ("from", &g.from),
        ("to", &g.to),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k, v.clone()))
    .collect()
}

/// The filter form: a plain GET, so it works without JavaScript and its result is a link.
fn form(g: &Given, known: &Known) -> Markup {
    let mut servers: Vec<(&ServerId, &String)> = known.servers.iter().collect();
    servers.sort_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
    let mut people: Vec<(&mttrly_core::ids::UserId, &String)> = known.names.iter().collect();
    people.sort_by(|a, b| a.1.cmp(b.1));
    let selected = |value: &str, current: &str| value == current;
    html! {
        form.query method="get" action="/audit" {
            label { "Server "
                select name="server" {
                    option value="" { "any" }
                    @for (id, name) in &servers {
                        option value=(id.as_str()) selected[selected(id.as_str(), &g.server)] { (display::text(name)) }
                    }
                }
            }
            label { "Actor "
                select name="actor" {
                    option value="" { "anyone" }
                    @for (value, label) in [("human", "any person"), ("assistant", "any assistant"), ("agent", "any agent"), ("system", "central")] {
                        option value=(value) selected[selected(value, &g.actor)] { (label) }
                    }
                    @for (id, name) in &people {
                        @let me = format!("human:{}", id.as_str());
                        @let theirs = format!("assistant:{}", id.as_str());
                        option value=(me) selected[selected(&me, &g.actor)] { (display::text(name)) }
                        option value=(theirs) selected[selected(&theirs, &g.actor)] { "assistants for " (display::text(name)) }
                    }
                }
            }
            label { "Source "
                select name="source" {
                    option value="" { "any" }
                    @for s in Source::ALL {
                        option value=(s.as_str()) selected[selected(s.as_str(), &g.source)] { (s.as_str()) }
                    }
                }
            }
            label { "Kind "
                select name="kind" {
                    option value="" { "any" }
                    @for k in AuditKind::ALL {
                        option value=(k.as_str()) selected[selected(k.as_str(), &g.kind)] { (k.as_str()) }
                    }
                }
            }
            label { "Subject (tool or action id) "
                input type="text" name="subject" value=(g.subject) maxlength="200" placeholder="mttrly_execute_command";
            }
            label { "From (UTC) "
                input type="text" name="from" value=(g.from) maxlength="40" placeholder="2026-12-01T09:00";
            }
            label { "To (UTC) "
                input type="text" name="to" value=(g.to) maxlength="40" placeholder="2026-12-01";
            }
            div.buttons {
                button type="submit" { "Filter" }
                " " a href="/audit" { "Clear" }
            }
        }
    }
}

/// The rows: each entry's facts on one line, its details (the recorded parameters, as stored,
/// redacted when recorded) on the line below across the whole table, so long parameters wrap
/// instead of widening the table.
fn table(entries: &[AuditEntry], known: &Known) -> Markup {
    html! {
        div.scroll {
            table.audit {
                thead { tr {
                    th scope="col" { "Seq" } th scope="col" { "Time" } th scope="col" { "Actor" }
                    th scope="col" { "Source" } th scope="col" { "Kind" } th scope="col" { "Subject" }
                    th scope="col" { "Server" } th scope="col" { "Outcome" }
                } }
                @for e in entries {
                    tbody #(format!("seq-{}", e.seq)) {
                        tr.entry {
                            td.seq { (e.seq) }
                            td { (show::time(e.at.as_millisecond())) }
                            td { (actor(&e.actor, &known.names)) }
                            td { (e.source.as_str()) }
                            td { (e.kind.as_str()) }
                            td.subject { (subject(e)) }
                            td { (server(e.server_id.as_ref(), known)) }
                            td { (outcome(e.outcome)) @if let Some(ms) = e.duration_ms { " " span.took { "(" (ms) " ms)" } } }
                        }
                        tr.details {
                            td colspan="8" { span.label { "Details " } code { (display::text(&e.parameters.to_string())) } }
                        }
                    }
                }
            }
        }
    }
}

/// Who, as the CLI's `audit list` names them (`alice`, `assistant:claude-code`, `agent`,
/// `system`), with whom an assistant acted for.
fn actor(actor: &AuditActor, names: &Names) -> Markup {
    match actor {
        AuditActor::Human { name, .. } => html! { (display::text(name)) },
        AuditActor::Assistant { client_name, on_behalf_of, .. } => {
            let human = names.get(on_behalf_of).map_or_else(|| on_behalf_of.to_string(), Clone::clone);
            html! { "assistant:" (display::text(client_name)) " " span.for { "for " (display::text(&human)) } }
        }
        AuditActor::Agent { .. } => html! { "agent" },
        AuditActor::System => html! { "system" },
    }
}

/// The subject; an action's links to its page.
fn subject(e: &AuditEntry) -> Markup {
    let shown = display::exact(&e.subject);
    let is_action = mttrly_core::ids::ActionId::parse(&e.subject).is_ok();
    html! {
        @if is_action {
            a href=(format!("/actions/{}", crate::web::page::urlencode(&e.subject))) { code { (shown) } }
        } @else {
            code { (shown) }
        }
    }
}

fn server(id: Option<&ServerId>, known: &Known) -> Markup {
    html! {
        @match id {
            None => "—",
            Some(id) => {
                @match known.servers.get(id) {
                    Some(name) => a href=(format!("/servers/{}", crate::web::page::urlencode(id.as_str()))) { (display::text(name)) },
                    None => { code { (id.as_str()) } " " span.gone { "(removed)" } },
                }
            }
        }
    }
}

fn outcome(outcome: AuditOutcome) -> Markup {
    match outcome {
        AuditOutcome::Ok => html! { span.ok { "ok" } },
        AuditOutcome::Error { code } => html! { span.err { (code.as_str()) } },
    }
}

/// A refused request's page, for the exports too: the form with the message, status 400.
async fn refused(state: &AppState, signed: &SignedIn, raw: Option<&str>, e: &MttrlyError) -> Response {
    let known = match known(state, signed).await {
        Ok(k) => k,
        Err(err) => return layout::failed(signed, &Live::Audit, false, &err),
    };
    let req = Request { given: given_of(raw), filter: Err(e.clone()), verify: false };
    let main = body(&req, &known, Err(e), None);
    layout::page_at(layout::status_of(e), signed, "Audit log", &Live::Audit, "/audit", false, &main)
}

fn given_of(raw: Option<&str>) -> Given {
    Params::parse(raw).map(|p| Given::of(&p)).unwrap_or_default()
}

/// The account's servers by id, to check a `server` filter against.
async fn servers(state: &AppState, signed: &SignedIn) -> Result<HashMap<ServerId, String>, MttrlyError> {
    let list = state.central.db.account(&signed.account_id).servers().list().await?;
    Ok(list.into_iter().map(|s| (s.id, s.name)).collect())
}

/// The filter a request's query asks for, with `before_seq`, or why not.
async fn filter_of(state: &AppState, signed: &SignedIn, raw: Option<&str>) -> Result<AuditFilter, MttrlyError> {
    let params = Params::parse(raw)?;
    let servers = servers(state, signed).await?;
    let mut filter = Given::of(&params).filter(&servers)?;
    filter.before_seq = query::before_seq(&params)?;
    Ok(filter)
}

/// Whether `e` is the caller's fault (shown on the page) rather than central's (logged).
fn is_refusal(e: &MttrlyError) -> bool {
    e.code() != ErrorCode::InternalError
}
