//! `/investigations` (the account's open and recent investigations) and `/investigations/{id}`
//! (one investigation: who opened it through which client, its bypass, the actions run under
//! it). A pending bypass has a grant form: the granting person's fresh TOTP code and, optionally,
//! a narrower scope (fewer minutes or actions, fewer tools, argv patterns within those asked
//! for). `POST …/grant`, `…/revoke` and `…/close` check origin and CSRF first, then go through
//! `crate::investigations` with source `dashboard` (the same rules as the CLI: the environment's
//! approval rule, four eyes, the second factor), then redirect back to the page; a refusal is
//! shown on the page in the engine's words.

use std::str::FromStr as _;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use mttrly_core::ids::{BypassId, InvestigationId};
use mttrly_core::tools::investigations::{
    ArgvPattern, BypassState, BypassStatus, BypassTool, BypassTools, GrantScope, InvestigationStatus,
};
use mttrly_core::{ErrorCode, MttrlyError, Source, display};
use serde::Deserialize;

use super::layout::{self, Live};
use super::show;
use crate::app_state::AppState;
use crate::db::accounts::TokenOwner;
use crate::investigations::{self, GrantRequest, InvestigationView};
use crate::signin::web::SignedIn;

/// How many investigations the list shows.
const LISTED: u32 = 200;

/// What the grant form sends.
#[derive(Deserialize)]
pub(super) struct GrantForm {
    #[serde(default)]
    csrf: String,
    /// The bypass the page showed: a grant is bound to it.
    #[serde(default)]
    bypass_id: String,
    /// The granting person's fresh TOTP (or recovery) code.
    #[serde(default)]
    code: String,
    /// Fewer minutes than asked (empty: as asked).
    #[serde(default)]
    minutes: String,
    /// Fewer actions than asked (empty: as asked).
    #[serde(default)]
    max_actions: String,
    /// `all` (as asked), `execute_command` or `execute_script`.
    #[serde(default)]
    tools: String,
    /// Argv patterns, one per line (empty: as asked).
    #[serde(default)]
    patterns: String,
}

/// What the revoke and close forms send.
#[derive(Deserialize)]
pub(super) struct PlainForm {
    #[serde(default)]
    csrf: String,
}

fn not_found(id: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::NotFound, format!("no investigation {} in this account", display::exact(id)))
}

fn status_word(b: &BypassState) -> String {
    match b.status {
        BypassStatus::Active => format!("active: {} of {} actions left", b.remaining_actions, b.max_actions),
        other => other.as_str().to_owned(),
    }
}

/// `GET /investigations`.
pub(super) async fn list(State(state): State<AppState>, signed: SignedIn, headers: HeaderMap) -> Response {
    let fragment = layout::wants_fragment(&headers);
    let live = Live::Investigations;
    let views = async {
        let owner = super::owner(&state, &signed).await?;
        investigations::list(&state.central, &owner, false, LISTED).await
    }
    .await;
    let views = match views {
        Ok(views) => views,
        Err(e) => return layout::failed(&signed, &live, fragment, &e),
    };
    let main = html! {
        h1 { "Investigations" }
        p.note {
            "An assistant opens an investigation of one server for its human; a bypass lets its matching commands run \
             without per-command approval for a while, once a person grants it with a TOTP code."
        }
        @if views.is_empty() { p { "None yet." } }
        div.scroll {
            table.investigations {
                thead { tr { th { "Investigation" } th { "Server" } th { "Status" } th { "Bypass" } th { "Title (the assistant's words)" } } }
                tbody {
                    @for v in &views {
                        @let i = &v.investigation;
                        tr {
                            td { a href=(investigations::page_path(&i.id)) { (i.id.as_str()) } }
                            td { a href=(format!("/servers/{}", i.server_id)) { (i.server_id.as_str()) } }
                            td { (i.status.as_str()) }
                            td { (status_word(&v.bypass)) }
                            td.text { (display::text(&i.title)) }
                        }
                    }
                }
            }
        }
    };
    layout::page(StatusCode::OK, &signed, "Investigations", &live, fragment, &main)
}

