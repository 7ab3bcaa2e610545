use std::io::Write as _;
use std::os::unix::fs::symlink;

use super::*;

fn rules(root: &Path, extra: impl FnOnce(&mut FilePolicy)) -> FileRules {
    let mut policy = FilePolicy {
        file_roots: vec![format!("{}/logs/**", root.display()), format!("{}/app/*.log", root.display())],
        managed_files: vec![format!("{}/managed/*.conf", root.display())],
        ..FilePolicy::default()
    };
    extra(&mut policy);
    FileRules::new(policy).unwrap()
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for d in ["logs/nginx", "app/deep", "secret", "managed"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("logs/nginx/access.log"), "a\nb\nc\n").unwrap();
    std::fs::write(root.join("app/web.log"), "web\n").unwrap();
    std::fs::write(root.join("app/deep/inner.log"), "inner\n").unwrap();
    std::fs::write(root.join("secret/shadow"), "root:x\n").unwrap();
    std::fs::write(root.join("managed/app.conf"), "x=1\n").unwrap();
    dir
}

#[test]
fn allowed_paths_resolve_and_name_their_rule() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let r = rules(&root, |_| {});
    let ok = r.check(&format!("{}/logs/nginx/access.log", root.display()), FileAccess::Read).unwrap();
    assert_eq!(ok.rule, format!("{}/logs/**", root.display()));
    // `*` stays within its directory.
    let deep = r.check(&format!("{}/app/deep/inner.log", root.display()), FileAccess::Read).unwrap_err();
    assert_eq!(deep.code(), ErrorCode::PolicyDenied);
    // Managed files are readable; only they are writable.
    assert!(r.check(&format!("{}/managed/app.conf", root.display()), FileAccess::Read).is_ok());
    assert!(r.check(&format!("{}/managed/new.conf", root.display()), FileAccess::Write).is_ok_and(|a| !a.exists));
    let w = r.check(&format!("{}/logs/nginx/access.log", root.display()), FileAccess::Write).unwrap_err();
    assert_eq!(w.code(), ErrorCode::PolicyDenied);
}

#[test]
fn traversal_and_symlink_escapes_are_refused() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let r = rules(&root, |_| {});
    let dotdot = format!("{}/logs/../secret/shadow", root.display());
    assert_eq!(r.check(&dotdot, FileAccess::Read).unwrap_err().code(), ErrorCode::PolicyDenied);
    let sneaky = format!("{}/logs/nginx/../../secret/shadow", root.display());
    assert_eq!(r.check(&sneaky, FileAccess::Read).unwrap_err().code(), ErrorCode::PolicyDenied);
    // A symlink inside an allowed directory pointing outside.
    symlink(root.join("secret/shadow"), root.join("logs/escape.log")).unwrap();
    let err = r.check(&format!("{}/logs/escape.log", root.display()), FileAccess::Read).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied);
    assert!(err.message().contains("resolves to"), "{err}");
    // A symlinked directory.
    symlink(root.join("secret"), root.join("logs/dir")).unwrap();
    let err = r.check(&format!("{}/logs/dir/shadow", root.display()), FileAccess::Read).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied);
    // A symlink to /proc.
    symlink("/proc/self/environ", root.join("logs/environ.log")).unwrap();
    let err = r.check(&format!("{}/logs/environ.log", root.display()), FileAccess::Read).unwrap_err();
    assert!(err.message().contains("/proc"), "{err}");
    // Relative and NUL.
    assert!(r.check("logs/nginx/access.log", FileAccess::Read).is_err());
    assert!(r.check(&format!("{}/logs/a\0b", root.display()), FileAccess::Read).is_err());
}

#[test]
fn missing_files_reveal_nothing_outside_the_allowlist() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let r = rules(&root, |_| {});
    let inside = r.check(&format!("{}/logs/none.log", root.display()), FileAccess::Read).unwrap_err();
    assert_eq!(inside.code(), ErrorCode::NotFound);
    let outside = r.check(&format!("{}/secret/none", root.display()), FileAccess::Read).unwrap_err();
    assert_eq!(outside.code(), ErrorCode::PolicyDenied);
}

#[test]
fn privileged_files_need_the_owner_to_opt_in() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let shadow = format!("{}/secret/shadow", root.display());
    let off = rules(&root, |p| p.privileged_files = vec![format!("{}/secret/*", root.display())]);
    assert_eq!(off.check(&shadow, FileAccess::Privileged).unwrap_err().code(), ErrorCode::PolicyDenied);
    let on = rules(&root, |p| {
        p.privileged_files = vec![format!("{}/secret/*", root.display())];
        p.privileged_files_enabled = true;
    });
    assert!(on.check(&shadow, FileAccess::Privileged).is_ok());
    // The privileged list does not widen ordinary reads.
    assert_eq!(on.check(&shadow, FileAccess::Read).unwrap_err().code(), ErrorCode::PolicyDenied);
}

#[test]
fn fifos_do_not_block_and_non_regular_files_are_refused() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let fifo = root.join("logs/pipe.log");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let r = rules(&root, |_| {});
    let allowed = r.check(fifo.to_str().unwrap(), FileAccess::Read).unwrap();
    let started = std::time::Instant::now();
    let err = open::open_checked(&allowed).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(err.message().contains("not a regular file"), "{err}");
    // A directory.
    let d = r.check(&format!("{}/logs/nginx", root.display()), FileAccess::Read);
    assert!(d.is_err() || open::open_checked(&d.unwrap()).is_err());
}

