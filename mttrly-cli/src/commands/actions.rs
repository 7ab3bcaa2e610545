//! `mttrly-cli actions list | show | approve | reject`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use mttrly_core::display;
use mttrly_core::tools::actions::{ActionView, ApprovalRecord, Decision, ExecutionResult, IntroducedBy};
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::{
    Action, ApproveActionRequest, GetActionRequest, ListActionsRequest, RejectActionRequest,
};
use mttrly_proto::convert::environment_from_wire;
use serde_json::Value;

use super::{ago, rfc3339};
use crate::cli::{ActionsCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

fn environment(a: &Action) -> &'static str {
    environment_from_wire(a.environment).map_or("-", mttrly_core::Environment::as_str)
}

fn view(a: &Action) -> Option<ActionView> {
    serde_json::from_str(&a.view_json).ok()
}

/// `Some(Ok(()))` when central says the caller could approve now, `Some(Err(why))` when not,
/// `None` when central did not say (lists, older centrals).
fn approval_check(a: &Action) -> Option<Result<(), &str>> {
    match a.approval_check.as_str() {
        "" => None,
        "ok" => Some(Ok(())),
        why => Some(Err(why)),
    }
}

fn json(a: &Action) -> Value {
    match view(a) {
        Some(v) => {
            let received = v.approvals.iter().filter(|d| d.decision == Decision::Approve).count();
            let mut value = serde_json::to_value(v).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("server_name".into(), a.server_name.clone().into());
                map.insert("environment".into(), environment(a).into());
                map.insert("content_sha256".into(), a.content_sha256.clone().into());
                map.insert("requested_via".into(), a.requested_via.clone().into());
                map.insert("approvals_received".into(), received.into());
                if let Some(check) = approval_check(a) {
                    map.insert("you_may_approve".into(), check.is_ok().into());
                    map.insert("you_cannot_approve_because".into(), check.err().into());
                }
                if !a.second_factor.is_empty() {
                    map.insert("second_factor".into(), a.second_factor.clone().into());
                }
                // Always present in one action's JSON: null when someone can approve it.
                let warning = (!a.approval_warning.is_empty()).then(|| a.approval_warning.clone());
                map.insert("approval_warning".into(), warning.into());
            }
            value
        }
        None => serde_json::json!({
            "action_id": a.action_id,
            "server_id": a.server_id,
            "server_name": a.server_name,
            "environment": environment(a),
            "action_type": a.action_type,
            "status": a.status,
            "description": a.description,
            "content": serde_json::from_str::<Value>(&a.content_json).unwrap_or(Value::Null),
            "content_sha256": a.content_sha256,
            "requested_by": a.requested_by,
            "requested_via": a.requested_via,
            "expires_at": rfc3339(a.expires_at_unix_ms),
        }),
    }
}

/// The width of the field names in `actions show`.
const LABEL: usize = 13;

fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("{:<LABEL$}{value}\n", format!("{name}:")));
}

