//! Property tests for the command classifier: it never panics, chaining never sneaks a command
//! past it, and what it approves is exactly what it would approve again.

use mttrly_core::classifier::{CommandClass, classify};
use proptest::prelude::*;

const READ_ONLY: &[&str] = &["uptime", "df -h", "ps aux", "systemctl status nginx", "ls -la /var/log", "docker ps"];
const GLUE: &[&str] = &[";", "&&", "||", "|", "\n", "&", "`", "$(", ">", "<", " $X", "${IFS}", "*"];

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(s in ".{0,300}") {
        let c = classify(&s);
        prop_assert_eq!(c.argv.is_some(), c.class == CommandClass::ReadOnly);
    }

    #[test]
    fn never_panics_on_shell_soup(s in "[a-z \\-;&|$`'\"\\\\(){}<>*?~#!\n=/.]{0,80}") {
        let _ = classify(&s);
    }

    #[test]
    fn chaining_anything_onto_a_read_only_command_needs_approval(
        base in prop::sample::select(READ_ONLY),
        glue in prop::sample::select(GLUE),
        tail in "[a-z /\\-]{0,30}",
    ) {
        prop_assert_eq!(classify(base).class, CommandClass::ReadOnly);
        let command = format!("{base} {glue} {tail}");
        prop_assert_eq!(classify(&command).class, CommandClass::NeedsApproval, "{:?}", command);
    }

    #[test]
    fn approved_argv_round_trips(s in "[a-z]{1,8}( -{1,2}[a-z]{1,6}){0,3}( [a-z/]{1,10}){0,2}") {
        let first = classify(&s);
        if let Some(argv) = first.argv {
            let requoted: Vec<String> = argv.iter().map(|a| quote(a)).collect();
            let again = classify(&requoted.join(" "));
            prop_assert_eq!(again.class, CommandClass::ReadOnly);
            prop_assert_eq!(again.argv, Some(argv));
        }
    }
}

/// Programs and words the generator below builds commands from: enough of the table's own
/// vocabulary that a good share of the commands are read-only, plus words with spaces, quotes,
/// dashes and non-ASCII characters that quoting must carry through unchanged.
const PROGRAM_WORDS: &[&str] = &[
    "uptime",
    "df",
    "ps",
    "ls",
    "systemctl",
    "journalctl",
    "docker",
    "kubectl",
    "ip",
    "ss",
    "date",
    "free",
    "top",
    "grep",
    "tail",
    "vmstat",
    "dmesg",
    "/usr/bin/uptime",
];
const ARG_WORDS: &[&str] = &[
    "-h",
    "-a",
    "aux",
    "status",
    "nginx",
    "--no-pager",
    "-n",
    "50",
    "-u",
    "/var/log",
    "/var",
    "get",
    "pods",
    "-tlnp",
    "addr",
    "show",
    "-b",
    "1",
    "--",
    "--failed",
    "list-units",
    "ps",
    "a b",
    "it's",
    "say \"hi\"",
    "-x",
    "--level=err",
    "+%F %T",
    "-o",
    "wide",
    "é",
    "--since",
    "10 min ago",
    "-e",
    "error",
    "",
    "\\",
    "-l",
    "--all",
    "route",
    "logs",
    "web",
    "--tail",
    "100",
    "--no-stream",
    "stats",
    "-p",
    "ActiveState",
];

