//! `mttrly_compare_source_to_dist`: a bounded, read-only comparison of a source tree with its
//! build output on a server.
//!
//! The input's caps are typed (each with a hard maximum); the owner's `[compare]` policy caps them
//! again on the host ([`ComparePolicy::limits`]). The answer is bounded too: every path is
//! counted, but only the first [`CompareMaxEntries`] entries that are not identical are listed
//! ([`CompareTally`]), so an answer over 100,000 files stays a few kilobytes. The verdict is
//! computed here once ([`CompareVerdict::judge`]) so the agent and the simulated agent agree.

use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedVec, bounded_int, bounded_text};
use crate::ids::ServerId;
use crate::tools::common::ServerPath;

bounded_int!(
    /// The most paths one comparison examines, both trees together (1 to 200000, default 20000).
    /// The owner's policy on the server may cap it lower.
    CompareMaxFiles: u32, min 1, max 200_000, default 20_000
);

bounded_int!(
    /// The most bytes one comparison reads to hash files (1 byte to 4 GiB, default 256 MiB). The
    /// owner's policy on the server may cap it lower.
    CompareMaxBytes: u64, min 1, max 4_294_967_296_u64, default 268_435_456
);

bounded_int!(
    /// How long the walk may take on the server, in milliseconds (100 to 60000, default 10000).
    /// The owner's policy on the server may cap it lower.
    CompareDeadlineMs: u32, min 100, max 60_000, default 10_000
);

bounded_int!(
    /// The most entries listed in the answer (1 to 500, default 100). Only entries that are not
    /// identical are listed; every path is still counted.
    CompareMaxEntries: u32, min 1, max 500, default 100
);

bounded_text!(
    /// A glob of paths to skip (1 to 256 characters). Without `/` it matches an entry's name at any
    /// depth (`.git`, `*.map`); with `/` it matches the path relative to the root (`assets/*.map`).
    IgnoreGlob, min 1, max 256
);

/// The most ignore globs one comparison takes.
pub const MAX_IGNORE_GLOBS: usize = 32;

/// What is skipped when the input names no `ignore` list: version control and dependencies.
pub const DEFAULT_IGNORES: &[&str] = &[".git", "node_modules"];

/// Arguments of `mttrly_compare_source_to_dist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareSourceToDistInput {
    /// The server.
    pub server_id: ServerId,
    /// The source tree: an absolute directory under a tree rule (`/srv/app/**`) of the server's
    /// file allowlist.
    pub source_dir: ServerPath,
    /// The built output: an absolute directory under a tree rule of the file allowlist.
    pub dist_dir: ServerPath,
    /// Globs to skip; `[".git", "node_modules"]` when absent, nothing skipped when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<BoundedVec<IgnoreGlob, MAX_IGNORE_GLOBS>>,
    /// The most paths examined.
    #[serde(default)]
    pub max_files: CompareMaxFiles,
    /// The most bytes hashed.
    #[serde(default)]
    pub max_bytes_hashed: CompareMaxBytes,
    /// The walk's deadline on the server, in milliseconds.
    #[serde(default)]
    pub deadline_ms: CompareDeadlineMs,
    /// The most non-identical entries listed.
    #[serde(default)]
    pub max_entries: CompareMaxEntries,
}