/// "in 27m" / "12m ago" for a time.
fn relative(t: jiff::Timestamp) -> String {
    let secs = (t.as_millisecond() - jiff::Timestamp::now().as_millisecond()) / 1000;
    if secs < 0 {
        return ago(t.as_millisecond());
    }
    match secs {
        0..60 => format!("in {secs}s"),
        60..3600 => format!("in {}m", secs / 60),
        _ => format!("in {}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The status in words ("pending approval", "failed closed").
fn status_words(status: &str) -> String {
    display::exact(status).replace('_', " ")
}

/// What a human reviews before deciding. Every string from central or a server is escaped
/// (`display`), the facts central owns come first, and the assistant's own words come last, on
/// one labelled line: nothing shown can pose as a fact or push the facts off screen.
fn render(a: &Action) -> String {
    let content: Value = serde_json::from_str(&a.content_json).unwrap_or(Value::Null);
    let exactly = serde_json::to_string_pretty(&content)
        .unwrap_or_default()
        .lines()
        .map(|l| display::exact(l).into_owned())
        .collect::<Vec<_>>()
        .join(&format!("\n{:LABEL$}", ""));
    let view = view(a);
    let mut out = String::new();
    field(&mut out, "action", &display::exact(&a.action_id));
    field(&mut out, "status", &status_words(&a.status));
    field(&mut out, "server", &format!("{} ({})", display::text(&a.server_name), display::exact(&a.server_id)));
    field(&mut out, "environment", environment(a));
    field(&mut out, "exactly", &exactly);
    field(&mut out, "content sha", &display::exact(&a.content_sha256));
    field(&mut out, "what", &display::text(&a.description));
    field(
        &mut out,
        "requested",
        &format!(
            "by {} via {}, {}",
            display::text(&a.requested_by),
            display::exact(&a.requested_via),
            ago(a.created_at_unix_ms)
        ),
    );
    if let Some(expires) = view.as_ref().and_then(|v| v.expires_at) {
        field(&mut out, "expires", &format!("{} ({expires})", relative(expires)));
    }
    if let Some(v) = &view {
        let received = v.approvals.iter().filter(|d| d.decision == Decision::Approve).count();
        if v.approvals_required > 0 {
            field(&mut out, "approvals", &format!("{received} of {} received", v.approvals_required));
        }
        for d in &v.approvals {
            let decision = match d.decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
            };
            let mut line = format!(
                "{decision} by {} via {}, {}",
                display::text(&d.decided_by.to_string()),
                d.channel,
                ago(d.decided_at.as_millisecond())
            );
            if let Some(reason) = d.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                line.push_str(&format!(" — their reason: {}", display::assistant_text(reason)));
            }
            field(&mut out, "decision", &line);
            if d.approver_added_by_requester {
                field(&mut out, "note", &introduced_note(v, d));
            }
        }
    }
    let pending = a.status == "pending_approval";
    if pending && needs_code(a) {
        field(&mut out, "rule", "each approval needs a fresh TOTP code from the approving human");
    }
    if pending && !a.approval_warning.is_empty() {
        field(&mut out, "warning", &display::text(&a.approval_warning));
    }
    match approval_check(a) {
        Some(Ok(())) if pending => {
            field(
                &mut out,
                "you",
                &format!(
                    "may approve: `mttrly-cli actions approve {}`{}",
                    display::exact(&a.action_id),
                    if needs_code(a) { " (it asks for your TOTP code)" } else { "" }
                ),
            );
        }
        Some(Err(why)) if a.status == "pending_approval" => {
            field(&mut out, "you", &format!("cannot approve this: {}", display::text(why)));
        }
        _ => {}
    }
    if let Some(r) = view.as_ref().and_then(|v| v.result.as_ref()) {
        render_result(&mut out, a, r);
    }
    // Last, on one line, labelled: the only text here that nobody checked.
    if let Some(reason) = display::labelled_reason(view.as_ref().and_then(|v| v.reason.as_deref())) {
        out.push_str(&reason);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// The line under an approval whose approver the requester's human added or re-invited: four
/// eyes may have been one person with two accounts, and the reviewer should know.
fn introduced_note(v: &ActionView, d: &ApprovalRecord) -> String {
    let approver = match &d.decided_by {
        mttrly_core::Principal::Human { name, .. } => display::text(name).into_owned(),
        other @ mttrly_core::Principal::Assistant { .. } => display::text(&other.to_string()).into_owned(),
    };
    let requested = match &v.requested_by {
        mttrly_core::Principal::Human { .. } => "who requested this action",
        mttrly_core::Principal::Assistant { .. } => "whose assistant requested this action",
    };
    match &d.approver_introduced {
        Some(i) => {
            let how = match i.how {
                IntroducedBy::Added => "added",
                IntroducedBy::Reinvited => "sent an invite link",
            };
            let secs = (d.decided_at.as_millisecond() - i.at.as_millisecond()).max(0) / 1000;
            format!("{approver} was {how} by {}, {requested}, {} before approving", display::text(&i.by), span(secs))
        }
        None => format!("{approver} was added or re-invited by the human {requested}"),
    }
}

/// "40 seconds", "3 minutes", "2 hours", "5 days".
fn span(secs: i64) -> String {
    let (n, unit) = match secs {
        ..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn render_result(out: &mut String, a: &Action, r: &ExecutionResult) {
    let ran = match r.exit_code {
        Some(code) => format!("exited with status {code}"),
        None if r.error.is_some() => "did not finish".to_owned(),
        None => "finished".to_owned(),
    };
    field(
        out,
        "result",
        &format!(
            "{}: {ran}, {} ms{}",
            status_words(&a.status),
            r.duration_ms,
            if r.truncated { ", output truncated" } else { "" }
        ),
    );
    if let Some(e) = &r.error {
        field(out, "error", &format!("{}: {}", e.code, display::text(&e.message)));
    }
    if !r.output.trim().is_empty() {
        out.push_str("output:\n");
        for line in display::lines(r.output.trim_end()).lines() {
            out.push_str(&format!("{:LABEL$}{line}\n", ""));
        }
    }
    if let Some(data) = &r.data {
        let pretty = serde_json::to_string_pretty(data).unwrap_or_default();
        let shown: Vec<String> = pretty.lines().map(|l| display::text(l).into_owned()).collect();
        field(out, "data", &shown.join(&format!("\n{:LABEL$}", "")));
    }
}

/// Whether a decided action ended in a failure a script must see (exit status 1).
fn ended_badly(status: &str) -> bool {
    matches!(status, "failed" | "failed_closed" | "expired" | "cancelled" | "rejected")
}

pub(crate) fn confirm(prompt: &str) -> Result<bool, MttrlyError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(MttrlyError::new(
            ErrorCode::ValidationError,
            "cannot ask for confirmation without a terminal; review with `mttrly-cli actions show ID` and pass --yes",
        ));
    }
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot read stdin: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Whether the action's rule asks each approver for a fresh TOTP code.
fn needs_code(a: &Action) -> bool {
    a.second_factor == "totp"
}

/// Reads a TOTP (or recovery) code the human types right now: asked on the terminal with `prompt`,
/// or one line of standard input for scripts. Never a flag, so a code never lands in shell
/// history; and callers ask for it last, right before the call, because it is only valid for a
/// minute or so. `nothing_typed` is the error's message when the line is empty. Also used by
/// `users invite` (a re-invite that replaces someone's second factor).
pub(crate) fn read_code(prompt: &str, nothing_typed: &str) -> Result<String, MttrlyError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}: TOTP code from your authenticator app (or a recovery code): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("cannot read stdin: {e}")))?;
    let code = line.trim();
    if code.is_empty() {
        return Err(MttrlyError::new(ErrorCode::ValidationError, nothing_typed));
    }
    Ok(code.to_owned())
}

