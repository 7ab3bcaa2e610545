//! Deploy detection when no CI reports one: every `deploy_watch_seconds` the agent looks at each
//! service's watched paths and unit (the owner's `[deploys.SERVICE] watch` and `unit`), and when
//! what they point at changed, sends `deploy_detected` with a fingerprint of the new release.
//!
//! Cheap by construction: each tick is one `lstat` per watched path (a directory: one per entry,
//! at most [`MAX_ENTRIES`]); content is hashed only when a path's stamp (symlink target, size,
//! mtime, inode) moved. A unit counts when it restarted (its main process's start time moved) with
//! an executable whose content differs. The last fingerprints are kept in the state directory, so
//! a release that landed while the agent was down or disconnected is still reported, and the same
//! change is never reported twice (central is idempotent on it anyway). The first look at a
//! service only records its baseline: an agent's first start is not a deploy.
//!
//! Each change is its own deploy, also when it returns to an earlier release: a rollback A → B →
//! A is three releases and two deploys, not B folded back into A's first. So what is sent as the
//! fingerprint names the transition (the release before, the release after, and the service's
//! count of changes), not the release alone: central keys deploys on it, a re-send of the same
//! transition after a reconnect is the same deploy, and a later return to A is a new one.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mttrly_core::deploys::ServiceDeploys;
use mttrly_proto::agent::v1::{AgentMessage, DeployDetected, agent_message};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::policy::LocalPolicy;

/// The file (in the state directory) holding the last fingerprints.
const STATE_FILE: &str = "deploy-watch.json";
/// Directory entries looked at per watched directory, at most.
const MAX_ENTRIES: usize = 10_000;
/// How deep a watched directory is walked.
const MAX_DEPTH: usize = 8;

/// One watched path or unit as last seen: its cheap stamp and the hash taken when it last moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    stamp: String,
    hash: String,
}

/// One service as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ServiceSeen {
    fingerprint: String,
    parts: BTreeMap<String, Seen>,
    /// Changes seen so far (a state written before this field counts from 0).
    #[serde(default)]
    transitions: u64,
}

/// The id of the change from release `before` to `after`, the service's `seq`-th.
fn transition_id(before: &str, after: &str, seq: u64) -> String {
    let mut hash = Sha256::new();
    for part in [before, after, &seq.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// The watcher's memory, persisted between ticks and runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    services: BTreeMap<String, ServiceSeen>,
}

/// What one tick found for a service whose release changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The service.
    pub service: String,
    /// The change's id: the release before, the release after and the change's number, hashed
    /// (the same change sent twice has the same id; a return to an earlier release a new one).
    pub fingerprint: String,
    /// A short label for the release.
    pub version: String,
    /// What moved, one line each.
    pub changes: Vec<String>,
}

/// Looks at the policy's services and remembers what it saw.
pub struct Watcher {
    services: BTreeMap<String, ServiceDeploys>,
    state_path: PathBuf,
    state: State,
}

