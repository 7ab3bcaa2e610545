//! `mttrly-cli policy classify | redact | check-path | approvals`: the safety rules, tried locally,
//! with nothing executed; `approvals` also asks the running central for its effective rules.

use std::path::Path;

use mttrly_core::classifier::{Classification, CommandClass, RulesChecker, classify_with};
use mttrly_core::files::{Allowed, FileAccess};
use mttrly_core::policy::PolicyFile;
use mttrly_core::{MttrlyError, display};

use crate::cli::{OutputFormat, PolicyCommand};
use crate::client::Authed;
use crate::output::Printer;

mod approvals;

/// Runs a policy command; `Ok(false)` means "denied" (exit status 1, verdict already printed).
pub(crate) fn run(cmd: &PolicyCommand, printer: &Printer) -> Result<bool, MttrlyError> {
    match cmd {
        PolicyCommand::CheckPath { path, policy, privileged, write } => {
            check_path(path, policy.as_deref(), *privileged, *write, printer)
        }
        PolicyCommand::Approvals { config: Some(file) } => approvals::offline(file, printer).map(|()| true),
        _ => run_text_tools(cmd, printer).map(|()| true),
    }
}

/// Runs a policy command that asks central (`policy approvals` without `--config`).
pub(crate) async fn run_remote(cmd: &PolicyCommand, channel: Authed, printer: &Printer) -> Result<bool, MttrlyError> {
    match cmd {
        PolicyCommand::Approvals { config: None } => approvals::remote(channel, printer).await.map(|()| true),
        // Every other policy command runs offline (`PolicyCommand::is_offline`).
        _ => run(cmd, printer),
    }
}

fn check_path(
    path: &str,
    policy: Option<&Path>,
    privileged: bool,
    write: bool,
    printer: &Printer,
) -> Result<bool, MttrlyError> {
    let doc = match policy {
        Some(file) => PolicyFile::load(file)?,
        None => PolicyFile::default(),
    };
    let rules = doc.file_rules()?;
    rules.check_compiles()?;
    let access = match (privileged, write) {
        (true, _) => FileAccess::Privileged,
        (_, true) => FileAccess::Write,
        _ => FileAccess::Read,
    };
    // The very checks the agent runs before reading a byte (string, resolution, allowlist, the
    // file's kind and links, the opened descriptor), on this host: not a lexical guess.
    let verdict = rules.verify(path, access);
    match printer.format() {
        OutputFormat::Json => {
            let body = match &verdict {
                Ok(a) => serde_json::json!({
                    "allowed": true,
                    "path": path,
                    "access": access,
                    "resolved": a.path,
                    "rule": a.rule,
                    "exists": a.exists,
                    "hard_links_allowed": a.hard_links_allowed,
                }),
                Err(e) => serde_json::json!({
                    "allowed": false,
                    "path": path,
                    "access": access,
                    "code": e.code(),
                    "reason": e.message(),
                }),
            };
            printer.json(&body)?;
        }
        OutputFormat::Table => printer.text(&check_path_table(&verdict)),
    }
    Ok(verdict.is_ok())
}

/// `policy check-path` for a human. The path, the rule and the reason come from the command line
/// and the policy file (a hostile path can hold ESC, CR or bidi overrides), so each is shown
/// through [`display::exact`]: one line, nothing a terminal would obey. JSON stays exact.
fn check_path_table(verdict: &Result<Allowed, MttrlyError>) -> String {
    match verdict {
        Ok(a) => format!(
            "allowed\nresolved: {}\nrule:     {}{}",
            display::exact(&a.path.to_string_lossy()),
            display::exact(&a.rule),
            if a.exists { "" } else { "\n(the file does not exist yet; a write creates it)" }
        ),
        Err(e) => format!("denied ({})\nreason:   {}", e.code(), display::exact(e.message())),
    }
}

/// `policy classify` for a human: the reason, argv and files quote the command, so each is shown
/// through [`display::exact`] (the argv and files as JSON first, so word boundaries stay visible).
fn classification_table(c: &Classification) -> String {
    let class = match c.class {
        CommandClass::ReadOnly => "read_only",
        CommandClass::NeedsApproval => "needs_approval",
    };
    let mut text = format!("class:  {class}\nreason: {}", display::exact(&c.reason));
    if let Some(argv) = &c.argv {
        text.push_str("\nargv:   ");
        text.push_str(&display::exact(&serde_json::to_string(argv).unwrap_or_default()));
    }
    if !c.files.is_empty() {
        text.push_str("\nfiles:  ");
        text.push_str(&display::exact(&serde_json::to_string(&c.files).unwrap_or_default()));
    }
    text
}

