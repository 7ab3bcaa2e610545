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
    // The check itself refuses it, naming what it is.
    let err = r.check(fifo.to_str().unwrap(), FileAccess::Read).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PolicyDenied);
    assert!(err.message().contains("FIFO"), "{err}");
    // And the open refuses it on its own, without blocking (a FIFO swapped in after the check).
    let allowed = Allowed { path: fifo, rule: "test".into(), exists: true, hard_links_allowed: false };
    let started = std::time::Instant::now();
    let err = open::open_checked(&allowed).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(err.message().contains("FIFO"), "{err}");
    // A directory.
    let err = r.check(&format!("{}/logs/nginx", root.display()), FileAccess::Read).unwrap_err();
    assert!(err.message().contains("directory"), "{err}");
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

/// Building the rules parses every glob and compiles none (the agent's start never runs the regex
/// compiler: issue 16); the first question compiles the set it asks, and only that one.
#[test]
fn rule_sets_are_compiled_when_first_asked() {
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let r = rules(&root, |_| {});
    for set in [&r.read, &r.privileged, &r.managed, &r.hardlinks] {
        assert!(set.set.get().is_none(), "compiled before anyone asked");
    }
    assert!(r.allows(&root.join("app/web.log"), FileAccess::Read));
    assert!(r.read.set.get().is_some_and(Option::is_some), "the asked set is compiled");
    assert!(r.privileged.set.get().is_none(), "a set nobody asked stays uncompiled");
}

