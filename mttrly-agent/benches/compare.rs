//! The source-to-dist comparison's throughput on the agent: paths per second (walk, `fstatat`,
//! `openat`), and megabytes per second hashed with SHA-256 when every file must be read.
//!
//! Two trees are laid in a temp dir: `--files` files (default 20,000) in directories of 500,
//! `--size` bytes each (default 4096), identical on both sides so every file is hashed on both;
//! then the same trees with files of one byte, where the walk's system calls dominate. Each
//! comparison runs `--runs` times (default 5); the median is reported. The page cache is warm
//! (the trees were just written), which is the usual case for a build output just deployed.
//!
//! cargo bench -p mttrly-agent --bench compare -- [--files 20000] [--size 4096] [--runs 5]

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, reason = "a benchmark's synthetic counts, far below 2^52")]

use std::path::Path;
use std::time::{Duration, Instant};

use mttrly_agent::files::compare_trees;
use mttrly_core::files::{FilePolicy, FileRules};
use mttrly_core::tools::common::ServerPath;
use mttrly_core::tools::files::{CompareLimits, CompareParams, TreeReport};

const WIDE: CompareLimits =
    CompareLimits { max_files: 200_000, max_bytes_hashed: 1 << 32, deadline_ms: 60_000, max_entries: 100 };

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

fn lay(root: &Path, files: usize, size: usize) {
    let body = vec![b'x'; size];
    for side in ["src", "dist"] {
        for i in 0..files {
            let dir = root.join(side).join(format!("d{:04}", i / 500));
            if i % 500 == 0 {
                std::fs::create_dir_all(&dir).unwrap();
            }
            std::fs::write(dir.join(format!("f{i:06}.js")), &body).unwrap();
        }
    }
}

fn run(rules: &FileRules, root: &Path, runs: usize) -> (Duration, TreeReport) {
    let params = CompareParams {
        source_dir: ServerPath::new(root.join("src").display().to_string()).unwrap(),
        dist_dir: ServerPath::new(root.join("dist").display().to_string()).unwrap(),
        ignore: vec![".git".into(), "node_modules".into()],
        limits: WIDE,
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let report = compare_trees(rules, &params, WIDE).unwrap();
        times.push(start.elapsed());
        last = Some(report);
    }
    times.sort();
    (times[times.len() / 2], last.unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (files, size, runs) =
        (arg(&args, "--files", 20_000), arg(&args, "--size", 4096), arg(&args, "--runs", 5).max(1));
    for (label, bytes) in [("hashed", size), ("tiny", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        lay(&root, files, bytes);
        let policy = FilePolicy { file_roots: vec![format!("{}/**", root.display())], ..FilePolicy::default() };
        let rules = FileRules::new(policy).unwrap();
        let (median, report) = run(&rules, &root, runs);
        assert!(!report.partial && report.counts.identical as usize == files, "{:?}", report.counts);
        let secs = median.as_secs_f64();
        println!(
            "compare ({label}): {files} files of {bytes} B on each side, {} paths, median {median:?} over {runs} runs: \
             {:.0} files/s, {:.1} MB/s hashed ({} bytes)",
            report.examined,
            files as f64 / secs,
            report.bytes_hashed as f64 / secs / 1e6,
            report.bytes_hashed,
        );
    }
}
