//! Printing results and errors in the chosen format.

use std::io::Write as _;

use mttrly_core::{MttrlyError, display};
use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints results to stdout and errors to stderr in one format.
pub(crate) struct Printer {
    format: OutputFormat,
}

impl Printer {
    pub(crate) fn new(format: OutputFormat) -> Self {
        Self { format }
    }

    pub(crate) fn format(&self) -> OutputFormat {
        self.format
    }

    /// Prints `value` as JSON (pretty in table mode, compact in JSON mode).
    pub(crate) fn json<T: Serialize>(&self, value: &T) -> Result<(), MttrlyError> {
        let text = match self.format {
            OutputFormat::Json => serde_json::to_string(value),
            OutputFormat::Table => serde_json::to_string_pretty(value),
        }
        .map_err(|e| MttrlyError::new(mttrly_core::ErrorCode::InternalError, format!("cannot encode output: {e}")))?;
        print_line(&text);
        Ok(())
    }

    /// Prints a table: a header row and aligned columns. A method, like the others, so every
    /// command prints through the one printer.
    #[allow(clippy::unused_self)]
    pub(crate) fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        if rows.is_empty() {
            print_line("(none)");
            return;
        }
        print_line(render_table(header, rows).trim_end());
    }

    /// Prints free text (table mode only).
    #[allow(clippy::unused_self)]
    pub(crate) fn text(&self, text: &str) {
        print_line(text);
    }

    /// Reports an error on stderr.
    pub(crate) fn error(&self, err: &MttrlyError) {
        let mut stderr = std::io::stderr().lock();
        let _ = match self.format {
            OutputFormat::Json => writeln!(stderr, "{}", serde_json::to_string(&err.body()).unwrap_or_default()),
            OutputFormat::Table => {
                let hint = err.details().get("hint").and_then(|h| h.as_str()).unwrap_or(err.code().suggested_action());
                // Messages quote what central or a server sent (names, commands): escaped, one line each.
                writeln!(
                    stderr,
                    "error[{}]: {}\n  hint: {}",
                    err.code(),
                    display::text(err.message()),
                    display::text(hint)
                )
            }
        };
    }
}

fn print_line(text: &str) {
    // A closed pipe (`| head`) is not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Renders rows under a header, columns padded to their widest cell. Every cell is escaped for a
/// terminal here, once for every command: cells hold names, commands and text that central or a
/// server sent, and a control or bidi character in one must neither move the cursor nor reorder
/// the row.
pub(crate) fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| display::text(c).into_owned()).collect()).collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let text =
            render_table(&["ID", "KIND"], &[vec!["a".into(), "read".into()], vec!["long-id".into(), "x".into()]]);
        assert_eq!(text, "ID       KIND\na        read\nlong-id  x\n");
    }

    #[test]
    fn cells_cannot_move_the_cursor_or_reorder_the_row() {
        let text = render_table(&["WHAT"], &[vec!["Run `touch x #\x1b[2K\x1b[1GRun `uptime`\r\u{202e}`".into()]]);
        assert_eq!(text, "WHAT\nRun `touch x #\\x1b[2K\\x1b[1GRun `uptime`\\r\\u{202e}`\n");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    }
}
