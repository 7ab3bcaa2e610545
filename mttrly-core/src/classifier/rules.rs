//! The read-only set, as data: which programs may run without approval, and with what.
//!
//! A program missing from this table needs approval. A program in it still needs approval when
//! an argument is on its deny list, when a subcommand is not on its allow list, or when its check
//! says so. Programs that read arbitrary files (`cat`, `grep`, `tail`, `sed`, `awk`, ...) are left
//! out on purpose: file contents go through `mttrly_read_file`, which enforces the path allowlist
//! and redaction.

/// What a program may do without approval.
pub(crate) struct ProgramRule {
    /// The program's name (basename).
    pub(crate) name: &'static str,
    /// When set, the first non-flag argument must be one of these.
    pub(crate) subcommands: Option<&'static [&'static str]>,
    /// Arguments that need approval, matched exactly or as `FLAG=...`.
    pub(crate) deny: &'static [&'static str],
    /// Argument prefixes that need approval.
    pub(crate) deny_prefix: &'static [&'static str],
    /// Whether positional (non-flag) arguments are allowed at all (beyond the subcommand).
    pub(crate) positionals: bool,
    /// Arguments that must all be present (e.g. `top -b`, `docker stats --no-stream`).
    pub(crate) require: &'static [&'static str],
}

const fn rule(name: &'static str) -> ProgramRule {
    ProgramRule { name, subcommands: None, deny: &[], deny_prefix: &[], positionals: true, require: &[] }
}

const fn flags_only(name: &'static str) -> ProgramRule {
    ProgramRule { positionals: false, ..rule(name) }
}

/// The table. Kept sorted by name (a test checks), looked up by binary search.
pub(crate) static READ_ONLY: &[ProgramRule] = &[
    ProgramRule { deny: &["-s", "--set", "-f", "--file"], deny_prefix: &["--set", "--file"], ..rule("date") },
    rule("df"),
    ProgramRule {
        deny: &[
            "-c",
            "-C",
            "--clear",
            "-D",
            "--console-off",
            "-E",
            "--console-on",
            "-n",
            "--console-level",
            "-w",
            "--follow",
            "-W",
            "--follow-new",
        ],
        positionals: false,
        ..rule("dmesg")
    },
    ProgramRule {
        subcommands: Some(&[
            "ps",
            "images",
            "inspect",
            "logs",
            "version",
            "info",
            "top",
            "port",
            "stats",
            "image",
            "container",
        ]),
        deny: &[
            "-f", "--follow", "rm", "prune", "kill", "stop", "restart", "exec", "run", "start", "pull", "push", "cp",
            "commit", "create", "update", "tag", "load", "save", "import", "export", "build", "rename", "pause",
            "unpause", "attach", "wait",
        ],
        deny_prefix: &["--follow"],
        ..rule("docker")
    },
    rule("du"),
    flags_only("free"),
    ProgramRule {
        subcommands: Some(&["status", "log", "diff", "show", "rev-parse", "describe", "shortlog", "ls-files", "blame"]),
        deny: &["--output", "--ext-diff", "--textconv", "-o", "--no-index"],
        deny_prefix: &["--output", "--exec", "--upload-pack"],
        ..rule("git")
    },
    ProgramRule { positionals: false, deny: &["-F", "--file", "-b", "--boot"], ..rule("hostname") },
    ProgramRule { subcommands: Some(&["status", "show"]), positionals: false, ..rule("hostnamectl") },
    rule("id"),
    rule("iostat"),
    ProgramRule {
        subcommands: Some(&[
            "addr", "address", "a", "route", "r", "link", "l", "neigh", "n", "rule", "-s", "-br", "-brief", "-4", "-6",
            "-j", "-json",
        ]),
        ..rule("ip")
    },
    ProgramRule {
        deny: &[
            "-f",
            "--follow",
            "-F",
            "--rotate",
            "--flush",
            "--sync",
            "--relinquish-var",
            "--smart-relinquish-var",
            "--setup-keys",
            "--update-catalog",
            "--new-id128",
            "--cursor-file",
        ],
        deny_prefix: &["--vacuum", "--cursor-file", "--follow"],
        ..rule("journalctl")
    },
    ProgramRule {
        subcommands: Some(&["get", "describe", "logs", "top", "version", "cluster-info", "api-resources", "events"]),
        deny: &["-f", "--follow", "-w", "--watch", "--kubeconfig", "--token", "--as"],
        deny_prefix: &["--follow", "--watch", "--kubeconfig", "--token", "--as="],
        ..rule("kubectl")
    },
    flags_only("last"),
    rule("ls"),
    flags_only("lsblk"),
    flags_only("lscpu"),
    rule("lsof"),
    flags_only("mount"),
    flags_only("mpstat"),
    ProgramRule { deny: &["-c", "--continuous"], ..rule("netstat") },
    ProgramRule { positionals: false, deny: &["-s", "-g", "-c", "-p", "-e"], ..rule("nginx") },
    flags_only("nproc"),
    ProgramRule { deny: &["-s", "--signal", "-e"], ..rule("pgrep") },
    rule("pidof"),
    rule("ps"),
    ProgramRule { deny: &["-K", "--kill", "-E", "--events"], ..rule("ss") },
    rule("stat"),
    ProgramRule {
        subcommands: Some(&[
            "status",
            "show",
            "is-active",
            "is-enabled",
            "is-failed",
            "list-units",
            "list-unit-files",
            "list-timers",
            "list-sockets",
            "list-dependencies",
            "cat",
            "--failed",
        ]),
        deny: &["-H", "--host", "-M", "--machine", "--runtime", "--now", "--force"],
        deny_prefix: &["--host", "--machine"],
        ..rule("systemctl")
    },
    ProgramRule { subcommands: Some(&["status", "show"]), positionals: false, ..rule("timedatectl") },
    ProgramRule { require: &["-b", "-n"], deny: &["-p"], positionals: true, ..rule("top") },
    flags_only("uname"),
    flags_only("uptime"),
    rule("vmstat"),
    rule("w"),
    flags_only("who"),
    flags_only("whoami"),
];

/// The rule for `program`, if it is in the read-only set.
pub(crate) fn find(program: &str) -> Option<&'static ProgramRule> {
    READ_ONLY.binary_search_by(|r| r.name.cmp(program)).ok().map(|i| &READ_ONLY[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        for pair in READ_ONLY.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} must come before {}", pair[0].name, pair[1].name);
        }
    }
}