/// The verdict the agent would reach on this host: the classifier's, with each file the command
/// reads checked and opened (then closed) by the same checks as `mttrly_read_file`, under `policy`
/// (the default policy when absent, as on an agent without a policy file).
fn classify_here(command: &str, policy: Option<&Path>) -> Result<Classification, MttrlyError> {
    let doc = match policy {
        Some(file) => PolicyFile::load(file)?,
        None => PolicyFile::default(),
    };
    let rules = doc.file_rules()?;
    Ok(classify_with(command, &mut RulesChecker::new(&rules)))
}

fn run_text_tools(cmd: &PolicyCommand, printer: &Printer) -> Result<(), MttrlyError> {
    match cmd {
        PolicyCommand::CheckPath { .. } | PolicyCommand::Approvals { .. } => Ok(()),
        PolicyCommand::Classify { command, policy } => {
            let c = classify_here(command, policy.as_deref())?;
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "class": c.class,
                    "reason": c.reason,
                    "argv": c.argv,
                    "files": c.files,
                })),
                OutputFormat::Table => {
                    printer.text(&classification_table(&c));
                    Ok(())
                }
            }
        }
        PolicyCommand::Redact { file, explain } => {
            use std::io::{Read as _, Write as _};
            let mut input = Vec::new();
            let read = match file {
                Some(path) => std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut input)),
                None => std::io::stdin().read_to_end(&mut input),
            };
            read.map_err(|e| {
                MttrlyError::new(mttrly_core::ErrorCode::ValidationError, format!("cannot read the input: {e}"))
            })?;
            let text = String::from_utf8_lossy(&input);
            let redacted = mttrly_core::redactor::redact(&text);
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(redacted.text.as_bytes());
            if *explain {
                // Where each secret was and which rule named it, then the totals per rule (on
                // standard error, so standard output stays the redacted text).
                let found = mttrly_core::redactor::locate(&text);
                match printer.format() {
                    OutputFormat::Json => eprintln!(
                        "{}",
                        serde_json::json!({
                            "redactions": redacted.hits,
                            "findings": found.iter().map(|f| serde_json::json!({ "rule": f.rule, "line": f.line })).collect::<Vec<_>>(),
                        })
                    ),
                    OutputFormat::Table => {
                        if redacted.hits.is_empty() {
                            eprintln!("no secrets found");
                        }
                        for f in &found {
                            eprintln!("line {:<6} {}", f.line, f.rule);
                        }
                        for hit in &redacted.hits {
                            eprintln!("{:<24} {}", hit.rule, hit.count);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use mttrly_core::classifier::classify;
    use mttrly_core::files::{FilePolicy, FileRules};

    use super::*;

    /// Characters a terminal obeys or reorders, and look-alikes: none may reach the screen raw.
    const HOSTILE: &[char] = &['\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}', 'е'];

    fn assert_escaped(shown: &str) {
        for c in HOSTILE {
            assert!(!shown.contains(*c), "{c:?} printed raw in {shown:?}");
        }
    }

    #[test]
    fn classify_table_escapes_the_command_in_reason_argv_and_files() {
        // Read-only (argv and files shown) and refused (the reason quotes the words), with every
        // hostile character the lexer lets through inside quotes.
        for command in [
            "grep -e 'x\u{202e}\u{200b}y\u{feff}е' /var/log/\u{2066}a.log",
            "ls '/var/log/\u{202e}gol.txt'",
            "systemctl stаtus '\u{202e}x'",
            "uptime \u{9b}31m",
        ] {
            let c = classify(command);
            let shown = classification_table(&c);
            assert_escaped(&shown);
            assert!(shown.lines().count() <= 4, "{shown}");
        }
        let c = classify("grep -e 'a\u{202e}b' /var/log/x.log");
        assert_eq!(c.class, CommandClass::ReadOnly, "{}", c.reason);
        let shown = classification_table(&c);
        assert!(shown.contains("a\\u{202e}b"), "{shown}");
        assert!(shown.contains("files:  [\"/var/log/x.log\"]"), "{shown}");
        // What is plain stays byte-identical.
        let plain = classification_table(&classify("df -h"));
        assert_eq!(plain, "class:  read_only\nreason: `df` with these arguments only reads\nargv:   [\"df\",\"-h\"]");
    }

    #[test]
    fn check_path_table_escapes_the_path_and_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let name = "a\u{202e}gol.txt";
        std::fs::write(root.join(name), "x").expect("file");
        let rules =
            FileRules::new(FilePolicy { file_roots: vec![format!("{}/**", root.display())], ..FilePolicy::default() })
                .expect("rules");
        let path = root.join(name).to_string_lossy().into_owned();
        for verdict in [
            rules.verify(&path, FileAccess::Read),
            rules.verify(&format!("{path}\u{1b}[2K"), FileAccess::Read),
            rules.verify("/etc/\u{202e}x\r", FileAccess::Read),
        ] {
            let shown = check_path_table(&verdict);
            assert_escaped(&shown);
            assert!(shown.lines().count() <= 3, "{shown}");
        }
    }
}
