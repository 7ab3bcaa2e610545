//! ARCHITECTURE.md's claims about the agent, checked on its source: the capability families take
//! the policy and never the dispatch context (only the session reaches `capabilities`, so there
//! is no cycle between the table and the families), and the agent never listens on a port.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            out.push((path, text));
        }
    }
    out
}

fn agent_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<(String, String)> = sources(&src)
        .into_iter()
        .map(|(path, text)| (path.strip_prefix(&src).expect("under src").display().to_string(), text))
        .filter(|(name, _)| name != "layers.rs")
        .collect();
    // Not vacuous: the table and a family are among them.
    assert!(files.iter().any(|(n, _)| n == "capabilities.rs") && files.iter().any(|(n, _)| n == "files/read.rs"));
    files
}

#[test]
fn only_the_session_reaches_the_dispatch_table() {
    let reaching: Vec<String> = agent_sources()
        .into_iter()
        .filter(|(name, text)| name != "capabilities.rs" && name != "lib.rs" && text.contains("capabilities::"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(reaching, ["session.rs"], "modules reaching `capabilities`");
}

#[test]
fn the_agent_never_listens() {
    let sources = agent_sources();
    for (name, text) in &sources {
        // A test module in its own file (`…/tests.rs`) may serve a fake central; it is compiled
        // only for tests, which the next check holds every such module to.
        if name.ends_with("tests.rs") {
            continue;
        }
        for listener in ["TcpListener", "UnixListener", "UdpSocket", ".bind("] {
            assert!(!text.contains(listener), "{name} uses {listener}: the agent only dials out");
        }
    }
    for (name, text) in &sources {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim() == "mod tests;" {
                assert!(
                    n > 0 && lines[n - 1].trim() == "#[cfg(test)]",
                    "{name}: `mod tests;` must be declared under #[cfg(test)]"
                );
            }
        }
    }
}
