//! `mttrly-cli servers add | list | status | remove`.

use mttrly_core::MttrlyError;
use mttrly_core::tools::servers::ServerStatus;
use mttrly_proto::central::v1::server_service_client::ServerServiceClient;
use mttrly_proto::central::v1::{AddServerRequest, GetServerRequest, ListServersRequest, RemoveServerRequest, Server};
use mttrly_proto::convert::{environment_from_wire, environment_to_wire, server_status_from_wire};
use serde::Serialize;

use super::{ago, rfc3339};
use crate::cli::{OutputFormat, ServersCommand};
use crate::client::{Authed, error};
use crate::output::Printer;

/// One server in `servers list --output json`. Field names are a contract with scripts.
#[derive(Serialize)]
struct ServerRow {
    server_id: String,
    name: String,
    environment: Option<&'static str>,
    status: String,
    last_seen_at: Option<String>,
    agent_version: Option<String>,
    hostname: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn row(s: &Server) -> ServerRow {
    ServerRow {
        server_id: s.server_id.clone(),
        name: s.name.clone(),
        environment: environment_from_wire(s.environment).map(mttrly_core::Environment::as_str),
        status: s.status.clone(),
        last_seen_at: rfc3339(s.last_seen_unix_ms),
        agent_version: non_empty(&s.agent_version),
        hostname: non_empty(&s.hostname),
    }
}

pub(crate) async fn run(cmd: &ServersCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = ServerServiceClient::new(channel);
    match cmd {
        ServersCommand::Add(args) => {
            let added = client
                .add_server(AddServerRequest { name: args.name.clone(), environment: environment_to_wire(args.env) })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            // Whether anyone in the account can approve a change there: null / no line when so.
            let warning = (!added.approval_warning.is_empty()).then_some(added.approval_warning.as_str());
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "server_id": added.server_id,
                    "install_token": added.install_token,
                    "install_token_expires_at": rfc3339(added.install_token_expires_at_unix_ms),
                    "agent_command": added.agent_command,
                    "install_command": non_empty(&added.install_command),
                    "approval_warning": warning,
                })),
                OutputFormat::Table => {
                    printer.text(&format!(
                        "registered {} as {}\n\nOn the server, as root, run (the token is single-use and expires {}):\n\n  {}\n",
                        mttrly_core::display::text(&args.name),
                        added.server_id,
                        rfc3339(added.install_token_expires_at_unix_ms).unwrap_or_default(),
                        added.agent_command
                    ));
                    if !added.install_command.is_empty() {
                        printer.text(&format!(
                            "\nOr download the agent from central (its SHA-256 pinned) and install it as a service:\n\n  {}\n",
                            added.install_command
                        ));
                    }
                    // On stderr, so stdout stays the registration a script may parse.
                    for line in warning.iter().flat_map(|w| w.lines()) {
                        eprintln!("warning: {}", mttrly_core::display::text(line));
                    }
                    Ok(())
                }
            }
        }
        ServersCommand::List => {
            let servers = client.list_servers(ListServersRequest {}).await.map_err(|s| error(&s))?.into_inner().servers;
            match printer.format() {
                OutputFormat::Json => {
                    printer.json(&serde_json::json!({ "servers": servers.iter().map(row).collect::<Vec<_>>() }))
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = servers
                        .iter()
                        .map(|s| {
                            let r = row(s);
                            vec![
                                r.server_id,
                                r.name,
                                r.environment.unwrap_or("-").to_owned(),
                                r.status,
                                ago(s.last_seen_unix_ms),
                                r.agent_version.unwrap_or_else(|| "-".to_owned()),
                            ]
                        })
                        .collect();
                    printer.table(&["ID", "NAME", "ENV", "STATUS", "LAST SEEN", "AGENT"], &rows);
                    Ok(())
                }
            }
        }
        ServersCommand::Status { server_id } => {
            let response = client
                .get_server(GetServerRequest { server_id: server_id.clone() })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            let status: ServerStatus = server_status_from_wire(&response)?;
            match printer.format() {
                OutputFormat::Json => printer.json(&status),
                OutputFormat::Table => {
                    printer.text(&render_status(&status));
                    Ok(())
                }
            }
        }
        ServersCommand::Remove { server_id } => {
            client.remove_server(RemoveServerRequest { server_id: server_id.clone() }).await.map_err(|s| error(&s))?;
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({ "server_id": server_id, "removed": true })),
                OutputFormat::Table => {
                    printer.text(&format!("removed {server_id} from the registry (its audit history is kept)"));
                    Ok(())
                }
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let g = bytes as f64 / (1024.0 * 1024.0 * 1024.0);
    format!("{g:.1} GiB")
}

fn render_status(s: &ServerStatus) -> String {
    use mttrly_core::display::text;
    // Names and host facts come from the registry and the agent: escaped, one line each.
    let mut out = format!(
        "{} ({})  {}  {}\n",
        text(&s.server.name),
        s.server.server_id,
        s.server.environment,
        format!("{:?}", s.server.status).to_lowercase()
    );
    if let Some(host) = &s.host {
        out.push_str(&format!(
            "host:    {} — {}, kernel {}, {}\n",
            text(&host.hostname),
            text(&host.os),
            text(&host.kernel),
            text(&host.arch)
        ));
    }
    out.push_str(&format!(
        "agent:   {}, last seen {}\n",
        text(s.server.agent_version.as_deref().unwrap_or("-")),
        s.server.last_seen_at.map_or_else(|| "never".to_owned(), |t| ago(t.as_millisecond()))
    ));
    out.push_str(&format!("alerts:  {} open\n", s.active_alerts));
    match &s.metrics {
        None => out.push_str("metrics: none yet (waiting for the first heartbeat)\n"),
        Some(m) => {
            out.push_str(&format!(
                "cpu:     {:.1}%   load {:.2} {:.2} {:.2}\n",
                m.cpu_percent, m.load_average[0], m.load_average[1], m.load_average[2]
            ));
            out.push_str(&format!(
                "memory:  {:.1}% of {}   swap {} / {}\n",
                m.memory_percent,
                gib(m.memory_total_bytes),
                gib(m.swap_used_bytes),
                gib(m.swap_total_bytes)
            ));
            out.push_str(&format!("uptime:  {}h\n", m.uptime_seconds / 3600));
            for fs in &m.filesystems {
                out.push_str(&format!(
                    "disk:    {:<20} {:>5.1}% of {} ({})\n",
                    text(&fs.mount_point),
                    fs.used_percent,
                    gib(fs.total_bytes),
                    text(&fs.fs_type)
                ));
            }
        }
    }
    out.trim_end().to_owned()
}