impl CompareSourceToDistInput {
    /// The ignore globs to apply: the defaults when none were given.
    pub fn ignore_globs(&self) -> Vec<String> {
        match &self.ignore {
            Some(list) => list.as_slice().iter().map(|g| g.as_str().to_owned()).collect(),
            None => DEFAULT_IGNORES.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    /// The parameters central sends the agent (the agent caps them again by its policy).
    pub fn params(&self) -> CompareParams {
        CompareParams {
            source_dir: self.source_dir.clone(),
            dist_dir: self.dist_dir.clone(),
            ignore: self.ignore_globs(),
            limits: CompareLimits {
                max_files: self.max_files.get(),
                max_bytes_hashed: self.max_bytes_hashed.get(),
                deadline_ms: self.deadline_ms.get(),
                max_entries: self.max_entries.get(),
            },
        }
    }
}

/// The caps of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompareLimits {
    /// The most paths examined, both trees together.
    pub max_files: u32,
    /// The most bytes read for hashing.
    pub max_bytes_hashed: u64,
    /// The walk's deadline, in milliseconds.
    pub deadline_ms: u32,
    /// The most non-identical entries listed.
    pub max_entries: u32,
}

impl CompareLimits {
    /// Each cap within its type's hard maximum and at least 1, whatever a peer sent.
    #[must_use]
    pub fn within_types(self) -> Self {
        Self {
            max_files: self.max_files.clamp(1, CompareMaxFiles::MAX),
            max_bytes_hashed: self.max_bytes_hashed.clamp(1, CompareMaxBytes::MAX),
            deadline_ms: self.deadline_ms.clamp(CompareDeadlineMs::MIN, CompareDeadlineMs::MAX),
            max_entries: self.max_entries.clamp(1, CompareMaxEntries::MAX),
        }
    }
}

/// `files.compare`: the two roots, what to skip, and the caps asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareParams {
    /// The source tree.
    pub source_dir: ServerPath,
    /// The built output.
    pub dist_dir: ServerPath,
    /// Globs to skip (the defaults already applied by central).
    pub ignore: Vec<String>,
    /// The caps asked for (the agent takes the smaller of these and its policy's).
    pub limits: CompareLimits,
}

/// The owner's `[compare]` section of the policy file: whether comparisons run on this host and
/// the largest caps any request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComparePolicy {
    /// Whether `mttrly_compare_source_to_dist` may run here.
    pub enabled: bool,
    /// The most paths one comparison examines.
    pub max_files: u32,
    /// The most bytes one comparison hashes.
    pub max_bytes_hashed: u64,
    /// The longest one comparison may walk, in milliseconds.
    pub max_deadline_ms: u32,
}

impl Default for ComparePolicy {
    fn default() -> Self {
        Self { enabled: true, max_files: 100_000, max_bytes_hashed: 1 << 30, max_deadline_ms: 30_000 }
    }
}

impl ComparePolicy {
    /// Checks the section's values (each at least 1, the deadline at least 100 ms).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_files == 0 || self.max_bytes_hashed == 0 {
            return Err("compare.max_files and compare.max_bytes_hashed must be at least 1".to_owned());
        }
        if self.max_deadline_ms < CompareDeadlineMs::MIN {
            return Err(format!("compare.max_deadline_ms must be at least {}", CompareDeadlineMs::MIN));
        }
        Ok(())
    }

    /// The caps a request gets here: the smaller of what was asked and this policy's, each within
    /// its type's bounds.
    pub fn limits(&self, asked: CompareLimits) -> CompareLimits {
        let asked = asked.within_types();
        CompareLimits {
            max_files: asked.max_files.min(self.max_files.max(1)),
            max_bytes_hashed: asked.max_bytes_hashed.min(self.max_bytes_hashed.max(1)),
            deadline_ms: asked.deadline_ms.min(self.max_deadline_ms.max(CompareDeadlineMs::MIN)),
            max_entries: asked.max_entries,
        }
    }
}

/// What an entry is, from its own metadata (a symlink is never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file (compared by size and SHA-256).
    File,
    /// A directory (walked, never reported when present on both sides).
    Dir,
    /// A symbolic link (compared by its target text, never followed).
    Symlink,
    /// A named pipe (never opened).
    Fifo,
    /// A Unix socket (never opened).
    Socket,
    /// A character device (never opened).
    CharDevice,
    /// A block device (never opened).
    BlockDevice,
}

