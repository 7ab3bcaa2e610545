//! `mttrly-cli policy classify`: the safety rules, tried locally.

use mttrly_core::MttrlyError;
use mttrly_core::classifier::{CommandClass, classify};

use crate::cli::{OutputFormat, PolicyCommand};
use crate::output::Printer;

pub(crate) fn run(cmd: &PolicyCommand, printer: &Printer) -> Result<(), MttrlyError> {
    match cmd {
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