/// One word quoted one of the ways a shell user writes it; the shell (and the lexer) reads back
/// exactly `word`.
fn quote_as(word: &str, style: u8) -> String {
    let bare_ok = !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || "-_./:=+%,@".contains(c));
    match style % 4 {
        0 if bare_ok => word.to_owned(),
        0 | 1 => format!("'{}'", word.replace('\'', "'\\''")),
        2 => format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\"")),
        _ => {
            if word.is_empty() {
                return "''".to_owned();
            }
            word.chars().map(|c| if c.is_alphanumeric() { c.to_string() } else { format!("\\{c}") }).collect()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// A read-only verdict runs exactly the words the command line spells, however they are
    /// quoted: nothing added, dropped, split, joined or rewritten; and the verdict is a pure
    /// function of the line (the same twice, and the same for any quoting of the same words).
    #[test]
    fn read_only_argv_is_exactly_the_words_and_verdicts_are_deterministic(
        program in prop::sample::select(PROGRAM_WORDS),
        args in prop::collection::vec((prop::sample::select(ARG_WORDS), any::<u8>()), 0..7),
        program_style in 0u8..4,
        restyle in any::<u8>(),
        gaps in prop::collection::vec(prop::sample::select(&[" ", "  ", "\t", " \t "][..]), 7),
    ) {
        let words: Vec<String> = std::iter::once(program.to_owned()).chain(args.iter().map(|(w, _)| (*w).to_owned())).collect();
        let styles: Vec<u8> = std::iter::once(program_style).chain(args.iter().map(|&(_, s)| s)).collect();
        let mut line = String::new();
        for (i, (word, style)) in words.iter().zip(&styles).enumerate() {
            if i > 0 {
                line.push_str(gaps[i - 1]);
            }
            line.push_str(&quote_as(word, *style));
        }
        let first = classify(&line);
        prop_assert_eq!(&first, &classify(&line), "{:?}", line);
        if first.class == CommandClass::ReadOnly {
            prop_assert_eq!(first.argv.as_ref(), Some(&words), "{:?}", line);
        }
        // The same words quoted differently get the same verdict, reason and argv.
        let requoted: Vec<String> = words.iter().enumerate().map(|(i, w)| quote_as(w, restyle.wrapping_add(u8::try_from(i).unwrap_or(0)))).collect();
        let again = classify(&requoted.join(" "));
        prop_assert_eq!(again.class, first.class, "{:?} vs {:?}", line, requoted);
        prop_assert_eq!(again.argv, first.argv);
    }
}

/// Read-only commands of programs whose option tables are exact, to append things to.
const BASES: &[&str] = &[
    "journalctl -u nginx -n 50",
    "systemctl status nginx",
    "ss -tlnp",
    "dmesg --level=err",
    "date -u",
    "hostname -f",
    "df -h",
    "ps aux",
    "docker ps -a",
    "kubectl get pods -n web",
    "uname -a",
];

