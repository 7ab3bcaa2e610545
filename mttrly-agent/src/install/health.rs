//! Install health: every fact the installer owns compared with the root-owned receipt, each
//! finding carrying the changes that repair it, and one plan per strategy with its hash.
//!
//! The unprivileged agent and the root repair oneshot both call [`checks`] on the same host, so
//! they compute the same plans: the agent's is what the approver sees, root's is what runs, and
//! root runs it only when the two hashes are equal. Nothing volatile (restart counts, the time)
//! goes into a change, so the hash moves only when the host drifts.

use std::path::Path;

use mttrly_core::tools::common::Severity;
use mttrly_core::tools::install::{
    ChangeKind, Finding, FindingStatus, InstallReport, PlannedChange, RepairPlan, RepairStrategy,
};

use super::InstallError;
use super::fsops::{self, Stat};
use super::layout::{Layout, SERVICE, SERVICE_UNIT};
use super::receipt::{self, Receipt};
use super::system;
use super::unit;

/// A finding and the changes that repair it (empty: nothing on the host can).
#[derive(Debug, Clone)]
pub struct Check {
    /// The finding.
    pub finding: Finding,
    /// Its repair.
    pub fix: Vec<PlannedChange>,
}

/// The owner of root-owned files: root on the host; a staged install's owner is whoever staged it.
pub fn root_owner(layout: &Layout, receipt: &Receipt) -> (u32, u32) {
    if layout.is_system() { (0, 0) } else { (receipt.uid, receipt.gid) }
}

/// Whether systemd changes belong in plans (the host's install on a systemd host).
pub fn with_systemd(layout: &Layout) -> bool {
    layout.is_system() && system::systemd_running()
}

fn shown(layout: &Layout, path: &Path) -> String {
    layout.inside(path).display().to_string()
}

fn mode_owner(stat: Option<Stat>) -> String {
    match stat {
        None => "absent".to_owned(),
        Some(s) if s.is_symlink => "a symlink".to_owned(),
        Some(s) => format!("{:04o} {}:{}", s.mode, s.uid, s.gid),
    }
}

fn status_of(ok: bool, present: bool) -> FindingStatus {
    match (ok, present) {
        (true, _) => FindingStatus::Ok,
        (false, true) => FindingStatus::Drift,
        (false, false) => FindingStatus::Missing,
    }
}

fn finding(
    code: &str,
    subject: String,
    expected: String,
    actual: String,
    status: FindingStatus,
    severity: Severity,
) -> Finding {
    let severity = if status == FindingStatus::Ok { Severity::Info } else { severity };
    Finding { code: code.to_owned(), subject, expected, actual, status, severity, repaired_by: Vec::new() }
}

/// A regular file's hash; `Some("not a regular file")` for anything else there.
fn file_hash(path: &Path) -> Result<Option<String>, InstallError> {
    match fsops::stat(path)? {
        Some(s) if s.is_file => fsops::sha256_file(path),
        Some(_) => Ok(Some("not a regular file".to_owned())),
        None => Ok(None),
    }
}

/// A file whose content the receipt fully determines (units): compared by hash.
fn content_check(layout: &Layout, code: &str, path: &Path, expected: &[u8]) -> Result<Check, InstallError> {
    let want = fsops::sha256(expected);
    let have = file_hash(path)?;
    let status = status_of(have.as_deref() == Some(want.as_str()), have.is_some());
    let fix = vec![PlannedChange {
        kind: ChangeKind::WriteFile,
        target: shown(layout, path),
        detail: format!("sha256 {want}, mode {:04o}, root-owned", receipt::ROOT_FILE_MODE),
    }];
    let actual = have.as_deref().map_or_else(|| "absent".to_owned(), |h| format!("sha256 {h}"));
    Ok(Check {
        finding: finding(code, shown(layout, path), format!("sha256 {want}"), actual, status, Severity::Warning),
        fix,
    })
}

