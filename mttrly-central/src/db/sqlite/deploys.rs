//! Deploys and deploy verifications: the SQL.

use mttrly_core::ids::{AccountId, AlertId, DeployId, ServerId};
use mttrly_core::tools::deploys::{AlertSinceDeploy, DeployRecord, DeploySource, DeployStatus};
use mttrly_core::{ErrorCode, MttrlyError};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::internal;
use crate::db::deploys::{DeployFilter, NewDeploy, NewVerification, Recorded};
use crate::db::timestamp;

const COLUMNS: &str = "id, server_id, external_id, service, version, commit_sha, repo_url, environment, started_at,
                       finished_at, status, source, url, recorded_at";

fn stored(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("stored {what} `{value}` is not valid").into(),
    )
}

fn row(r: &Row<'_>) -> rusqlite::Result<DeployRecord> {
    let id: String = r.get(0)?;
    let server: String = r.get(1)?;
    let status: String = r.get(10)?;
    let source: String = r.get(11)?;
    Ok(DeployRecord {
        deploy_id: DeployId::parse(&id).map_err(|_| stored("deploy id", &id))?,
        server_id: ServerId::parse(&server).map_err(|_| stored("server id", &server))?,
        external_id: r.get(2)?,
        service: r.get(3)?,
        version: r.get(4)?,
        commit_sha: r.get(5)?,
        repo_url: r.get(6)?,
        environment: r.get(7)?,
        started_at: timestamp(r.get(8)?),
        finished_at: r.get::<_, Option<i64>>(9)?.map(timestamp),
        status: DeployStatus::parse(&status).ok_or_else(|| stored("status", &status))?,
        source: DeploySource::parse(&source).ok_or_else(|| stored("source", &source))?,
        url: r.get(12)?,
        recorded_at: timestamp(r.get(13)?),
    })
}

/// Whether a deploy may move from `from` to `to`: forward only (a late `started` after
/// `succeeded` is an old report, not a restart), and a finished deploy may still be rolled back.
fn moves_forward(from: DeployStatus, to: DeployStatus) -> bool {
    use DeployStatus::{Failed, RolledBack, Started, Succeeded};
    matches!((from, to), (Started, Succeeded | Failed | RolledBack) | (Succeeded | Failed, RolledBack))
}

/// Records a deploy or a later report of it (see [`crate::db::deploys`]).
pub(in crate::db) fn record(
    conn: &mut Connection,
    account: &AccountId,
    d: &NewDeploy,
    now: i64,
) -> Result<Recorded, MttrlyError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
    let existing = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM deploys WHERE account_id = ?1 AND external_id = ?2"),
            params![account.as_str(), d.external_id],
            row,
        )
        .optional()
        .map_err(internal)?;
    let outcome = match existing {
        None => {
            tx.execute(
                "INSERT INTO deploys (id, account_id, server_id, external_id, service, version, commit_sha, repo_url,
                     environment, started_at, finished_at, status, source, url, recorded_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
                params![
                    d.id.as_str(),
                    account.as_str(),
                    d.server_id.as_str(),
                    d.external_id,
                    d.service,
                    d.version,
                    d.commit_sha,
                    d.repo_url,
                    d.environment,
                    d.started_at,
                    d.finished_at,
                    d.status.as_str(),
                    d.source.as_str(),
                    d.url,
                    now
                ],
            )
            .map_err(internal)?;
            Recorded::Created(get_in(&tx, account, &d.id)?)
        }
        Some(old) => {
            if old.server_id != d.server_id || old.service != d.service || old.version != d.version {
                return Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    format!(
                        "deploy id `{}` already names {} {} on {}; a later report may change its status, not which \
                         server, service or version it was",
                        d.external_id, old.service, old.version, old.server_id
                    ),
                )
                .with_detail("field", "id")
                .with_detail("deploy_id", old.deploy_id.as_str()));
            }
            let status = if moves_forward(old.status, d.status) { d.status } else { old.status };
            let finished = old.finished_at.map(jiff::Timestamp::as_millisecond).or(d.finished_at);
            let changed = status != old.status
                || finished != old.finished_at.map(jiff::Timestamp::as_millisecond)
                || (old.url.is_none() && d.url.is_some())
                || (old.commit_sha.is_none() && d.commit_sha.is_some())
                || (old.repo_url.is_none() && d.repo_url.is_some())
                || (old.environment.is_none() && d.environment.is_some());
            if changed {
                tx.execute(
                    "UPDATE deploys SET status = ?3, finished_at = ?4, url = COALESCE(url, ?5),
                         commit_sha = COALESCE(commit_sha, ?6), repo_url = COALESCE(repo_url, ?7),
                         environment = COALESCE(environment, ?8), updated_at = ?9
                     WHERE account_id = ?1 AND id = ?2",
                    params![
                        account.as_str(),
                        old.deploy_id.as_str(),
                        status.as_str(),
                        finished,
                        d.url,
                        d.commit_sha,
                        d.repo_url,
                        d.environment,
                        now
                    ],
                )
                .map_err(internal)?;
                Recorded::Updated { from: old.status, row: get_in(&tx, account, &old.deploy_id)? }
            } else {
                Recorded::Unchanged(old)
            }
        }
    };
    tx.commit().map_err(internal)?;
    Ok(outcome)
}