/// The page for investigation `raw_id`, with `notice` (a refusal) above it.
async fn render(
    state: &AppState,
    signed: &SignedIn,
    raw_id: &str,
    fragment: bool,
    notice: Option<(StatusCode, &MttrlyError)>,
) -> Response {
    let live = Live::Investigation(display::exact(raw_id).into_owned());
    let view = async {
        let id = InvestigationId::parse(raw_id).map_err(|_| not_found(raw_id))?;
        let owner = super::owner(state, signed).await?;
        let view = investigations::show(&state.central, &owner, &id).await?;
        Ok::<_, MttrlyError>((view, super::pending::names(state, &owner).await?))
    }
    .await;
    let (view, names) = match view {
        Ok(view) => view,
        Err(e) if e.code() == ErrorCode::NotFound => {
            let main = html! { h1 { "No such investigation" } p.err { (e.message()) } };
            return layout::page(StatusCode::NOT_FOUND, signed, "No such investigation", &live, fragment, &main);
        }
        Err(e) => return layout::failed(signed, &live, fragment, &e),
    };
    let status = notice.map_or(StatusCode::OK, |(s, _)| s);
    let main = html! {
        @if let Some((_, e)) = notice {
            p.err role="alert" data-keep { "Refused: " (e.message()) }
        }
        (body(&view, &names, &signed.csrf, signed.role.may_decide()))
    };
    layout::page(status, signed, "Investigation", &live, fragment, &main)
}

fn body(view: &InvestigationView, names: &show::Names, csrf: &str, may_decide: bool) -> Markup {
    let i = &view.investigation;
    let b = &view.bypass;
    let open = i.status == InvestigationStatus::Open;
    let path = investigations::page_path(&i.id);
    html! {
        h1 { "Investigation " span.id { (i.id.as_str()) } }
        p { a href="/investigations" { "All investigations" } }
        dl.facts.investigation {
            dt { "Status" } dd { strong.state.(i.status.as_str()) { (i.status.as_str()) } }
            dt { "Server" } dd { (server_link(view)) }
            dt { "Title" } dd { (display::text(&i.title)) " " span.note { "(the assistant's words)" } }
            dt { "Opened for" } dd {
                (names.get(&i.user_id).map_or_else(|| i.user_id.to_string(), |n| display::text(n).into_owned()))
                " through " (display::text(&i.client_name))
            }
            @if let Some(alert) = &i.alert_id { dt { "Alert" } dd { (alert.as_str()) } }
            dt { "Opened" } dd { (show::time(i.opened_at)) }
            dt { "Last activity" } dd { (show::time(i.last_activity_at)) }
            @if let Some(at) = view.idle_expires_at { dt { "Closes when idle at" } dd { (show::expiry(at)) } }
            @if let Some(at) = i.closed_at {
                dt { "Closed" } dd { (show::time(at)) " (" (i.close_reason.as_deref().map_or_else(String::new, |r| display::text(r).into_owned())) ")" }
            }
        }
        section.bypass {
            h2 { "Bypass" }
            (bypass_facts(view, names))
            @if b.status == BypassStatus::Pending && open && may_decide {
                @if let Some(id) = &b.bypass_id { (grant_form(&path, id, b, csrf)) }
            }
            @if open && may_decide {
                div.decide {
                    @if matches!(b.status, BypassStatus::Pending | BypassStatus::Active) {
                        form method="post" action=(format!("{path}/revoke")) {
                            input type="hidden" name="csrf" value=(csrf);
                            button.reject type="submit" { "Revoke bypass" }
                        }
                    }
                    form method="post" action=(format!("{path}/close")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button.reject type="submit" { "Close investigation" }
                    }
                }
            }
        }
        section {
            h2 { "Actions under it" }
            @if view.actions.is_empty() { p { "None yet." } }
            ul.linked {
                @for a in &view.actions {
                    li {
                        a href=(super::action_path(&a.id)) { (a.id.as_str()) } " "
                        strong { (display::text(&a.status)) } " "
                        @if let Some(by) = &a.bypass_id { span.warn { "under " (by.as_str()) } " " }
                        (show::time(a.created_at)) br;
                        span.text { (display::text(&a.description)) }
                    }
                }
            }
        }
    }
}

