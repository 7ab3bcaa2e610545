//! Which extra arguments may follow an investigation bypass's *prefix* pattern.
//!
//! A prefix pattern (`systemctl restart *`) is an explicit opt-in by the assistant, shown to the
//! human as "and any further arguments". Even then, the extra words must never turn the command
//! into something else: `find /var/log` must not grow `-exec sh -c …`, `tar cf x` must not grow
//! `--checkpoint-action=exec=…`, `env`, `xargs`, `sudo`, `nice`, `timeout`, `nohup` and `sh -c`
//! must not grow a command to run. So the decision is made from positive knowledge only; the
//! extra words are harmless when
//!
//! 1. the whole argv (prefix and extras) is one the read-only table accepts and reads no file
//!    (then it changes nothing anywhere; a file-reading one would skip the file checks the
//!    read-only path makes on the host, so it is not), or
//! 2. the prefix names a program *and its verb* from [`VERBS`] (for example `systemctl restart`)
//!    and every extra word is one of that verb's listed flags or a plain object name (a unit or a
//!    container: letters, digits and `@._:+-`, not starting with `-`, never a path), and not a
//!    unit that changes the machine's state (`reboot.target`, `systemd-poweroff`, …).
//!
//! Everything else, including every program this module does not know, is not covered: the call
//! goes to per-command approval. Adding nothing here is always safe.

use super::{CommandClass, SYSTEM_BIN_DIRS, classify_words};

/// A program and verb whose objects a prefix pattern may name freely.
struct Verbs {
    program: &'static str,
    verbs: &'static [&'static str],
    flags: &'static [&'static str],
}

/// The program/verb pairs whose extra arguments are only object names (and a few listed flags).
/// Verbs that persist a change (`enable`, `mask`), send arbitrary signals (`kill`) or run code
/// (`docker exec`, `docker run`) are left out on purpose.
const VERBS: &[Verbs] = &[
    Verbs { program: "docker", verbs: &["restart", "start", "stop"], flags: &[] },
    Verbs {
        program: "systemctl",
        verbs: &["reload", "reload-or-restart", "restart", "start", "stop", "try-reload-or-restart", "try-restart"],
        flags: &["--no-block", "--no-pager", "--quiet", "-q"],
    },
];

/// Units whose start (or stop) changes the state of the whole machine: never a plain object.
const MACHINE_STATE_UNITS: &[&str] =
    &["ctrl-alt-del", "default", "emergency", "exit", "halt", "kexec", "poweroff", "reboot", "rescue", "shutdown"];

/// The program and verb a prefix extends by object names (see [`VERBS`]): two prefixes with the
/// same key accept the same extra words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionKey {
    /// The program's basename.
    pub program: &'static str,
    /// Its verb.
    pub verb: &'static str,
}

/// The program a first word names: a bare name, or a name in a system binary directory.
fn program(first: &str) -> Option<&str> {
    if !first.contains('/') {
        return Some(first);
    }
    SYSTEM_BIN_DIRS
        .iter()
        .find_map(|dir| first.strip_prefix(dir))
        .filter(|base| !base.is_empty() && !base.contains('/'))
}

/// The [`ExtensionKey`] of `prefix`: its program is in [`VERBS`] and its first word after the
/// program that is not an option is one of that program's verbs. `None` otherwise.
pub fn extension_key(prefix: &[String]) -> Option<ExtensionKey> {
    let (first, rest) = prefix.split_first()?;
    let name = program(first)?;
    let entry = VERBS.iter().find(|v| v.program == name)?;
    let verb = rest.iter().find(|w| !w.starts_with('-'))?;
    let verb = entry.verbs.iter().find(|v| **v == verb.as_str())?;
    Some(ExtensionKey { program: entry.program, verb })
}

/// A plain object name: what a unit, container or script argument is called, never an option,
/// path, pattern or anything a shell or program would read as more than a name.
pub fn plain_operand(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 256
        && !word.starts_with(['-', '.'])
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "@._:+-".contains(c))
}

/// Whether a unit name (with or without its type suffix) is one that changes the machine's state.
fn machine_state_unit(word: &str) -> bool {
    let (stem, suffix) = word.rsplit_once('.').unwrap_or((word, "service"));
    suffix == "target"
        || stem.starts_with("systemd-")
        || MACHINE_STATE_UNITS.iter().any(|u| stem == *u || stem.starts_with(&format!("{u}@")))
}

