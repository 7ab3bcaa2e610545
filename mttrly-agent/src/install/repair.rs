//! Repair: the agent hands an approved plan to the root oneshot, which recomputes the plan from
//! the receipt and performs it only while its hash equals the approved one.
//!
//! The agent (unprivileged) checks the hash first and writes `repair-request.json` in its state
//! directory; systemd's path unit starts `mttrly-agent repair --pending` as root (a test root has
//! no systemd: the test runs that command itself). The oneshot treats the request as untrusted
//! input: it takes only the strategy, the finding codes and the hash from it, never a path or a
//! content, and derives every change from the root-owned receipt.

use std::time::Duration;

use mttrly_core::action::ActionContent;
use mttrly_core::tools::install::{ChangeKind, PlannedChange, RepairOutcome, RepairStrategy};
use mttrly_core::{ErrorCode, MttrlyError};
use serde::{Deserialize, Serialize};

use super::InstallError;
use super::fsops;
use super::health::{self, root_owner};
use super::layout::{Layout, REPAIR_PATH_UNIT, SERVICE_UNIT};
use super::receipt::{self, Receipt};
use super::system;
use super::unit;

/// How long the agent waits for the oneshot's result.
const WAIT: Duration = Duration::from_secs(120);
/// How long the oneshot waits for the agent to read its result before restarting the service.
const RESULT_GRACE: Duration = Duration::from_secs(5);

/// What the agent asks root to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// The approved action.
    pub action_id: String,
    /// The strategy.
    pub strategy: RepairStrategy,
    /// For `issue`: the findings named.
    pub finding_codes: Vec<String>,
    /// The approved plan's hash.
    pub plan_hash: String,
}

/// What root did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairResult {
    /// The action.
    pub action_id: String,
    /// What changed, when it ran.
    pub outcome: Option<RepairOutcome>,
    /// Why nothing (or not everything) changed.
    pub error: Option<String>,
}

/// The refusal when the host's plan is no longer the approved one.
pub fn mismatch(approved: &str, now: &str) -> MttrlyError {
    MttrlyError::new(
        ErrorCode::ValidationError,
        format!(
            "plan hash mismatch: the host changed since this repair was planned (approved plan {approved}, the host's plan now {now}); nothing was changed: read mttrly_get_install_health again"
        ),
    )
    .with_detail("approved_plan_hash", approved)
    .with_detail("current_plan_hash", now)
}

/// The plan hash `strategy` has on this host now.
fn current_hash(layout: &Layout, strategy: RepairStrategy, codes: &[String]) -> Result<String, InstallError> {
    let receipt =
        Receipt::load(layout)?.ok_or_else(|| InstallError::NoReceipt(layout.receipt().display().to_string()))?;
    let (checks, _) = health::checks(layout, &receipt)?;
    Ok(health::plan(layout, &receipt, &checks, strategy, codes).plan_hash)
}