fn get_in(conn: &Connection, account: &AccountId, id: &DeployId) -> Result<DeployRecord, MttrlyError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM deploys WHERE account_id = ?1 AND id = ?2"),
        params![account.as_str(), id.as_str()],
        row,
    )
    .map_err(internal)
}

/// One deploy, scoped to the account.
pub(in crate::db) fn get(
    conn: &Connection,
    account: &AccountId,
    id: &DeployId,
) -> Result<Option<DeployRecord>, MttrlyError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM deploys WHERE account_id = ?1 AND id = ?2"),
        params![account.as_str(), id.as_str()],
        row,
    )
    .optional()
    .map_err(internal)
}

/// Deploys, newest start first (then newest id, so equal times keep one order).
pub(in crate::db) fn list(
    conn: &Connection,
    account: &AccountId,
    filter: &DeployFilter,
) -> Result<Vec<DeployRecord>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deploys
             WHERE account_id = ?1 AND (?2 IS NULL OR server_id = ?2) AND (?3 IS NULL OR service = ?3)
             ORDER BY started_at DESC, id DESC LIMIT ?4"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(
            params![
                account.as_str(),
                filter.server_id.as_ref().map(ServerId::as_str),
                filter.service.as_deref(),
                i64::from(filter.limit)
            ],
            row,
        )
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

/// Alerts on a server opened at or after `since`, oldest first, at most 100.
pub(in crate::db) fn alerts_since(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    since: i64,
) -> Result<Vec<AlertSinceDeploy>, MttrlyError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, rule, severity, status, opened_at FROM alerts
             WHERE account_id = ?1 AND server_id = ?2 AND opened_at >= ?3
             ORDER BY opened_at, id LIMIT 100",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![account.as_str(), server.as_str(), since], |r| {
            let id: String = r.get(0)?;
            Ok(AlertSinceDeploy {
                alert_id: AlertId::parse(&id).map_err(|_| stored("alert id", &id))?,
                rule: r.get(1)?,
                severity: r.get(2)?,
                status: r.get(3)?,
                opened_at: timestamp(r.get(4)?),
            })
        })
        .map_err(internal)?;
    rows.collect::<Result<_, _>>().map_err(internal)
}

/// Stores a verification run.
pub(in crate::db) fn add_verification(
    conn: &Connection,
    account: &AccountId,
    run: &NewVerification,
) -> Result<(), MttrlyError> {
    conn.execute(
        "INSERT INTO deploy_verifications (id, account_id, server_id, deploy_id, service, verdict, evidence_json, checked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            run.id.as_str(),
            account.as_str(),
            run.server_id.as_str(),
            run.deploy_id.as_ref().map(DeployId::as_str),
            run.service,
            run.verdict.as_str(),
            run.evidence_json,
            run.checked_at
        ],
    )
    .map_err(internal)?;
    Ok(())
}

/// The latest verification's JSON for a server (and deploy).
pub(in crate::db) fn latest_verification(
    conn: &Connection,
    account: &AccountId,
    server: &ServerId,
    deploy: Option<&DeployId>,
) -> Result<Option<String>, MttrlyError> {
    conn.query_row(
        "SELECT evidence_json FROM deploy_verifications
         WHERE account_id = ?1 AND server_id = ?2 AND (?3 IS NULL OR deploy_id = ?3)
         ORDER BY checked_at DESC, id DESC LIMIT 1",
        params![account.as_str(), server.as_str(), deploy.map(DeployId::as_str)],
        |r| r.get(0),
    )
    .optional()
    .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        use DeployStatus::{Failed, RolledBack, Started, Succeeded};
        assert!(moves_forward(Started, Succeeded));
        assert!(moves_forward(Succeeded, RolledBack));
        assert!(moves_forward(Failed, RolledBack));
        assert!(!moves_forward(Succeeded, Started));
        assert!(!moves_forward(Succeeded, Failed));
        assert!(!moves_forward(RolledBack, Succeeded));
        assert!(!moves_forward(Started, Started));
    }
}
