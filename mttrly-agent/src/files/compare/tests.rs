//! The walk's rules, one test each: every status, symlink kinds, ignore globs, each cap, the
//! roots' allowlist, a property over random trees, and the adversarial cases (a symlink out of a
//! root, a directory swapped for a symlink mid-walk).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mttrly_core::ErrorCode;
use mttrly_core::files::{FilePolicy, FileRules};
use mttrly_core::tools::common::ServerPath;
use mttrly_core::tools::files::{
    CompareCap, CompareEntry, CompareLimits, CompareParams, CompareStatus, CompareVerdict, DEFAULT_IGNORES, EntryKind,
    TreeReport,
};
use proptest::prelude::*;

use super::{compare_trees, compare_until};

const WIDE: CompareLimits =
    CompareLimits { max_files: 200_000, max_bytes_hashed: 1 << 32, deadline_ms: 60_000, max_entries: 500 };

/// A temp dir with `trees/src`, `trees/dist` (allowlisted as a tree) and `secret/` beside them.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rules: FileRules,
}

impl Fixture {
    fn new() -> Self {
        Self::with_policy(|_| {})
    }

    fn with_policy(edit: impl FnOnce(&mut FilePolicy)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["trees/src", "trees/dist", "secret/inner"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("secret/leak.txt"), "TOP SECRET\n").unwrap();
        std::fs::write(root.join("secret/inner/leak2.txt"), "TOP SECRET 2\n").unwrap();
        let mut policy = FilePolicy { file_roots: vec![format!("{}/trees/**", root.display())], ..Default::default() };
        edit(&mut policy);
        let rules = FileRules::new(policy).unwrap();
        Self { _dir: dir, root, rules }
    }

    fn src(&self) -> PathBuf {
        self.root.join("trees/src")
    }

    fn dist(&self) -> PathBuf {
        self.root.join("trees/dist")
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn compare(&self) -> TreeReport {
        compare_trees(&self.rules, &params(&self.src(), &self.dist()), WIDE).unwrap()
    }
}

fn params(source: &Path, dist: &Path) -> CompareParams {
    CompareParams {
        source_dir: ServerPath::new(source.display().to_string()).unwrap(),
        dist_dir: ServerPath::new(dist.display().to_string()).unwrap(),
        ignore: DEFAULT_IGNORES.iter().map(|g| (*g).to_owned()).collect(),
        limits: WIDE,
    }
}

fn entry<'r>(report: &'r TreeReport, path: &str) -> &'r CompareEntry {
    report.entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no entry {path}: {report:#?}"))
}

fn set_mtime(path: &Path, seconds: i64) {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap());
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