/// Long options that change the system or read a file, per program: no prefix of them (an
/// abbreviation the program would expand) may be read-only, unless it is itself spelled exactly as
/// a different, allowed option.
const DANGEROUS_LONG: &[(&str, &str)] = &[
    ("journalctl", "rotate"),
    ("journalctl", "flush"),
    ("journalctl", "sync"),
    ("journalctl", "vacuum-size=1"),
    ("journalctl", "vacuum-time=1d"),
    ("journalctl", "setup-keys"),
    ("journalctl", "update-catalog"),
    ("journalctl", "cursor-file=/tmp/x"),
    ("journalctl", "file=/etc/shadow"),
    ("journalctl", "directory=/tmp"),
    ("journalctl", "follow"),
    ("journalctl", "relinquish-var"),
    ("date", "set=2000-01-01"),
    ("date", "file=/etc/shadow"),
    ("date", "reference=/etc/shadow"),
    ("hostname", "file=/etc/shadow"),
    ("hostname", "boot"),
    ("dmesg", "clear"),
    ("dmesg", "read-clear"),
    ("dmesg", "console-off"),
    ("dmesg", "console-level=1"),
    ("dmesg", "file=/etc/shadow"),
    ("dmesg", "follow"),
    ("ss", "kill"),
    ("ss", "diag=/tmp/x"),
    ("ss", "filter=/etc/shadow"),
    ("ss", "events"),
    ("ss", "net=x"),
    ("du", "files0-from=/etc/shadow"),
    ("du", "exclude-from=/etc/shadow"),
    ("systemctl", "root=/tmp"),
    ("systemctl", "host=x"),
    ("systemctl", "machine=x"),
    ("systemctl", "runtime"),
    ("systemctl", "force"),
    ("kubectl", "server=http://x"),
    ("kubectl", "kubeconfig=/tmp/x"),
    ("kubectl", "token=x"),
    ("kubectl", "output-directory=/tmp"),
    ("docker", "host=tcp://x"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// An abbreviation of a dangerous long option is never read-only, wherever it is put.
    #[test]
    fn abbreviations_of_dangerous_options_need_approval(
        pick in prop::sample::select(DANGEROUS_LONG),
        cut in 1usize..20,
        before in any::<bool>(),
    ) {
        let (program, option) = pick;
        let name = option.split('=').next().unwrap_or(option);
        let value = option.split_once('=').map(|(_, v)| format!("={v}")).unwrap_or_default();
        let prefix = &name[..cut.min(name.len())];
        // `du --exclude=PATTERN` is itself an option, spelled in full (getopt prefers the exact name).
        prop_assume!(!(program == "du" && prefix == "exclude"));
        let base = BASES.iter().find(|b| b.starts_with(&format!("{program} "))).copied().unwrap_or(program);
        let rest = base.strip_prefix(program).unwrap_or("");
        let command = if before {
            format!("{program} --{prefix}{value}{rest}")
        } else {
            format!("{base} --{prefix}{value}")
        };
        prop_assert_eq!(classify(&command).class, CommandClass::NeedsApproval, "{}", command);
    }

    /// Appending an option or a word nobody listed never makes a read-only command more
    /// permissive: it needs approval (the option tables are allowlists).
    #[test]
    fn unknown_options_and_words_appended_need_approval(
        base in prop::sample::select(BASES),
        extra in prop_oneof![
            "--zz[a-z]{1,8}",
            "--zz[a-z]{1,8}=[a-z/]{1,8}",
            "-[QWY]",
            "[a-z]{1,3}[0-9]/[a-z]{1,8}",
        ],
    ) {
        // `df` and `ss` take any operand (a path df only looks up, an ss filter word).
        prop_assume!(extra.starts_with('-') || !(base.starts_with("df ") || base.starts_with("ss ")));
        let command = format!("{base} {extra}");
        prop_assert_eq!(classify(base).class, CommandClass::ReadOnly, "{}", base);
        prop_assert_eq!(classify(&command).class, CommandClass::NeedsApproval, "{}", command);
    }

    /// A bundle of short options that hides a denied one (`-tlnpD/x`) is never read-only.
    #[test]
    fn a_denied_short_option_in_a_bundle_needs_approval(
        allowed in "[tulnpaes]{0,5}",
        denied in prop::sample::select(&['D', 'K', 'F', 'E', 'N'][..]),
        after in "[tulnp]{0,3}",
        value in "(/tmp/x)?",
    ) {
        let command = format!("ss -{allowed}{denied}{after}{value}");
        prop_assert_eq!(classify(&command).class, CommandClass::NeedsApproval, "{}", command);
    }

    /// Any verb after any allowed systemctl flag is checked like a verb in first position.
    #[test]
    fn systemctl_verbs_are_checked_after_any_flag(
        flags in prop::collection::vec(prop::sample::select(&["--failed", "--no-pager", "-a", "--plain", "-q"][..]), 0..4),
        verb in prop::sample::select(&["start", "stop", "restart", "enable", "disable", "reboot", "poweroff", "kill", "mask", "edit", "daemon-reload"][..]),
    ) {
        let command = format!("systemctl {} {verb} x.service", flags.join(" "));
        prop_assert_eq!(classify(&command).class, CommandClass::NeedsApproval, "{}", command);
    }
}

proptest! {
    /// The redactor never panics and is idempotent: redacted text has nothing left to redact.
    #[test]
    fn redaction_is_total_and_idempotent(s in ".{0,400}", secret in prop::sample::select(&[
        "AKIAIOSFODNN7EXAMPLE", "password=hunter2hunter2", "https://u:pw123@h", "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    ][..])) {
        let input = format!("{s} {secret} {s}");
        let once = mttrly_core::redactor::redact(&input).text.into_owned();
        prop_assert!(!once.contains("AKIAIOSFODNN7EXAMPLE") && !once.contains("hunter2hunter2") && !once.contains("pw123"));
        let twice = mttrly_core::redactor::redact(&once);
        prop_assert_eq!(twice.text.as_ref(), once.as_str());
        prop_assert!(twice.hits.is_empty());
    }
}
