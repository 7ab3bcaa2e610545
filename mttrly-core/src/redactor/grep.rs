//! What a search tool prints in front of a matching line. An assistant looking for a credential
//! on a server runs `grep -rn PASSWORD /etc` and reads `/etc/app/app.env:12:DB_PASSWORD=…`: the
//! line's text starts after the prefix, so rules that judge a line by its start (an `.env`
//! assignment, a directive, a `.pgpass` line, a key's body line) judge it from there.
//!
//! The shapes, all without blanks: `path:`, `path:12:`, `path:12:7:` (`grep -Hn`, `git grep
//! -n`, ripgrep's `--vimgrep`), `12:`, `12:7:` (`grep -n` on one file), and the context lines of
//! `grep -C` (`path-12-`, `12-`), which hold the lines around a match: the credential under a
//! `[default]` header of an AWS credentials file is one. A path has a `/` or a `.` (a file name
//! with an extension, `./x`), so `key:value` with a bare word before the colon is not one.

/// The most digits of a line or column number.
const MAX_DIGITS: usize = 9;

/// The byte length of the search tool's prefix at the start of `line`; 0 when it has none. A
/// search over a search's output saved to a file prints two (`notes.txt:3:/etc/app.env:12:`).
pub(super) fn prefix(line: &str) -> usize {
    cuts(line)[1]
}

/// Where the line's text may start: after the first prefix, and after a second one (each 0
/// when absent). A `.pgpass` line itself can read as a prefix (`db.example.com:5432:`), so a
/// caller that recognises a line by its fields tries both.
pub(super) fn cuts(line: &str) -> [usize; 2] {
    let first = one(line);
    if first == 0 { [0, 0] } else { [first, first + one(&line[first..])] }
}

/// One prefix at the start of `line`. One pass over the path's bytes: this runs on every line
/// of every text redacted.
fn one(line: &str) -> usize {
    let b = line.as_bytes();
    if let Some(end) = numbers(b, 0) {
        return end;
    }
    // A path has a `/` or a `.` before its `:` (or before a context line's `-12-`, whichever
    // comes first: a context line's text often has a `:` of its own, `path-12-…T12:00:01Z …`).
    let mut pathy = false;
    for (i, &c) in b.iter().enumerate().take(MAX_PATH) {
        match c {
            b':' if pathy => {
                return match numbers(b, i + 1) {
                    Some(end) if b[end - 1] == b':' => end,
                    _ => i + 1,
                };
            }
            b'-' if pathy => {
                let d = b[i + 1..].iter().take(MAX_DIGITS + 1).take_while(|c| c.is_ascii_digit()).count();
                if (1..=MAX_DIGITS).contains(&d) && b.get(i + 1 + d) == Some(&b'-') {
                    return i + d + 2;
                }
            }
            b'/' | b'.' => pathy = true,
            c if is_path_byte(c) => {}
            _ => return 0,
        }
    }
    0
}

/// The longest path read (Linux's `PATH_MAX`).
pub(super) const MAX_PATH: usize = 4096;

/// `12:`, `12:7:` or `12-` at `from`: the end of the numbers and their separators.
fn numbers(b: &[u8], from: usize) -> Option<usize> {
    let digits = |at: usize| b.get(at..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
    let d = digits(from);
    if !(1..=MAX_DIGITS).contains(&d) {
        return None;
    }
    let sep = *b.get(from + d)?;
    if sep == b'-' {
        // Not a date (`2026-12-06`): a context line's text does not start with a digit here.
        return (!b.get(from + d + 1).is_some_and(u8::is_ascii_digit)).then_some(from + d + 1);
    }
    if sep != b':' {
        return None;
    }
    let end = from + d + 1;
    let c = digits(end);
    if (1..=MAX_DIGITS).contains(&c) && b.get(end + c) == Some(&b':') { Some(end + c + 1) } else { Some(end) }
}

fn is_path_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b'~' | b'+' | b'@')
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn the_shapes_a_search_tool_prints() {
        for (line, want) in [
            ("/etc/app/app.env:DB_PASSWORD=x", "/etc/app/app.env:"),
            ("/etc/app/app.env:12:DB_PASSWORD=x", "/etc/app/app.env:12:"),
            ("src/main.rs:12:7:let token = x", "src/main.rs:12:7:"),
            ("12:DB_PASSWORD=x", "12:"),
            ("12:7:DB_PASSWORD=x", "12:7:"),
            ("/root/.aws/credentials-3-aws_secret_access_key = x", "/root/.aws/credentials-3-"),
            ("my-app.conf-13-token=x", "my-app.conf-13-"),
            ("13-token=x", "13-"),
            ("./x:token=x", "./x:"),
            ("app.log-13-2026-11-21T12:00:01Z x", "app.log-13-"),
            ("notes.txt:3:/etc/app.env:12:token=x", "notes.txt:3:/etc/app.env:12:"),
        ] {
            assert_eq!(&line[..prefix(line)], want, "{line}");
        }
    }

    #[test]
    fn other_lines_have_none() {
        for line in [
            "password=x",
            "db:password=x",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
            "Nov 21 12:00:01 web-1 app[812]: x",
            "  /etc/app.env:x",
            "",
            "1234567890:x",
            "my-app-13",
            "2026-12-06T10:00:00Z token=x",
        ] {
            assert_eq!(prefix(line), 0, "{line}");
        }
    }
}