#[test]
fn every_status_is_reported_with_sizes_hashes_and_flags() {
    let f = Fixture::new();
    f.write("trees/src/same.js", "same");
    f.write("trees/dist/same.js", "same");
    f.write("trees/src/edited.js", "aaaa");
    f.write("trees/dist/edited.js", "bbbb");
    f.write("trees/src/grown.js", "a");
    f.write("trees/dist/grown.js", "abc");
    f.write("trees/src/new.ts", "x");
    f.write("trees/dist/old.js", "y");
    f.write("trees/src/kind", "file here");
    f.write("trees/dist/kind/inside.js", "dir there");
    f.write("trees/src/deep/a/b.js", "b");
    f.write("trees/dist/deep/a/b.js", "b");
    f.write("trees/src/linked.js", "one name too many");
    f.write("trees/dist/linked.js", "one name too many");
    std::fs::hard_link(f.root.join("trees/src/linked.js"), f.root.join("secret/second-name")).unwrap();

    let r = f.compare();
    assert_eq!(r.counts.identical, 2, "{r:#?}"); // same.js, deep/a/b.js
    assert_eq!(r.counts.modified, 2, "{r:#?}");
    assert_eq!(r.counts.only_in_source, 1, "{r:#?}");
    assert_eq!(r.counts.only_in_dist, 2, "{r:#?}"); // old.js and kind/inside.js
    assert_eq!(r.counts.type_mismatch, 1, "{r:#?}");
    assert_eq!(r.counts.unreadable, 1, "{r:#?}");
    assert!(!r.partial && r.stopped_by.is_none());

    let edited = entry(&r, "edited.js");
    assert_eq!(edited.status, CompareStatus::Modified);
    assert!(edited.flags.starts_with(".5"), "{edited:?}");
    let (s, d) = (edited.source.as_ref().unwrap(), edited.dist.as_ref().unwrap());
    assert_eq!(s.sha256.as_deref(), Some("61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"));
    assert_ne!(s.sha256, d.sha256);
    let grown = entry(&r, "grown.js");
    assert!(grown.flags.starts_with('S'), "{grown:?}");
    assert_eq!(grown.source.as_ref().unwrap().sha256, None, "different sizes are not hashed");
    assert_eq!(entry(&r, "new.ts").status, CompareStatus::OnlyInSource);
    assert_eq!(entry(&r, "new.ts").flags, "missing");
    assert_eq!(entry(&r, "old.js").status, CompareStatus::OnlyInDist);
    let kind = entry(&r, "kind");
    assert_eq!(kind.status, CompareStatus::TypeMismatch);
    assert_eq!(kind.dist.as_ref().unwrap().kind, EntryKind::Dir);
    assert_eq!(entry(&r, "kind/inside.js").status, CompareStatus::OnlyInDist);
    let linked = entry(&r, "linked.js");
    assert_eq!(linked.status, CompareStatus::Unreadable);
    assert!(linked.reason.as_deref().unwrap().contains("hard links"), "{linked:?}");
    // Entries come in walk order, identical paths only counted.
    let paths: Vec<&str> = r.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["edited.js", "grown.js", "kind", "kind/inside.js", "linked.js", "new.ts", "old.js"]);
    assert_eq!(r.examined, 11);
}

#[test]
fn a_hard_link_is_hashed_when_the_owner_allows_it() {
    let f = Fixture::with_policy(|p| p.hardlink_roots = vec!["/**".to_owned()]);
    f.write("trees/src/linked.js", "x");
    f.write("trees/dist/linked.js", "x");
    std::fs::hard_link(f.root.join("trees/src/linked.js"), f.root.join("secret/second-name")).unwrap();
    let r = f.compare();
    assert_eq!(r.counts.identical, 1, "{r:#?}");
    assert_eq!(r.verdict, CompareVerdict::UpToDate);
}

#[test]
fn the_verdict_says_stale_build_with_both_timestamps() {
    let f = Fixture::new();
    f.write("trees/src/app.ts", "new source");
    f.write("trees/dist/app.js", "old output");
    set_mtime(&f.root.join("trees/src/app.ts"), 2_000_000_000);
    set_mtime(&f.root.join("trees/dist/app.js"), 1_900_000_000);
    let r = f.compare();
    assert_eq!(r.verdict, CompareVerdict::StaleBuild, "{r:#?}");
    let (s, d) = (r.newest_source.as_ref().unwrap(), r.newest_dist.as_ref().unwrap());
    assert_eq!((s.path.as_str(), s.mtime.as_second()), ("app.ts", 2_000_000_000));
    assert_eq!((d.path.as_str(), d.mtime.as_second()), ("app.js", 1_900_000_000));
    // A build after the change: the output is newer, so it merely differs.
    set_mtime(&f.root.join("trees/dist/app.js"), 2_100_000_000);
    assert_eq!(f.compare().verdict, CompareVerdict::Differs);
    // Identical trees are up to date whatever the mtimes say.
    std::fs::remove_file(f.root.join("trees/src/app.ts")).unwrap();
    f.write("trees/src/app.js", "old output");
    set_mtime(&f.root.join("trees/src/app.js"), 2_200_000_000);
    assert_eq!(f.compare().verdict, CompareVerdict::UpToDate);
}