impl Watcher {
    /// A watcher over the services that watch something, with the state kept in `state_dir`;
    /// `None` when the policy watches nothing.
    pub fn new(policy: &LocalPolicy, state_dir: &Path) -> Option<Self> {
        let services: BTreeMap<String, ServiceDeploys> = policy
            .deploys
            .iter()
            .filter(|(_, s)| !s.watch.is_empty() || s.unit.is_some())
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        if services.is_empty() {
            return None;
        }
        let state_path = state_dir.join(STATE_FILE);
        let state = std::fs::read(&state_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Some(Self { services, state_path, state })
    }

    /// One look: the services whose release changed since the last look (a first look records a
    /// baseline and reports nothing). `units` gives each unit's start stamp and executable, read
    /// by the caller (a process, so async).
    pub fn tick(&mut self, units: &BTreeMap<String, (String, Option<String>)>) -> Vec<Change> {
        let mut found = Vec::new();
        for (name, service) in &self.services {
            let before = self.state.services.get(name).cloned();
            let mut now = ServiceSeen::default();
            let mut moved = Vec::new();
            for path in &service.watch {
                let key = format!("path:{path}");
                let stamp = stamp_of(Path::new(path));
                let old = before.as_ref().and_then(|b| b.parts.get(&key));
                let seen = match old {
                    Some(old) if old.stamp == stamp => old.clone(),
                    _ => {
                        if old.is_some() {
                            moved.push(describe(path, &stamp));
                        }
                        Seen { hash: hash_of(Path::new(path)), stamp }
                    }
                };
                now.parts.insert(key, seen);
            }
            if let Some(unit) = &service.unit
                && let Some((started, exe)) = units.get(unit)
            {
                let key = format!("unit:{unit}");
                let old = before.as_ref().and_then(|b| b.parts.get(&key));
                let seen = match old {
                    Some(old) if &old.stamp == started => old.clone(),
                    _ => {
                        let hash = exe.as_deref().map_or_else(String::new, |e| hash_of(Path::new(e)));
                        if old.is_some_and(|o| o.hash != hash) {
                            moved.push(format!(
                                "{unit} restarted with a new executable {}",
                                exe.as_deref().unwrap_or("?")
                            ));
                        }
                        Seen { stamp: started.clone(), hash }
                    }
                };
                now.parts.insert(key, seen);
            }
            let mut fingerprint = Sha256::new();
            for (key, seen) in &now.parts {
                fingerprint.update(key.as_bytes());
                fingerprint.update([0]);
                fingerprint.update(seen.hash.as_bytes());
                fingerprint.update([0]);
            }
            now.fingerprint = hex::encode(fingerprint.finalize());
            now.transitions = before.as_ref().map_or(0, |b| b.transitions);
            if let Some(before) = before
                && before.fingerprint != now.fingerprint
            {
                now.transitions = now.transitions.saturating_add(1);
                found.push(Change {
                    service: name.clone(),
                    version: version_of(service, &now.fingerprint),
                    fingerprint: transition_id(&before.fingerprint, &now.fingerprint, now.transitions),
                    changes: moved,
                });
            }
            self.state.services.insert(name.clone(), now);
        }
        found
    }

    /// Writes the state (atomically: a temporary file renamed over the old one).
    pub fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
        let tmp = self.state_path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.state_path)
    }

    /// The units to ask systemd about.
    fn units(&self) -> Vec<String> {
        self.services.values().filter_map(|s| s.unit.clone()).collect()
    }
}

/// A path's cheap stamp: symlink target, file type, size, mtime (ns) and inode; for a directory,
/// the same summed over its entries.
fn stamp_of(path: &Path) -> String {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return "missing".to_owned() };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
        let resolved = std::fs::canonicalize(path).map_or_else(|_| "dangling".to_owned(), |p| stamp_of(&p));
        return format!("link:{target}|{resolved}");
    }
    if meta.is_dir() {
        let mut entries = Vec::new();
        walk(path, 0, &mut entries);
        let mut hash = Sha256::new();
        for (rel, m) in &entries {
            hash.update(format!("{rel}|{}|{}|{}\n", m.len(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.ino()));
        }
        return format!("dir:{}:{}", entries.len(), hex::encode(hash.finalize()));
    }
    format!("file:{}:{}:{}:{}", meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino())
}

/// Every entry under `dir` (relative path, metadata), sorted, bounded.
fn walk(dir: &Path, depth: usize, out: &mut Vec<(String, std::fs::Metadata)>) {
    fn inner(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, std::fs::Metadata)>) {
        let Ok(read) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            if out.len() >= MAX_ENTRIES {
                return;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            let is_dir = meta.is_dir();
            out.push((rel, meta));
            if is_dir && depth < MAX_DEPTH {
                inner(root, &path, depth + 1, out);
            }
        }
    }
    inner(dir, dir, depth, out);
}

/// The content hash of a path: a file's bytes, a directory's entries' (names and contents), a
/// symlink's target. Bounded like [`walk`].
fn hash_of(path: &Path) -> String {
    let mut hash = Sha256::new();
    let Ok(meta) = std::fs::symlink_metadata(path) else { return "missing".to_owned() };
    if meta.file_type().is_symlink() {
        hash.update(std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default().as_bytes());
        if let Ok(target) = std::fs::canonicalize(path) {
            hash.update(hash_of(&target).as_bytes());
        }
    } else if meta.is_dir() {
        let mut entries = Vec::new();
        walk(path, 0, &mut entries);
        for (rel, m) in entries {
            hash.update(rel.as_bytes());
            hash.update([0]);
            if m.is_file() {
                hash_file(&path.join(&rel), &mut hash);
            }
        }
    } else {
        hash_file(path, &mut hash);
    }
    hex::encode(hash.finalize())
}

fn hash_file(path: &Path, hash: &mut Sha256) {
    let Ok(mut file) = std::fs::File::open(path) else {
        hash.update(b"unreadable");
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => hash.update(&buf[..n]),
        }
    }
}