/// The server as a person must see it before granting: its name (escaped) and environment as
/// central stores them, linked to its page.
fn server_link(view: &InvestigationView) -> Markup {
    let id = &view.investigation.server_id;
    html! {
        a href=(format!("/servers/{id}")) {
            @match &view.server {
                Some((name, environment)) => { (display::text(name)) " (" (environment.as_str()) ")" }
                None => { (id.as_str()) " (no longer in this account)" }
            }
        }
    }
}

/// The bypass's facts, rendered from the stored row (the same scope the engine enforces): every
/// pattern's words quoted and escaped, exact or "and any further arguments"; the assistant's
/// reason last, labelled as its words.
fn bypass_facts(view: &InvestigationView, names: &show::Names) -> Markup {
    let b = &view.bypass;
    html! {
        dl.facts {
            dt { "State" } dd { strong { (status_word(b)) } }
            @if let Some(id) = &b.bypass_id {
                dt { "Bypass" } dd { (id.as_str()) }
                dt { "Server" } dd { (server_link(view)) }
                dt { "Covers" } dd { (b.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                dt { "Commands" } dd {
                    @if b.patterns.is_empty() { strong.warn { "any call of these tools (no patterns)" } }
                    ul.patterns {
                        @for p in &b.patterns {
                            li { code.argv { (p.shown()) } }
                        }
                    }
                }
                dt { "For" } dd { (b.duration_minutes) " minutes, at most " (b.max_actions) " actions (" (b.actions_used) " used)" }
                @if let Some(at) = b.expires_at {
                    dt { (if b.status == BypassStatus::Pending { "Request lapses at" } else { "Ends at" }) } dd { (show::time(at.as_millisecond())) }
                }
                @if let Some(by) = &b.granted_by {
                    dt { "Granted by" } dd { (show::principal(by, names)) }
                }
                @if let Some(at) = b.granted_at {
                    dt { "Granted at" } dd { (show::time(at.as_millisecond())) }
                }
                dt { "Why" } dd.text {
                    (display::labelled_reason(b.reason.as_deref())
                        .unwrap_or_else(|| format!("{}: none given", display::ASSISTANT_LABEL)))
                }
            }
        }
    }
}

fn grant_form(path: &str, id: &BypassId, b: &BypassState, csrf: &str) -> Markup {
    html! {
        form.grant method="post" action=(format!("{path}/grant")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="bypass_id" value=(id.as_str());
            p.note { "You grant exactly what is shown above. You may narrow it, never widen it; empty fields keep the request as it stands." }
            label { "Minutes (at most " (b.duration_minutes) ")" input type="number" name="minutes" min="5" max=(b.duration_minutes) inputmode="numeric"; }
            label { "Actions (at most " (b.max_actions) ")" input type="number" name="max_actions" min="1" max=(b.max_actions) inputmode="numeric"; }
            label { "Tools"
                select name="tools" {
                    option value="all" selected { "as asked" }
                    @for t in &b.tools { option value=(t.as_str()) { "only " (t.as_str()) } }
                }
            }
            label { "Commands, one per line: exactly these words; end a line with * to allow further (harmless) arguments" textarea name="patterns" rows="2" {} }
            label { "Your TOTP code" input type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required; }
            button.approve type="submit" { "Grant bypass" }
        }
    }
}

/// `GET /investigations/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    render(&state, &signed, &id, layout::wants_fragment(&headers), None).await
}

/// Back to the page, or the page with the refusal.
async fn answer(state: &AppState, signed: &SignedIn, id: &str, result: Result<(), MttrlyError>) -> Response {
    match result {
        Ok(()) => layout::back_to(&format!("/investigations/{}", crate::web::page::urlencode(id))),
        Err(e) => render(state, signed, id, false, Some((layout::status_of(&e), &e))).await,
    }
}

/// The investigation a form names, behind the shared form guard.
async fn checked(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(InvestigationId, TokenOwner), MttrlyError> {
    layout::form_guard(state, signed, headers, csrf, id, |raw| InvestigationId::parse(raw).map_err(|_| not_found(raw)))
        .await
}

fn invalid(message: impl Into<String>) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

/// The scope the form narrows to, over `asked` (`None` when every field keeps the request).
fn narrowed(form: &GrantForm, asked: &GrantScope) -> Result<Option<GrantScope>, MttrlyError> {
    let (minutes, max, tools, patterns) =
        (form.minutes.trim(), form.max_actions.trim(), form.tools.trim(), form.patterns.trim());
    if minutes.is_empty() && max.is_empty() && (tools.is_empty() || tools == "all") && patterns.is_empty() {
        return Ok(None);
    }
    let mut scope = asked.clone();
    if !minutes.is_empty() {
        scope.minutes = minutes.parse().map_err(|_| invalid("minutes must be a whole number"))?;
    }
    if !max.is_empty() {
        scope.max_actions = max.parse().map_err(|_| invalid("actions must be a whole number"))?;
    }
    if !tools.is_empty() && tools != "all" {
        scope.tools = BypassTools::new([BypassTool::from_str(tools).map_err(invalid)?]).map_err(invalid)?;
    }
    if !patterns.is_empty() {
        scope.patterns = patterns
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| ArgvPattern::parse_line(line).map_err(invalid))
            .collect::<Result<_, _>>()?;
    }
    Ok(Some(scope))
}

/// `POST /investigations/{id}/grant`.
pub(super) async fn grant(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<GrantForm>,
) -> Response {
    let result = async {
        let (investigation, owner) = checked(&state, &signed, &id, &headers, &form.csrf).await?;
        let bypass_id = BypassId::parse(form.bypass_id.trim()).map_err(|_| invalid("the form names no bypass"))?;
        let bypass = state
            .central
            .db
            .account(&owner.account_id)
            .investigations()
            .bypass(&bypass_id)
            .await?
            .filter(|b| b.investigation_id == investigation)
            .ok_or_else(|| invalid("that bypass is not this investigation's"))?;
        let scope = narrowed(&form, &bypass.scope)?;
        let request = GrantRequest { bypass_id, scope, code: form.code.clone() };
        investigations::grant(&state.central, &owner, request, Source::Dashboard).await.map(|_| ())
    }
    .await;
    answer(&state, &signed, &id, result).await
}

/// What a person may do to an investigation with a plain form: both only take power away.
#[derive(Debug, Clone, Copy)]
enum Withdraw {
    /// Revoke its bypass (idempotent).
    Revoke,
    /// Close it (revoking its bypass).
    Close,
}

/// A plain form's operation on investigation `id`, behind the form guard.
async fn withdraw(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
    headers: &HeaderMap,
    csrf: &str,
    op: Withdraw,
) -> Response {
    let result = async {
        let (investigation, owner) = checked(state, signed, id, headers, csrf).await?;
        let done = match op {
            Withdraw::Revoke => {
                investigations::revoke_as_human(&state.central, &owner, &investigation, Source::Dashboard).await
            }
            Withdraw::Close => investigations::close(&state.central, &owner, &investigation, Source::Dashboard).await,
        };
        done.map(|_| ())
    }
    .await;
    answer(state, signed, id, result).await
}

/// `POST /investigations/{id}/revoke`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Response {
    withdraw(&state, &signed, &id, &headers, &form.csrf, Withdraw::Revoke).await
}

/// `POST /investigations/{id}/close`.
pub(super) async fn close(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> Response {
    withdraw(&state, &signed, &id, &headers, &form.csrf, Withdraw::Close).await
}