#[test]
fn symlinks_are_compared_by_target_and_never_followed() {
    let f = Fixture::new();
    let secret = f.root.join("secret");
    std::os::unix::fs::symlink("lib/a.js", f.src().join("same-link")).unwrap();
    std::os::unix::fs::symlink("lib/a.js", f.dist().join("same-link")).unwrap();
    std::os::unix::fs::symlink("lib/a.js", f.src().join("moved-link")).unwrap();
    std::os::unix::fs::symlink("lib/b.js", f.dist().join("moved-link")).unwrap();
    // Out of the root, to a directory and to a file: reported as links, never entered or read.
    std::os::unix::fs::symlink(&secret, f.src().join("escape")).unwrap();
    std::os::unix::fs::symlink(secret.join("leak.txt"), f.dist().join("escape")).unwrap();
    // A link on one side, a file on the other.
    std::os::unix::fs::symlink(secret.join("leak.txt"), f.src().join("leak.txt")).unwrap();
    f.write("trees/dist/leak.txt", "a real file");

    let r = f.compare();
    assert_eq!(r.counts.identical, 1, "{r:#?}");
    let moved = entry(&r, "moved-link");
    assert_eq!(moved.status, CompareStatus::Modified);
    assert_eq!(moved.flags.chars().nth(2), Some('L'), "{moved:?}");
    assert_eq!(moved.source.as_ref().unwrap().kind, EntryKind::Symlink);
    assert_eq!(moved.dist.as_ref().unwrap().symlink_target.as_deref(), Some("lib/b.js"));
    assert_eq!(entry(&r, "escape").status, CompareStatus::Modified);
    let mismatch = entry(&r, "leak.txt");
    assert_eq!(mismatch.status, CompareStatus::TypeMismatch);
    assert_eq!(mismatch.source.as_ref().unwrap().sha256, None);
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("inner") && !text.contains("leak2"), "nothing behind a link is walked: {text}");
    assert_eq!(r.bytes_hashed, 0, "no file behind a link is read");
}

#[test]
fn ignore_globs_skip_names_at_any_depth_or_relative_paths() {
    let f = Fixture::new();
    for side in ["src", "dist"] {
        f.write(&format!("trees/{side}/.git/HEAD"), side);
        f.write(&format!("trees/{side}/web/node_modules/x/index.js"), side);
        f.write(&format!("trees/{side}/assets/app.js.map"), side);
        f.write(&format!("trees/{side}/other/app.js.map"), side);
    }
    let r = f.compare();
    assert_eq!(r.counts.ignored, 2, "{r:#?}"); // .git and web/node_modules, once per path
    assert_eq!(r.counts.modified, 2, "{r:#?}");
    assert!(r.entries.iter().all(|e| !e.path.contains(".git") && !e.path.contains("node_modules")));

    let mut p = params(&f.src(), &f.dist());
    p.ignore = vec!["assets/*.map".to_owned(), ".git".to_owned()];
    let r = compare_trees(&f.rules, &p, WIDE).unwrap();
    let paths: Vec<&str> = r.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["other/app.js.map", "web/node_modules/x/index.js"], "{r:#?}");

    p.ignore = Vec::new();
    let r = compare_trees(&f.rules, &p, WIDE).unwrap();
    assert_eq!((r.counts.ignored, r.counts.modified), (0, 4), "{r:#?}");

    p.ignore = vec!["[".to_owned()];
    let err = compare_trees(&f.rules, &p, WIDE).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError, "{err}");
}

#[test]
fn each_cap_stops_the_walk_and_says_which() {
    let f = Fixture::new();
    for i in 0..50 {
        f.write(&format!("trees/src/f{i:02}"), "0123456789");
        f.write(&format!("trees/dist/f{i:02}"), "0123456789");
    }
    let p = params(&f.src(), &f.dist());
    let r = compare_trees(&f.rules, &p, CompareLimits { max_files: 10, ..WIDE }).unwrap();
    assert_eq!((r.partial, r.stopped_by, r.examined), (true, Some(CompareCap::MaxFiles), 10), "{r:#?}");
    assert_eq!(r.verdict, CompareVerdict::Incomplete);
    assert_eq!(r.counts.identical, 10);

    // Each file costs 20 bytes (both sides): 95 bytes hash four files and stop before the fifth.
    let r = compare_trees(&f.rules, &p, CompareLimits { max_bytes_hashed: 95, ..WIDE }).unwrap();
    assert_eq!((r.stopped_by, r.bytes_hashed, r.counts.identical), (Some(CompareCap::MaxBytes), 80, 4), "{r:#?}");
    assert!(r.bytes_hashed <= 95);

    let now = Instant::now();
    let r = compare_until(&f.rules, &p, WIDE, now, now).unwrap();
    assert_eq!((r.stopped_by, r.examined), (Some(CompareCap::Deadline), 0), "{r:#?}");
    assert_eq!(r.verdict, CompareVerdict::Incomplete);

    let r = compare_trees(&f.rules, &p, WIDE).unwrap();
    assert_eq!((r.partial, r.counts.identical, r.bytes_hashed), (false, 50, 1000));
}

