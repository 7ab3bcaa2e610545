//! Counting a service's error lines since a deploy started, from the tail of its log.
//!
//! A log tail carries no window by itself: only the lines' own timestamps say which came after the
//! deploy. A line starting with an RFC 3339 time (`2026-12-03T00:09:09Z`, `[2026-12-03T00:09:09.5+01:00]`)
//! or `YYYY-MM-DD HH:MM:SS` (read as UTC) is dated; an undated line (a stack trace's continuation)
//! belongs to the dated line above it; lines before the first dated one cannot be placed and are
//! left out. A tail with no dated line at all gives no count (the caller reports the log as
//! unavailable, so the verifier says inconclusive rather than guess).

/// The most example lines kept.
const MAX_EXAMPLES: usize = 5;
/// The most characters of one example line.
const MAX_EXAMPLE_CHARS: usize = 300;

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    /// Error lines dated at or after the window's start.
    pub error_lines: u32,
    /// The first few of them, cut to 300 characters.
    pub examples: Vec<String>,
    /// Whether any line carried a timestamp.
    pub dated: bool,
    /// Whether the first dated line is at or before the window's start (the tail reaches back
    /// far enough; otherwise the count is a lower bound).
    pub covers_window: bool,
}

/// Scans `text` (lines, oldest first) for lines containing one of `patterns` (lower-case,
/// matched case-insensitively) dated at or after `since_ms`.
pub fn scan_log(text: &str, since_ms: i64, patterns: &[String]) -> LogScan {
    let mut scan = LogScan { error_lines: 0, examples: Vec::new(), dated: false, covers_window: false };
    let mut current: Option<i64> = None;
    for line in text.lines() {
        if let Some(at) = line_time(line) {
            if !scan.dated {
                scan.covers_window = at <= since_ms;
            }
            scan.dated = true;
            current = Some(at);
        }
        let Some(at) = current else { continue };
        if at < since_ms {
            continue;
        }
        let lower = line.to_lowercase();
        if patterns.iter().any(|p| lower.contains(p.as_str())) {
            scan.error_lines = scan.error_lines.saturating_add(1);
            if scan.examples.len() < MAX_EXAMPLES {
                scan.examples.push(line.chars().take(MAX_EXAMPLE_CHARS).collect());
            }
        }
    }
    scan
}

/// The time a line starts with, ms since the epoch.
fn line_time(line: &str) -> Option<i64> {
    let mut words = line.split_whitespace();
    let first = words.next()?.trim_start_matches('[').trim_end_matches([']', ',', ':']);
    if !first.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if let Ok(at) = first.parse::<jiff::Timestamp>() {
        return Some(at.as_millisecond());
    }
    let civil = if first.contains('T') {
        first.to_owned()
    } else {
        let second = words.next()?.trim_end_matches([']', ',', ':']);
        let joined = format!("{first}T{}", second.replace(',', "."));
        if let Ok(at) = joined.parse::<jiff::Timestamp>() {
            return Some(at.as_millisecond());
        }
        joined
    };
    let civil = civil.trim_end_matches('Z');
    let dt = civil.parse::<jiff::civil::DateTime>().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn defaults() -> Vec<String> {
        crate::deploys::ServiceDeploys::default().patterns()
    }

    #[test]
    fn only_error_lines_after_the_start_count_and_continuations_follow_their_line() {
        let log = "orphan ERROR before any date\n\
                   2026-12-03T00:00:00Z ERROR old failure\n\
                   2026-12-03T00:10:00Z info started v2\n\
                   [2026-12-03T00:11:00.250+00:00] Error: db refused\n\
                   \tat panic handler line\n\
                   2026-12-03 00:12:00 WARN slow\n\
                   2026-12-03 00:13:00,123 FATAL out of memory\n";
        let scan = scan_log(log, ms("2026-12-03T00:05:00Z"), &defaults());
        assert_eq!(scan.error_lines, 3, "{scan:?}");
        assert!(scan.dated && scan.covers_window);
        assert_eq!(scan.examples[0], "[2026-12-03T00:11:00.250+00:00] Error: db refused");
        assert_eq!(scan.examples[1], "\tat panic handler line");
    }

    #[test]
    fn an_undated_log_is_not_counted_and_a_short_tail_says_so() {
        let undated = scan_log("ERROR a\nERROR b\n", 0, &defaults());
        assert_eq!((undated.dated, undated.error_lines), (false, 0));
        let short = scan_log("2026-12-03T00:10:00Z ERROR x\n", ms("2026-12-03T00:05:00Z"), &defaults());
        assert!(short.dated && !short.covers_window);
        assert_eq!(short.error_lines, 1);
    }

    #[test]
    fn examples_are_few_and_short() {
        let line = format!("2026-12-03T00:10:00Z error {}\n", "x".repeat(1000));
        let scan = scan_log(&line.repeat(50), 0, &defaults());
        assert_eq!(scan.error_lines, 50);
        assert_eq!(scan.examples.len(), MAX_EXAMPLES);
        assert!(scan.examples.iter().all(|e| e.chars().count() == MAX_EXAMPLE_CHARS));
    }

    proptest! {
        /// Any text scans without panicking, and never counts more lines than it has.
        #[test]
        fn any_text_scans(text in "\\PC{0,400}", since in any::<i64>()) {
            let scan = scan_log(&text, since, &defaults());
            prop_assert!(scan.error_lines as usize <= text.lines().count());
            prop_assert!(scan.examples.len() <= MAX_EXAMPLES);
        }
    }
}
