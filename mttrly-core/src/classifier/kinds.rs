//! Checking one value against its [`Kind`]. A value that does not fit is not read-only: the
//! kinds are narrow on purpose (a name never starts with `-`, a file is absolute).

use super::spec::Kind;

/// Kubernetes resource types that may be listed or described without approval. Secrets (and
/// anything not named here: custom resources, service account tokens) need approval.
pub(crate) const KUBE_TYPES: &[&str] = &[
    "all",
    "cj",
    "cm",
    "configmap",
    "configmaps",
    "cronjob",
    "cronjobs",
    "daemonset",
    "daemonsets",
    "deploy",
    "deployment",
    "deployments",
    "ds",
    "endpoints",
    "ep",
    "ev",
    "event",
    "events",
    "horizontalpodautoscalers",
    "hpa",
    "ing",
    "ingress",
    "ingresses",
    "job",
    "jobs",
    "namespace",
    "namespaces",
    "no",
    "node",
    "nodes",
    "ns",
    "persistentvolume",
    "persistentvolumeclaim",
    "persistentvolumeclaims",
    "persistentvolumes",
    "po",
    "pod",
    "pods",
    "pv",
    "pvc",
    "replicaset",
    "replicasets",
    "rs",
    "service",
    "services",
    "statefulset",
    "statefulsets",
    "sts",
    "svc",
];

/// `ps` output fields that only describe a process (nothing prints its environment).
const PS_FIELDS: &[&str] = &[
    "%cpu",
    "%mem",
    "args",
    "c",
    "cgroup",
    "class",
    "cls",
    "cmd",
    "comm",
    "command",
    "cp",
    "cputime",
    "etime",
    "etimes",
    "euid",
    "euser",
    "f",
    "flags",
    "gid",
    "group",
    "label",
    "lstart",
    "lwp",
    "ni",
    "nice",
    "nlwp",
    "pcpu",
    "pgid",
    "pid",
    "pmem",
    "ppid",
    "pri",
    "psr",
    "rss",
    "rssize",
    "rsz",
    "rtprio",
    "ruid",
    "ruser",
    "s",
    "sched",
    "sess",
    "sid",
    "size",
    "start",
    "start_time",
    "stat",
    "state",
    "stime",
    "suid",
    "suser",
    "sz",
    "thcount",
    "tid",
    "time",
    "tname",
    "tt",
    "tty",
    "ucmd",
    "uid",
    "uname",
    "user",
    "vsize",
    "vsz",
    "wchan",
];

/// Directories `df` may be given by name: standard mount points, created by root at install, so
/// an unprivileged user cannot make one of them a device node or a symlink to one. Any other
/// directory is named with a trailing `/` (see [`Kind::MountPoint`]).
const MOUNT_POINTS: &[&str] = &[
    "/",
    "/boot",
    "/boot/efi",
    "/data",
    "/dev/shm",
    "/home",
    "/media",
    "/mnt",
    "/opt",
    "/root",
    "/run",
    "/srv",
    "/tmp",
    "/usr",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/kubelet",
    "/var/lib/mysql",
    "/var/lib/postgresql",
    "/var/log",
    "/var/tmp",
    "/var/www",
];

/// kubectl output formats without a file (`jsonpath-file=`, `go-template-file=` read one).
const KUBE_OUTPUTS: &[&str] = &["json", "yaml", "wide", "name"];
const KUBE_OUTPUT_PREFIXES: &[&str] = &["jsonpath=", "custom-columns=", "go-template="];

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | ':' | '+' | '-' | '\\')
}

fn is_name(v: &str) -> bool {
    !v.is_empty() && v.len() <= 253 && !v.starts_with('-') && v.chars().all(name_char)
}

fn is_int(v: &str) -> bool {
    !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_count(v: &str) -> bool {
    is_int(v.strip_prefix(['+', '-']).unwrap_or(v))
}

fn is_kube_type_list(v: &str) -> bool {
    !v.is_empty() && v.split(',').all(|t| KUBE_TYPES.contains(&t))
}

fn is_kube_type_name(v: &str) -> bool {
    v.split_once('/').is_some_and(|(t, n)| KUBE_TYPES.contains(&t) && is_name(n))
}

fn is_ps_field(item: &str) -> bool {
    let item = item.strip_prefix(['+', '-']).unwrap_or(item);
    // `pid=HEADER` renames a column; `comm:20` sets its width.
    let name = item.split(['=', ':']).next().unwrap_or("");
    let rest = &item[name.len()..];
    PS_FIELDS.contains(&name) && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ':' | '_' | '%'))
}

