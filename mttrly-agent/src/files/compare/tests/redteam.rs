//! Red-team cases for the walk: listings cut by the path cap must never mislabel what they report
//! (nor hide that they were cut), special files must never block it, odd names must not break it,
//! and roots reached through a symlinked parent are judged where they lead.

use std::os::unix::ffi::OsStrExt as _;
use std::sync::mpsc;

use super::*;

/// Both sides hold the same 200 names and the build output 200 more: a walk stopped by
/// `max_files` reports only what it looked at on both sides. Cutting each listing in `readdir`
/// order (hash order on ext4) reported names present on both sides as `only_in_*`.
#[test]
fn a_walk_cut_by_max_files_never_mislabels_a_name_on_both_sides() {
    let f = Fixture::new();
    for i in 0..200 {
        f.write(&format!("trees/src/f{i:03}"), "same");
        f.write(&format!("trees/dist/f{i:03}"), "same");
        f.write(&format!("trees/dist/g{i:03}"), "extra");
    }
    let p = params(&f.src(), &f.dist());
    for max_files in [1, 10, 57, 199] {
        let r = compare_trees(&f.rules, &p, CompareLimits { max_files, ..WIDE }).unwrap();
        assert_eq!((r.partial, r.stopped_by, r.examined), (true, Some(CompareCap::MaxFiles), max_files), "{r:#?}");
        assert_eq!(r.counts.identical, max_files, "{max_files}: {r:#?}");
        assert_eq!((r.counts.only_in_source, r.counts.only_in_dist), (0, 0), "{max_files}: {r:#?}");
    }
    let r = compare_trees(&f.rules, &p, CompareLimits { max_files: 250, ..WIDE }).unwrap();
    assert_eq!((r.counts.identical, r.counts.only_in_dist, r.counts.only_in_source), (200, 50, 0), "{r:#?}");
    assert_eq!(r.entries.iter().filter(|e| !e.path.starts_with('g')).count(), 0, "{r:#?}");
}

/// Ignored names cost no path, so they must not use up a listing's room: a directory full of
/// ignored names beside a few real files is compared completely (not `partial`), every real file
/// found on both sides, and each ignored path counted once.
#[test]
fn ignored_names_do_not_crowd_real_files_out_of_a_listing() {
    let f = Fixture::new();
    for i in 0..60 {
        f.write(&format!("trees/src/x{i:02}.tmp"), "junk");
    }
    for i in 0..5 {
        f.write(&format!("trees/src/r{i}"), "real");
        f.write(&format!("trees/dist/r{i}"), "real");
    }
    f.write("trees/dist/x00.tmp", "junk on both sides counts once");
    let mut p = params(&f.src(), &f.dist());
    p.ignore = vec!["*.tmp".to_owned()];
    let r = compare_trees(&f.rules, &p, CompareLimits { max_files: 10, ..WIDE }).unwrap();
    assert_eq!((r.partial, r.examined, r.counts.identical, r.counts.differing()), (false, 5, 5, 0), "{r:#?}");
    assert_eq!(r.counts.ignored, 60, "{r:#?}");
}

