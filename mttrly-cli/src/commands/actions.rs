//! `mttrly-cli actions list | show | approve | reject`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use mttrly_core::tools::actions::ActionView;
use mttrly_core::{ErrorCode, MttrlyError};
use mttrly_proto::central::v1::action_service_client::ActionServiceClient;
use mttrly_proto::central::v1::{
    Action, ApproveActionRequest, GetActionRequest, ListActionsRequest, RejectActionRequest,
};
use mttrly_proto::convert::environment_from_wire;
use serde_json::Value;

use super::ago;
use crate::cli::{ActionsCommand, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

fn environment(a: &Action) -> &'static str {
    environment_from_wire(a.environment).map_or("-", mttrly_core::Environment::as_str)
}

fn view(a: &Action) -> Option<ActionView> {
    serde_json::from_str(&a.view_json).ok()
}

fn json(a: &Action) -> Value {
    match view(a) {
        Some(v) => {
            let mut value = serde_json::to_value(v).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("server_name".into(), a.server_name.clone().into());
                map.insert("environment".into(), environment(a).into());
                map.insert("content_sha256".into(), a.content_sha256.clone().into());
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
        }),
    }
}

/// What a human reviews before approving: the server, its environment, exactly what runs.
fn render(a: &Action) -> String {
    let content: Value = serde_json::from_str(&a.content_json).unwrap_or(Value::Null);
    let mut out = format!(
        "action:      {}\nstatus:      {}\nserver:      {} ({})\nenvironment: {}\nrequested:   by {} via {}, {}\n\
         what:        {}\nexactly:     {}\ncontent sha: {}\n",
        a.action_id,
        a.status,
        a.server_name,
        a.server_id,
        environment(a),
        a.requested_by,
        a.requested_via,
        ago(a.created_at_unix_ms),
        a.description,
        serde_json::to_string_pretty(&content).unwrap_or_default().replace('\n', "\n             "),
        a.content_sha256,
    );
    if let Some(v) = view(a) {
        for d in &v.approvals {
            out.push_str(
                &format!("decision:    {:?} by {} via {}\n", d.decision, d.decided_by, d.channel).to_lowercase(),
            );
        }
        if let Some(r) = &v.result {
            out.push_str(&format!(
                "result:      exit {:?}, {} ms{}\n",
                r.exit_code,
                r.duration_ms,
                if r.truncated { ", output truncated" } else { "" }
            ));
            if let Some(e) = &r.error {
                out.push_str(&format!("error:       {}: {}\n", e.code, e.message));
            }
            if !r.output.is_empty() {
                out.push_str(&format!("output:\n{}\n", r.output.trim_end()));
            }
            if let Some(data) = &r.data {
                out.push_str(&format!("data:        {}\n", serde_json::to_string_pretty(data).unwrap_or_default()));
            }
        }
    }
    out.trim_end().to_owned()
}

fn confirm(prompt: &str) -> Result<bool, MttrlyError> {
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

pub(crate) async fn run(cmd: &ActionsCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
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
                OutputFormat::Json => {
                    printer.json(&serde_json::json!({ "actions": actions.iter().map(json).collect::<Vec<_>>() }))
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = actions
                        .iter()
                        .map(|a| {
                            vec![
                                a.action_id.clone(),
                                a.server_name.clone(),
                                environment(a).to_owned(),
                                a.status.clone(),
                                ago(a.created_at_unix_ms),
                                a.description.clone(),
                            ]
                        })
                        .collect();
                    printer.table(&["ID", "SERVER", "ENV", "STATUS", "REQUESTED", "WHAT"], &rows);
                    Ok(())
                }
            }
        }
        ActionsCommand::Show { action_id } => {
            let action =
                client.get_action(get(action_id)).await.map_err(|s| error(&s))?.into_inner().action.unwrap_or_default();
            match printer.format() {
                OutputFormat::Json => printer.json(&json(&action)),
                OutputFormat::Table => {
                    printer.text(&render(&action));
                    Ok(())
                }
            }
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
            if printer.format() == OutputFormat::Table && *wait > 0 {
                eprintln!("approving; waiting up to {wait}s for the result…");
            }
            // The approval is bound to the content this human reviewed.
            let approved = client
                .approve_action(ApproveActionRequest {
                    via_mcp: false,
                    action_id: action_id.clone(),
                    content_sha256: action.content_sha256.clone(),
                    wait_seconds: *wait,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner()
                .action
                .unwrap_or_default();
            match printer.format() {
                OutputFormat::Json => printer.json(&json(&approved)),
                OutputFormat::Table => {
                    printer.text(&render(&approved));
                    Ok(())
                }
            }
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
            match printer.format() {
                OutputFormat::Json => printer.json(&json(&rejected)),
                OutputFormat::Table => {
                    printer.text(&render(&rejected));
                    Ok(())
                }
            }
        }
    }
}
