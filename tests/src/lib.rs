//! The end-to-end harness: real mttrly binaries as child processes, real servers on loopback,
//! real SQLite files in temp dirs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of a workspace binary, built (incrementally) on first use so that running this crate's
/// tests alone never exercises a stale binary.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if built.insert(name.to_owned()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", name])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
        assert!(status.success(), "building {name} failed");
    }
    assert!(path.exists(), "{} does not exist after building", path.display());
    path
}

/// `target/<profile>`, derived from this test executable's location (`target/<profile>/deps/…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current exe: {e}"));
    match exe.parent().and_then(|deps| deps.parent()) {
        Some(dir) => dir.to_path_buf(),
        None => panic!("unexpected test binary location {}", exe.display()),
    }
}
