//! The walk: both trees side by side, directory by directory, through descriptors only.
//!
//! Every entry is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` relative to its directory's
//! descriptor, every subdirectory is opened with `openat(O_DIRECTORY | O_NOFOLLOW)` and checked to
//! be the inode that was looked at, and every file is opened with `openat(O_NOFOLLOW |
//! O_NONBLOCK)` and checked the same way before a byte is hashed. So a directory swapped for a
//! symlink mid-walk fails to open (it is reported, never followed), and a path can never climb
//! out of its root: names are single components from `readdir`, never `..`.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::Instant;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use mttrly_core::files::{FileAccess, FileRules, path};
use mttrly_core::tools::files::{
    CompareCap, CompareEntry, CompareLimits, CompareRun, CompareStatus, CompareTally, EntryKind, EntrySide,
    MAX_IGNORE_GLOBS, MISSING_FLAGS, TreeReport, flags,
};
use mttrly_core::{ErrorCode, MttrlyError};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use sha2::{Digest as _, Sha256};

use super::roots::{Root, plain_name};

/// The deepest a walk goes below a root; deeper directories are reported, not entered (each level
/// holds two open descriptors).
const MAX_DEPTH: usize = 128;

/// The hashing buffer.
const CHUNK: usize = 64 * 1024;

/// What is skipped: globs without `/` match an entry's name at any depth, globs with `/` match
/// the path relative to the root.
pub(super) struct Ignore {
    names: GlobSet,
    paths: GlobSet,
}

impl Ignore {
    /// Compiles the globs; a bad one is `VALIDATION_ERROR` naming it.
    pub(super) fn new(globs: &[String]) -> Result<Self, MttrlyError> {
        let bad =
            |message: String| MttrlyError::new(ErrorCode::ValidationError, message).with_detail("field", "ignore");
        if globs.len() > MAX_IGNORE_GLOBS {
            return Err(bad(format!("at most {MAX_IGNORE_GLOBS} ignore globs, got {}", globs.len())));
        }
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for g in globs {
            if g.is_empty() || g.len() > 256 || g.contains('\0') {
                return Err(bad("an ignore glob is 1 to 256 characters without NUL".to_owned()));
            }
            let relative = g.trim_start_matches('/');
            let glob = GlobBuilder::new(relative)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(format!("invalid ignore glob `{}`: {e}", path::shown(g))))?;
            if relative.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| bad(format!("invalid ignore globs: {e}")));
        Ok(Self { names: build(names)?, paths: build(paths)? })
    }

    fn skips(&self, rel: &Path, name: &OsStr) -> bool {
        self.names.is_match(name) || self.paths.is_match(rel)
    }
}

/// What a walker needs.
pub(super) struct Setup<'a> {
    /// The owner's file rules (every hashed file must be named by them).
    pub rules: &'a FileRules,
    /// The owner's `hardlink_roots`.
    pub hardlinks: GlobSet,
    /// What to skip.
    pub ignore: Ignore,
    /// The source root.
    pub source: &'a Root,
    /// The dist root.
    pub dist: &'a Root,
    /// The caps.
    pub limits: CompareLimits,
    /// When to stop.
    pub deadline: Instant,
}

/// An entry's own metadata (never followed).
#[derive(Debug, Clone, Copy)]
struct Meta {
    kind: EntryKind,
    size: u64,
    mtime: jiff::Timestamp,
    nlink: u64,
    dev: u64,
    ino: u64,
}

