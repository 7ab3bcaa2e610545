//! The vocabulary of the read-only table: what a program may be given, as data.
//!
//! A [`Program`] names its option parser ([`Style`]) and a tree of [`Node`]s: the program itself,
//! then its subcommands. Each node lists every option it accepts ([`Opt`]: short letter, long name
//! spelled in full, whether it takes a value and of which [`Kind`]) and the positionals it accepts.
//! Anything not listed is not read-only. The table is an allowlist: adding nothing is always safe.

/// How the program parses its command line (they differ in ways an attacker uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// glibc `getopt_long`: short options bundle (`-tlnp`), a short option taking a value
    /// swallows the rest of its word (`-D/tmp/x`), `--long=value` or `--long value`, options
    /// anywhere before `--` (argv is permuted), and long options may be abbreviated by the program
    /// (so only exact spellings are accepted here).
    Gnu,
    /// Go's pflag (cobra: docker, kubectl): like [`Style::Gnu`] plus `-n=value`, booleans as
    /// `--flag=true|false`, and no abbreviations.
    Pflag,
    /// procps `ps`: UNIX options with a dash (getopt-like) plus BSD option letters without one.
    Ps,
    /// iproute2 `ip`: single-dash words matched by *any prefix* in a fixed order; only exact,
    /// checked spellings are accepted (see `table::IP`).
    Ip,
}

/// What a value (of an option or a positional) may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Digits only.
    Int,
    /// Digits with an optional leading `+` or `-` (line counts).
    Count,
    /// A [`Kind::Count`] or `all` (journalctl `-n`).
    Lines,
    /// A journal boot: an offset, a 128-bit id (with an optional offset) or `all`.
    Boot,
    /// Text the program never treats as a path or an option (a pattern, a template).
    Text,
    /// A unit, container, pod, user or interface name: `[A-Za-z0-9@._:+\-\\]`, not starting with `-`.
    Name,
    /// Comma-separated [`Kind::Name`]s.
    Names,
    /// A time expression (`10 min ago`, `2024-01-01 10:00`, `-1h`, `@1700000000`).
    Time,
    /// One of a fixed list.
    Enum(&'static [&'static str]),
    /// Comma-separated values from a fixed list.
    EnumList(&'static [&'static str]),
    /// A file the program opens and reads: it must pass the agent's file checks.
    File,
    /// A path the program only looks up (stat, list, find the filesystem), never opens unless it
    /// is a directory.
    Path,
    /// A path `df` may be given. `df` *opens* each operand (to trigger an automount), and opening
    /// a device node has effects of its own (`/dev/watchdog` arms a reboot, a tape rewinds), so
    /// only what can only be a directory counts: a path ending with `/` (the kernel refuses it
    /// unless it resolves to a directory) or a standard mount point that only root can create.
    MountPoint,
    /// A journal match: `FIELD=VALUE` or `+`.
    JournalMatch,
    /// A `date` output format (`+%F %T`).
    DateFormat,
    /// `ps` output fields (`pid,comm,%cpu`, `-%cpu` for sorting), from a fixed list.
    PsFields,
    /// A Kubernetes resource type list (`pods`, `pods,svc`) or `TYPE/NAME`, from the allowlist.
    KubeResource,
    /// A Kubernetes object name, or `TYPE/NAME` with an allowlisted type.
    KubeName,
    /// A kubectl output format (`wide`, `json`, `jsonpath=...`; never a `*-file=` format).
    KubeOutput,
    /// `PORT` or `PORT/PROTO` (docker port).
    Port,
}

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A flag.
    None,
    /// A mandatory value: attached (`-n5`, `--lines=5`) or the next word, whatever it is.
    Required(Kind),
    /// An optional value, only when attached (`-L=auto`, `--color=never`, `-Iseconds`).
    Optional(Kind),
    /// An optional value that the program also takes from the next word when that word parses
    /// as one (journalctl `-n 50`, `-b -1`).
    Greedy(Kind),
}

/// One accepted option. `short` is `'\0'` when there is none; `long` is `""` when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opt {
    pub(crate) short: char,
    pub(crate) long: &'static str,
    pub(crate) arg: Arg,
}