#[test]
fn the_listing_is_bounded_but_every_path_is_counted() {
    let f = Fixture::new();
    for i in 0..30 {
        f.write(&format!("trees/src/f{i:02}"), "a");
    }
    let r = compare_trees(&f.rules, &params(&f.src(), &f.dist()), CompareLimits { max_entries: 5, ..WIDE }).unwrap();
    assert_eq!((r.entries.len(), r.entries_omitted, r.counts.only_in_source), (5, 25, 30));
    assert_eq!(r.entries[0].path, "f00");
}

#[test]
fn roots_must_be_directories_under_a_tree_rule() {
    let f = Fixture::with_policy(|p| p.file_roots.push("/var/log/*.log".to_owned()));
    let secret = f.root.join("secret");
    std::os::unix::fs::symlink(&secret, f.root.join("trees/to-secret")).unwrap();
    f.write("trees/file.txt", "not a dir");
    let check = |source: &Path, code: ErrorCode| {
        let err = compare_trees(&f.rules, &params(source, &f.dist()), WIDE).unwrap_err();
        assert_eq!(err.code(), code, "{}: {err}", source.display());
        assert!(!err.to_string().contains("leak"), "{err}");
        err
    };
    check(&secret, ErrorCode::PolicyDenied);
    // A root that is a symlink out of the allowlist, or climbs out with `..`.
    let err = check(&f.root.join("trees/to-secret"), ErrorCode::PolicyDenied);
    assert!(err.to_string().contains("resolves to"), "{err}");
    check(&f.root.join("trees/src/../../secret"), ErrorCode::PolicyDenied);
    // A file glob never allows a tree; kernel trees are refused whatever the rules say.
    check(Path::new("/var/log"), ErrorCode::PolicyDenied);
    check(Path::new("/proc/self"), ErrorCode::PolicyDenied);
    // Missing: not found inside the allowlist, denied outside it (existence is not revealed).
    check(&f.root.join("trees/missing"), ErrorCode::NotFound);
    check(&f.root.join("secret/missing"), ErrorCode::PolicyDenied);
    check(&f.root.join("trees/file.txt"), ErrorCode::ValidationError);
    check(Path::new("/tmp/\u{202e}x"), ErrorCode::PolicyDenied);
    // A symlinked root that stays inside the allowlist is judged (and opened) where it leads.
    std::os::unix::fs::symlink(f.src(), f.root.join("trees/current")).unwrap();
    let r = compare_trees(&f.rules, &params(&f.root.join("trees/current"), &f.dist()), WIDE).unwrap();
    assert_eq!(r.source_dir, f.src().display().to_string());
}

#[tokio::test]
async fn the_owner_policy_can_turn_comparisons_off_and_caps_every_request() {
    use crate::policy::LocalPolicy;
    let f = Fixture::new();
    for i in 0..20 {
        f.write(&format!("trees/src/f{i:02}"), "a");
    }
    let file = f.root.join("policy.toml");
    let roots = format!("file_roots = [\"{}/trees/**\"]\n", f.root.display());
    std::fs::write(&file, format!("{roots}[compare]\nmax_files = 7\n")).unwrap();
    let policy = Arc::new(LocalPolicy::load(&file).unwrap());
    let r = super::compare(&policy, params(&f.src(), &f.dist())).await.unwrap();
    assert_eq!((r.limits.max_files, r.examined, r.stopped_by), (7, 7, Some(CompareCap::MaxFiles)));
    std::fs::write(&file, format!("{roots}[compare]\nenabled = false\n")).unwrap();
    let policy = Arc::new(LocalPolicy::load(&file).unwrap());
    let err = super::compare(&policy, params(&f.src(), &f.dist())).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied);
    std::fs::write(&file, format!("{roots}[compare]\nmax_deadline_ms = 5\n")).unwrap();
    assert!(LocalPolicy::load(&file).is_err(), "a deadline under 100 ms is refused");
}