impl Meta {
    #[allow(clippy::useless_conversion, reason = "nlink_t is u64 here, u32 on other Linux targets")]
    fn of(st: &FileStat) -> Self {
        let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => EntryKind::Dir,
            SFlag::S_IFLNK => EntryKind::Symlink,
            SFlag::S_IFIFO => EntryKind::Fifo,
            SFlag::S_IFSOCK => EntryKind::Socket,
            SFlag::S_IFCHR => EntryKind::CharDevice,
            SFlag::S_IFBLK => EntryKind::BlockDevice,
            _ => EntryKind::File,
        };
        let nanos = i32::try_from(st.st_mtime_nsec).unwrap_or(0);
        Self {
            kind,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: jiff::Timestamp::new(st.st_mtime, nanos).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            nlink: u64::from(st.st_nlink),
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    fn same_inode(&self, st: &FileStat) -> bool {
        self.dev == st.st_dev && self.ino == st.st_ino
    }

    /// The side as reported (no hash yet).
    fn side(&self, symlink_target: Option<String>) -> EntrySide {
        let sized = matches!(self.kind, EntryKind::File | EntryKind::Symlink);
        EntrySide {
            kind: self.kind,
            size: sized.then_some(self.size),
            sha256: None,
            mtime: Some(self.mtime),
            symlink_target,
        }
    }
}

/// One side of a directory being compared: its descriptor and its root.
#[derive(Clone, Copy)]
struct Here<'d> {
    dir: BorrowedFd<'d>,
    root: &'d Path,
}

/// Which tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tree {
    Source,
    Dist,
}

/// Why an entry could not be compared.
type Reason = String;