/// Runs `compare` on another thread and fails if it has not answered within 20 s: a walk that
/// opened a FIFO or a device would block (or read forever) instead.
fn without_blocking(f: &Fixture) -> TreeReport {
    let (tx, rx) = mpsc::channel();
    let (rules, p) = (f.rules.clone(), params(&f.src(), &f.dist()));
    std::thread::spawn(move || {
        let _ = tx.send(compare_trees(&rules, &p, WIDE));
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("the walk blocked on a special file").unwrap()
}

/// FIFOs, sockets and (when the test may create them) character devices on either side, against
/// each other and against regular files, are compared by kind and never opened: nothing blocks,
/// nothing is hashed, nothing endless is read.
#[test]
fn fifos_sockets_and_devices_never_block_the_walk() {
    let f = Fixture::new();
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    for side in ["src", "dist"] {
        let dir = f.root.join("trees").join(side);
        nix::unistd::mkfifo(&dir.join("pipe"), mode).unwrap();
        // A socket inode, made without listening on it (the agent never listens).
        nix::sys::stat::mknod(&dir.join("sock"), nix::sys::stat::SFlag::S_IFSOCK, mode, 0).unwrap();
    }
    // The same name as an empty file on one side and a FIFO on the other.
    f.write("trees/src/looks-empty", "");
    nix::unistd::mkfifo(&f.dist().join("looks-empty"), mode).unwrap();
    // /dev/zero's numbers under the dist tree, beside an empty file of the same name in source:
    // opened, it would never end.
    f.write("trees/src/zero", "");
    let device = nix::sys::stat::mknod(
        &f.dist().join("zero"),
        nix::sys::stat::SFlag::S_IFCHR,
        mode,
        nix::sys::stat::makedev(1, 5),
    )
    .is_ok();
    let r = without_blocking(&f);
    assert_eq!(r.bytes_hashed, 0, "{r:#?}");
    assert_eq!(r.counts.identical, 2, "the FIFO and the socket by kind: {r:#?}");
    assert_eq!(r.counts.type_mismatch, 1 + u32::from(device), "{r:#?}");
    let pipe = entry(&r, "looks-empty");
    assert_eq!(pipe.dist.as_ref().map(|d| d.kind), Some(EntryKind::Fifo));
    assert!(pipe.dist.as_ref().is_some_and(|d| d.sha256.is_none() && d.size.is_none()));
}

/// Names that are not UTF-8 are compared by their bytes and shown escaped: two different
/// non-UTF-8 names are two paths, the same one on both sides is identical, and none of it fails
/// the walk.
#[test]
fn non_utf8_names_are_compared_by_bytes() {
    let f = Fixture::new();
    let name = |bytes: &[u8]| std::ffi::OsStr::from_bytes(bytes).to_owned();
    for side in [f.src(), f.dist()] {
        std::fs::write(side.join(name(b"caf\xe9.js")), "same").unwrap();
    }
    std::fs::write(f.src().join(name(b"\xff")), "a").unwrap();
    std::fs::write(f.dist().join(name(b"\xfe")), "a").unwrap();
    std::fs::write(f.src().join("ok\u{202e}sj.txt"), "b").unwrap();
    let r = f.compare();
    assert_eq!((r.counts.identical, r.counts.only_in_source, r.counts.only_in_dist), (1, 2, 1), "{r:#?}");
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains('\u{202e}'), "a bidi override reached the report: {text}");
}

/// A root whose *parent* is a symlink out of the allowlist is judged where it leads, as is one
/// that climbs out through a symlink and `..`; many tiny directories and a deep chain stop at the
/// caps without error.
#[test]
fn symlinked_parents_deep_chains_and_tiny_directories_stay_bounded() {
    let f = Fixture::new();
    std::os::unix::fs::symlink(f.root.join("secret"), f.root.join("trees/to-secret")).unwrap();
    std::os::unix::fs::symlink(f.root.join("secret/inner"), f.src().join("deep-link")).unwrap();
    for requested in
        [f.root.join("trees/to-secret/inner"), f.src().join("deep-link/.."), f.src().join("deep-link/../inner")]
    {
        let err = compare_trees(&f.rules, &params(&requested, &f.dist()), WIDE).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyDenied, "{}: {err}", requested.display());
    }
    std::fs::remove_file(f.src().join("deep-link")).unwrap();

    for i in 0..3000 {
        std::fs::create_dir(f.src().join(format!("d{i:04}"))).unwrap();
    }
    let mut deep = f.dist().join("chain");
    for _ in 0..150 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let r = compare_trees(&f.rules, &params(&f.src(), &f.dist()), CompareLimits { max_files: 500, ..WIDE }).unwrap();
    assert_eq!((r.partial, r.stopped_by, r.examined), (true, Some(CompareCap::MaxFiles), 500), "{r:?}");
    let r = compare_trees(&f.rules, &params(&f.dist(), &f.dist()), WIDE).unwrap();
    assert!(!r.partial, "{r:?}");
    assert!(r.entries.iter().any(|e| e.reason.as_deref().is_some_and(|why| why.contains("deeper than"))), "{r:?}");
}
