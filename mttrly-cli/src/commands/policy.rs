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
    }
}