/// A file or directory compared by mode and owner.
fn mode_check(
    layout: &Layout,
    code: &str,
    path: &Path,
    mode: u32,
    owner: (u32, u32),
    dir: bool,
) -> Result<Check, InstallError> {
    let stat = fsops::stat(path)?;
    let right_kind = stat.is_some_and(|s| if dir { s.is_dir } else { s.is_file });
    let ok = right_kind && stat.is_some_and(|s| s.mode == mode && (s.uid, s.gid) == owner);
    let expected = format!("{mode:04o} {}:{}", owner.0, owner.1);
    let fix = if right_kind {
        vec![PlannedChange { kind: ChangeKind::SetMode, target: shown(layout, path), detail: expected.clone() }]
    } else {
        Vec::new()
    };
    let severity = if right_kind { Severity::Warning } else { Severity::Critical };
    Ok(Check {
        finding: finding(
            code,
            shown(layout, path),
            expected,
            mode_owner(stat),
            status_of(ok, stat.is_some()),
            severity,
        ),
        fix,
    })
}

/// A binary compared with the receipt's hash, repaired from `source` when that one is intact.
fn binary_check(
    layout: &Layout,
    receipt: &Receipt,
    code: &str,
    path: &Path,
    source: &Path,
) -> Result<Check, InstallError> {
    let have = file_hash(path)?;
    let ok = have.as_deref() == Some(receipt.binary_sha256.as_str());
    let source_ok = file_hash(source)?.as_deref() == Some(receipt.binary_sha256.as_str());
    let fix = if source_ok {
        vec![PlannedChange {
            kind: ChangeKind::CopyBinary,
            target: shown(layout, path),
            detail: format!(
                "from {}, sha256 {}, mode {:04o}",
                shown(layout, source),
                receipt.binary_sha256,
                receipt::BINARY_MODE
            ),
        }]
    } else {
        Vec::new()
    };
    let actual = have.as_deref().map_or_else(|| "absent".to_owned(), |h| format!("sha256 {h}"));
    Ok(Check {
        finding: finding(
            code,
            shown(layout, path),
            format!("sha256 {} (version {})", receipt.binary_sha256, receipt.version),
            actual,
            status_of(ok, have.is_some()),
            if source_ok { Severity::Warning } else { Severity::Critical },
        ),
        fix,
    })
}

/// The version `versions/current` names, and whether that is the receipt's version or an update
/// whose binary matches the manifest stored beside it (written last by the updater, as its
/// validity marker).
fn current_check(layout: &Layout, receipt: &Receipt) -> (Check, Option<String>) {
    let link = layout.current_link();
    let target = std::fs::read_link(&link).ok().map(|t| t.display().to_string());
    let verified_update = |v: &str| -> bool {
        if v.contains('/') || v == receipt.version {
            return false;
        }
        let manifest = fsops::read_small(&layout.version_dir(v).join("manifest.json"), 1024 * 1024).ok().flatten();
        let want = manifest.and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok()).and_then(|m| {
            m.pointer("/manifest/sha256").or_else(|| m.get("sha256")).and_then(|s| s.as_str()).map(str::to_owned)
        });
        want.is_some() && fsops::sha256_file(&layout.version_binary(v)).ok().flatten() == want
    };
    let ok = target.as_deref().is_some_and(|t| t == receipt.version || verified_update(t));
    let fix = vec![PlannedChange {
        kind: ChangeKind::Relink,
        target: shown(layout, &link),
        detail: format!("-> {}", receipt.version),
    }];
    let check = Check {
        finding: finding(
            "current_version",
            shown(layout, &link),
            format!("-> {} (or a verified update)", receipt.version),
            target.as_deref().map_or_else(|| "absent".to_owned(), |t| format!("-> {t}")),
            status_of(ok, target.is_some()),
            Severity::Critical,
        ),
        fix,
    };
    (check, target)
}

fn policy_check(layout: &Layout) -> Check {
    let path = layout.policy_file();
    let (status, actual) = match mttrly_core::policy::PolicyFile::load(&path) {
        Ok(_) => (FindingStatus::Ok, "valid".to_owned()),
        Err(_) if !path.exists() => (FindingStatus::Missing, "absent".to_owned()),
        Err(e) => (FindingStatus::Drift, e.message().to_owned()),
    };
    // The owner's file: a repair never rewrites it, the owner fixes it.
    Check {
        finding: finding(
            "policy_file",
            shown(layout, &path),
            "a valid policy file".to_owned(),
            actual,
            status,
            Severity::Critical,
        ),
        fix: Vec::new(),
    }
}

