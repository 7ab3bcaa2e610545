//! Parsing argv the way the program itself will, against the program's allowlist.
//!
//! The parser models each program's real option parser ([`Style`]) so that what it checks is what
//! the program will see: a value swallowed by a short option (`-D/tmp/x`), a verb after an allowed
//! flag (`systemctl --failed enable X`), options after positionals (argv permutation), `--`. Long
//! options are accepted only spelled exactly as in the table, so a prefix the program would expand
//! (`--rot` → `--rotate`) is never read-only.

use super::kinds;
use super::spec::{Arg, Kind, Node, Opt, Program, Style};
use super::table;

/// A file the command would read: its path and the index (in `args`) of the word ending with it.
pub(crate) type FileArg = (String, usize);

/// Checks `args` against `program`; on success returns the files the command would read.
pub(crate) fn check(program: &'static Program, name: &str, args: &[String]) -> Result<Vec<FileArg>, String> {
    if program.style == Style::Ip {
        return ip(args);
    }
    let mut parser = Parser {
        program,
        name,
        chain: Vec::with_capacity(3),
        positionals: Vec::new(),
        seen: Vec::new(),
        files: Vec::new(),
        at: 0,
    };
    parser.chain.push(&program.root);
    parser.run(args)?;
    Ok(parser.files)
}

struct Parser<'a> {
    program: &'static Program,
    name: &'a str,
    /// The program's root node, then each subcommand chosen.
    chain: Vec<&'static Node>,
    /// Positionals of the last node, with their index in argv.
    positionals: Vec<(usize, &'a str)>,
    seen: Vec<&'static Opt>,
    files: Vec<FileArg>,
    /// The index of the word being parsed (for files).
    at: usize,
}

const NOT_KNOWN: &str = "is not an option mttrly knows to be read-only";