/// The most characters of an action's description in `actions list` (the full text is in `show`).
const WHAT_WIDTH: usize = 80;

/// Runs `actions …`; `Ok(false)` when an approved action ended in failure (printed, exit 1).
pub(crate) async fn run(cmd: &ActionsCommand, channel: Authed, printer: &Printer) -> Result<bool, MttrlyError> {
    let mut client = ActionServiceClient::new(channel);
    let get = |id: &str| GetActionRequest { action_id: id.to_owned() };
    match cmd {
        ActionsCommand::List { server, status } => {
            let actions = client
                .list_actions(ListActionsRequest {
                    server_id: server.clone().unwrap_or_default(),
                    status: status.clone().unwrap_or_default(),
                    limit: 0,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .actions;
            match printer.format() {
                OutputFormat::Json => printer
                    .json(&serde_json::json!({ "actions": actions.iter().map(json).collect::<Vec<_>>() }))
                    .map(|()| true),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = actions
                        .iter()
                        .map(|a| {
                            vec![
                                a.action_id.clone(),
                                a.server_name.clone(),
                                environment(a).to_owned(),
                                status_words(&a.status),
                                ago(a.created_at_unix_ms),
                                // Escaped before cutting, so an escape is never cut in half unseen.
                                display::cap(&display::text(&a.description), WHAT_WIDTH).into_owned(),
                            ]
                        })
                        .collect();
                    printer.table(&["ID", "SERVER", "ENV", "STATUS", "REQUESTED", "WHAT"], &rows);
                    Ok(true)
                }
            }
        }
        ActionsCommand::Show { action_id } => {
            let action =
                client.get_action(get(action_id)).await.map_err(|s| error(&s))?.into_inner().action.unwrap_or_default();
            show(printer, &action).map(|()| true)
        }
        ActionsCommand::Approve { action_id, yes, wait } => {
            let action =
                client.get_action(get(action_id)).await.map_err(|s| error(&s))?.into_inner().action.unwrap_or_default();
            if !*yes {
                eprintln!("{}\n", render(&action));
                if !confirm("Approve and run exactly this?")? {
                    return Err(MttrlyError::new(ErrorCode::ValidationError, "not approved: nothing was changed"));
                }
            }
            // Asked only when the approval can count: central refuses for other reasons (four
            // eyes, role) before it looks at a code, so asking then would only waste one.
            let code = if needs_code(&action) && !matches!(approval_check(&action), Some(Err(_))) {
                read_code(
                    &format!("Approving {} needs a fresh code", display::exact(action_id)),
                    "no code entered: this action's rule needs a fresh TOTP code to approve; nothing was changed",
                )?
            } else {
                String::new()
            };
            // Only when central expects the approval to count: a refusal comes without a promise.
            if printer.format() == OutputFormat::Table && *wait > 0 && !matches!(approval_check(&action), Some(Err(_)))
            {
                eprintln!("approving; waiting up to {wait}s for the result…");
            }
            // The approval is bound to the content this human reviewed.
            let approved = client
                .approve_action(ApproveActionRequest {
                    via_mcp: false,
                    action_id: action_id.clone(),
                    content_sha256: action.content_sha256.clone(),
                    wait_seconds: *wait,
                    second_factor_code: code,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .action
                .unwrap_or_default();
            show(printer, &approved)?;
            if ended_badly(&approved.status) {
                if printer.format() == OutputFormat::Table {
                    eprintln!("the approved action ended {}; see the result above", status_words(&approved.status));
                }
                return Ok(false);
            }
            if matches!(approved.status.as_str(), "running" | "approved") && printer.format() == OutputFormat::Table {
                eprintln!(
                    "still running after {wait}s; follow it with `mttrly-cli actions show {}`",
                    display::exact(&approved.action_id)
                );
            }
            Ok(true)
        }
        ActionsCommand::Reject { action_id, reason } => {
            let rejected = client
                .reject_action(RejectActionRequest {
                    via_mcp: false,
                    action_id: action_id.clone(),
                    reason: reason.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .action
                .unwrap_or_default();
            show(printer, &rejected).map(|()| true)
        }
    }
}

fn show(printer: &Printer, action: &Action) -> Result<(), MttrlyError> {
    match printer.format() {
        OutputFormat::Json => printer.json(&json(action)),
        OutputFormat::Table => {
            printer.text(&render(action));
            Ok(())
        }
    }
}