/// Checks `value` against `kind`. The error says what was expected. (A [`Kind::File`] is only
/// checked for shape here; the caller records it for the file checks.)
pub(crate) fn check(kind: Kind, value: &str) -> Result<(), String> {
    let ok = match kind {
        Kind::Int => is_int(value),
        Kind::Count => is_count(value),
        Kind::Lines => value == "all" || is_count(value),
        Kind::Boot => {
            value == "all" || is_count(value) || {
                let (id, offset) = value.split_at(value.find(['+', '-']).unwrap_or(value.len()));
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && (offset.is_empty() || is_count(offset))
            }
        }
        Kind::Text => value.len() <= 1024,
        Kind::Name => is_name(value),
        Kind::Names => !value.is_empty() && value.split(',').all(is_name),
        Kind::Time => {
            !value.is_empty()
                && value.len() <= 64
                && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '.' | '+' | '-' | '@'))
        }
        Kind::Enum(list) => list.contains(&value),
        Kind::EnumList(list) => !value.is_empty() && value.split(',').all(|v| list.contains(&v)),
        Kind::File => value.starts_with('/') && value.len() <= 4096,
        Kind::Path => !value.is_empty() && !value.starts_with('-') && value.len() <= 4096,
        // A trailing `/` makes the kernel refuse anything but a directory (`ENOTDIR`), whatever
        // the name or a symlink in it points to.
        Kind::MountPoint => {
            MOUNT_POINTS.contains(&value) || (value.starts_with('/') && value.ends_with('/') && value.len() <= 4096)
        }
        Kind::JournalMatch => {
            value == "+"
                || value.split_once('=').is_some_and(|(field, _)| {
                    field.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                        && field.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                })
        }
        Kind::DateFormat => value.starts_with('+') && value.len() <= 256,
        Kind::PsFields => !value.is_empty() && value.split([',', ' ']).filter(|s| !s.is_empty()).all(is_ps_field),
        Kind::KubeResource => is_kube_type_list(value) || is_kube_type_name(value),
        Kind::KubeName => is_name(value) || is_kube_type_name(value),
        Kind::KubeOutput => {
            KUBE_OUTPUTS.contains(&value)
                || KUBE_OUTPUT_PREFIXES.iter().any(|p| value.starts_with(p) && value.len() <= 1024)
        }
        Kind::Port => {
            let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
            is_int(port) && ["tcp", "udp", "sctp"].contains(&proto)
        }
    };
    if ok { Ok(()) } else { Err(expected(kind)) }
}

/// What a kind accepts, for reasons.
fn expected(kind: Kind) -> String {
    match kind {
        Kind::Int => "a number".to_owned(),
        Kind::Count => "a number (optionally signed)".to_owned(),
        Kind::Lines => "a number or `all`".to_owned(),
        Kind::Boot => "a boot offset, a boot id or `all`".to_owned(),
        Kind::Text => "text of at most 1024 bytes".to_owned(),
        Kind::Name => "a name (letters, digits, `@._:+-`, not starting with `-`)".to_owned(),
        Kind::Names => "a comma-separated list of names".to_owned(),
        Kind::Time => "a time expression".to_owned(),
        Kind::Enum(list) | Kind::EnumList(list) => format!("one of {}", list.join(", ")),
        Kind::File => "an absolute file path".to_owned(),
        Kind::Path => "a path".to_owned(),
        Kind::MountPoint => {
            "a standard mount point or a directory written with a trailing `/` (df opens its operands, and opening a \
             device has effects)"
                .to_owned()
        }
        Kind::JournalMatch => "a journal match `FIELD=VALUE` or `+`".to_owned(),
        Kind::DateFormat => "an output format starting with `+` (any other operand sets the clock)".to_owned(),
        Kind::PsFields => "ps fields from the read-only list (no environment)".to_owned(),
        Kind::KubeResource => "a resource type from the read-only list (secrets need approval)".to_owned(),
        Kind::KubeName => "an object name, or TYPE/NAME with a read-only type".to_owned(),
        Kind::KubeOutput => "wide, json, yaml, name, jsonpath=, custom-columns= or go-template=".to_owned(),
        Kind::Port => "a port, optionally with /tcp, /udp or /sctp".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: Kind, v: &str) -> bool {
        check(kind, v).is_ok()
    }

    #[test]
    fn kinds_are_narrow() {
        assert!(ok(Kind::Name, "nginx.service") && ok(Kind::Name, "getty@tty1.service"));
        assert!(!ok(Kind::Name, "--root=/x") && !ok(Kind::Name, "a/b") && !ok(Kind::Name, ""));
        assert!(ok(Kind::Count, "+10") && ok(Kind::Count, "-5") && !ok(Kind::Count, "5k"));
        assert!(ok(Kind::Boot, "-1") && ok(Kind::Boot, "0123456789abcdef0123456789abcdef-2") && !ok(Kind::Boot, "x"));
        assert!(ok(Kind::PsFields, "pid,comm,%cpu") && ok(Kind::PsFields, "-%cpu") && ok(Kind::PsFields, "pid=PID"));
        assert!(!ok(Kind::PsFields, "environ") && !ok(Kind::PsFields, "pid,env"));
        assert!(ok(Kind::KubeResource, "pods,svc") && ok(Kind::KubeResource, "deploy/web"));
        assert!(!ok(Kind::KubeResource, "secrets") && !ok(Kind::KubeResource, "pods,secret"));
        assert!(!ok(Kind::KubeResource, "secret/db") && !ok(Kind::KubeName, "secret/db"));
        assert!(!ok(Kind::KubeOutput, "jsonpath-file=/etc/shadow") && ok(Kind::KubeOutput, "jsonpath={.items}"));
        assert!(ok(Kind::JournalMatch, "_SYSTEMD_UNIT=nginx.service") && !ok(Kind::JournalMatch, "/usr/bin/x"));
        assert!(ok(Kind::DateFormat, "+%F") && !ok(Kind::DateFormat, "010100002000"));
        assert!(ok(Kind::File, "/var/log/syslog") && !ok(Kind::File, "var/log/syslog"));
        assert!(ok(Kind::MountPoint, "/var") && ok(Kind::MountPoint, "/srv/app/") && ok(Kind::MountPoint, "/"));
        assert!(
            !ok(Kind::MountPoint, "/dev/watchdog") && !ok(Kind::MountPoint, "/tmp/x") && !ok(Kind::MountPoint, "var/")
        );
    }
}
