//! `mttrly-cli deploys record|list`.

use mttrly_core::MttrlyError;
use mttrly_proto::central::v1::deploy_service_client::DeployServiceClient;
use mttrly_proto::central::v1::{Deploy, ListDeploysRequest, RecordDeployRequest};

use super::{ago, rfc3339};
use crate::cli::{DeploysCommand, DeploysRecordArgs, OutputFormat};
use crate::client::{Authed, error};
use crate::output::Printer;

fn json(d: &Deploy) -> serde_json::Value {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    serde_json::json!({
        "deploy_id": d.deploy_id,
        "server_id": d.server_id,
        "external_id": d.external_id,
        "service": d.service,
        "version": d.version,
        "commit_sha": opt(&d.commit_sha),
        "repo_url": opt(&d.repo_url),
        "environment": opt(&d.environment),
        "started_at": rfc3339(d.started_at_unix_ms),
        "finished_at": rfc3339(d.finished_at_unix_ms),
        "status": d.status,
        "source": d.source,
        "url": opt(&d.url),
        "recorded_at": rfc3339(d.recorded_at_unix_ms),
    })
}

fn row(d: &Deploy) -> Vec<String> {
    vec![
        d.deploy_id.clone(),
        d.server_id.clone(),
        d.service.clone(),
        d.version.clone(),
        d.status.clone(),
        d.source.clone(),
        ago(d.started_at_unix_ms),
    ]
}

const HEADER: [&str; 7] = ["DEPLOY", "SERVER", "SERVICE", "VERSION", "STATUS", "SOURCE", "STARTED"];

pub(crate) async fn run(cmd: &DeploysCommand, channel: Authed, printer: &Printer) -> Result<(), MttrlyError> {
    let mut client = DeployServiceClient::new(channel);
    match cmd {
        DeploysCommand::Record(args) => {
            let DeploysRecordArgs {
                id,
                server,
                service,
                version,
                status,
                commit,
                repo_url,
                environment,
                started_at,
                finished_at,
                url,
            } = args;
            let reply = client
                .record_deploy(RecordDeployRequest {
                    id: id.clone(),
                    server: server.clone(),
                    service: service.clone(),
                    version: version.clone(),
                    commit: commit.clone().unwrap_or_default(),
                    repo_url: repo_url.clone().unwrap_or_default(),
                    environment: environment.clone().unwrap_or_default(),
                    started_at_unix_ms: started_at.unwrap_or(0),
                    finished_at_unix_ms: finished_at.unwrap_or(0),
                    status: status.clone(),
                    url: url.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            let deploy = reply.deploy.unwrap_or_default();
            match printer.format() {
                OutputFormat::Json => {
                    printer.json(&serde_json::json!({ "outcome": reply.outcome, "deploy": json(&deploy) }))?;
                }
                OutputFormat::Table => {
                    printer.text(&format!(
                        "{} {} ({} {} {})",
                        reply.outcome, deploy.deploy_id, deploy.service, deploy.version, deploy.status
                    ));
                }
            }
        }
        DeploysCommand::List { server, service, limit } => {
            let reply = client
                .list_deploys(ListDeploysRequest {
                    server: server.clone().unwrap_or_default(),
                    service: service.clone().unwrap_or_default(),
                    limit: *limit,
                })
                .await
                .map_err(|s| error(&s))?
                .into_inner();
            match printer.format() {
                OutputFormat::Json => {
                    printer
                        .json(&serde_json::json!({ "deploys": reply.deploys.iter().map(json).collect::<Vec<_>>() }))?;
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = reply.deploys.iter().map(row).collect();
                    printer.table(&HEADER, &rows);
                }
            }
        }
    }
    Ok(())
}
