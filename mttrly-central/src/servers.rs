//! The server registry as operations of the app, not of a transport.
//!
//! Registering a server, removing one, the agent's enrollment command and finding the caller's
//! server live here so that every entry point runs the same rules: the gRPC `ServerService`, the
//! action engine (decommission, install-token rotation), quickstart, and the tool handlers. None
//! of them reaches into another transport's module for business logic (a test in
//! `tests/layers.rs` checks that the engine and quickstart never name `grpc::`).

use mttrly_core::ids::{AccountId, ServerId};
use mttrly_core::tools::common::ConnectionStatus;
use mttrly_core::{Environment, ErrorCode, MttrlyError, Plan};

use crate::agents::registry::{HelloMark, LiveStatus};
use crate::db::accounts::TokenOwner;
use crate::db::servers::ServerRow;
use crate::db::{self, now_ms};
use crate::secrets::{self, SecretKind};
use crate::state::Central;

/// A newly registered server and the install token its agent enrolls with (shown once). No
/// `Debug`: the token is a secret and must not end up in a log line.
pub struct Added {
    /// The new server.
    pub server_id: ServerId,
    /// The install token (the secret; only its hash is stored).
    pub install_token: String,
    /// When the install token stops working (Unix ms).
    pub expires_at: i64,
}

fn invalid(field: &str, message: &str) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", field)
}

/// The refusal of a server id the account does not hold: another account's and a decommissioned
/// server's read alike.
pub(crate) fn not_found(server_id: &ServerId) -> MttrlyError {
    MttrlyError::new(ErrorCode::ServerNotFound, format!("no server {server_id} in this account"))
        .with_detail("server_id", server_id.as_str())
}

/// Server names: 1 to 64 of letters, digits, `-`, `.`, `_`, starting with a letter or digit, so
/// they are safe in shell commands, URLs and file names.
pub fn check_name(name: &str) -> Result<(), MttrlyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "server name must be 1 to 64 of letters, digits, `-`, `.`, `_`, starting with a letter or digit",
        ))
    }
}

/// The command a server owner runs to enroll and start the agent. With TLS it carries central's
/// CA, which the agent pins.
pub fn agent_command(central: &Central, install_token: &str) -> String {
    let ca = central.tls.as_ref().map(|t| format!(" --ca-cert-b64 {}", t.ca_base64())).unwrap_or_default();
    format!("mttrly-agent enroll --central {} --token {install_token}{ca} && mttrly-agent run", central.grpc_url)
}

/// Registers a server in `account` and issues its install token, within the plan's server limit
/// (`PLAN_REQUIRED` beyond it; the database counts and inserts in one transaction, so
/// two racing registrations cannot both take the last slot).
pub async fn add(
    central: &Central,
    account: &AccountId,
    plan: Plan,
    name: String,
    environment: Environment,
) -> Result<Added, MttrlyError> {
    check_name(&name)?;
    let token = secrets::generate(SecretKind::Install);
    let hash = secrets::hash(&token);
    let expires_at = now_ms() + i64::from(central.config.install_token_ttl_minutes) * 60_000;
    let limit = plan.limits().servers;
    let registered =
        central.db.account(account).servers().register(&name, environment, &hash, expires_at, limit).await?;
    let server_id = match registered {
        db::servers::Registered::Added(id) => id,
        db::servers::Registered::AtLimit { count } => {
            return Err(MttrlyError::new(
                ErrorCode::PlanRequired,
                format!("the {} plan allows {limit} server(s) and this account has {count}", plan.display_name()),
            )
            .with_detail("current_plan", plan.as_str())
            .with_detail("server_limit", limit));
        }
    };
    Ok(Added { server_id, install_token: token, expires_at })
}

/// Removes an offline server of `account` from the registry; `SERVER_ONLINE` while its agent is
/// connected, `SERVER_NOT_FOUND` for a server that is not the account's.
pub async fn remove(central: &Central, account: &AccountId, server_id: &ServerId) -> Result<(), MttrlyError> {
    let servers = central.db.account(account).servers();
    servers.get(server_id).await?.ok_or_else(|| not_found(server_id))?;
    if central.agents.status(server_id, now_ms()).status == ConnectionStatus::Online {
        return Err(MttrlyError::new(
            ErrorCode::ServerOnline,
            "the server's agent is connected; stop or uninstall the agent first, then remove the server",
        )
        .with_detail("server_id", server_id.as_str()));
    }
    if !servers.decommission(server_id).await? {
        return Err(not_found(server_id));
    }
    central.agents.remove(server_id);
    central.write_alerts(account, server_id, central.alerts.forget(server_id, now_ms()));
    tracing::info!(server_id = %server_id, "server decommissioned");
    Ok(())
}

/// The caller's server, or `SERVER_NOT_FOUND` (also for another account's server: no leak).
pub async fn find(central: &Central, caller: &TokenOwner, id: &ServerId) -> Result<ServerRow, MttrlyError> {
    central.db.account(&caller.account_id).servers().get(id).await?.ok_or_else(|| not_found(id))
}

/// A server row shown with its live status, the two consistent: the row holds the hello of the
/// stream the status reflects, or a later one (two agents racing with one server's credentials
/// can leave the row with the other's hello until the next connect).
#[derive(Debug)]
pub struct Observed {
    /// The stored server.
    pub row: ServerRow,
    /// Its live status, read after the row.
    pub live: LiveStatus,
}

/// The caller's server with its live status ([`Observed`]), or `SERVER_NOT_FOUND`.
///
/// The row is read before the status, and an agent may connect in between: the status would
/// then say online while the row has no host yet (or the version before an upgrade). Such a row
/// is read again; the hello it lacked was stored before the stream opened, so the second read
/// holds it.
pub async fn observe(central: &Central, account: &AccountId, id: &ServerId) -> Result<Observed, MttrlyError> {
    let servers = central.db.account(account).servers();
    let mark = central.agents.mark();
    let row = servers.get(id).await?.ok_or_else(|| not_found(id))?;
    let live = central.agents.status(id, now_ms());
    let row = if live.newer_than(mark) { servers.get(id).await?.ok_or_else(|| not_found(id))? } else { row };
    Ok(Observed { row, live })
}

/// Rows of `account` with their live status, as [`observe`] gives one: `rows` were read after
/// `mark` ([`crate::agents::registry::AgentRegistry::mark`]); those whose agent connected since
/// are read again in one query (one removed in between is then left out, as [`observe`] would
/// answer `SERVER_NOT_FOUND` for it).
pub async fn observe_rows(
    central: &Central,
    account: &AccountId,
    mark: HelloMark,
    rows: Vec<ServerRow>,
) -> Result<Vec<Observed>, MttrlyError> {
    let now = now_ms();
    let mut seen: Vec<Observed> =
        rows.into_iter().map(|row| Observed { live: central.agents.status(&row.id, now), row }).collect();
    let stale: Vec<ServerId> = seen.iter().filter(|o| o.live.newer_than(mark)).map(|o| o.row.id.clone()).collect();
    if !stale.is_empty() {
        let mut fresh: std::collections::HashMap<ServerId, ServerRow> = central
            .db
            .account(account)
            .servers()
            .get_many(stale)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        seen.retain_mut(|o| {
            if !o.live.newer_than(mark) {
                return true;
            }
            fresh.remove(&o.row.id).map(|row| o.row = row).is_some()
        });
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn server_names_are_safe_in_commands_urls_and_file_names() {
        for good in ["web-1", "db.prod", "a", "x_y", &"a".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-web", ".hidden", "web 1", "web/1", "web;rm", "wéb", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
