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
