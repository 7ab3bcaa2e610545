//! The end-to-end harness: real mttrly binaries as child processes, real servers on loopback,
//! real SQLite files in temp dirs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of a workspace binary.
///
/// `cargo test --workspace` builds every binary before any test runs, so the binary beside this
/// test executable is current. When it is missing (this crate's tests run alone), it is built
/// once with `cargo build --workspace --bins`.
pub fn binary(name: &str) -> PathBuf {
    static BUILD: OnceLock<bool> = OnceLock::new();
    let path = target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let built = BUILD.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            Command::new(cargo)
                .args(["build", "--quiet", "--workspace", "--bins"])
                .status()
                .is_ok_and(|status| status.success())
        });
        assert!(*built, "building the workspace binaries failed");
    }
    assert!(path.exists(), "{} does not exist", path.display());
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