impl Opt {
    /// Whether `name` (a long name, or one letter) names this option.
    pub(crate) fn is(&self, name: &str) -> bool {
        (!self.long.is_empty() && self.long == name) || {
            let mut chars = name.chars();
            chars.next() == Some(self.short) && chars.next().is_none() && self.short != '\0'
        }
    }

    /// How the option is shown in reasons.
    pub(crate) fn shown(&self) -> String {
        if self.long.is_empty() { format!("-{}", self.short) } else { format!("--{}", self.long) }
    }
}

/// A flag with a short and/or long spelling.
pub(crate) const fn flag(short: char, long: &'static str) -> Opt {
    Opt { short, long, arg: Arg::None }
}

/// An option with a mandatory value.
pub(crate) const fn val(short: char, long: &'static str, kind: Kind) -> Opt {
    Opt { short, long, arg: Arg::Required(kind) }
}

/// An option with an optional, attached value.
pub(crate) const fn opt_val(short: char, long: &'static str, kind: Kind) -> Opt {
    Opt { short, long, arg: Arg::Optional(kind) }
}

/// Which positionals a node accepts: `kinds[i]` for the i-th (the last kind repeats), between
/// `min` and `max` of them, and at least `min_if_any` once there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Positionals {
    pub(crate) kinds: &'static [Kind],
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// With any positional, at least this many (`vmstat INTERVAL COUNT`: an interval alone
    /// samples forever, so it only counts with its count).
    pub(crate) min_if_any: usize,
}

/// No positionals at all.
pub(crate) const NO_POSITIONALS: Positionals = Positionals { kinds: &[], min: 0, max: 0, min_if_any: 0 };

/// Between `min` and `max` positionals, each of `kind`.
pub(crate) const fn positionals(kind: &'static [Kind], min: usize, max: usize) -> Positionals {
    Positionals { kinds: kind, min, max, min_if_any: min }
}

/// None, or exactly `kinds.len()` of them (an interval and a count, never an interval alone).
pub(crate) const fn none_or_all(kinds: &'static [Kind]) -> Positionals {
    Positionals { kinds, min: 0, max: kinds.len(), min_if_any: kinds.len() }
}

/// A program or one of its subcommands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// The program's basename, or the subcommand's exact spelling.
    pub(crate) name: &'static str,
    /// Options accepted here (a subcommand also accepts its ancestors' options).
    pub(crate) opts: &'static [Opt],
    /// Positionals accepted (after the subcommand, when there are subcommands).
    pub(crate) pos: Positionals,
    /// Subcommands: the first positional must be one of them.
    pub(crate) subs: &'static [Node],
    /// With subcommands: whether one must be given (otherwise `pos` applies without one).
    pub(crate) sub_required: bool,
    /// Options that must all be present (`top -b -n`, `docker stats --no-stream`).
    pub(crate) requires: &'static [&'static str],
    /// Options of which at least one must be present (`nginx -t|-T|-v|-V`).
    pub(crate) require_one: &'static [&'static str],
    /// Options that, when present, supply the pattern, so the first positional is not one
    /// (`grep -e PATTERN FILE`): the first positional kind is dropped and `min`/`max` shrink by one.
    pub(crate) pattern_opts: &'static [&'static str],
}

/// A node with options and positionals and nothing else.
pub(crate) const fn node(name: &'static str, opts: &'static [Opt], pos: Positionals) -> Node {
    Node { name, opts, pos, subs: &[], sub_required: false, requires: &[], require_one: &[], pattern_opts: &[] }
}

/// A node whose first positional must be one of `subs`.
pub(crate) const fn with_subs(name: &'static str, opts: &'static [Opt], subs: &'static [Node]) -> Node {
    Node { subs, sub_required: true, ..node(name, opts, NO_POSITIONALS) }
}

/// A program: its parser and its root node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Program {
    pub(crate) style: Style,
    pub(crate) root: Node,
    /// `ps` only: the BSD option letters (without a dash) accepted.
    pub(crate) bsd_letters: &'static str,
}

/// A getopt_long program.
pub(crate) const fn gnu(root: Node) -> Program {
    Program { style: Style::Gnu, root, bsd_letters: "" }
}

/// A pflag (cobra) program.
pub(crate) const fn pflag(root: Node) -> Program {
    Program { style: Style::Pflag, root, bsd_letters: "" }
}
