//! `mttrly-cli policy classify | redact | check-path`: the safety rules, tried locally, with
//! nothing executed.

use std::path::Path;

use mttrly_core::MttrlyError;
use mttrly_core::classifier::{CommandClass, classify};
use mttrly_core::files::FileAccess;
use mttrly_core::policy::PolicyFile;

use crate::cli::{OutputFormat, PolicyCommand};
use crate::output::Printer;

/// Runs a policy command; `Ok(false)` means "denied" (exit status 1, verdict already printed).
pub(crate) fn run(cmd: &PolicyCommand, printer: &Printer) -> Result<bool, MttrlyError> {
    if let PolicyCommand::CheckPath { path, policy, privileged, write } = cmd {
        return check_path(path, policy.as_deref(), *privileged, *write, printer);
    }
    run_text_tools(cmd, printer).map(|()| true)
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
    let access = match (privileged, write) {
        (true, _) => FileAccess::Privileged,
        (_, true) => FileAccess::Write,
        _ => FileAccess::Read,
    };
    let verdict = rules.check(path, access);
    // An allowed path that does not exist (yet) is still allowed: the rules are what is checked.
    let missing_but_allowed = matches!(&verdict, Err(e) if e.code() == mttrly_core::ErrorCode::NotFound);
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
                }),
                Err(e) if missing_but_allowed => serde_json::json!({
                    "allowed": true,
                    "path": path,
                    "access": access,
                    "exists": false,
                    "reason": e.message(),
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
        OutputFormat::Table => {
            let text = match &verdict {
                Ok(a) => format!(
                    "allowed\nresolved: {}\nrule:     {}{}",
                    a.path.display(),
                    a.rule,
                    if a.exists { "" } else { "\n(the file does not exist yet)" }
                ),
                Err(e) if missing_but_allowed => format!("allowed, but {}", e.message()),
                Err(e) => format!("denied ({})\nreason:   {}", e.code(), e.message()),
            };
            printer.text(&text);
        }
    }
    Ok(verdict.is_ok() || missing_but_allowed)
}

fn run_text_tools(cmd: &PolicyCommand, printer: &Printer) -> Result<(), MttrlyError> {
    match cmd {
        PolicyCommand::CheckPath { .. } => Ok(()),
        PolicyCommand::Classify { command } => {
            let c = classify(command);
            match printer.format() {
                OutputFormat::Json => printer.json(&serde_json::json!({
                    "class": c.class,
                    "reason": c.reason,
                    "argv": c.argv,
                })),
                OutputFormat::Table => {
                    let class = match c.class {
                        CommandClass::ReadOnly => "read_only",
                        CommandClass::NeedsApproval => "needs_approval",
                    };
                    let mut text = format!("class:  {class}\nreason: {}", c.reason);
                    if let Some(argv) = &c.argv {
                        text.push_str(&format!("\nargv:   {}", serde_json::to_string(argv).unwrap_or_default()));
                    }
                    printer.text(&text);
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
                match printer.format() {
                    OutputFormat::Json => eprintln!("{}", serde_json::json!({ "redactions": redacted.hits })),
                    OutputFormat::Table => {
                        if redacted.hits.is_empty() {
                            eprintln!("no secrets found");
                        }
                        for hit in &redacted.hits {
                            eprintln!("{:<20} {}", hit.rule, hit.count);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