fn service_check() -> Result<Check, InstallError> {
    let (active, restarts) = system::unit_state(SERVICE_UNIT)?;
    let ok = active == "active" && restarts == 0;
    let severity = if active == "active" { Severity::Warning } else { Severity::Critical };
    Ok(Check {
        finding: finding(
            "service_state",
            SERVICE_UNIT.to_owned(),
            "active, 0 restarts".to_owned(),
            format!("{active}, {restarts} restarts"),
            if ok { FindingStatus::Ok } else { FindingStatus::Drift },
            severity,
        ),
        // Converge and reprovision restart the service; the state itself is not part of a plan.
        fix: Vec::new(),
    })
}

/// Every check, in a fixed order, and the version `current` names.
pub fn checks(layout: &Layout, receipt: &Receipt) -> Result<(Vec<Check>, Option<String>), InstallError> {
    let units = unit::render(&receipt.unit_spec());
    let service = (receipt.uid, receipt.gid);
    let version_binary = layout.version_binary(&receipt.version);
    let mut out = vec![
        binary_check(layout, receipt, "binary_sha256", &version_binary, &layout.repair_binary())?,
        binary_check(layout, receipt, "repair_binary_sha256", &layout.repair_binary(), &version_binary)?,
    ];
    let (current, current_version) = current_check(layout, receipt);
    out.push(current);
    out.push(content_check(layout, "unit_file", &layout.unit_file(), units.service.as_bytes())?);
    out.push(content_check(layout, "repair_path_unit", &layout.repair_path_unit(), units.repair_path.as_bytes())?);
    out.push(content_check(
        layout,
        "repair_service_unit",
        &layout.repair_service_unit(),
        units.repair_service.as_bytes(),
    )?);
    out.push(mode_check(layout, "state_dir_mode", &layout.state_dir(), receipt::STATE_DIR_MODE, service, true)?);
    out.push(mode_check(layout, "credentials_mode", &layout.credentials(), receipt::CREDENTIALS_MODE, service, false)?);
    out.push(policy_check(layout));
    if with_systemd(layout) {
        out.push(service_check()?);
    }
    Ok((out, current_version))
}

/// Systemd steps after file changes: reload when a unit changed, restart when asked.
fn systemd_tail(layout: &Layout, changes: &mut Vec<PlannedChange>, restart: bool) {
    if !with_systemd(layout) {
        return;
    }
    // Every file a plan writes is a unit (the owner's policy is never rewritten).
    let unit_changed = changes.iter().any(|c| c.kind == ChangeKind::WriteFile);
    if unit_changed {
        changes.push(PlannedChange {
            kind: ChangeKind::DaemonReload,
            target: "systemd".to_owned(),
            detail: String::new(),
        });
    }
    if restart {
        changes.push(PlannedChange {
            kind: ChangeKind::Restart,
            target: SERVICE_UNIT.to_owned(),
            detail: String::new(),
        });
    }
}

/// The plan of `strategy` (for `issue`, limited to `codes` when not empty).
pub fn plan(
    layout: &Layout,
    receipt: &Receipt,
    checks: &[Check],
    strategy: RepairStrategy,
    codes: &[String],
) -> RepairPlan {
    let broken = |c: &&Check| c.finding.status != FindingStatus::Ok && !c.fix.is_empty();
    let mut repairs = Vec::new();
    let mut changes: Vec<PlannedChange> = Vec::new();
    match strategy {
        RepairStrategy::Issue | RepairStrategy::Converge => {
            for check in checks.iter().filter(broken) {
                if strategy == RepairStrategy::Issue && !codes.is_empty() && !codes.contains(&check.finding.code) {
                    continue;
                }
                repairs.push(check.finding.code.clone());
                changes.extend(check.fix.iter().cloned());
            }
            let restart = strategy == RepairStrategy::Converge || !changes.is_empty();
            systemd_tail(layout, &mut changes, restart);
        }
        RepairStrategy::Reprovision => {
            for code in ["unit_file", "repair_path_unit", "repair_service_unit", "repair_binary_sha256"] {
                if let Some(check) = checks.iter().find(|c| c.finding.code == code) {
                    if check.finding.status != FindingStatus::Ok && !check.fix.is_empty() {
                        repairs.push(code.to_owned());
                    }
                    changes.extend(check.fix.iter().cloned());
                }
            }
            systemd_tail(layout, &mut changes, true);
        }
        RepairStrategy::Uninstall => {
            if with_systemd(layout) {
                changes.push(PlannedChange {
                    kind: ChangeKind::Disable,
                    target: SERVICE_UNIT.to_owned(),
                    detail: "stop and disable, with the repair path unit".to_owned(),
                });
            }
            for inside in super::setup::removal_order(receipt) {
                changes.push(PlannedChange {
                    kind: ChangeKind::Remove,
                    target: inside.display().to_string(),
                    detail: String::new(),
                });
            }
            if layout.is_system() && receipt.created_user {
                changes.push(PlannedChange {
                    kind: ChangeKind::Remove,
                    target: format!("user {SERVICE}"),
                    detail: String::new(),
                });
            }
        }
    }
    RepairPlan::new(strategy, repairs, changes)
}