/// One side of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntrySide {
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes (files and symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its SHA-256 in hex, present when it was hashed: both sides are regular files of the same
    /// size (a different size already means `modified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Its modification time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<jiff::Timestamp>,
    /// A symlink's target text, as stored (shown with control characters escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
}

/// How a path compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareStatus {
    /// The same kind and content on both sides.
    Identical,
    /// The same kind, different content (size, SHA-256 or symlink target).
    Modified,
    /// Only in the source tree.
    OnlyInSource,
    /// Only in the build output.
    OnlyInDist,
    /// A different kind on each side (a file here, a directory there).
    TypeMismatch,
    /// One side could not be read or may not be (permissions, a second hard link, a path outside
    /// the allowlist, or it changed during the walk); `reason` says which.
    Unreadable,
}

/// One path that is not identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompareEntry {
    /// The path relative to both roots (control characters escaped).
    pub path: String,
    /// How it compares.
    pub status: CompareStatus,
    /// An `rpm -V`-style flag string for a compact reading: `S` size, `5` SHA-256, `L` symlink
    /// target, `T` mtime, each `.` when equal, `?` when not checked; `missing` for a path on one
    /// side only.
    pub flags: String,
    /// The source side, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EntrySide>,
    /// The dist side, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist: Option<EntrySide>,
    /// Why an `unreadable` entry could not be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How many paths had each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompareCounts {
    /// Identical on both sides.
    pub identical: u32,
    /// Same kind, different content.
    pub modified: u32,
    /// Only in the source tree.
    pub only_in_source: u32,
    /// Only in the build output.
    pub only_in_dist: u32,
    /// A different kind on each side.
    pub type_mismatch: u32,
    /// Could not be compared.
    pub unreadable: u32,
    /// Skipped by the ignore globs (not walked).
    pub ignored: u32,
}

impl CompareCounts {
    fn bump(&mut self, status: CompareStatus) {
        let slot = match status {
            CompareStatus::Identical => &mut self.identical,
            CompareStatus::Modified => &mut self.modified,
            CompareStatus::OnlyInSource => &mut self.only_in_source,
            CompareStatus::OnlyInDist => &mut self.only_in_dist,
            CompareStatus::TypeMismatch => &mut self.type_mismatch,
            CompareStatus::Unreadable => &mut self.unreadable,
        };
        *slot = slot.saturating_add(1);
    }

    /// Paths that are not identical.
    pub fn differing(&self) -> u32 {
        [self.modified, self.only_in_source, self.only_in_dist, self.type_mismatch, self.unreadable]
            .iter()
            .fold(0u32, |sum, n| sum.saturating_add(*n))
    }
}

/// The cap that stopped a comparison early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareCap {
    /// `max_files` paths were examined.
    MaxFiles,
    /// Hashing the next file would have read more than `max_bytes_hashed`.
    MaxBytes,
    /// `deadline_ms` passed.
    Deadline,
}

/// The one-word answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareVerdict {
    /// Every path is identical.
    UpToDate,
    /// Something differs and the newest source file is newer than the newest output file: the
    /// build did not run after the last source change.
    StaleBuild,
    /// Something differs, and the output is not older than the source.
    Differs,
    /// A cap stopped the walk (`stopped_by`), so nothing can be concluded about the rest.
    Incomplete,
}

/// The newest entry seen on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewestEntry {
    /// Its modification time.
    pub mtime: jiff::Timestamp,
    /// Its path relative to the root.
    pub path: String,
}

impl CompareVerdict {
    /// The verdict: `incomplete` when a cap stopped the walk; `up_to_date` when nothing differs;
    /// `stale_build` when something differs and the newest source is strictly newer than the
    /// newest output (or there is no output at all); `differs` otherwise.
    pub fn judge(
        partial: bool,
        counts: &CompareCounts,
        newest_source: Option<&NewestEntry>,
        newest_dist: Option<&NewestEntry>,
    ) -> Self {
        if partial {
            return Self::Incomplete;
        }
        if counts.differing() == 0 {
            return Self::UpToDate;
        }
        match (newest_source, newest_dist) {
            (Some(s), Some(d)) if s.mtime > d.mtime => Self::StaleBuild,
            (Some(_), None) => Self::StaleBuild,
            _ => Self::Differs,
        }
    }
}