fn describe(path: &str, stamp: &str) -> String {
    match stamp.strip_prefix("link:").and_then(|s| s.split('|').next()) {
        Some(target) => format!("{path} -> {target}"),
        None if stamp == "missing" => format!("{path} removed"),
        None => format!("{path} changed"),
    }
}

/// A label for the release: a watched symlink's target's last component (`releases/42` → `42`),
/// else the fingerprint's first 12 hex digits.
fn version_of(service: &ServiceDeploys, fingerprint: &str) -> String {
    service
        .watch
        .iter()
        .find_map(|p| std::fs::read_link(p).ok())
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| fingerprint[..12].to_owned())
}

/// Each unit's main process start stamp and executable (`systemctl show`); units systemd cannot
/// answer for are left out (no systemd on the host, a unit not loaded).
async fn unit_facts(policy: &LocalPolicy, units: Vec<String>) -> BTreeMap<String, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    for unit in units {
        let argv = ["systemctl", "show", "-p", "ExecMainStartTimestampMonotonic,ExecMainPID,ExecStart", "--", &unit]
            .map(str::to_owned)
            .to_vec();
        let (sink, _) = mpsc::channel(1);
        let limits = crate::exec::Limits { timeout: Duration::from_secs(10), max_lines: 50, ..Default::default() };
        let Ok(run) = crate::exec::run(&crate::exec::Program::Argv(argv), limits, policy.run_as(), &sink).await else {
            continue;
        };
        if run.exit_code != Some(0) {
            continue;
        }
        let value =
            |key: &str| run.output.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned);
        let Some(started) = value("ExecMainStartTimestampMonotonic").filter(|v| v != "0") else { continue };
        let pid = value("ExecMainPID").unwrap_or_default();
        // `ExecStart={ path=/usr/bin/app ; argv[]=... }`: the executable is `path=`.
        let exe = value("ExecStart").and_then(|v| {
            v.split(';').find_map(|part| {
                part.trim().trim_start_matches('{').trim().strip_prefix("path=").map(|p| p.trim().to_owned())
            })
        });
        out.insert(unit, (format!("{started}:{pid}"), exe));
    }
    out
}