/// The walk's state.
pub(super) struct Walker<'a> {
    setup: Setup<'a>,
    tally: CompareTally,
    examined: u32,
    bytes_hashed: u64,
    stopped: Option<CompareCap>,
    buf: Vec<u8>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(setup: Setup<'a>) -> Self {
        let tally = CompareTally::new(setup.limits.max_entries);
        Self { setup, tally, examined: 0, bytes_hashed: 0, stopped: None, buf: vec![0; CHUNK] }
    }

    /// Walks both trees and returns the report.
    pub(super) fn run(mut self, started: Instant) -> TreeReport {
        let (source, dist) = (self.setup.source, self.setup.dist);
        let src = Here { dir: source.dir.as_fd(), root: &source.path };
        let dst = Here { dir: dist.dir.as_fd(), root: &dist.path };
        self.dir(Some(src), Some(dst), Path::new(""), 0);
        let run = CompareRun {
            source_dir: path::shown(&source.path.to_string_lossy()),
            dist_dir: path::shown(&dist.path.to_string_lossy()),
            stopped_by: self.stopped,
            examined: self.examined,
            bytes_hashed: self.bytes_hashed,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            limits: self.setup.limits,
        };
        self.tally.finish(run)
    }

    /// Whether a cap has stopped the walk (checking the path cap and the clock).
    fn stop(&mut self) -> bool {
        if self.stopped.is_some() {
            return true;
        }
        if self.examined >= self.setup.limits.max_files {
            self.stopped = Some(CompareCap::MaxFiles);
        } else if Instant::now() >= self.setup.deadline {
            self.stopped = Some(CompareCap::Deadline);
        }
        self.stopped.is_some()
    }

    /// The names in a directory that the ignore globs keep, sorted by bytes: the *smallest* ones,
    /// at most one more than the paths left to examine, so memory stays bounded.
    ///
    /// Why the smallest, and why ignored names are dropped here: both sides are merged in name
    /// order and every merged name costs one path, so when a listing had to be cut the walk hits
    /// `max_files` before it reaches a name past the cut, and every name it does report was seen
    /// on both sides if it is on both. A cut in `readdir` order (or one spent on ignored names,
    /// which cost no path) would let a name present on both sides be reported as `only_in_*`, or
    /// let a walk end with names never looked at and still claim to be complete.
    ///
    /// Ignored names are counted here, once per path: on the source side always, on the dist side
    /// only when `counted_in` (the source directory) has no such name.
    fn list(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        counted_in: Option<BorrowedFd<'_>>,
    ) -> Result<Vec<OsString>, Errno> {
        /// How many entries are read between two looks at the clock.
        const CLOCK_EVERY: usize = 1024;
        let fresh =
            nix::fcntl::openat(dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
        let mut handle = Dir::from_fd(fresh)?;
        let room = usize::try_from(self.setup.limits.max_files.saturating_sub(self.examined)).unwrap_or(usize::MAX);
        let keep = room.saturating_add(1);
        let mut names = std::collections::BinaryHeap::new();
        for (read, entry) in handle.iter().enumerate() {
            if read % CLOCK_EVERY == CLOCK_EVERY - 1 && Instant::now() >= self.setup.deadline {
                self.stopped = Some(CompareCap::Deadline);
                break;
            }
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if !plain_name(name) {
                continue;
            }
            if self.setup.ignore.skips(&rel.join(name), name) {
                let elsewhere = counted_in
                    .is_some_and(|other| nix::sys::stat::fstatat(other, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok());
                if !elsewhere {
                    self.tally.ignored();
                }
                continue;
            }
            names.push(name.to_owned());
            if names.len() > keep {
                names.pop();
            }
        }
        Ok(names.into_sorted_vec())
    }

    /// Compares one directory present on one or both sides (`rel` is its path under the roots).
    fn dir(&mut self, src: Option<Here<'_>>, dst: Option<Here<'_>>, rel: &Path, depth: usize) {
        let src_listed = src.map(|h| self.list(h.dir, rel, None)).transpose();
        let dst_listed = dst.map(|h| self.list(h.dir, rel, src.map(|s| s.dir))).transpose();
        let (src_names, dst_names) = match (src_listed, dst_listed) {
            (Ok(s), Ok(d)) => (s.unwrap_or_default(), d.unwrap_or_default()),
            (Err(e), _) | (_, Err(e)) => {
                self.unreadable(rel, None, None, format!("cannot list the directory: {}", e.desc()));
                return;
            }
        };
        let (mut i, mut j) = (0, 0);
        while i < src_names.len() || j < dst_names.len() {
            if self.stop() {
                return;
            }
            let (name, in_src, in_dst) = match (src_names.get(i), dst_names.get(j)) {
                (Some(a), Some(b)) if a == b => (a, true, true),
                (Some(a), Some(b)) if a < b => (a, true, false),
                (Some(a), None) => (a, true, false),
                (_, Some(b)) => (b, false, true),
                (None, None) => break,
            };
            i += usize::from(in_src);
            j += usize::from(in_dst);
            let child = rel.join(name);
            self.examined = self.examined.saturating_add(1);
            let src = src.filter(|_| in_src);
            let dst = dst.filter(|_| in_dst);
            self.entry(src, dst, name, &child, depth);
        }
    }

    /// Compares one path present on one or both sides.
    fn entry(&mut self, src: Option<Here<'_>>, dst: Option<Here<'_>>, name: &OsStr, rel: &Path, depth: usize) {
        let stat = |here: Option<Here<'_>>| {
            here.map(|h| nix::sys::stat::fstatat(h.dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| Meta::of(&st)))
                .transpose()
        };
        let (s, d) = match (stat(src), stat(dst)) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => {
                self.unreadable(rel, None, None, format!("cannot stat it: {}", e.desc()));
                return;
            }
        };
        let shown = show(rel);
        for (meta, tree) in [(s, Tree::Source), (d, Tree::Dist)] {
            if let Some(m) = meta.filter(|m| matches!(m.kind, EntryKind::File | EntryKind::Symlink)) {
                match tree {
                    Tree::Source => self.tally.saw_source(m.mtime, &shown),
                    Tree::Dist => self.tally.saw_dist(m.mtime, &shown),
                }
            }
        }
        match (src.zip(s), dst.zip(d)) {
            (Some((sh, s)), Some((dh, d))) if s.kind == d.kind => self.both(sh, dh, &s, &d, name, rel, depth),
            (Some((sh, s)), Some((dh, d))) => {
                let (source, dist) = (side_of(sh, name, &s), side_of(dh, name, &d));
                let flags = flags(&source, &dist);
                self.push(rel, CompareStatus::TypeMismatch, flags, Some(source), Some(dist), None);
                // What is a directory on one side is walked as one-sided content.
                self.descend_one(sh, &s, Tree::Source, name, rel, depth);
                self.descend_one(dh, &d, Tree::Dist, name, rel, depth);
            }
            (Some((sh, s)), None) => self.one_sided(sh, &s, Tree::Source, name, rel, depth),
            (None, Some((dh, d))) => self.one_sided(dh, &d, Tree::Dist, name, rel, depth),
            (None, None) => {}
        }
    }

    /// A path on one side only: reported, and walked when it is a directory.
    fn one_sided(&mut self, here: Here<'_>, meta: &Meta, tree: Tree, name: &OsStr, rel: &Path, depth: usize) {
        let side = Some(side_of(here, name, meta));
        let (status, source, dist) = match tree {
            Tree::Source => (CompareStatus::OnlyInSource, side, None),
            Tree::Dist => (CompareStatus::OnlyInDist, None, side),
        };
        self.push(rel, status, MISSING_FLAGS.to_owned(), source, dist, None);
        self.descend_one(here, meta, tree, name, rel, depth);
    }

    /// Walks a directory present on one side only (nothing to do for anything else).
    fn descend_one(&mut self, here: Here<'_>, meta: &Meta, tree: Tree, name: &OsStr, rel: &Path, depth: usize) {
        if meta.kind != EntryKind::Dir || self.too_deep(rel, depth) {
            return;
        }
        match open_dir(here.dir, name, meta) {
            Ok(fd) => {
                let child = Here { dir: fd.as_fd(), root: here.root };
                match tree {
                    Tree::Source => self.dir(Some(child), None, rel, depth + 1),
                    Tree::Dist => self.dir(None, Some(child), rel, depth + 1),
                }
            }
            Err(reason) => self.unreadable(rel, None, None, reason),
        }
    }

    fn too_deep(&mut self, rel: &Path, depth: usize) -> bool {
        if depth + 1 >= MAX_DEPTH {
            self.unreadable(rel, None, None, format!("deeper than {MAX_DEPTH} levels: not walked"));
            return true;
        }
        false
    }

    /// Both sides exist and are the same kind.
    #[allow(clippy::too_many_arguments, reason = "one entry's two sides, each with its directory and metadata")]
    fn both(&mut self, sh: Here<'_>, dh: Here<'_>, s: &Meta, d: &Meta, name: &OsStr, rel: &Path, depth: usize) {
        match s.kind {
            EntryKind::Dir => {
                if self.too_deep(rel, depth) {
                    return;
                }
                match (open_dir(sh.dir, name, s), open_dir(dh.dir, name, d)) {
                    (Ok(a), Ok(b)) => {
                        let (sa, db) = (Here { dir: a.as_fd(), root: sh.root }, Here { dir: b.as_fd(), root: dh.root });
                        self.dir(Some(sa), Some(db), rel, depth + 1);
                    }
                    (Err(reason), _) | (_, Err(reason)) => self.unreadable(rel, None, None, reason),
                }
            }
            EntryKind::File => self.files(sh, dh, s, d, name, rel),
            _ => {
                // Symlinks by their target text; FIFOs, sockets and devices by kind (never opened).
                let (source, dist) = (side_of(sh, name, s), side_of(dh, name, d));
                let status = if source.symlink_target == dist.symlink_target {
                    CompareStatus::Identical
                } else {
                    CompareStatus::Modified
                };
                let flags = flags(&source, &dist);
                self.push(rel, status, flags, Some(source), Some(dist), None);
            }
        }
    }

    /// Two regular files: refused names are `unreadable`; different sizes are `modified` without
    /// hashing; equal sizes are hashed (both sides) within the byte budget.
    fn files(&mut self, sh: Here<'_>, dh: Here<'_>, s: &Meta, d: &Meta, name: &OsStr, rel: &Path) {
        let (mut source, mut dist) = (s.side(None), d.side(None));
        for (here, meta) in [(sh, s), (dh, d)] {
            if let Err(reason) = self.may_hash(here, meta, rel) {
                self.unreadable(rel, Some(source), Some(dist), reason);
                return;
            }
        }
        if s.size == d.size {
            let needed = s.size.saturating_mul(2);
            if self.bytes_hashed.saturating_add(needed) > self.setup.limits.max_bytes_hashed {
                self.stopped = Some(CompareCap::MaxBytes);
                return;
            }
            for (here, meta, tree) in [(sh, s, Tree::Source), (dh, d, Tree::Dist)] {
                let hex = match self.hash(here.dir, name, meta) {
                    Ok(Some(hex)) => hex,
                    Ok(None) => return,
                    Err(reason) => {
                        self.unreadable(rel, Some(source), Some(dist), reason);
                        return;
                    }
                };
                match tree {
                    Tree::Source => source.sha256 = Some(hex),
                    Tree::Dist => dist.sha256 = Some(hex),
                }
            }
        }
        let status = if s.size == d.size && source.sha256 == dist.sha256 {
            CompareStatus::Identical
        } else {
            CompareStatus::Modified
        };
        let flags = flags(&source, &dist);
        self.push(rel, status, flags, Some(source), Some(dist), None);
    }

    /// The read rules every hashed file passes: named by the allowlist, and one hard link unless
    /// the owner's `hardlink_roots` allow more (a second name may belong to a file from anywhere).
    fn may_hash(&self, here: Here<'_>, meta: &Meta, rel: &Path) -> Result<(), Reason> {
        let full = here.root.join(rel);
        if !self.setup.rules.allows(&full, FileAccess::Read) {
            return Err("not named by the file allowlist: not read".to_owned());
        }
        if meta.nlink > 1 && !self.setup.hardlinks.is_match(&full) {
            return Err(format!(
                "it has {} hard links: another name for it may be a file outside the allowlist, so it is not read \
                 (the owner's policy can allow this under hardlink_roots)",
                meta.nlink
            ));
        }
        Ok(())
    }

    /// Streams a file through SHA-256, counting every byte against the budget and checking the
    /// clock per chunk. `Ok(None)`: the deadline stopped it.
    fn hash(&mut self, dir: BorrowedFd<'_>, name: &OsStr, meta: &Meta) -> Result<Option<String>, Reason> {
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| changed_or(e, "cannot open it"))?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("cannot stat it once open: {}", e.desc()))?;
        if !meta.same_inode(&st) || Meta::of(&st).kind != EntryKind::File {
            return Err("it changed during the walk: not read".to_owned());
        }
        let mut file = std::fs::File::from(fd).take(meta.size);
        let mut hasher = Sha256::new();
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read it: {e}")),
            };
            hasher.update(&self.buf[..n]);
            self.bytes_hashed = self.bytes_hashed.saturating_add(n as u64);
            if Instant::now() >= self.setup.deadline {
                self.stopped = Some(CompareCap::Deadline);
                return Ok(None);
            }
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    fn push(
        &mut self,
        rel: &Path,
        status: CompareStatus,
        flags: String,
        source: Option<EntrySide>,
        dist: Option<EntrySide>,
        reason: Option<Reason>,
    ) {
        self.tally.push(CompareEntry { path: show(rel), status, flags, source, dist, reason });
    }

    fn unreadable(&mut self, rel: &Path, source: Option<EntrySide>, dist: Option<EntrySide>, reason: Reason) {
        self.push(rel, CompareStatus::Unreadable, "????".to_owned(), source, dist, Some(reason));
    }
}