impl<'a> Parser<'a> {
    fn current(&self) -> &'static Node {
        self.chain[self.chain.len() - 1]
    }

    /// `program sub sub`, for reasons.
    fn path(&self) -> String {
        let mut out = self.name.to_owned();
        for node in &self.chain[1..] {
            out.push(' ');
            out.push_str(node.name);
        }
        out
    }

    fn find(&self, matches: impl Fn(&Opt) -> bool) -> Option<&'static Opt> {
        self.chain.iter().rev().find_map(|node| node.opts.iter().find(|o| matches(o)))
    }

    fn run(&mut self, args: &'a [String]) -> Result<(), String> {
        let mut i = 0;
        let mut options_ended = false;
        while i < args.len() {
            let word = args[i].as_str();
            self.at = i;
            i += 1;
            if options_ended {
                self.positional(word)?;
            } else if word == "--" {
                if self.program.style == Style::Ps {
                    return Err(format!("`{} --` is not read-only syntax for ps", self.name));
                }
                options_ended = true;
            } else if let Some(long) = word.strip_prefix("--") {
                i += self.long(long, args.get(i).map(String::as_str))?;
            } else if word.len() > 1 && word.starts_with('-') {
                i += self.short(word, args.get(i).map(String::as_str))?;
            } else if self.program.style == Style::Ps {
                self.bsd(word)?;
            } else {
                self.positional(word)?;
            }
        }
        self.finish()
    }

    /// `--name`, `--name=value` or `--name value`. Returns how many following words it used.
    fn long(&mut self, long: &str, next: Option<&str>) -> Result<usize, String> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let Some(opt) = self.find(|o| !o.long.is_empty() && o.long == name) else {
            return Err(format!(
                "`{} --{name}` {NOT_KNOWN} (options count only spelled in full: an abbreviation needs approval)",
                self.name
            ));
        };
        // `--no-stream=false` is the flag turned off: it does not count as given, and it undoes
        // an earlier `--no-stream` (the last one wins).
        self.note(opt, opt.arg == Arg::None && inline == Some("false"));
        match (opt.arg, inline) {
            (Arg::None | Arg::Optional(_), None) => Ok(0),
            (Arg::None, Some(v)) if self.program.style == Style::Pflag && matches!(v, "true" | "false") => Ok(0),
            (Arg::None, Some(_)) => Err(format!("`{} --{name}` takes no value", self.name)),
            (Arg::Required(kind), None) => match next {
                Some(v) => self.next_value(opt, kind, v).map(|()| 1),
                None => Err(format!("`{} --{name}` needs a value", self.name)),
            },
            (Arg::Required(kind) | Arg::Optional(kind) | Arg::Greedy(kind), Some(v)) => {
                self.value(opt, kind, v).map(|()| 0)
            }
            (Arg::Greedy(kind), None) => Ok(greedy(kind, next)),
        }
    }

    /// A cluster of short options (`-tlnp`, `-n50`, `-D/x`). Returns how many following words it used.
    fn short(&mut self, word: &str, next: Option<&str>) -> Result<usize, String> {
        let body = &word[1..];
        for (at, c) in body.char_indices() {
            let Some(opt) = self.find(|o| o.short == c && c != '\0') else {
                let within = if body.chars().count() > 1 { format!(" (in `{word}`)") } else { String::new() };
                return Err(format!("`{} -{c}`{within} {NOT_KNOWN}", self.name));
            };
            let rest = &body[at + c.len_utf8()..];
            self.note(opt, opt.arg == Arg::None && rest == "=false");
            // pflag accepts `-n=value`; getopt would take the `=` as part of the value.
            let attached = match rest.strip_prefix('=') {
                Some(v) if self.program.style == Style::Pflag => v,
                _ => rest,
            };
            match opt.arg {
                Arg::None if self.program.style == Style::Pflag && rest.starts_with('=') => {
                    return if matches!(attached, "true" | "false") {
                        Ok(0)
                    } else {
                        Err(format!("`{} -{c}` takes no value", self.name))
                    };
                }
                Arg::None => {}
                Arg::Required(kind) => {
                    if !rest.is_empty() {
                        self.value(opt, kind, attached)?;
                        return Ok(0);
                    }
                    return match next {
                        Some(v) => self.next_value(opt, kind, v).map(|()| 1),
                        None => Err(format!("`{} -{c}` needs a value", self.name)),
                    };
                }
                Arg::Optional(kind) => {
                    if !rest.is_empty() {
                        self.value(opt, kind, attached)?;
                    }
                    return Ok(0);
                }
                Arg::Greedy(kind) => {
                    if !rest.is_empty() {
                        self.value(opt, kind, attached)?;
                        return Ok(0);
                    }
                    return Ok(greedy(kind, next));
                }
            }
        }
        Ok(0)
    }

    /// Records `opt` as given, or (`off`: a flag set to `false`) as no longer given.
    fn note(&mut self, opt: &'static Opt, off: bool) {
        if off {
            self.seen.retain(|o| !std::ptr::eq(*o, opt));
        } else {
            self.seen.push(opt);
        }
    }

    /// An option's value; `word` is the index of the argv word it ends.
    fn value_in(&mut self, opt: &Opt, kind: Kind, value: &str, word: usize) -> Result<(), String> {
        kinds::check(kind, value)
            .map_err(|what| format!("`{} {}` value `{value}`: expected {what}", self.name, opt.shown()))?;
        if kind == Kind::File {
            self.files.push((value.to_owned(), word));
        }
        Ok(())
    }

    /// A value attached to the current word.
    fn value(&mut self, opt: &Opt, kind: Kind, value: &str) -> Result<(), String> {
        self.value_in(opt, kind, value, self.at)
    }

    /// A value in the word after the current one.
    fn next_value(&mut self, opt: &Opt, kind: Kind, value: &str) -> Result<(), String> {
        self.value_in(opt, kind, value, self.at + 1)
    }

    /// BSD-style `ps` options: letters without a dash, each from the allowlist.
    fn bsd(&mut self, word: &str) -> Result<(), String> {
        match word.chars().find(|c| !self.program.bsd_letters.contains(*c)) {
            None => Ok(()),
            Some('e') => Err(format!("`{} {word}`: the BSD option `e` prints every process's environment", self.name)),
            Some(c) => Err(format!("`{} {word}`: the BSD option `{c}` {NOT_KNOWN}", self.name)),
        }
    }

    fn positional(&mut self, word: &'a str) -> Result<(), String> {
        let node = self.current();
        if !node.subs.is_empty() && self.positionals.is_empty() {
            return match node.subs.iter().find(|s| s.name == word) {
                Some(sub) => {
                    self.chain.push(sub);
                    Ok(())
                }
                None => Err(format!("`{} {word}` is not a read-only subcommand", self.path())),
            };
        }
        self.positionals.push((self.at, word));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        let node = self.current();
        if !node.subs.is_empty() && node.sub_required {
            let names: Vec<&str> = node.subs.iter().map(|s| s.name).collect();
            return Err(format!("`{}` needs one of the read-only subcommands: {}", self.path(), names.join(", ")));
        }
        for n in &self.chain {
            if let Some(missing) = n.requires.iter().find(|r| !self.seen.iter().any(|o| o.is(r))) {
                return Err(format!("`{}` is read-only only with `{}`", self.path(), shown_name(missing)));
            }
            if !n.require_one.is_empty() && !n.require_one.iter().any(|r| self.seen.iter().any(|o| o.is(r))) {
                let names: Vec<String> = n.require_one.iter().map(|r| format!("`{}`", shown_name(r))).collect();
                return Err(format!("`{}` is read-only only with one of {}", self.path(), names.join(", ")));
            }
        }
        let mut pos = node.pos;
        if node.pattern_opts.iter().any(|p| self.seen.iter().any(|o| o.is(p))) && !pos.kinds.is_empty() {
            pos.kinds = &pos.kinds[1..];
            pos.min = pos.min.saturating_sub(1);
            pos.max = pos.max.saturating_sub(1);
            pos.min_if_any = pos.min_if_any.saturating_sub(1);
        }
        if self.positionals.len() > pos.max {
            let extra = self.positionals[pos.max].1;
            return Err(if pos.max == 0 {
                format!("`{} {extra}`: `{}` takes no operands here", self.path(), self.path())
            } else {
                format!("`{} {extra}`: `{}` takes at most {} operand(s)", self.path(), self.path(), pos.max)
            });
        }
        if self.positionals.len() < pos.min {
            return Err(format!("`{}` needs at least {} operand(s) to be read-only here", self.path(), pos.min));
        }
        if !self.positionals.is_empty() && self.positionals.len() < pos.min_if_any {
            return Err(format!(
                "`{}` with {} operand(s) never ends: it is read-only with none or {} (an interval needs its count)",
                self.path(),
                self.positionals.len(),
                pos.min_if_any
            ));
        }
        let positionals = std::mem::take(&mut self.positionals);
        for (i, (at, word)) in positionals.iter().enumerate() {
            let kind = pos.kinds[i.min(pos.kinds.len() - 1)];
            kinds::check(kind, word).map_err(|what| format!("`{} {word}`: expected {what}", self.path()))?;
            if kind == Kind::File {
                self.files.push(((*word).to_owned(), *at));
            }
        }
        Ok(())
    }
}