/// A directory inside the source tree is swapped back and forth with a symlink to the secret
/// directory while comparisons run: the walk never lists, hashes or names anything behind it.
#[test]
fn a_directory_swapped_for_a_symlink_mid_walk_is_never_followed() {
    let f = Fixture::new();
    for side in ["src", "dist"] {
        for i in 0..200 {
            f.write(&format!("trees/{side}/a/f{i:03}"), "x");
            f.write(&format!("trees/{side}/sub/ok{i:03}.txt"), "fine");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, src, secret) = (Arc::clone(&stop), f.src(), f.root.join("secret"));
        std::thread::spawn(move || {
            let (real, parked, link) = (src.join("sub"), src.join(".parked"), src.join(".link"));
            while !stop.load(Ordering::Relaxed) {
                let _ = std::os::unix::fs::symlink(&secret, &link);
                let _ = std::fs::rename(&real, &parked);
                let _ = std::fs::rename(&link, &real);
                std::thread::yield_now();
                let _ = std::fs::remove_file(&real);
                let _ = std::fs::rename(&parked, &real);
            }
        })
    };
    let mut p = params(&f.src(), &f.dist());
    p.ignore = vec![".parked".to_owned(), ".link".to_owned()];
    let (mut saw_link, mut saw_dir) = (false, false);
    for _ in 0..200 {
        let r = compare_trees(&f.rules, &p, WIDE).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("leak") && !text.contains("inner"), "followed the swapped symlink: {text}");
        let sub = r.entries.iter().find(|e| e.path == "sub");
        saw_link |= sub.is_some_and(|e| e.source.as_ref().is_some_and(|s| s.kind == EntryKind::Symlink));
        saw_dir |= r.counts.identical >= 400;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(saw_link || saw_dir, "the race ran both ways at least once");
}

/// A small random tree: relative paths (up to two directory levels) with contents.
fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = "[a-c]{1,2}";
    let path = prop::collection::vec(name, 1..=3).prop_map(|parts| parts.join("/"));
    prop::collection::btree_map(path, prop::collection::vec(any::<u8>(), 0..64), 1..24).prop_map(|files| {
        // A path that is also another's directory cannot be both: keep the deeper one.
        let keys: Vec<String> = files.keys().cloned().collect();
        files.into_iter().filter(|(p, _)| !keys.iter().any(|k| k.starts_with(&format!("{p}/")))).collect()
    })
}

fn lay(root: &Path, files: &[(String, Vec<u8>)]) {
    for (rel, bytes) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A tree compared with itself, and with a copy, is all identical; one change to the copy
    /// (an edit, a deletion, an addition next to an existing file) is exactly one entry.
    #[test]
    fn one_change_is_exactly_one_entry(files in tree(), pick in any::<prop::sample::Index>(), change in 0u8..3) {
        let f = Fixture::new();
        lay(&f.src(), &files);
        lay(&f.dist(), &files);
        let itself = compare_trees(&f.rules, &params(&f.src(), &f.src()), WIDE).unwrap();
        prop_assert_eq!(itself.counts.differing(), 0);
        prop_assert_eq!(itself.verdict, CompareVerdict::UpToDate);
        let copy = f.compare();
        prop_assert_eq!(copy.counts.identical as usize, files.len());
        prop_assert_eq!(copy.counts.differing(), 0);

        let (rel, bytes) = &files[pick.index(files.len())];
        let target = f.dist().join(rel);
        let expected = match change {
            0 => {
                let mut edited = bytes.clone();
                if edited.is_empty() { edited.push(1) } else { edited[0] ^= 0xff }
                std::fs::write(&target, edited).unwrap();
                CompareStatus::Modified
            }
            1 => {
                std::fs::remove_file(&target).unwrap();
                CompareStatus::OnlyInSource
            }
            _ => {
                std::fs::write(target.with_file_name("zz-added"), b"new").unwrap();
                CompareStatus::OnlyInDist
            }
        };
        let r = f.compare();
        prop_assert_eq!(r.entries.len(), 1, "{:#?}", r);
        prop_assert_eq!(r.entries[0].status, expected);
        prop_assert_eq!(r.counts.differing(), 1);
    }
}

mod redteam;