#[test]
fn a_swap_after_the_check_is_caught_at_open() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let r = rules(&root, |_| {});
    let target = root.join("logs/nginx/access.log");
    let allowed = r.check(target.to_str().unwrap(), FileAccess::Read).unwrap();
    // After the check, the file becomes a symlink to a secret.
    std::fs::remove_file(&target).unwrap();
    symlink(root.join("secret/shadow"), &target).unwrap();
    let err = open::open_checked(&allowed).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied, "{err}");
    // After the check, a directory on the path becomes a symlink.
    let allowed = r.check(&format!("{}/app/web.log", root.display()), FileAccess::Read).unwrap();
    std::fs::rename(root.join("app"), root.join("app-old")).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::fs::write(root.join("elsewhere/web.log"), "not this\n").unwrap();
    symlink(root.join("elsewhere"), root.join("app")).unwrap();
    let err = open::open_checked(&allowed).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied, "{err}");
}

#[test]
fn tail_returns_the_last_lines_and_caps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 1..=10_000 {
        writeln!(f, "line {i}").unwrap();
    }
    drop(f);
    let mut f = std::fs::File::open(&path).unwrap();
    let size = f.metadata().unwrap().len();
    let t = tail::tail(&mut f, size, 3).unwrap();
    assert_eq!(t.lines, vec!["line 9998", "line 9999", "line 10000"]);
    assert!(t.truncated);
    let all = tail::tail(&mut f, size, 20_000).unwrap();
    assert_eq!(all.lines.len(), 10_000);
    assert_eq!(all.lines[0], "line 1");
    assert!(!all.truncated);
    // No final newline.
    std::fs::write(&path, "a\nb").unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    assert_eq!(tail::tail(&mut f, 3, 5).unwrap().lines, vec!["a", "b"]);
    // Empty.
    std::fs::write(&path, "").unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    assert!(tail::tail(&mut f, 0, 5).unwrap().lines.is_empty());
}

#[test]
fn a_2gb_sparse_file_is_capped_and_fast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.log");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(2 * 1024 * 1024 * 1024).unwrap();
    drop(f);
    let mut f = std::fs::File::open(&path).unwrap();
    let size = f.metadata().unwrap().len();
    let started = std::time::Instant::now();
    let t = tail::tail(&mut f, size, 500).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(t.lines.len(), 1);
    assert!(t.truncated);
    assert!(t.lines[0].chars().count() <= tail::MAX_LINE_CHARS + 20);
}

#[test]
fn search_finds_literal_hits_only_in_allowed_files() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("logs/nginx/error.log"), "ok\nERROR upstream timed out\nfine\nerror again\n").unwrap();
    std::fs::write(root.join("secret/shadow"), "ERROR in secret\n").unwrap();
    symlink(root.join("secret/shadow"), root.join("logs/link.log")).unwrap();
    let r = rules(&root, |_| {});
    let found = search::search(&r, "error", None, true, 100).unwrap();
    let paths: Vec<String> = found.hits.iter().map(|h| h.path.display().to_string()).collect();
    assert_eq!(found.hits.len(), 2, "{paths:?}");
    assert!(paths.iter().all(|p| p.ends_with("logs/nginx/error.log")), "{paths:?}");
    assert_eq!(found.hits[0].line_number, 2);
    // Case-sensitive, glob-filtered, capped.
    let exact = search::search(&r, "ERROR", Some(&format!("{}/logs/**/*.log", root.display())), false, 100).unwrap();
    assert_eq!(exact.hits.len(), 1);
    let capped = search::search(&r, "e", None, true, 1).unwrap();
    assert_eq!(capped.hits.len(), 1);
    assert!(capped.truncated);
    // A regex is just text.
    assert!(search::search(&r, ".*", None, false, 10).unwrap().hits.is_empty());
}

#[test]
fn diffs_are_unified_and_identical_files_say_so() {
    let (d, same, cut) = diff::unified("a", "x\ny\nz\n", "b", "x\nY\nz\n", 1);
    assert!(!same && !cut);
    assert!(d.contains("--- a") && d.contains("+++ b") && d.contains("-y") && d.contains("+Y"), "{d}");
    assert!(diff::unified("a", "same\n", "b", "same\n", 3).1);
}

#[test]
fn bad_rules_are_clear_errors() {
    let err = FileRules::new(FilePolicy { file_roots: vec!["var/log/*".into()], ..FilePolicy::default() }).unwrap_err();
    assert!(err.message().contains("absolute"), "{err}");
    let err =
        FileRules::new(FilePolicy { file_roots: vec!["/var/log/[".into()], ..FilePolicy::default() }).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn checking_never_panics_and_never_allows_outside_the_roots(s in "\\\\PC{0,80}") {
            let r = FileRules::new(FilePolicy {
                file_roots: vec!["/nonexistent-mttrly-root/**".into()],
                ..FilePolicy::default()
            }).unwrap();
            let path = format!("/nonexistent-mttrly-root/{s}");
            if let Ok(a) = r.check(&path, FileAccess::Read) {
                prop_assert!(a.path.starts_with("/nonexistent-mttrly-root"));
            }
            let _ = r.check(&s, FileAccess::Write);
        }
    }
}