#[test]
fn bad_rules_are_clear_errors() {
    let err = FileRules::new(FilePolicy { file_roots: vec!["var/log/*".into()], ..FilePolicy::default() }).unwrap_err();
    assert!(err.message().contains("absolute"), "{err}");
    let err =
        FileRules::new(FilePolicy { file_roots: vec!["/var/log/[".into()], ..FilePolicy::default() }).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
    let err =
        FileRules::new(FilePolicy { hardlink_roots: vec!["backups/**".into()], ..FilePolicy::default() }).unwrap_err();
    assert!(err.message().contains("absolute"), "{err}");
    // The policy file refuses a misspelt key rather than silently keeping hard links refused.
    let doc = crate::policy::PolicyFile::parse("hardlink_roots = [\"/srv/snapshots/**\"]\n", Path::new("p.toml"));
    assert_eq!(doc.unwrap().file_policy().hardlink_roots, vec!["/srv/snapshots/**".to_owned()]);
    assert!(crate::policy::PolicyFile::parse("hardlinks_roots = []\n", Path::new("p.toml")).is_err());
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

mod hostile {
    //! The paths an adversary sends and the files an adversary plants, one class per test.

    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    fn p(root: &Path, rel: &str) -> String {
        format!("{}/{rel}", root.display())
    }

    #[test]
    fn path_strings_are_judged_as_given_from_an_allowlist_of_characters() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let good = p(&root, "logs/nginx/access.log");
        // Every character class that is not printable ASCII or a visible letter/digit.
        for bad in [
            '\0',
            '\n',
            '\r',
            '\t',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{9b}',
            '\u{202e}',
            '\u{202a}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{200d}',
            '\u{200e}',
            '\u{feff}',
            '\u{2060}',
            '\u{2028}',
            '\u{2029}',
            '\u{a0}',
            '\u{3000}',
            '\u{3164}',
            '\u{115f}',
            '\u{fe0f}',
            '\u{e0041}',
            '\u{e000}',
            '\u{ffff}',
            '\u{fffd}',
            '\u{301}',
            '\u{34f}',
            '\u{ad}',
            '\u{61c}',
        ] {
            for at in [good.len(), good.len() - 4, 1] {
                let mut path = good.clone();
                path.insert(at, bad);
                let err = r.check(&path, FileAccess::Read).unwrap_err();
                assert_eq!(err.code(), ErrorCode::PolicyDenied, "{bad:?}: {err}");
                let code = format!("U+{:04X}", u32::from(bad));
                assert!(err.message().contains(&code), "{code}: {err}");
                // The reason never echoes the character itself.
                assert!(!err.message().contains(bad) && !err.to_string().contains(bad), "{bad:?}");
            }
        }
        // Relative, home-relative, empty.
        for (path, why) in [
            ("logs/nginx/access.log", "absolute"),
            ("./logs/nginx/access.log", "absolute"),
            ("~/logs/x.log", "`~`"),
            ("~root/.ssh/id_rsa", "`~`"),
            ("", "empty"),
        ] {
            let err = r.check(path, FileAccess::Read).unwrap_err();
            assert_eq!(err.code(), ErrorCode::PolicyDenied, "{path}");
            assert!(err.message().contains(why), "{path}: {err}");
        }
        // Globs in a read path, wherever they are.
        for g in ['*', '?', '[', ']', '{', '}'] {
            let err = r.check(&format!("{}/logs/nginx/{g}access.log", root.display()), FileAccess::Read).unwrap_err();
            assert!(err.message().contains("glob"), "{g}: {err}");
        }
        // PATH_MAX and NAME_MAX, in bytes (a multi-byte name counts its bytes).
        let long = format!("{}/logs/{}", root.display(), "a/".repeat(2100));
        assert!(r.check(&long, FileAccess::Read).unwrap_err().message().contains("PATH_MAX"));
        let name = format!("{}/logs/{}.log", root.display(), "é".repeat(130));
        assert!(r.check(&name, FileAccess::Read).unwrap_err().message().contains("NAME_MAX"));
        // Taken literally: no percent-decoding, no normalisation. `%2e%2e` is a name inside the root.
        let pct = r.check(&p(&root, "logs/%2e%2e/%2e%2e/secret/shadow"), FileAccess::Read).unwrap_err();
        assert_eq!(pct.code(), ErrorCode::NotFound, "{pct}");
        std::fs::write(root.join("logs/caf\u{e9}.log"), "nfc\n").unwrap();
        assert!(r.check(&p(&root, "logs/caf\u{e9}.log"), FileAccess::Read).is_ok());
        let nfd = r.check(&p(&root, "logs/cafe\u{301}.log"), FileAccess::Read).unwrap_err();
        assert!(nfd.message().contains("U+0301"), "{nfd}");
        // Letters of any script are names like any other.
        std::fs::write(root.join("logs/журнал.log"), "x\n").unwrap();
        assert!(r.check(&p(&root, "logs/журнал.log"), FileAccess::Read).is_ok());
    }

    #[test]
    fn hard_links_are_refused_unless_the_owner_allows_them_for_that_root() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/hard.log")).unwrap();
        let r = rules(&root, |_| {});
        let hard = p(&root, "logs/hard.log");
        let err = r.check(&hard, FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
        assert!(err.message().contains("2 hard links") && err.message().contains("hardlink_roots"), "{err}");
        assert!(r.open(&hard, FileAccess::Read).is_err());
        assert!(r.verify(&hard, FileAccess::Read).is_err());
        // Neither side of a hard link is readable: the allowlisted original is refused too.
        std::fs::hard_link(root.join("logs/nginx/access.log"), root.join("secret/copy")).unwrap();
        assert!(r.check(&p(&root, "logs/nginx/access.log"), FileAccess::Read).is_err());
        // A managed file with a second name is not written over (the backup would copy the other
        // file, and the human approved changing one file).
        std::fs::hard_link(root.join("secret/shadow"), root.join("managed/linked.conf")).unwrap();
        let err = r.check(&p(&root, "managed/linked.conf"), FileAccess::Write).unwrap_err();
        assert!(err.message().contains("hard links"), "{err}");
        // The owner's policy allows them under a root.
        let allowing = rules(&root, |f| f.hardlink_roots = vec![format!("{}/logs/*.log", root.display())]);
        let opened = allowing.open(&hard, FileAccess::Read).unwrap();
        assert!(opened.allowed.hard_links_allowed);
        assert_eq!(opened.meta.nlink(), 3, "shadow, hard.log and linked.conf");
        // Only there.
        assert!(allowing.check(&p(&root, "logs/nginx/access.log"), FileAccess::Read).is_err());
    }

    #[test]
    fn a_hard_link_made_after_the_check_is_caught_on_the_descriptor() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let allowed = r.check(&p(&root, "logs/nginx/access.log"), FileAccess::Read).unwrap();
        std::fs::hard_link(root.join("logs/nginx/access.log"), root.join("secret/later")).unwrap();
        let err = open::open_checked(&allowed).unwrap_err();
        assert!(err.message().contains("hard links"), "{err}");
    }

    #[test]
    fn sockets_devices_and_their_symlinks_are_refused() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let _listener = std::os::unix::net::UnixListener::bind(root.join("logs/app.sock")).unwrap();
        let err = r.check(&p(&root, "logs/app.sock"), FileAccess::Read).unwrap_err();
        assert!(err.message().contains("socket"), "{err}");
        for dev in ["/dev/zero", "/dev/null", "/dev/tty"] {
            let link = root.join(format!("logs/{}.log", dev.trim_start_matches("/dev/")));
            symlink(dev, &link).unwrap();
            let err = r.check(link.to_str().unwrap(), FileAccess::Read).unwrap_err();
            assert!(err.message().contains("/dev"), "{dev}: {err}");
        }
        // A device node inside the root: only root can make one.
        let node = root.join("logs/null.dev");
        let made = std::process::Command::new("mknod").arg(&node).args(["c", "1", "3"]).status();
        if made.is_ok_and(|s| s.success()) {
            let err = r.check(node.to_str().unwrap(), FileAccess::Read).unwrap_err();
            assert!(err.message().contains("character device"), "{err}");
            let allowed = Allowed { path: node, rule: "test".into(), exists: true, hard_links_allowed: false };
            assert!(open::open_checked(&allowed).unwrap_err().message().contains("character device"));
        } else {
            eprintln!("skipped the device-node case: mknod needs root");
        }
    }

    #[test]
    fn resolution_failures_name_the_kernels_reason() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let err = r.check(&p(&root, "logs/nginx/access.log/x"), FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
        assert!(err.message().contains("not a directory"), "{err}");
        symlink(root.join("logs/loop-b"), root.join("logs/loop-a")).unwrap();
        symlink(root.join("logs/loop-a"), root.join("logs/loop-b")).unwrap();
        let err = r.check(&p(&root, "logs/loop-a"), FileAccess::Read).unwrap_err();
        assert!(err.message().contains("symlink loop"), "{err}");
        // A trailing slash on a file.
        assert!(r.check(&p(&root, "logs/nginx/access.log/"), FileAccess::Read).is_err());
    }

    #[test]
    fn a_missing_file_behind_a_link_out_is_judged_where_it_would_be() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        symlink(root.join("secret"), root.join("logs/out")).unwrap();
        // Whether `secret/sub` exists or not, the answer is the same: outside, denied.
        for rel in ["logs/out/missing", "logs/out/sub/missing", "logs/out/../../secret/none"] {
            let err = r.check(&p(&root, rel), FileAccess::Read).unwrap_err();
            assert_eq!(err.code(), ErrorCode::PolicyDenied, "{rel}: {err}");
        }
        // A write creates only in a directory that exists.
        let r = rules(&root, |f| f.managed_files.push(format!("{}/managed/**", root.display())));
        let err = r.check(&p(&root, "managed/sub/new.conf"), FileAccess::Write).unwrap_err();
        assert!(err.message().contains("directory"), "{err}");
    }

    #[test]
    fn a_symlink_to_a_name_with_control_characters_is_refused() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        std::fs::write(root.join("logs/evil\u{1b}[2J.log"), "x\n").unwrap();
        symlink(root.join("logs/evil\u{1b}[2J.log"), root.join("logs/plain.log")).unwrap();
        let err = r.check(&p(&root, "logs/plain.log"), FileAccess::Read).unwrap_err();
        assert!(err.message().contains("\\u{001B}") && !err.message().contains('\u{1b}'), "{err}");
    }

    #[test]
    fn verify_is_the_agents_answer_for_missing_and_non_regular_files() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let ok = r.verify(&p(&root, "logs/nginx/access.log"), FileAccess::Read).unwrap();
        assert!(ok.exists && !ok.hard_links_allowed);
        let missing = r.verify(&p(&root, "logs/none.log"), FileAccess::Read).unwrap_err();
        assert_eq!(missing.code(), ErrorCode::NotFound);
        assert!(r.verify(&p(&root, "managed/new.conf"), FileAccess::Write).is_ok_and(|a| !a.exists));
    }

    #[test]
    fn search_skips_what_a_read_would_refuse_and_counts_it() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("secret/shadow"), "needle in the secret\n").unwrap();
        std::fs::write(root.join("logs/plain.log"), "needle in the log\n").unwrap();
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/hard.log")).unwrap();
        symlink(root.join("secret/shadow"), root.join("logs/link.log")).unwrap();
        symlink(root.join("secret"), root.join("logs/dirlink")).unwrap();
        symlink(root.join("logs/plain.log"), root.join("logs/inside.log")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(root.join("logs/pipe.log")).status().unwrap().success());
        let _sock = std::os::unix::net::UnixListener::bind(root.join("logs/s.sock")).unwrap();
        let r = rules(&root, |_| {});
        let started = std::time::Instant::now();
        let found = search::search(&r, "needle", None, false, 100).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the FIFO must not block");
        let paths: Vec<String> = found.hits.iter().map(|h| h.path.display().to_string()).collect();
        assert_eq!(paths, vec![p(&root, "logs/plain.log")], "{found:?}");
        // hard.log, link.log, dirlink, inside.log, pipe.log, s.sock.
        assert_eq!(found.files_skipped, 6, "{found:?}");
    }

    #[test]
    fn a_file_truncated_under_the_reader_is_read_from_its_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        std::fs::write(&path, "old line\n".repeat(10_000)).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let size = f.metadata().unwrap().len();
        std::fs::write(&path, "fresh 1\nfresh 2\n").unwrap();
        let t = tail::tail(&mut f, size, 5).unwrap();
        assert_eq!(t.lines, vec!["fresh 1", "fresh 2"]);
    }

    #[test]
    fn swapping_a_file_for_a_symlink_or_a_hard_link_never_leaks() {
        use std::io::Read as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("secret/shadow"), "TOPSECRET\n").unwrap();
        let r = rules(&root, |_| {});
        let target = root.join("logs/swap.log");
        std::fs::write(&target, "harmless\n").unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let swapper = {
            let (root, target, stop) = (root.clone(), target.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let (real, soft, hard) = (root.join("logs/.real"), root.join("logs/.soft"), root.join("logs/.hard"));
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::write(&real, "harmless\n");
                    let _ = std::fs::rename(&real, &target);
                    let _ = std::fs::remove_file(&soft);
                    let _ = symlink(root.join("secret/shadow"), &soft);
                    let _ = std::fs::rename(&soft, &target);
                    let _ = std::fs::remove_file(&hard);
                    let _ = std::fs::hard_link(root.join("secret/shadow"), &hard);
                    let _ = std::fs::rename(&hard, &target);
                    i = i.wrapping_add(1);
                }
                i
            })
        };
        let mut reads = 0;
        for _ in 0..3000 {
            if let Ok(mut opened) = r.open(target.to_str().unwrap(), FileAccess::Read) {
                let mut text = String::new();
                let _ = opened.file.read_to_string(&mut text);
                assert!(!text.contains("TOPSECRET"), "leaked through a swap");
                reads += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(swaps > 0, "the swapper ran");
        eprintln!("{reads} of 3000 reads succeeded during {swaps} swap rounds; none leaked");
    }

    #[test]
    fn generated_paths_resolve_inside_a_root_or_are_denied() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        symlink(root.join("secret"), root.join("logs/out")).unwrap();
        symlink(root.join("secret/shadow"), root.join("logs/shadow.log")).unwrap();
        symlink(root.join("logs"), root.join("app/back")).unwrap();
        symlink("/etc", root.join("logs/etc")).unwrap();
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/hard.log")).unwrap();
        let r = rules(&root, |_| {});
        let allowed_read = [
            globset::Glob::new(&format!("{}/logs/**", root.display())).unwrap().compile_matcher(),
            globset::GlobBuilder::new(&format!("{}/app/*.log", root.display()))
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher(),
            globset::GlobBuilder::new(&format!("{}/managed/*.conf", root.display()))
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher(),
        ];
        // Real paths (good and hostile), each bent by up to two inserted steps (`..`, links,
        // no-ops, literal `%2e%2e`) at random places: often still a real file, reached through
        // links and `..` as often as not.
        let base = prop::sample::select(vec![
            "logs/nginx/access.log",
            "app/web.log",
            "app/back/nginx/access.log",
            "managed/app.conf",
            "managed/new.conf",
            "app/deep/inner.log",
            "logs/hard.log",
            "logs/shadow.log",
            "logs/out/shadow",
            "logs/etc/passwd",
            "secret/shadow",
        ]);
        let step = prop::sample::select(vec!["..", ".", "", "nginx", "secret", "out", "back", "etc", "%2e%2e", "~"]);
        let strategy = (base, prop::collection::vec((step, 0usize..6), 0..3), prop::bool::weighted(0.9)).prop_map(
            |(base, inserts, from_root)| {
                let mut parts: Vec<&str> = base.split('/').collect();
                for (step, at) in inserts {
                    parts.insert(at.min(parts.len()), step);
                }
                (parts, from_root)
            },
        );
        let mut runner = TestRunner::new(Config { cases: 2000, ..Config::default() });
        // Both outcomes must really happen, or the property says nothing.
        let (granted, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
        runner
            .run(&strategy, |(parts, from_root)| {
                let rel = parts.join("/");
                let path = if from_root { format!("{}/{rel}", root.display()) } else { format!("/{rel}") };
                for access in [FileAccess::Read, FileAccess::Write] {
                    let verdict = r.verify(&path, access);
                    let counter = if verdict.is_ok() { &granted } else { &refused };
                    counter.set(counter.get() + 1);
                    if let Ok(a) = verdict {
                        prop_assert!(allowed_read.iter().any(|g| g.is_match(&a.path)), "{path} → {a:?}");
                        prop_assert!(!a.path.starts_with(root.join("secret")), "{path} → {a:?}");
                        if a.exists {
                            let meta = std::fs::symlink_metadata(&a.path).unwrap();
                            prop_assert!(meta.is_file() && meta.nlink() == 1, "{path} → {a:?}");
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
        eprintln!("generated paths: {} granted, {} refused", granted.get(), refused.get());
        assert!(granted.get() > 100 && refused.get() > 100, "granted {} refused {}", granted.get(), refused.get());
    }
}

mod control_props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any path holding a control, format or separator character anywhere is refused, and
        /// the refusal names the character instead of echoing it.
        #[test]
        fn any_path_with_a_control_character_is_refused(
            head in "/[a-z/]{0,20}",
            tail in "[a-z./]{0,20}",
            bad in prop::sample::select(
                (0u32..0x20).chain(0x7F..0xA0).chain([0x2028, 0x2029, 0x200B, 0x200E, 0x202E, 0x2066, 0xFEFF])
                    .filter_map(char::from_u32).collect::<Vec<_>>()
            ),
        ) {
            let r = FileRules::new(FilePolicy { file_roots: vec!["/**".into()], ..FilePolicy::default() }).unwrap();
            let path = format!("{head}{bad}{tail}");
            let err = r.check(&path, FileAccess::Read).unwrap_err();
            prop_assert_eq!(err.code(), ErrorCode::PolicyDenied);
            prop_assert!(err.message().contains(&format!("U+{:04X}", u32::from(bad))), "{}", err);
            prop_assert!(!err.to_string().contains(bad));
        }
    }
}

mod attack {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::io::AsRawFd as _;

    use super::*;

    fn p(root: &Path, rel: &str) -> String {
        format!("{}/{rel}", root.display())
    }

    fn refused(r: &FileRules, path: &str) {
        for access in [FileAccess::Read, FileAccess::Write] {
            let err = r.open(path, access).unwrap_err();
            assert_eq!(err.code(), ErrorCode::PolicyDenied, "{path}: {err}");
            assert!(!err.to_string().contains("root:x"), "{path}: {err}");
        }
    }

    /// A symlinked parent directory and `..` after a symlink are walked as the kernel walks them.
    #[test]
    fn symlinked_parents_and_dotdot_after_a_link_stay_out() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        std::fs::create_dir_all(root.join("secret/sub")).unwrap();
        symlink(root.join("secret"), root.join("logs/out")).unwrap();
        symlink(root.join("secret/sub"), root.join("logs/deep")).unwrap();
        refused(&r, &p(&root, "logs/out/shadow"));
        // `deep/..` is `secret` for the kernel, not `logs`.
        refused(&r, &p(&root, "logs/deep/../shadow"));
        // `**` matches the link's name, but the link is followed before the glob is asked.
        refused(&r, &p(&root, "logs/out"));
    }

    /// `//`, `/./`, a trailing slash and `..` are normalised before the rules see the path.
    #[test]
    fn spelling_tricks_resolve_to_the_same_judgement() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        for ok in ["logs//nginx/access.log", "logs/./nginx/access.log", "logs/nginx/../nginx/access.log"] {
            r.open(&p(&root, ok), FileAccess::Read).unwrap();
        }
        for bad in ["logs/../secret/shadow", "logs//..//secret/shadow", "logs/./../secret/./shadow"] {
            refused(&r, &p(&root, bad));
        }
        // A trailing slash on a file is ENOTDIR for the kernel: refused, not read.
        let err = r.open(&p(&root, "logs/nginx/access.log/"), FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied, "{err}");
        // A missing directory followed by `..`: judged lexically where it would be (outside).
        refused(&r, &p(&root, "logs/missing/../../secret/shadow"));
        // ... and inside, never created as a write through a missing directory.
        let err = r.check(&p(&root, "managed/missing/../new.conf"), FileAccess::Write).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied, "{err}");
    }

    /// /proc/self/root, /proc/self/cwd and /dev/fd/N are magic links: they resolve to the file they
    /// name (judged by the rules) or stay under /proc (refused).
    #[test]
    fn proc_and_dev_fd_names_are_judged_by_what_they_resolve_to() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        refused(&r, &format!("/proc/self/root{}", p(&root, "secret/shadow")));
        refused(&r, &format!("/proc/thread-self/root{}", p(&root, "secret/shadow")));
        refused(&r, "/proc/self/cwd/etc/passwd");
        refused(&r, "/proc/self/environ");
        let secret = std::fs::File::open(root.join("secret/shadow")).unwrap();
        refused(&r, &format!("/dev/fd/{}", secret.as_raw_fd()));
        refused(&r, &format!("/proc/self/fd/{}", secret.as_raw_fd()));
        refused(&r, "/dev/stdin");
        // A pipe's descriptor has no file name: refused, never opened.
        let (rx, _tx) = std::io::pipe().unwrap();
        refused(&r, &format!("/dev/fd/{}", rx.as_raw_fd()));
        // An allowed file through /proc/self/root is the allowed file, opened by its real name.
        let ok = r.open(&format!("/proc/self/root{}", p(&root, "logs/nginx/access.log")), FileAccess::Read).unwrap();
        assert_eq!(ok.allowed.path, root.join("logs/nginx/access.log"));
        // Even a `/**` root cannot reach kernel interfaces.
        let all = FileRules::new(FilePolicy { file_roots: vec!["/**".into()], ..FilePolicy::default() }).unwrap();
        for bad in ["/proc/self/environ", "/dev/zero", "/dev/null", "/sys/kernel/notes"] {
            let err = all.open(bad, FileAccess::Read).unwrap_err();
            assert_eq!(err.code(), ErrorCode::PolicyDenied, "{bad}: {err}");
        }
        let err = all.open(&format!("/dev/fd/{}", rx.as_raw_fd()), FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied, "{err}");
    }

    /// `hardlink_roots` is asked about the resolved path, and only adds to a file already allowed.
    #[test]
    fn hardlink_roots_do_not_widen_the_allowlist() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |pol| pol.hardlink_roots = vec!["/**".into()]);
        std::fs::hard_link(root.join("secret/shadow"), root.join("secret/again")).unwrap();
        refused(&r, &p(&root, "secret/again"));
        refused(&r, &p(&root, "secret/shadow"));
        // A link named under an allowed root but whose hardlink_roots match is only a symlink's target.
        let narrow = rules(&root, |pol| pol.hardlink_roots = vec![p(&root, "app/*.log")]);
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/shadow")).unwrap();
        symlink(root.join("logs/shadow"), root.join("app/x.log")).unwrap();
        assert_eq!(std::fs::metadata(root.join("logs/shadow")).unwrap().nlink(), 3);
        refused(&narrow, &p(&root, "app/x.log"));
        refused(&narrow, &p(&root, "logs/shadow"));
    }

    /// Names on disk that are not UTF-8 or hold control characters are never echoed.
    #[test]
    fn non_utf8_and_control_names_on_disk_are_not_echoed() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let bad = root.join("logs").join(std::ffi::OsStr::from_bytes(b"e\x1b[31m\xff"));
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("f.log"), "x\n").unwrap();
        symlink(bad.join("f.log"), root.join("logs/ok.log")).unwrap();
        let err = r.open(&p(&root, "logs/ok.log"), FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
        let text = format!("{err} {err:?}");
        assert!(!text.contains('\u{1b}'), "{text}");
        // A search over the root does not echo it either.
        let hits = super::search::search(&r, "x", Some("**"), false, 10);
        let text = format!("{hits:?}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    /// A directory where a file was, or a FIFO/socket behind an allowed name, is never opened.
    #[test]
    fn files_that_become_directories_or_fifos_are_refused() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        let target = root.join("logs/nginx/access.log");
        let allowed = r.check(&p(&root, "logs/nginx/access.log"), FileAccess::Read).unwrap();
        std::fs::remove_file(&target).unwrap();
        std::fs::create_dir(&target).unwrap();
        assert!(open::open_checked(&allowed).is_err());
        std::fs::remove_dir(&target).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&target).status().unwrap().success());
        // Opening a FIFO would block; the O_PATH handle is checked first.
        let err = open::open_checked(&allowed).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
        let err = r.open(&p(&root, "logs/nginx/access.log"), FileAccess::Read).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied);
    }

    /// A directory on the path flipped between the allowed directory and a symlink out while
    /// reads run: nothing outside the roots is ever read.
    #[test]
    fn a_racing_directory_swap_never_leaks() {
        use std::io::Read as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        std::fs::write(root.join("secret/access.log"), "root:x\n").unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flipper = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let (real, link, tmp) = (root.join("logs/nginx"), root.join("logs/link"), root.join("logs/real"));
                symlink(root.join("secret"), &link).unwrap();
                std::fs::rename(&real, &tmp).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::rename(&link, &real);
                    let _ = std::fs::rename(&real, &link);
                    let _ = std::fs::rename(&tmp, &real);
                    let _ = std::fs::rename(&real, &tmp);
                }
            })
        };
        let (mut opened, mut refused) = (0, 0);
        for _ in 0..3000 {
            match r.open(&p(&root, "logs/nginx/access.log"), FileAccess::Read) {
                Ok(mut o) => {
                    let mut text = String::new();
                    o.file.read_to_string(&mut text).unwrap();
                    assert!(!text.contains("root:x"), "{:?}", o.allowed);
                    opened += 1;
                }
                Err(_) => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        flipper.join().unwrap();
        eprintln!("race: {opened} opened, {refused} refused");
    }

    /// The command classifier's file checks are the same checked open.
    #[test]
    fn the_classifier_refuses_what_a_read_refuses() {
        use crate::classifier::{CommandClass, RulesChecker, classify_with};
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        symlink(root.join("secret"), root.join("logs/out")).unwrap();
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/hl.log")).unwrap();
        let ok = format!("cat {}", p(&root, "logs/nginx/access.log"));
        assert_eq!(classify_with(&ok, &mut RulesChecker::new(&r)).class, CommandClass::ReadOnly);
        for cmd in [
            format!("cat {}", p(&root, "logs/out/shadow")),
            format!("tail -n 5 {}", p(&root, "logs/../secret/shadow")),
            format!("grep root {}", p(&root, "logs/hl.log")),
            format!("cat /proc/self/root{}", p(&root, "secret/shadow")),
            "cat /dev/zero".to_owned(),
            "tail -f /dev/stdin".to_owned(),
        ] {
            let c = classify_with(&cmd, &mut RulesChecker::new(&r));
            assert_eq!(c.class, CommandClass::NeedsApproval, "{cmd}: {}", c.reason);
        }
    }

    /// A search's path glob only filters what the roots already allow: a glob naming the secret
    /// directory, `..`, or a symlinked directory under a root finds nothing outside.
    #[test]
    fn a_search_glob_cannot_escape_the_roots() {
        let dir = tree();
        let root = dir.path().canonicalize().unwrap();
        let r = rules(&root, |_| {});
        symlink(root.join("secret"), root.join("logs/out")).unwrap();
        std::fs::hard_link(root.join("secret/shadow"), root.join("logs/hl.log")).unwrap();
        let control = super::search::search(&r, "web", None, false, 10).unwrap();
        assert_eq!(control.hits.len(), 1, "{control:?}");
        for glob in [
            None,
            Some("**".to_owned()),
            Some("/**".to_owned()),
            Some(p(&root, "secret/**")),
            Some(p(&root, "logs/../secret/*")),
            Some(p(&root, "logs/out/*")),
        ] {
            let found = super::search::search(&r, "root:x", glob.as_deref(), false, 10).unwrap_or_default();
            assert!(found.hits.is_empty(), "{glob:?}: {found:?}");
        }
    }
}

/// A set past the regex engine's size limit parses, so it loads; the agent then finds it allows
/// nothing (fail closed), and the checks an owner runs before using a policy say so by name.
#[test]
fn a_set_that_cannot_be_compiled_allows_nothing_and_checks_say_so() {
    let huge = format!("/tmp/{}", "?".repeat(300_000));
    let r = FileRules::new(FilePolicy { file_roots: vec![huge, "/tmp/**".into()], ..FilePolicy::default() }).unwrap();
    assert!(!r.allows(Path::new("/tmp/x"), FileAccess::Read), "a set that cannot compile allows nothing");
    let err = r.check_compiles().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationError);
    assert!(err.message().contains("file_roots rules cannot be compiled"), "{err}");
    // A policy that compiles passes the check and keeps what it compiled.
    let dir = tree();
    let root = dir.path().canonicalize().unwrap();
    let ok = rules(&root, |_| {});
    ok.check_compiles().unwrap();
    assert!(ok.read.set.get().is_some_and(Option::is_some));
    assert!(ok.allows(&root.join("app/web.log"), FileAccess::Read));
}