/// What the agent answers: the comparison without the server, which central adds ([`Self::on`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TreeReport {
    /// The source root as resolved on the server.
    pub source_dir: String,
    /// The dist root as resolved on the server.
    pub dist_dir: String,
    /// The one-word answer.
    pub verdict: CompareVerdict,
    /// The newest file or symlink in the source tree (ignored paths excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_source: Option<NewestEntry>,
    /// The newest file or symlink in the build output (ignored paths excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_dist: Option<NewestEntry>,
    /// Whether a cap stopped the walk before every path was compared.
    pub partial: bool,
    /// The cap that stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<CompareCap>,
    /// How many paths had each status.
    pub counts: CompareCounts,
    /// The first `max_entries` paths that are not identical, in walk order (directory by
    /// directory, names in byte order: deterministic).
    pub entries: Vec<CompareEntry>,
    /// How many non-identical paths were counted but not listed.
    pub entries_omitted: u32,
    /// How many paths were examined, both trees together.
    pub examined: u32,
    /// How many bytes were read to hash files.
    pub bytes_hashed: u64,
    /// How long the walk took, in milliseconds.
    pub elapsed_ms: u64,
    /// The caps applied (the request's, capped by the owner's policy on the server).
    pub limits: CompareLimits,
}

impl TreeReport {
    /// The tool output for `server`.
    pub fn on(self, server: ServerId) -> TreeComparison {
        TreeComparison { server_id: server, report: self }
    }
}

/// How a source tree and its build output differ on a server. Bounded: every path is counted in
/// `counts`, but only the first `max_entries` non-identical paths are listed in `entries`
/// (`entries_omitted` says how many more); identical paths are only counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TreeComparison {
    /// The server.
    pub server_id: ServerId,
    /// The comparison.
    #[serde(flatten)]
    pub report: TreeReport,
}

/// Accumulates a comparison as it is walked: counts every path, keeps the first entries that are
/// not identical, and tracks the newest mtime on each side. The agent and the simulated agent
/// both build their answers with it, so counts, bounds and the verdict agree.
#[derive(Debug, Clone)]
pub struct CompareTally {
    counts: CompareCounts,
    entries: Vec<CompareEntry>,
    omitted: u32,
    max_entries: usize,
    newest_source: Option<NewestEntry>,
    newest_dist: Option<NewestEntry>,
}

impl CompareTally {
    /// An empty tally listing at most `max_entries` entries.
    pub fn new(max_entries: u32) -> Self {
        Self {
            counts: CompareCounts::default(),
            entries: Vec::new(),
            omitted: 0,
            max_entries: usize::try_from(max_entries.clamp(1, CompareMaxEntries::MAX)).unwrap_or(1),
            newest_source: None,
            newest_dist: None,
        }
    }