/// The agent's side of an approved `install_repair` action: checks the plan hash against its own
/// view, hands the request to root and waits for the result.
pub async fn request(layout: &Layout, action_id: &str, content: &ActionContent) -> Result<RepairOutcome, MttrlyError> {
    let ActionContent::InstallRepair { strategy, finding_codes, plan_hash, .. } = content else {
        return Err(MttrlyError::new(ErrorCode::ValidationError, "install.repair carries an install_repair action"));
    };
    let strategy = *strategy;
    let (blocking, codes) = (layout.clone(), finding_codes.clone());
    let now = tokio::task::spawn_blocking(move || current_hash(&blocking, strategy, &codes))
        .await
        .map_err(|e| MttrlyError::new(ErrorCode::InternalError, format!("the repair check failed: {e}")))?
        .map_err(|e| e.to_mttrly())?;
    if now != *plan_hash {
        return Err(mismatch(plan_hash, &now));
    }
    let req = RepairRequest {
        action_id: action_id.to_owned(),
        strategy,
        finding_codes: finding_codes.clone(),
        plan_hash: plan_hash.clone(),
    };
    let body = serde_json::to_vec(&req).map_err(|e| MttrlyError::new(ErrorCode::InternalError, e.to_string()))?;
    fsops::remove_file(&layout.repair_result()).map_err(|e| e.to_mttrly())?;
    fsops::write_file(&layout.repair_request(), &body, 0o600).map_err(|e| e.to_mttrly())?;
    if strategy == RepairStrategy::Uninstall {
        // Root removes this agent with its state directory: no result can come back.
        return Ok(RepairOutcome { strategy, plan_hash: plan_hash.clone(), changed: Vec::new(), handed_off: true });
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(bytes) = fsops::read_small(&layout.repair_result(), 1024 * 1024).map_err(|e| e.to_mttrly())?
            && let Ok(result) = serde_json::from_slice::<RepairResult>(&bytes)
            && result.action_id == action_id
        {
            let _ = fsops::remove_file(&layout.repair_result());
            return match (result.outcome, result.error) {
                (Some(outcome), None) => Ok(outcome),
                (_, error) => Err(MttrlyError::new(
                    ErrorCode::ValidationError,
                    error.unwrap_or_else(|| "the repair oneshot reported nothing".to_owned()),
                )),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = fsops::remove_file(&layout.repair_request());
            return Err(MttrlyError::new(
                ErrorCode::Timeout,
                format!(
                    "the root repair oneshot did not answer within {} s (is {REPAIR_PATH_UNIT} enabled?)",
                    WAIT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mttrly-agent repair --pending`, as root: performs the pending request, if any. Returns the
/// result written (`None` when nothing was pending, or for an uninstall, which removes the state
/// directory the result would go in).
pub fn perform_pending(layout: &Layout) -> Result<Option<RepairResult>, InstallError> {
    if layout.is_system() && !system::is_root() {
        return Err(InstallError::NotRoot);
    }
    let path = layout.repair_request();
    let Some(bytes) = fsops::read_small(&path, 64 * 1024)? else { return Ok(None) };
    // Taken at once, so the path unit does not start the oneshot again for the same request.
    fsops::remove_file(&path)?;
    let req: RepairRequest = match serde_json::from_slice(&bytes) {
        Ok(req) => req,
        Err(e) => {
            let result = RepairResult {
                action_id: String::new(),
                outcome: None,
                error: Some(format!("invalid repair request: {e}")),
            };
            write_result(layout, &result)?;
            return Ok(Some(result));
        }
    };
    let receipt =
        Receipt::load(layout)?.ok_or_else(|| InstallError::NoReceipt(layout.receipt().display().to_string()))?;
    let (checks, _) = health::checks(layout, &receipt)?;
    let plan = health::plan(layout, &receipt, &checks, req.strategy, &req.finding_codes);
    if plan.plan_hash != req.plan_hash {
        let result = RepairResult {
            action_id: req.action_id,
            outcome: None,
            error: Some(mismatch(&req.plan_hash, &plan.plan_hash).message().to_owned()),
        };
        write_result(layout, &result)?;
        return Ok(Some(result));
    }
    if req.strategy == RepairStrategy::Uninstall {
        super::setup::uninstall(layout, false)?;
        return Ok(None);
    }
    let mut changed = Vec::new();
    let mut restart = false;
    let mut error = None;
    for change in &plan.changes {
        if change.kind == ChangeKind::Restart {
            // After the result is read: the agent waiting for it is the service restarted.
            restart = true;
            changed.push(change.clone());
            continue;
        }
        match apply(layout, &receipt, change) {
            Ok(()) => changed.push(change.clone()),
            Err(e) => {
                error = Some(format!("{:?} {}: {}", change.kind, change.target, mttrly_core::ErrorChain(&e)));
                break;
            }
        }
    }
    let result = RepairResult {
        action_id: req.action_id,
        outcome: error.is_none().then(|| RepairOutcome {
            strategy: req.strategy,
            plan_hash: plan.plan_hash.clone(),
            changed: changed.clone(),
            handed_off: false,
        }),
        error: error.map(|e| format!("{e}; {} change(s) made before the failure", changed.len())),
    };
    write_result(layout, &result)?;
    if restart && health::with_systemd(layout) {
        let deadline = std::time::Instant::now() + RESULT_GRACE;
        while layout.repair_result().exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        system::systemctl(&["restart", SERVICE_UNIT])?;
    }
    Ok(Some(result))
}

fn write_result(layout: &Layout, result: &RepairResult) -> Result<(), InstallError> {
    let path = layout.repair_result();
    let body = serde_json::to_vec(result)
        .map_err(|e| InstallError::Invalid { path: path.display().to_string(), reason: e.to_string() })?;
    fsops::write_file(&path, &body, receipt::ROOT_FILE_MODE)
}

/// Performs one change, deriving what to write from the receipt (never from the request).
fn apply(layout: &Layout, receipt: &Receipt, change: &PlannedChange) -> Result<(), InstallError> {
    let sys = Layout::system();
    let target = std::path::PathBuf::from(&change.target);
    let path = layout.outside(&target);
    let service = (receipt.uid, receipt.gid);
    let root = root_owner(layout, receipt);
    let unknown =
        || InstallError::Unexpected { path: change.target.clone(), what: "not a path this change applies to" };
    match change.kind {
        ChangeKind::WriteFile => {
            let units = unit::render(&receipt.unit_spec());
            let bytes = if target == sys.unit_file() {
                units.service
            } else if target == sys.repair_path_unit() {
                units.repair_path
            } else if target == sys.repair_service_unit() {
                units.repair_service
            } else {
                return Err(unknown());
            };
            fsops::write_file(&path, bytes.as_bytes(), receipt::ROOT_FILE_MODE)?;
            fsops::set_mode_owner(&path, receipt::ROOT_FILE_MODE, Some(root))
        }
        ChangeKind::CopyBinary => {
            let version_binary = sys.version_binary(&receipt.version);
            let (source, owner) = if target == version_binary {
                (sys.repair_binary(), service)
            } else if target == sys.repair_binary() {
                (version_binary, root)
            } else {
                return Err(unknown());
            };
            let source = layout.outside(&source);
            let bytes = fsops::read_small(&source, 512 * 1024 * 1024)?.unwrap_or_default();
            if fsops::sha256(&bytes) != receipt.binary_sha256 {
                return Err(InstallError::Unexpected {
                    path: source.display().to_string(),
                    what: "no longer the binary the receipt records",
                });
            }
            fsops::write_file(&path, &bytes, receipt::BINARY_MODE)?;
            fsops::set_mode_owner(&path, receipt::BINARY_MODE, Some(owner))
        }
        ChangeKind::SetMode => {
            let mode = if target == sys.state_dir() {
                receipt::STATE_DIR_MODE
            } else if target == sys.credentials() {
                receipt::CREDENTIALS_MODE
            } else {
                return Err(unknown());
            };
            fsops::set_mode_owner(&path, mode, Some(service))
        }
        ChangeKind::Relink => {
            if target != sys.current_link() {
                return Err(unknown());
            }
            fsops::replace_symlink(&path, &receipt.version)?;
            fsops::lchown(&path, service.0, service.1)
        }
        ChangeKind::DaemonReload => system::systemctl(&["daemon-reload"]).map(drop),
        ChangeKind::Restart | ChangeKind::Disable | ChangeKind::Remove => Err(unknown()),
    }
}