/// Aborts the watch task when the session that started it ends.
pub struct WatchGuard(tokio::task::AbortHandle);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching for this session, sending detections on `tx`; `None` when the policy watches
/// nothing. A detection is remembered only once it is queued for central: if the stream ends
/// first, the next session reports it again.
pub fn spawn(policy: &Arc<LocalPolicy>, state_dir: &Path, tx: mpsc::Sender<AgentMessage>) -> Option<WatchGuard> {
    let mut watcher = Watcher::new(policy, state_dir)?;
    let policy = Arc::clone(policy);
    let every = Duration::from_secs(policy.deploy_watch_seconds.max(1));
    let task = tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let units = unit_facts(&policy, watcher.units()).await;
            let (back, changes) = match tokio::task::spawn_blocking(move || {
                let changes = watcher.tick(&units);
                (watcher, changes)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(error = %e, "deploy watch tick failed; watching stops for this session");
                    return;
                }
            };
            watcher = back;
            let at = jiff::Timestamp::now().as_millisecond();
            for change in changes {
                tracing::info!(service = %change.service, version = %change.version, "deploy detected");
                let message = AgentMessage {
                    body: Some(agent_message::Body::DeployDetected(DeployDetected {
                        service: change.service,
                        fingerprint: change.fingerprint,
                        version: change.version,
                        detected_at_unix_ms: at,
                        changes: change.changes,
                    })),
                };
                if tx.send(message).await.is_err() {
                    // The session ended before it was queued: keep the old state so the next
                    // session reports this release again.
                    return;
                }
            }
            if let Err(e) = watcher.save() {
                tracing::warn!(error = %e, "cannot save the deploy watch state");
            }
        }
    });
    Some(WatchGuard(task.abort_handle()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(dir: &Path, watch: Vec<String>) -> Watcher {
        let service = ServiceDeploys { watch, ..ServiceDeploys::default() };
        Watcher {
            services: [("web".to_owned(), service)].into_iter().collect(),
            state_path: dir.join(STATE_FILE),
            state: State::default(),
        }
    }

    #[test]
    fn a_changed_release_is_one_change_and_the_first_look_is_a_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let releases = dir.path().join("releases");
        std::fs::create_dir_all(releases.join("1")).unwrap();
        std::fs::create_dir_all(releases.join("2")).unwrap();
        std::fs::write(releases.join("1/app"), "v1").unwrap();
        std::fs::write(releases.join("2/app"), "v2").unwrap();
        let current = dir.path().join("current");
        std::os::unix::fs::symlink(releases.join("1"), &current).unwrap();
        let mut w = watcher(dir.path(), vec![current.display().to_string()]);
        let none = BTreeMap::new();
        assert!(w.tick(&none).is_empty(), "the first look is a baseline");
        assert!(w.tick(&none).is_empty(), "nothing moved");
        std::fs::remove_file(&current).unwrap();
        std::os::unix::fs::symlink(releases.join("2"), &current).unwrap();
        let changes = w.tick(&none);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].version, "2");
        assert!(changes[0].changes[0].ends_with("/releases/2"), "{:?}", changes[0].changes);
        assert!(w.tick(&none).is_empty(), "reported once");
        // Saved and reloaded: the same release is not reported again.
        w.save().unwrap();
        let reloaded: State = serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(reloaded, w.state);
    }

    /// A → B → A: two deploys, the rollback its own, not folded into A's first appearance; and a
    /// tick replayed from the same saved state (the stream ended before the change was queued)
    /// names the same change again.
    #[test]
    fn a_rollback_is_a_deploy_of_its_own_and_a_replayed_change_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("app");
        std::fs::write(&bin, "build A").unwrap();
        let mut w = watcher(dir.path(), vec![bin.display().to_string()]);
        let none = BTreeMap::new();
        assert!(w.tick(&none).is_empty());
        std::fs::write(&bin, "build B").unwrap();
        let to_b = w.tick(&none);
        w.save().unwrap();
        std::fs::write(&bin, "build A").unwrap();
        let saved = w.state.clone();
        let back_to_a = w.tick(&none);
        assert_eq!((to_b.len(), back_to_a.len()), (1, 1));
        assert_ne!(to_b[0].fingerprint, back_to_a[0].fingerprint, "the rollback is a deploy of its own");
        // Forward again to B: a third change, not the first one again.
        std::fs::write(&bin, "build B").unwrap();
        let again_b = w.tick(&none);
        assert_ne!(again_b[0].fingerprint, to_b[0].fingerprint, "B again is a new deploy");
        // The rollback's tick replayed from the state saved before it: the same id.
        w.state = saved;
        std::fs::write(&bin, "build A").unwrap();
        let replayed = w.tick(&none);
        assert_eq!(replayed[0].fingerprint, back_to_a[0].fingerprint);
        // Central keys deploys on it: three distinct external ids.
        let server = mttrly_core::ids::ServerId::generate();
        let ids: std::collections::BTreeSet<_> = [&to_b[0], &back_to_a[0], &again_b[0]]
            .iter()
            .map(|c| mttrly_core::deploys::detected_external_id(&server, "web", &c.fingerprint))
            .collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn a_binary_rewritten_in_place_is_a_change_but_a_touch_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("app");
        std::fs::write(&bin, "build 1").unwrap();
        let mut w = watcher(dir.path(), vec![bin.display().to_string()]);
        let none = BTreeMap::new();
        assert!(w.tick(&none).is_empty());
        // Same content, new mtime: the stamp moves, the hash does not.
        let file = std::fs::File::options().write(true).open(&bin).unwrap();
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
        drop(file);
        assert!(w.tick(&none).is_empty(), "a touch is not a deploy");
        std::fs::write(&bin, "build 2").unwrap();
        let changes = w.tick(&none);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].version.len(), 12, "no symlink: the fingerprint labels it");
    }

    #[test]
    fn a_unit_counts_only_when_it_restarts_with_another_executable() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("app");
        std::fs::write(&exe, "build 1").unwrap();
        let service = ServiceDeploys { unit: Some("app.service".into()), ..ServiceDeploys::default() };
        let mut w = Watcher {
            services: [("app".to_owned(), service)].into_iter().collect(),
            state_path: dir.path().join(STATE_FILE),
            state: State::default(),
        };
        let facts = |stamp: &str| -> BTreeMap<String, (String, Option<String>)> {
            [("app.service".to_owned(), (stamp.to_owned(), Some(exe.display().to_string())))].into_iter().collect()
        };
        assert!(w.tick(&facts("100:1")).is_empty());
        std::fs::write(&exe, "build 2").unwrap();
        assert!(w.tick(&facts("100:1")).is_empty(), "a new binary is not live until the unit restarts");
        assert!(w.tick(&facts("200:2")).len() == 1, "restarted with the new binary");
        assert!(w.tick(&facts("300:3")).is_empty(), "a restart with the same binary is not a deploy");
    }
}