    /// Records one compared path; identical ones are only counted.
    pub fn push(&mut self, entry: CompareEntry) {
        self.counts.bump(entry.status);
        if entry.status == CompareStatus::Identical {
            return;
        }
        if self.entries.len() < self.max_entries {
            self.entries.push(entry);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    /// Records one path skipped by the ignore globs.
    pub fn ignored(&mut self) {
        self.counts.ignored = self.counts.ignored.saturating_add(1);
    }

    /// Records the mtime of a source file or symlink.
    pub fn saw_source(&mut self, mtime: jiff::Timestamp, path: &str) {
        newer(&mut self.newest_source, mtime, path);
    }

    /// Records the mtime of an output file or symlink.
    pub fn saw_dist(&mut self, mtime: jiff::Timestamp, path: &str) {
        newer(&mut self.newest_dist, mtime, path);
    }

    /// The counts so far.
    pub fn counts(&self) -> &CompareCounts {
        &self.counts
    }

    /// The report, with its verdict.
    pub fn finish(self, run: CompareRun) -> TreeReport {
        let partial = run.stopped_by.is_some();
        let verdict =
            CompareVerdict::judge(partial, &self.counts, self.newest_source.as_ref(), self.newest_dist.as_ref());
        TreeReport {
            source_dir: run.source_dir,
            dist_dir: run.dist_dir,
            verdict,
            newest_source: self.newest_source,
            newest_dist: self.newest_dist,
            partial,
            stopped_by: run.stopped_by,
            counts: self.counts,
            entries: self.entries,
            entries_omitted: self.omitted,
            examined: run.examined,
            bytes_hashed: run.bytes_hashed,
            elapsed_ms: run.elapsed_ms,
            limits: run.limits,
        }
    }
}

/// How a walk went, for [`CompareTally::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareRun {
    /// The source root as resolved.
    pub source_dir: String,
    /// The dist root as resolved.
    pub dist_dir: String,
    /// The cap that stopped it, if any.
    pub stopped_by: Option<CompareCap>,
    /// Paths examined.
    pub examined: u32,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// Wall time.
    pub elapsed_ms: u64,
    /// The caps applied.
    pub limits: CompareLimits,
}

/// Keeps the newer of `slot` and (`mtime`, `path`); on a tie the first seen stays (walk order is
/// deterministic, so the answer is too).
fn newer(slot: &mut Option<NewestEntry>, mtime: jiff::Timestamp, path: &str) {
    if slot.as_ref().is_none_or(|n| mtime > n.mtime) {
        *slot = Some(NewestEntry { mtime, path: path.to_owned() });
    }
}

/// The flag string of an entry whose two sides both exist: `S` size, `5` SHA-256, `L` symlink
/// target, `T` mtime; `.` when equal, `?` when not checked (no value on a side).
pub fn flags(source: &EntrySide, dist: &EntrySide) -> String {
    fn flag<T: PartialEq>(c: char, a: Option<&T>, b: Option<&T>) -> char {
        match (a, b) {
            (Some(a), Some(b)) if a == b => '.',
            (Some(_), Some(_)) => c,
            _ => '?',
        }
    }
    [
        flag('S', source.size.as_ref(), dist.size.as_ref()),
        flag('5', source.sha256.as_ref(), dist.sha256.as_ref()),
        flag('L', source.symlink_target.as_ref(), dist.symlink_target.as_ref()),
        flag('T', source.mtime.as_ref(), dist.mtime.as_ref()),
    ]
    .iter()
    .collect()
}

/// The flag string of a path on one side only.
pub const MISSING_FLAGS: &str = "missing";

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn entry(status: CompareStatus) -> CompareEntry {
        CompareEntry { path: "a".into(), status, flags: String::new(), source: None, dist: None, reason: None }
    }

    #[test]
    fn the_verdict_follows_partial_then_differences_then_mtimes() {
        let same = CompareCounts { identical: 3, ..Default::default() };
        let diff = CompareCounts { modified: 1, ..Default::default() };
        let new = NewestEntry { mtime: ts(200), path: "s".into() };
        let old = NewestEntry { mtime: ts(100), path: "d".into() };
        assert_eq!(CompareVerdict::judge(true, &same, None, None), CompareVerdict::Incomplete);
        assert_eq!(CompareVerdict::judge(false, &same, Some(&new), Some(&old)), CompareVerdict::UpToDate);
        assert_eq!(CompareVerdict::judge(false, &diff, Some(&new), Some(&old)), CompareVerdict::StaleBuild);
        assert_eq!(CompareVerdict::judge(false, &diff, Some(&old), Some(&new)), CompareVerdict::Differs);
        assert_eq!(CompareVerdict::judge(false, &diff, Some(&new), Some(&new)), CompareVerdict::Differs);
        assert_eq!(CompareVerdict::judge(false, &diff, Some(&new), None), CompareVerdict::StaleBuild);
    }