/// The reported side of an entry (a symlink's target read with `readlinkat`, never followed).
fn side_of(here: Here<'_>, name: &OsStr, meta: &Meta) -> EntrySide {
    let target = (meta.kind == EntryKind::Symlink)
        .then(|| nix::fcntl::readlinkat(here.dir, name).ok())
        .flatten()
        .map(|t| path::shown(&t.to_string_lossy()));
    meta.side(target)
}

/// Opens the subdirectory `name` of `dir` without following a symlink, and checks it is the inode
/// that was looked at (a directory swapped for another, or for a symlink, is refused).
fn open_dir(dir: BorrowedFd<'_>, name: &OsStr, meta: &Meta) -> Result<OwnedFd, Reason> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| changed_or(e, "cannot open the directory"))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("cannot stat the directory once open: {}", e.desc()))?;
    if !meta.same_inode(&st) {
        return Err("it changed during the walk: not walked".to_owned());
    }
    Ok(fd)
}

/// `ELOOP`/`ENOTDIR` on an `O_NOFOLLOW` open mean the name became a symlink (or something else)
/// after it was looked at.
fn changed_or(e: Errno, what: &str) -> Reason {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => {
            "it changed during the walk (now a symlink or not a directory): not followed".to_owned()
        }
        other => format!("{what}: {}", other.desc()),
    }
}

/// A relative path as it may be shown.
fn show(rel: &Path) -> String {
    path::shown(&rel.to_string_lossy())
}