/// Checks the installation and plans every strategy (`issue` limited to `issue_codes` when not
/// empty, every repairable finding otherwise).
pub fn report(layout: &Layout, issue_codes: &[String]) -> Result<InstallReport, InstallError> {
    let Some(receipt) = Receipt::load(layout)? else {
        return Ok(InstallReport {
            installed: false,
            receipt_version: None,
            current_version: None,
            findings: vec![finding(
                "receipt",
                shown(layout, &layout.receipt()),
                "an install receipt (written by `mttrly-agent install`)".to_owned(),
                "absent".to_owned(),
                FindingStatus::Missing,
                Severity::Warning,
            )],
            plans: Vec::new(),
            checked_at: jiff::Timestamp::now(),
        });
    };
    let (checks, current_version) = checks(layout, &receipt)?;
    let plans: Vec<RepairPlan> =
        RepairStrategy::ALL.iter().map(|s| plan(layout, &receipt, &checks, *s, issue_codes)).collect();
    let findings = checks
        .into_iter()
        .map(|c| {
            let mut f = c.finding;
            if !c.fix.is_empty() && f.status != FindingStatus::Ok {
                f.repaired_by = plans
                    .iter()
                    .filter(|p| p.strategy != RepairStrategy::Uninstall && p.repairs.contains(&f.code))
                    .map(|p| p.strategy)
                    .collect();
            }
            f
        })
        .collect();
    Ok(InstallReport {
        installed: true,
        receipt_version: Some(receipt.version.clone()),
        current_version,
        findings,
        plans,
        // Taken last, as the answer leaves: central compares it with its clock on arrival.
        checked_at: jiff::Timestamp::now(),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use proptest::prelude::*;

    use super::*;

    /// A staged install laid down by hand (no central needed): what `setup::install` writes.
    fn staged() -> (tempfile::TempDir, Layout, Receipt) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under(dir.path());
        let (uid, gid) = system::invoking_ids();
        let binary = b"\x7fELF pretend agent".to_vec();
        let receipt = Receipt {
            format: receipt::FORMAT,
            version: "1.2.3".into(),
            binary_sha256: fsops::sha256(&binary),
            user: SERVICE.into(),
            uid,
            gid,
            created_user: false,
            capabilities: Vec::new(),
            central_url: "http://127.0.0.1:1".into(),
            ca_sha256: None,
            server_id: "srv_x".into(),
            installed_at: "2026-01-01T00:00:00Z".into(),
            created: Vec::new(),
        };
        let mut created = Vec::new();
        for d in [
            layout.config_dir(),
            layout.version_dir("1.2.3"),
            layout.unit_dir(),
            layout.repair_binary().parent().unwrap().to_path_buf(),
        ] {
            fsops::ensure_dir(&d, 0o755, &mut created).unwrap();
        }
        fsops::set_mode_owner(&layout.state_dir(), receipt::STATE_DIR_MODE, None).unwrap();
        fsops::write_file(&layout.credentials(), b"{}", receipt::CREDENTIALS_MODE).unwrap();
        fsops::write_file(&layout.policy_file(), b"", receipt::ROOT_FILE_MODE).unwrap();
        fsops::write_file(&layout.version_binary("1.2.3"), &binary, receipt::BINARY_MODE).unwrap();
        fsops::write_file(&layout.repair_binary(), &binary, receipt::BINARY_MODE).unwrap();
        fsops::replace_symlink(&layout.current_link(), "1.2.3").unwrap();
        let units = unit::render(&receipt.unit_spec());
        fsops::write_file(&layout.unit_file(), units.service.as_bytes(), 0o644).unwrap();
        fsops::write_file(&layout.repair_path_unit(), units.repair_path.as_bytes(), 0o644).unwrap();
        fsops::write_file(&layout.repair_service_unit(), units.repair_service.as_bytes(), 0o644).unwrap();
        receipt.save(&layout.receipt()).unwrap();
        (dir, layout, receipt)
    }

    fn hashes(layout: &Layout, receipt: &Receipt) -> Vec<String> {
        let (checks, _) = checks(layout, receipt).unwrap();
        RepairStrategy::ALL.iter().map(|s| plan(layout, receipt, &checks, *s, &[]).plan_hash).collect()
    }

    #[test]
    fn a_healthy_staged_install_has_nothing_to_repair() {
        let (_dir, layout, _) = staged();
        let report = report(&layout, &[]).unwrap();
        assert!(report.installed);
        assert!(report.findings.iter().all(|f| f.status == FindingStatus::Ok), "{:#?}", report.findings);
        let converge = report.plans.iter().find(|p| p.strategy == RepairStrategy::Converge).unwrap();
        assert!(converge.changes.is_empty());
        assert_eq!(converge.plan_hash, mttrly_core::tools::install::plan_hash(RepairStrategy::Converge, &[]));
    }

    /// One way the host can drift.
    #[derive(Debug, Clone)]
    enum Drift {
        CredentialsMode(u32),
        StateDirMode(u32),
        UnitBytes(Vec<u8>),
        BinaryBytes(Vec<u8>),
        CurrentTo(String),
    }

    fn drift() -> impl Strategy<Value = Drift> {
        prop_oneof![
            (0o000u32..0o777).prop_filter("a change", |m| *m != 0o600).prop_map(Drift::CredentialsMode),
            (0o100u32..0o777).prop_filter("a change", |m| *m != 0o700).prop_map(Drift::StateDirMode),
            proptest::collection::vec(any::<u8>(), 1..64).prop_map(Drift::UnitBytes),
            proptest::collection::vec(any::<u8>(), 1..64).prop_map(Drift::BinaryBytes),
            "[a-z0-9.]{1,8}".prop_filter("another version", |v| v != "1.2.3").prop_map(Drift::CurrentTo),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The same state plans to the same hash; any drift changes the converge plan's hash.
        #[test]
        fn plan_hashes_are_stable_and_move_with_any_drift(d in drift()) {
            let (_dir, layout, receipt) = staged();
            let before = hashes(&layout, &receipt);
            prop_assert_eq!(&before, &hashes(&layout, &receipt));
            match &d {
                Drift::CredentialsMode(m) => std::fs::set_permissions(layout.credentials(), std::fs::Permissions::from_mode(*m)).unwrap(),
                Drift::StateDirMode(m) => std::fs::set_permissions(layout.state_dir(), std::fs::Permissions::from_mode(*m)).unwrap(),
                Drift::UnitBytes(b) => {
                    let mut text = std::fs::read(layout.unit_file()).unwrap();
                    text.extend_from_slice(b);
                    std::fs::write(layout.unit_file(), text).unwrap();
                }
                Drift::BinaryBytes(b) => fsops::write_file(&layout.version_binary("1.2.3"), b, 0o755).unwrap(),
                Drift::CurrentTo(v) => fsops::replace_symlink(&layout.current_link(), v).unwrap(),
            }
            let after = hashes(&layout, &receipt);
            prop_assert_eq!(&after, &hashes(&layout, &receipt));
            // Converge is index 1 in `RepairStrategy::ALL`.
            prop_assert_ne!(&before[1], &after[1], "{:?} left the converge plan unchanged", d);
        }
    }
}