/// Whether `extra` may follow `prefix` under a prefix grant: `Ok` when every extra word is known
/// to be harmless for that program (see the module's rules), else the first reason it is not.
/// No extra words is always `Ok`.
pub fn harmless_extension(prefix: &[String], extra: &[String]) -> Result<(), String> {
    if extra.is_empty() {
        return Ok(());
    }
    let whole: Vec<String> = prefix.iter().chain(extra).cloned().collect();
    let read_only = classify_words(whole);
    if read_only.class == CommandClass::ReadOnly && read_only.files.is_empty() {
        return Ok(());
    }
    names_extension(prefix, extra)
        .map_err(|why| format!("{why}; and the whole command is not read-only: {}", read_only.reason))
}

/// Rule 2 alone: `prefix` has an [`ExtensionKey`] and every word of `extra` is one of its verb's
/// listed flags or a plain object name (never a machine-state unit).
pub fn names_extension(prefix: &[String], extra: &[String]) -> Result<(), String> {
    let Some(key) = extension_key(prefix) else {
        return Err(format!(
            "`{}` is not a program and verb whose further arguments are known to be plain names",
            prefix.first().map_or("", String::as_str)
        ));
    };
    let flags = VERBS.iter().find(|v| v.program == key.program).map_or(&[][..], |v| v.flags);
    for word in extra {
        if flags.contains(&word.as_str()) {
            continue;
        }
        if !plain_operand(word) {
            return Err(format!("`{word}` is not a plain name or a listed flag of `{} {}`", key.program, key.verb));
        }
        if key.program == "systemctl" && machine_state_unit(word) {
            return Err(format!("`{word}` is a unit that changes the state of the whole machine"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn ok(prefix: &str, extra: &[&str]) -> bool {
        let extra: Vec<String> = extra.iter().map(|w| (*w).to_owned()).collect();
        harmless_extension(&words(prefix), &extra).is_ok()
    }

    #[test]
    fn object_names_may_follow_a_known_verb() {
        assert!(ok("systemctl restart", &["nginx", "php-fpm.service", "app@1"]));
        assert!(ok("systemctl restart nginx", &["sshd"]));
        assert!(ok("systemctl --no-block restart", &["nginx", "-q"]));
        assert!(ok("/usr/bin/systemctl stop", &["worker"]));
        assert!(ok("docker restart", &["web"]));
        assert!(ok("journalctl -u nginx", &["-n", "50"]), "a read-only result is harmless");
        assert!(ok("anything at all", &[]), "no extra words is always fine");
    }

    #[test]
    fn gtfobins_never_extend() {
        for (prefix, extra) in [
            ("find /var/log", &["-exec", "sh", "-c", "id", ";"][..]),
            ("find /var/log", &["-delete"][..]),
            ("find /var/log", &["x"][..]),
            ("tar cf /tmp/x.tar /etc", &["--checkpoint=1", "--checkpoint-action=exec=sh"][..]),
            ("awk", &["BEGIN{system(\"id\")}"][..]),
            ("less /var/log/syslog", &["!sh"][..]),
            ("git log", &["-c", "core.pager=sh"][..]),
            ("git", &["-c", "core.pager=sh", "log"][..]),
            ("rsync -a", &["-e", "sh -c id", "a", "b"][..]),
            ("env", &["sh"][..]),
            ("xargs", &["rm"][..]),
            ("sudo", &["reboot"][..]),
            ("nice", &["reboot"][..]),
            ("timeout 5", &["reboot"][..]),
            ("nohup", &["reboot"][..]),
            ("sh -c", &["reboot"][..]),
            ("bash", &["-c", "reboot"][..]),
            ("docker exec web", &["reboot"][..]),
            ("docker", &["run", "alpine"][..]),
            ("systemctl", &["reboot"][..]),
            ("systemctl", &["restart", "nginx"][..]),
            ("systemctl restart", &["--now"][..]),
            ("systemctl restart", &["-H", "other"][..]),
            ("systemctl start", &["reboot.target"][..]),
            ("systemctl start", &["poweroff"][..]),
            ("systemctl start", &["systemd-reboot.service"][..]),
            ("systemctl start", &["rescue"][..]),
            ("systemctl enable", &["evil"][..]),
            ("systemctl restart", &["/etc/systemd/system/x.service"][..]),
            ("systemctl restart", &["nginx;reboot"][..]),
            ("/tmp/systemctl restart", &["nginx"][..]),
            ("tail -n 50", &["/etc/shadow"][..]),
            ("cat", &["/etc/shadow"][..]),
        ] {
            assert!(!ok(prefix, extra), "{prefix} + {extra:?} must not be covered");
        }
    }

    #[test]
    fn keys_need_the_verb_inside_the_prefix() {
        assert_eq!(
            extension_key(&words("systemctl restart nginx")),
            Some(ExtensionKey { program: "systemctl", verb: "restart" })
        );
        assert_eq!(extension_key(&words("systemctl")), None);
        assert_eq!(extension_key(&words("systemctl enable")), None);
        assert_eq!(extension_key(&words("sudo systemctl restart")), None);
    }
}
