//! A conservative shell lexer: it turns a command line into words, or says which shell feature it
//! refuses to reason about.
//!
//! It understands exactly what a read-only command needs (words, single and double quotes,
//! backslash escapes) and treats every other shell feature as a reason for approval: command
//! chaining and pipes, redirections, subshells, every `$` expansion, backticks, globs, tildes,
//! brace expansion, comments, here-documents, assignments. It never executes or expands anything.

/// Why a command line is outside what the lexer will vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// Splits `line` into words as `sh` would for a single simple command without expansions.
pub(crate) fn words(line: &str) -> Result<Vec<String>, Refusal> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\n' | '\r' => return refuse("a newline separates commands"),
            ';' => return refuse("`;` chains commands"),
            '&' => return refuse("`&` chains or backgrounds commands"),
            '|' => return refuse("`|` pipes into another command"),
            '<' => return refuse("`<` redirects input (or starts a here-document)"),
            '>' => return refuse("`>` redirects output to a file"),
            '(' | ')' => return refuse("parentheses start a subshell or process substitution"),
            '$' => return refuse("`$` expands variables or substitutes commands"),
            '`' => return refuse("backticks substitute commands"),
            '*' | '?' | '[' => return refuse("unquoted glob characters expand to file names"),
            '{' | '}' => return refuse("braces expand or group commands"),
            '!' => return refuse("`!` negates or expands history"),
            '#' if !in_word => return refuse("`#` starts a comment"),
            '~' if !in_word => return refuse("`~` expands to a home directory"),
            '\\' => match chars.next() {
                None => return refuse("a trailing backslash continues the line"),
                Some('\n') => return refuse("a backslash-newline continues the line"),
                Some(escaped) => {
                    reject_control(escaped)?;
                    word.push(escaped);
                    in_word = true;
                }
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return refuse("unterminated single quote"),
                        Some('\'') => break,
                        Some(q) => {
                            reject_control(q)?;
                            word.push(q);
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return refuse("unterminated double quote"),
                        Some('"') => break,
                        Some('$') => return refuse("`$` inside double quotes still expands"),
                        Some('`') => return refuse("backticks inside double quotes still substitute"),
                        Some('\\') => match chars.next() {
                            None => return refuse("unterminated double quote"),
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some('$' | '`') => return refuse("escaped expansions inside double quotes"),
                            Some('\n') => return refuse("a backslash-newline continues the line"),
                            Some(other) => {
                                reject_control(other)?;
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        Some(q) => {
                            reject_control(q)?;
                            word.push(q);
                        }
                    }
                }
            }
            other => {
                reject_control(other)?;
                word.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

fn reject_control(c: char) -> Result<(), Refusal> {
    if c.is_control() {
        return refuse("control characters in the command line");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Vec<String> {
        words(line).unwrap_or_else(|r| panic!("{line:?}: {}", r.0))
    }

    #[test]
    fn quoting_joins_words_like_the_shell() {
        assert_eq!(ok("df -h"), ["df", "-h"]);
        assert_eq!(ok("  ls   -la  /var/log "), ["ls", "-la", "/var/log"]);
        assert_eq!(ok("'r'm -rf"), ["rm", "-rf"]);
        assert_eq!(ok("\\rm x"), ["rm", "x"]);
        assert_eq!(ok("echo \"a b\" 'c d'"), ["echo", "a b", "c d"]);
        assert_eq!(ok("find / -name '*.log'"), ["find", "/", "-name", "*.log"]);
        assert_eq!(ok("a\"\\\"\"b"), ["a\"b"]);
        assert_eq!(ok(""), Vec::<String>::new());
    }

    #[test]
    fn every_shell_feature_is_refused() {
        for line in [
            "ls; rm -rf /",
            "ls && rm x",
            "ls || rm x",
            "ls | sh",
            "ls\nrm x",
            "cat < /etc/shadow",
            "echo x > /etc/passwd",
            "echo x >> f",
            "(rm x)",
            "ls $(rm x)",
            "ls `rm x`",
            "ls \"$(rm x)\"",
            "ls \"`rm x`\"",
            "ls ${IFS}",
            "rm${IFS}-rf${IFS}/",
            "ls $HOME",
            "ls *",
            "ls /etc/?asswd",
            "ls [a]",
            "ls ~",
            "ls {a,b}",
            "ls # comment",
            "cat <<EOF",
            "ls &",
            "ls 'unterminated",
            "ls \"unterminated",
            "ls \\",
            "ls\u{0}x",
            "!ls",
        ] {
            assert!(words(line).is_err(), "{line:?} must be refused");
        }
    }
}