    #[test]
    fn the_tally_lists_a_bounded_number_of_entries_and_counts_all() {
        let mut tally = CompareTally::new(2);
        for _ in 0..5 {
            tally.push(entry(CompareStatus::Modified));
            tally.push(entry(CompareStatus::Identical));
        }
        tally.ignored();
        let limits = CompareLimits { max_files: 1, max_bytes_hashed: 1, deadline_ms: 100, max_entries: 2 };
        let report = tally.finish(CompareRun {
            source_dir: "/s".into(),
            dist_dir: "/d".into(),
            stopped_by: None,
            examined: 10,
            bytes_hashed: 0,
            elapsed_ms: 1,
            limits,
        });
        assert_eq!(report.entries.len(), 2);
        assert_eq!(report.entries_omitted, 3);
        assert_eq!(report.counts.modified, 5);
        assert_eq!(report.counts.identical, 5);
        assert_eq!(report.counts.ignored, 1);
        assert_eq!(report.verdict, CompareVerdict::Differs);
    }

    #[test]
    fn the_policy_caps_what_was_asked_and_the_types_cap_both() {
        let policy = ComparePolicy { enabled: true, max_files: 10, max_bytes_hashed: 1000, max_deadline_ms: 500 };
        let asked = CompareLimits { max_files: 1_000_000, max_bytes_hashed: 5, deadline_ms: 10, max_entries: 9999 };
        let got = policy.limits(asked);
        assert_eq!(got, CompareLimits { max_files: 10, max_bytes_hashed: 5, deadline_ms: 100, max_entries: 500 });
        assert!(ComparePolicy { max_files: 0, ..policy }.validate().is_err());
        assert!(ComparePolicy { max_deadline_ms: 99, ..policy }.validate().is_err());
        assert!(policy.validate().is_ok());
    }

    #[test]
    fn inputs_are_bounded_and_default_to_the_usual_ignores() {
        let server = "srv_0123456789abcdef0123456789abcdef";
        let base = serde_json::json!({ "server_id": server, "source_dir": "/srv/a", "dist_dir": "/srv/b" });
        let input: CompareSourceToDistInput = serde_json::from_value(base.clone()).expect("valid input");
        assert_eq!(input.ignore_globs(), vec![".git".to_owned(), "node_modules".to_owned()]);
        let mut none = base.clone();
        none["ignore"] = serde_json::json!([]);
        let none: CompareSourceToDistInput = serde_json::from_value(none).expect("an empty ignore list");
        assert!(none.ignore_globs().is_empty());
        for (field, value) in [
            ("max_files", serde_json::json!(200_001)),
            ("max_bytes_hashed", serde_json::json!(4_294_967_297_u64)),
            ("deadline_ms", serde_json::json!(99)),
            ("max_entries", serde_json::json!(501)),
            ("ignore", serde_json::json!(vec![".git"; 33])),
            ("surprise", serde_json::json!(true)),
        ] {
            let mut bad = base.clone();
            bad[field] = value;
            assert!(serde_json::from_value::<CompareSourceToDistInput>(bad).is_err(), "{field}");
        }
    }

    #[test]
    fn flags_mark_what_differs() {
        let side = |size, sha: Option<&str>| EntrySide {
            kind: EntryKind::File,
            size: Some(size),
            sha256: sha.map(str::to_owned),
            mtime: Some(ts(1)),
            symlink_target: None,
        };
        assert_eq!(flags(&side(1, Some("a")), &side(1, Some("a"))), "..?.");
        assert_eq!(flags(&side(1, Some("a")), &side(1, Some("b"))), ".5?.");
        assert_eq!(flags(&side(1, None), &side(2, None)), "S??.");
    }
}