/// The program takes the next word as this option's value only when it parses as one.
fn greedy(kind: Kind, next: Option<&str>) -> usize {
    match next {
        Some(v) if kind != Kind::File && kinds::check(kind, v).is_ok() => 1,
        _ => 0,
    }
}

fn shown_name(name: &str) -> String {
    if name.chars().count() == 1 { format!("-{name}") } else { format!("--{name}") }
}

/// `ip [OPTIONS] OBJECT [VERB [ARGS...]]` with exact spellings from `table::IP_*`.
fn ip(args: &[String]) -> Result<Vec<FileArg>, String> {
    let mut words = args.iter().map(String::as_str).peekable();
    while let Some(opt) = words.next_if(|w| w.starts_with('-')) {
        if !table::IP_OPTIONS.contains(&opt) {
            return Err(format!(
                "`ip {opt}` {NOT_KNOWN} (ip expands any prefix, `-b` is `-batch`: only exact read-only spellings count)"
            ));
        }
    }
    let Some(object) = words.next() else {
        return Err("`ip` needs an object (address, link, route, neighbour, rule)".to_owned());
    };
    let Some((_, verbs)) = table::IP_OBJECTS.iter().find(|(names, _)| names.contains(&object)) else {
        return Err(format!("`ip {object}` is not an object mttrly knows to be read-only"));
    };
    let Some(verb) = words.next() else { return Ok(Vec::new()) };
    if !verbs.contains(&verb) {
        return Err(format!("`ip {object} {verb}` is not read-only (only {})", verbs.join(", ")));
    }
    for (n, word) in words.enumerate() {
        let selector = !word.is_empty()
            && !word.starts_with('-')
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '%' | '+' | '-'));
        if !selector || n >= 16 {
            return Err(format!("`ip {object} {verb} … {word}` is not a selector mttrly knows to be read-only"));
        }
    }
    Ok(Vec::new())
}
