//! The read-only set, as data: every program that may run without approval, and exactly what it
//! may be given (see [`super::spec`]). A program missing here needs approval; so does anything a
//! program here is given that its entry does not list.
//!
//! Left out on purpose: interpreters, editors and pagers (they run code or escape to a shell),
//! `git` (the agent runs in `/`, where git reads whatever repository and config it finds, and
//! `git diff` outside a repository reads any two files), `lsof` (its own parser, device caches),
//! `docker inspect` and `kubectl get secret` (secrets), and every option that writes a file, reads
//! a file the path allowlist has not checked, follows forever, or switches to another host.
//!
//! Beyond options, three things decide what an entry may be given: whether the program *opens* an
//! operand it only seems to look up (`df` does, so its operands can only name directories: see
//! [`Kind::MountPoint`]); whether it ends on its own (an interval without a count samples until
//! killed, `docker stats` without `--no-stream`, or with it turned off again); and whether it
//! prints an environment (`ps e`, `docker logs --details`, `docker inspect`). Unit `Environment=`
//! shown by `systemctl show`/`cat` is left in: systemd shows it to every user over D-Bus, so it
//! is not a secret store (systemd's documentation says so).

use super::spec::{
    Kind, NO_POSITIONALS, Node, Opt, Positionals, Program, Style, flag, gnu, node, none_or_all, opt_val, pflag,
    positionals, val, with_subs,
};

const COLOR: Kind = Kind::Enum(&["always", "never", "auto"]);
const JOURNAL_OUTPUTS: Kind = Kind::Enum(&[
    "short",
    "short-full",
    "short-iso",
    "short-iso-precise",
    "short-precise",
    "short-monotonic",
    "short-delta",
    "short-unix",
    "verbose",
    "export",
    "json",
    "json-pretty",
    "json-sse",
    "json-seq",
    "cat",
    "with-unit",
]);
const PRIORITIES: Kind = Kind::Enum(&[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "0", "1", "2", "3", "4", "5", "6", "7",
]);

/// Up to this many file operands per command.
const FILES: Positionals = positionals(&[Kind::File], 1, 8);
/// Paths only looked up (listed, stat'ed), never read.
const PATHS: Positionals = positionals(&[Kind::Path], 0, 16);
const NAMES: Positionals = positionals(&[Kind::Name], 0, 32);
const SOME_NAMES: Positionals = positionals(&[Kind::Name], 1, 32);
/// `INTERVAL COUNT` or nothing: an interval alone samples until killed.
const INTERVAL_COUNT: Positionals = none_or_all(&[Kind::Int, Kind::Int]);

const CAT: &[Opt] = &[
    flag('A', "show-all"),
    flag('b', "number-nonblank"),
    flag('e', ""),
    flag('E', "show-ends"),
    flag('n', "number"),
    flag('s', "squeeze-blank"),
    flag('t', ""),
    flag('T', "show-tabs"),
    flag('v', "show-nonprinting"),
];

const DATE: &[Opt] = &[
    flag('u', "utc"),
    flag('\0', "universal"),
    flag('R', "rfc-email"),
    opt_val('I', "iso-8601", Kind::Enum(&["date", "hours", "minutes", "seconds", "ns"])),
    val('\0', "rfc-3339", Kind::Enum(&["date", "seconds", "ns"])),
    // A time expression only: `TZ="/path"` inside a date string would load that file.
    val('d', "date", Kind::Time),
];

const DF: &[Opt] = &[
    flag('a', "all"),
    val('B', "block-size", Kind::Name),
    flag('h', "human-readable"),
    flag('H', "si"),
    flag('i', "inodes"),
    flag('k', ""),
    flag('l', "local"),
    flag('P', "portability"),
    flag('T', "print-type"),
    val('t', "type", Kind::Name),
    val('x', "exclude-type", Kind::Name),
    flag('\0', "total"),
    flag('\0', "no-sync"),
    opt_val(
        '\0',
        "output",
        Kind::EnumList(&[
            "source", "fstype", "itotal", "iused", "iavail", "ipcent", "size", "used", "avail", "pcent", "file",
            "target",
        ]),
    ),
];

const DMESG: &[Opt] = &[
    flag('T', "ctime"),
    flag('t', "notime"),
    flag('k', "kernel"),
    flag('u', "userspace"),
    flag('x', "decode"),
    flag('r', "raw"),
    flag('S', "syslog"),
    flag('P', "nopager"),
    flag('e', "reltime"),
    flag('d', "show-delta"),
    flag('J', "json"),
    val('l', "level", Kind::EnumList(&["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"])),
    val(
        'f',
        "facility",
        Kind::EnumList(&[
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
            "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
    ),
    opt_val('L', "color", COLOR),
    val('\0', "time-format", Kind::Enum(&["delta", "reltime", "ctime", "notime", "iso", "raw"])),
    val('\0', "since", Kind::Time),
    val('\0', "until", Kind::Time),
];

const DOCKER_PS: &[Opt] = &[
    flag('a', "all"),
    flag('q', "quiet"),
    val('n', "last", Kind::Int),
    flag('l', "latest"),
    flag('s', "size"),
    flag('\0', "no-trunc"),
    val('\0', "format", Kind::Text),
    val('f', "filter", Kind::Text),
];
const DOCKER_IMAGES: &[Opt] = &[
    flag('a', "all"),
    flag('q', "quiet"),
    flag('\0', "digests"),
    flag('\0', "no-trunc"),
    val('\0', "format", Kind::Text),
    val('f', "filter", Kind::Text),
];
const DOCKER_FORMAT: &[Opt] = &[val('f', "format", Kind::Text)];
const IMAGE_REPO: Positionals = positionals(&[Kind::Text], 0, 1);
const ONE_CONTAINER: Positionals = positionals(&[Kind::Name], 1, 1);

const DOCKER_SUBS: &[Node] = &[
    node("ps", DOCKER_PS, NO_POSITIONALS),
    node("images", DOCKER_IMAGES, IMAGE_REPO),
    node(
        "logs",
        &[
            val('n', "tail", Kind::Lines),
            flag('t', "timestamps"),
            val('\0', "since", Kind::Time),
            val('\0', "until", Kind::Time),
            // Not `--details`: it prints the attributes the log driver was given, which
            // `--log-opt env=…` fills with the container's environment.
        ],
        ONE_CONTAINER,
    ),
    node("version", DOCKER_FORMAT, NO_POSITIONALS),
    node("info", DOCKER_FORMAT, NO_POSITIONALS),
    // No `ps` options after the container: dockerd runs them through `ps` on the host.
    node("top", &[], ONE_CONTAINER),
    node("port", &[], positionals(&[Kind::Name, Kind::Port], 1, 2)),
    Node {
        requires: &["no-stream"],
        ..node(
            "stats",
            &[flag('a', "all"), flag('\0', "no-stream"), flag('\0', "no-trunc"), val('\0', "format", Kind::Text)],
            NAMES,
        )
    },
    with_subs("image", &[], &[node("ls", DOCKER_IMAGES, IMAGE_REPO), node("list", DOCKER_IMAGES, IMAGE_REPO)]),
    with_subs(
        "container",
        &[],
        &[
            node("ls", DOCKER_PS, NO_POSITIONALS),
            node("list", DOCKER_PS, NO_POSITIONALS),
            node("ps", DOCKER_PS, NO_POSITIONALS),
        ],
    ),
    with_subs("system", &[], &[node("df", &[flag('v', "verbose"), val('\0', "format", Kind::Text)], NO_POSITIONALS)]),
];

const DU: &[Opt] = &[
    flag('a', "all"),
    flag('s', "summarize"),
    flag('h', "human-readable"),
    flag('c', "total"),
    flag('x', "one-file-system"),
    val('d', "max-depth", Kind::Int),
    flag('k', ""),
    flag('m', ""),
    flag('b', "bytes"),
    flag('\0', "si"),
    flag('\0', "apparent-size"),
    flag('\0', "inodes"),
    flag('S', "separate-dirs"),
    val('\0', "exclude", Kind::Text),
    opt_val('\0', "time", Kind::Enum(&["atime", "access", "use", "ctime", "status"])),
];

const FINDMNT: &[Opt] = &[
    flag('l', "list"),
    flag('J', "json"),
    flag('D', "df"),
    flag('n', "noheadings"),
    flag('r', "raw"),
    flag('P', "pairs"),
    flag('a', "ascii"),
    flag('A', "all"),
    flag('k', "kernel"),
    flag('s', "fstab"),
    flag('m', "mtab"),
    flag('e', "evaluate"),
    flag('f', "first-only"),
    flag('u', "notruncate"),
    flag('b', "bytes"),
    flag('R', "submounts"),
    flag('v', "nofsroot"),
    flag('\0', "real"),
    flag('\0', "pseudo"),
    val('t', "types", Kind::Names),
    val('o', "output", Kind::Names),
    val('O', "options", Kind::Names),
    val('T', "target", Kind::Path),
    val('M', "mountpoint", Kind::Path),
    val('S', "source", Kind::Path),
];

const FREE: &[Opt] = &[
    flag('b', "bytes"),
    flag('k', "kibi"),
    flag('m', "mebi"),
    flag('g', "gibi"),
    flag('\0', "tebi"),
    flag('\0', "pebi"),
    flag('\0', "kilo"),
    flag('\0', "mega"),
    flag('\0', "giga"),
    flag('\0', "tera"),
    flag('\0', "peta"),
    flag('h', "human"),
    flag('\0', "si"),
    flag('l', "lohi"),
    flag('t', "total"),
    flag('v', "committed"),
    flag('w', "wide"),
];

const GREP: &[Opt] = &[
    val('e', "regexp", Kind::Text),
    val('f', "file", Kind::File),
    flag('i', "ignore-case"),
    flag('\0', "no-ignore-case"),
    flag('v', "invert-match"),
    flag('w', "word-regexp"),
    flag('x', "line-regexp"),
    flag('c', "count"),
    opt_val('\0', "color", COLOR),
    opt_val('\0', "colour", COLOR),
    flag('L', "files-without-match"),
    flag('l', "files-with-matches"),
    val('m', "max-count", Kind::Int),
    flag('o', "only-matching"),
    flag('q', "quiet"),
    flag('s', "no-messages"),
    flag('b', "byte-offset"),
    flag('H', "with-filename"),
    flag('h', "no-filename"),
    val('\0', "label", Kind::Text),
    flag('n', "line-number"),
    flag('T', "initial-tab"),
    flag('Z', "null"),
    flag('z', "null-data"),
    val('A', "after-context", Kind::Int),
    val('B', "before-context", Kind::Int),
    val('C', "context", Kind::Int),
    flag('a', "text"),
    flag('I', ""),
    val('\0', "binary-files", Kind::Enum(&["binary", "text", "without-match"])),
    flag('E', "extended-regexp"),
    flag('F', "fixed-strings"),
    flag('G', "basic-regexp"),
    flag('P', "perl-regexp"),
];

const HEAD_TAIL: &[Opt] = &[
    val('n', "lines", Kind::Count),
    val('c', "bytes", Kind::Count),
    flag('q', "quiet"),
    flag('\0', "silent"),
    flag('v', "verbose"),
    flag('z', "zero-terminated"),
];

const HOSTNAME: &[Opt] = &[
    flag('s', "short"),
    flag('f', "fqdn"),
    flag('\0', "long"),
    flag('i', "ip-address"),
    flag('I', "all-ip-addresses"),
    flag('d', "domain"),
    flag('A', "all-fqdns"),
    flag('a', "alias"),
];

const ID: &[Opt] = &[
    flag('u', "user"),
    flag('g', "group"),
    flag('G', "groups"),
    flag('n', "name"),
    flag('r', "real"),
    flag('z', "zero"),
];

const IOSTAT: &[Opt] = &[
    flag('c', ""),
    flag('d', ""),
    flag('x', ""),
    flag('k', ""),
    flag('m', ""),
    flag('h', ""),
    flag('t', ""),
    flag('z', ""),
    flag('N', ""),
    flag('y', ""),
];

const JOURNALCTL: &[Opt] = &[
    val('u', "unit", Kind::Name),
    val('\0', "user-unit", Kind::Name),
    val('t', "identifier", Kind::Name),
    Opt { short: 'n', long: "lines", arg: super::spec::Arg::Greedy(Kind::Lines) },
    val('S', "since", Kind::Time),
    val('U', "until", Kind::Time),
    val('p', "priority", PRIORITIES),
    Opt { short: 'b', long: "boot", arg: super::spec::Arg::Greedy(Kind::Boot) },
    flag('k', "dmesg"),
    val('o', "output", JOURNAL_OUTPUTS),
    flag('r', "reverse"),
    val('g', "grep", Kind::Text),
    opt_val('\0', "case-sensitive", Kind::Enum(&["yes", "no", "true", "false", "1", "0"])),
    flag('\0', "no-pager"),
    flag('a', "all"),
    flag('x', "catalog"),
    flag('q', "quiet"),
    flag('\0', "no-hostname"),
    flag('\0', "no-full"),
    flag('l', "full"),
    flag('\0', "utc"),
    flag('m', "merge"),
    flag('\0', "system"),
    flag('\0', "list-boots"),
    flag('\0', "disk-usage"),
    val('\0', "output-fields", Kind::Names),
    val('\0', "facility", Kind::Names),
    val('F', "field", Kind::Name),
];

const KUBE_GET: &[Opt] = &[
    val('o', "output", Kind::KubeOutput),
    val('l', "selector", Kind::Text),
    val('\0', "field-selector", Kind::Text),
    flag('A', "all-namespaces"),
    flag('\0', "show-labels"),
    flag('\0', "no-headers"),
    val('L', "label-columns", Kind::Text),
    val('\0', "sort-by", Kind::Text),
    flag('\0', "show-kind"),
    flag('\0', "ignore-not-found"),
    val('\0', "chunk-size", Kind::Int),
];
const KUBE_OBJECTS: Positionals = positionals(&[Kind::KubeResource, Kind::KubeName], 1, 32);
const KUBE_TOP: &[Opt] = &[
    flag('A', "all-namespaces"),
    val('l', "selector", Kind::Text),
    flag('\0', "containers"),
    val('\0', "sort-by", Kind::Enum(&["cpu", "memory"])),
    flag('\0', "no-headers"),
];
const ONE_NAME: Positionals = positionals(&[Kind::Name], 0, 1);

const KUBECTL_SUBS: &[Node] = &[
    node("get", KUBE_GET, KUBE_OBJECTS),
    node(
        "describe",
        &[val('l', "selector", Kind::Text), flag('A', "all-namespaces"), flag('\0', "show-events")],
        KUBE_OBJECTS,
    ),
    node(
        "logs",
        &[
            val('c', "container", Kind::Name),
            val('\0', "tail", Kind::Count),
            val('\0', "since", Kind::Time),
            val('\0', "since-time", Kind::Time),
            flag('\0', "timestamps"),
            flag('p', "previous"),
            flag('\0', "all-containers"),
            val('\0', "limit-bytes", Kind::Int),
            flag('\0', "prefix"),
            val('l', "selector", Kind::Text),
            val('\0', "max-log-requests", Kind::Int),
            flag('\0', "ignore-errors"),
        ],
        positionals(&[Kind::KubeName, Kind::Name], 0, 2),
    ),
    with_subs(
        "top",
        &[],
        &[
            node("pod", KUBE_TOP, ONE_NAME),
            node("pods", KUBE_TOP, ONE_NAME),
            node("po", KUBE_TOP, ONE_NAME),
            node("node", KUBE_TOP, ONE_NAME),
            node("nodes", KUBE_TOP, ONE_NAME),
            node("no", KUBE_TOP, ONE_NAME),
        ],
    ),
    node("version", &[flag('\0', "client"), val('o', "output", Kind::Enum(&["json", "yaml"]))], NO_POSITIONALS),
    node(
        "events",
        &[
            flag('A', "all-namespaces"),
            val('\0', "types", Kind::Names),
            val('\0', "for", Kind::KubeName),
            val('o', "output", Kind::KubeOutput),
            flag('\0', "no-headers"),
        ],
        NO_POSITIONALS,
    ),
    node(
        "api-resources",
        &[
            val('o', "output", Kind::Enum(&["wide", "name"])),
            flag('\0', "namespaced"),
            val('\0', "api-group", Kind::Name),
            val('\0', "verbs", Kind::Names),
            flag('\0', "no-headers"),
            val('\0', "sort-by", Kind::Enum(&["name", "kind"])),
        ],
        NO_POSITIONALS,
    ),
    node("cluster-info", &[], NO_POSITIONALS),
];

const LAST: &[Opt] = &[
    val('n', "limit", Kind::Int),
    flag('x', "system"),
    flag('F', "fulltimes"),
    flag('i', "ip"),
    flag('w', "fullnames"),
    flag('a', "hostlast"),
    flag('d', "dns"),
    flag('R', "nohostname"),
    val('s', "since", Kind::Time),
    val('t', "until", Kind::Time),
    val('\0', "time-format", Kind::Enum(&["notime", "short", "full", "iso"])),
];

const LS: &[Opt] = &[
    flag('a', "all"),
    flag('A', "almost-all"),
    flag('l', ""),
    flag('h', "human-readable"),
    flag('t', ""),
    flag('r', "reverse"),
    flag('S', ""),
    flag('d', "directory"),
    flag('i', "inode"),
    flag('n', "numeric-uid-gid"),
    flag('1', ""),
    flag('R', "recursive"),
    flag('s', "size"),
    flag('F', ""),
    flag('L', "dereference"),
    flag('Z', "context"),
    flag('c', ""),
    flag('u', ""),
    flag('X', ""),
    flag('v', ""),
    flag('G', "no-group"),
    flag('g', ""),
    flag('o', ""),
    flag('p', ""),
    flag('Q', "quote-name"),
    flag('B', "ignore-backups"),
    // Shell patterns of names not to list: matched against names, never read from a file.
    val('I', "ignore", Kind::Text),
    val('\0', "hide", Kind::Text),
    flag('\0', "si"),
    flag('\0', "full-time"),
    flag('\0', "group-directories-first"),
    val('\0', "time-style", Kind::Text),
    opt_val('\0', "color", COLOR),
    val('\0', "sort", Kind::Enum(&["none", "size", "time", "version", "extension", "width"])),
    val(
        '\0',
        "time",
        Kind::Enum(&["atime", "access", "use", "ctime", "status", "birth", "creation", "mtime", "modification"]),
    ),
];

const LSBLK: &[Opt] = &[
    flag('a', "all"),
    flag('b', "bytes"),
    flag('d', "nodeps"),
    flag('D', "discard"),
    flag('f', "fs"),
    flag('i', "ascii"),
    flag('J', "json"),
    flag('l', "list"),
    flag('m', "perms"),
    flag('n', "noheadings"),
    val('o', "output", Kind::Names),
    flag('O', "output-all"),
    flag('p', "paths"),
    flag('P', "pairs"),
    flag('r', "raw"),
    flag('S', "scsi"),
    flag('t', "topology"),
    val('e', "exclude", Kind::Names),
    val('I', "include", Kind::Names),
];

const LSCPU: &[Opt] = &[
    flag('a', "all"),
    flag('b', "online"),
    flag('c', "offline"),
    flag('J', "json"),
    flag('x', "hex"),
    flag('y', "physical"),
    opt_val('e', "extended", Kind::Names),
    opt_val('p', "parse", Kind::Names),
];

const NETSTAT: &[Opt] = &[
    flag('t', "tcp"),
    flag('u', "udp"),
    flag('w', "raw"),
    flag('x', "unix"),
    flag('l', "listening"),
    flag('n', "numeric"),
    flag('p', "programs"),
    flag('a', "all"),
    flag('s', "statistics"),
    flag('r', "route"),
    flag('i', "interfaces"),
    flag('e', "extend"),
    flag('W', "wide"),
    flag('g', "groups"),
    flag('o', "timers"),
];

const PGREP: &[Opt] = &[
    flag('l', "list-name"),
    flag('a', "list-full"),
    flag('f', "full"),
    flag('x', "exact"),
    flag('n', "newest"),
    flag('o', "oldest"),
    flag('c', "count"),
    flag('i', "ignore-case"),
    flag('v', "inverse"),
    flag('w', "lightweight"),
    val('u', "euid", Kind::Names),
    val('U', "uid", Kind::Names),
    val('P', "parent", Kind::Names),
    val('g', "pgroup", Kind::Names),
    val('s', "session", Kind::Names),
    val('t', "terminal", Kind::Names),
    val('G', "group", Kind::Names),
    val('d', "delimiter", Kind::Text),
];

const PS: &[Opt] = &[
    flag('A', ""),
    flag('e', ""),
    flag('a', ""),
    flag('d', ""),
    flag('N', "deselect"),
    flag('f', ""),
    flag('F', ""),
    flag('l', ""),
    flag('j', ""),
    flag('y', ""),
    flag('w', ""),
    flag('H', ""),
    flag('L', ""),
    flag('T', ""),
    flag('m', ""),
    flag('c', ""),
    val('o', "format", Kind::PsFields),
    val('O', "", Kind::PsFields),
    val('p', "pid", Kind::Names),
    val('\0', "ppid", Kind::Names),
    val('q', "quick-pid", Kind::Names),
    val('C', "", Kind::Names),
    val('u', "user", Kind::Names),
    val('U', "User", Kind::Names),
    val('g', "group", Kind::Names),
    val('G', "Group", Kind::Names),
    val('t', "tty", Kind::Names),
    val('s', "sid", Kind::Names),
    val('\0', "sort", Kind::PsFields),
    flag('\0', "forest"),
    flag('\0', "no-headers"),
    flag('\0', "headers"),
    val('\0', "cols", Kind::Int),
    val('\0', "columns", Kind::Int),
    val('\0', "width", Kind::Int),
];

const SS: &[Opt] = &[
    flag('t', "tcp"),
    flag('u', "udp"),
    flag('w', "raw"),
    flag('x', "unix"),
    flag('l', "listening"),
    flag('a', "all"),
    flag('n', "numeric"),
    flag('r', "resolve"),
    flag('p', "processes"),
    flag('e', "extended"),
    flag('m', "memory"),
    flag('i', "info"),
    flag('o', "options"),
    flag('s', "summary"),
    flag('4', "ipv4"),
    flag('6', "ipv6"),
    flag('0', "packet"),
    flag('H', "no-header"),
    flag('O', "oneline"),
    flag('Z', "context"),
    flag('z', "contexts"),
    flag('M', "mptcp"),
    flag('S', "sctp"),
    flag('d', "dccp"),
    val('f', "family", Kind::Enum(&["unix", "inet", "inet6", "link", "netlink", "vsock", "tipc", "xdp", "mptcp"])),
    val(
        'A',
        "query",
        Kind::EnumList(&[
            "all",
            "inet",
            "tcp",
            "udp",
            "raw",
            "unix",
            "packet",
            "netlink",
            "unix_dgram",
            "unix_stream",
            "unix_seqpacket",
            "packet_raw",
            "packet_dgram",
            "dccp",
            "sctp",
            "vsock_stream",
            "vsock_dgram",
            "xdp",
            "mptcp",
            "tipc",
        ]),
    ),
];

const SYSTEMCTL: &[Opt] = &[
    flag('a', "all"),
    flag('l', "full"),
    val('t', "type", Kind::Names),
    val('\0', "state", Kind::Names),
    val('p', "property", Kind::Names),
    val('P', "", Kind::Name),
    flag('\0', "value"),
    flag('\0', "no-pager"),
    flag('\0', "no-legend"),
    flag('\0', "plain"),
    val('n', "lines", Kind::Int),
    val('o', "output", JOURNAL_OUTPUTS),
    flag('\0', "failed"),
    flag('q', "quiet"),
    flag('\0', "system"),
    flag('\0', "reverse"),
    flag('\0', "after"),
    flag('\0', "before"),
    flag('\0', "show-types"),
    flag('\0', "no-ask-password"),
    val('\0', "timestamp", Kind::Enum(&["pretty", "unix", "us", "utc", "us+utc"])),
];

const SYSTEMCTL_SUBS: &[Node] = &[
    node("status", &[], NAMES),
    node("show", &[], NAMES),
    node("cat", &[], SOME_NAMES),
    node("is-active", &[], SOME_NAMES),
    node("is-enabled", &[], SOME_NAMES),
    node("is-failed", &[], SOME_NAMES),
    node("list-units", &[], NAMES),
    node("list-unit-files", &[], NAMES),
    node("list-timers", &[], NAMES),
    node("list-sockets", &[], NAMES),
    node("list-dependencies", &[], ONE_NAME),
    node("list-jobs", &[], NO_POSITIONALS),
];

const STATUS_SHOW: &[Node] = &[node("status", &[], NO_POSITIONALS), node("show", &[], NO_POSITIONALS)];

const TOP: &[Opt] = &[
    flag('b', ""),
    val('n', "", Kind::Int),
    flag('c', ""),
    flag('H', ""),
    flag('i', ""),
    flag('S', ""),
    val('o', "", Kind::Text),
    val('p', "", Kind::Names),
    val('u', "", Kind::Name),
    val('U', "", Kind::Name),
    val('d', "", Kind::Time),
    val('E', "", Kind::Enum(&["k", "m", "g", "t", "p", "e"])),
    val('e', "", Kind::Enum(&["k", "m", "g", "t", "p"])),
];

const UNAME: &[Opt] = &[
    flag('a', "all"),
    flag('s', "kernel-name"),
    flag('n', "nodename"),
    flag('r', "kernel-release"),
    flag('v', "kernel-version"),
    flag('m', "machine"),
    flag('p', "processor"),
    flag('i', "hardware-platform"),
    flag('o', "operating-system"),
];

const VMSTAT: &[Opt] = &[
    flag('a', "active"),
    flag('f', "forks"),
    flag('m', "slabs"),
    flag('s', "stats"),
    flag('d', "disk"),
    flag('D', "disk-sum"),
    flag('t', "timestamp"),
    flag('w', "wide"),
    flag('n', "one-header"),
    val('S', "unit", Kind::Enum(&["k", "K", "m", "M"])),
    val('p', "partition", Kind::Name),
];

const WC: &[Opt] =
    &[flag('l', "lines"), flag('w', "words"), flag('c', "bytes"), flag('m', "chars"), flag('L', "max-line-length")];

const WHO: &[Opt] = &[
    flag('a', "all"),
    flag('b', "boot"),
    flag('d', "dead"),
    flag('H', "heading"),
    flag('l', "login"),
    flag('p', "process"),
    flag('q', "count"),
    flag('r', "runlevel"),
    flag('s', "short"),
    flag('t', "time"),
    flag('T', "mesg"),
    flag('u', "users"),
    flag('m', ""),
];

/// `ip` options, exactly as spelled, each checked against iproute2's prefix order: `-s` is
/// `-stats`, `-d` `-details`, `-br` `-brief` (`-b` would be `-batch`), `-j` `-json`, `-p`
/// `-pretty`, `-o` `-oneline`. `-h` is left out (`-help` in older releases, `-human` in newer).
pub(crate) const IP_OPTIONS: &[&str] = &[
    "-4",
    "-6",
    "-s",
    "-stats",
    "-statistics",
    "-d",
    "-details",
    "-br",
    "-brief",
    "-j",
    "-json",
    "-p",
    "-pretty",
    "-o",
    "-oneline",
];

/// `ip` objects (each spelling resolves to the intended object first in iproute2's table) and
/// the verbs that only show.
pub(crate) const IP_OBJECTS: &[(&[&str], &[&str])] = &[
    (&["address", "addr", "a"], &["show", "list", "lst", "ls"]),
    (&["link", "l"], &["show", "list", "lst", "ls"]),
    (&["route", "r"], &["show", "list", "lst", "ls", "get"]),
    (&["rule"], &["show", "list", "lst", "ls"]),
    (&["neighbour", "neighbor", "neigh", "n"], &["show", "list", "lst", "ls", "get"]),
];

/// The table. Sorted by name (a test checks), looked up by binary search.
pub(crate) static PROGRAMS: &[Program] = &[
    gnu(node("cat", CAT, FILES)),
    gnu(node("date", DATE, positionals(&[Kind::DateFormat], 0, 1))),
    gnu(node("df", DF, positionals(&[Kind::MountPoint], 0, 16))),
    gnu(node("dmesg", DMESG, NO_POSITIONALS)),
    pflag(with_subs("docker", &[], DOCKER_SUBS)),
    gnu(node("du", DU, PATHS)),
    gnu(node("findmnt", FINDMNT, positionals(&[Kind::Path], 0, 2))),
    gnu(node("free", FREE, NO_POSITIONALS)),
    gnu(Node { pattern_opts: &["regexp", "file"], ..node("grep", GREP, positionals(&[Kind::Text, Kind::File], 2, 9)) }),
    gnu(node("head", HEAD_TAIL, FILES)),
    gnu(node("hostname", HOSTNAME, NO_POSITIONALS)),
    gnu(Node { sub_required: false, ..with_subs("hostnamectl", &[], STATUS_SHOW) }),
    gnu(node("id", ID, ONE_NAME)),
    gnu(node("iostat", IOSTAT, INTERVAL_COUNT)),
    Program { style: Style::Ip, root: node("ip", &[], NO_POSITIONALS), bsd_letters: "" },
    gnu(node("journalctl", JOURNALCTL, positionals(&[Kind::JournalMatch], 0, 16))),
    // Not `--context`, `--cluster`, `--user`, `--kubeconfig`, `-s`: each points kubectl at another
    // cluster or identity than the host's default.
    pflag(with_subs("kubectl", &[val('n', "namespace", Kind::Name)], KUBECTL_SUBS)),
    gnu(node("last", LAST, positionals(&[Kind::Name], 0, 8))),
    gnu(node("ls", LS, PATHS)),
    gnu(node("lsblk", LSBLK, positionals(&[Kind::Path], 0, 8))),
    gnu(node("lscpu", LSCPU, NO_POSITIONALS)),
    // Listing only: `-a`, `-o`, `-T`, `--bind` and any operand mount something.
    gnu(node("mount", &[flag('l', "show-labels")], NO_POSITIONALS)),
    gnu(node("mpstat", &[flag('A', ""), flag('u', ""), val('P', "", Kind::Names)], INTERVAL_COUNT)),
    gnu(node("netstat", NETSTAT, NO_POSITIONALS)),
    // Bare `nginx` starts a server: only testing the configuration or printing the version.
    gnu(Node {
        require_one: &["t", "T", "v", "V"],
        ..node("nginx", &[flag('t', ""), flag('T', ""), flag('v', ""), flag('V', ""), flag('q', "")], NO_POSITIONALS)
    }),
    gnu(node("nproc", &[flag('\0', "all"), val('\0', "ignore", Kind::Int)], NO_POSITIONALS)),
    gnu(node("pgrep", PGREP, ONE_NAME_OR_PATTERN)),
    gnu(node("pidof", &[flag('s', ""), flag('c', ""), flag('x', "")], SOME_NAMES)),
    // BSD letters without `e` (every process's environment) and without those taking values.
    Program { style: Style::Ps, root: node("ps", PS, NO_POSITIONALS), bsd_letters: "aucxwfjlvrHSmhsTn" },
    gnu(node("ss", SS, positionals(&[Kind::Text], 0, 32))),
    gnu(node(
        "stat",
        &[
            flag('L', "dereference"),
            flag('f', "file-system"),
            flag('t', "terse"),
            val('c', "format", Kind::Text),
            val('\0', "printf", Kind::Text),
        ],
        positionals(&[Kind::Path], 1, 16),
    )),
    gnu(Node { sub_required: false, ..with_subs("systemctl", SYSTEMCTL, SYSTEMCTL_SUBS) }),
    gnu(node("tail", HEAD_TAIL, FILES)),
    gnu(Node { sub_required: false, ..with_subs("timedatectl", &[], STATUS_SHOW) }),
    gnu(Node { requires: &["b", "n"], ..node("top", TOP, NO_POSITIONALS) }),
    gnu(node("uname", UNAME, NO_POSITIONALS)),
    gnu(node("uptime", &[flag('p', "pretty"), flag('s', "since")], NO_POSITIONALS)),
    gnu(node("vmstat", VMSTAT, INTERVAL_COUNT)),
    gnu(node(
        "w",
        &[flag('h', "no-header"), flag('s', "short"), flag('f', "from"), flag('o', "old-style"), flag('i', "ip-addr")],
        ONE_NAME,
    )),
    gnu(node("wc", WC, FILES)),
    gnu(node("who", WHO, NO_POSITIONALS)),
    gnu(node("whoami", &[], NO_POSITIONALS)),
];

const ONE_NAME_OR_PATTERN: Positionals = positionals(&[Kind::Text], 0, 1);

/// The entry for `program`, if it is in the read-only set.
pub(crate) fn find(program: &str) -> Option<&'static Program> {
    PROGRAMS.binary_search_by(|p| p.root.name.cmp(program)).ok().map(|i| &PROGRAMS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        for pair in PROGRAMS.windows(2) {
            assert!(
                pair[0].root.name < pair[1].root.name,
                "{} must come before {}",
                pair[0].root.name,
                pair[1].root.name
            );
        }
    }

    #[test]
    fn no_node_lists_an_option_twice() {
        fn walk(node: &Node, inherited: &[Opt]) {
            let all: Vec<Opt> = inherited.iter().chain(node.opts).copied().collect();
            for (i, a) in all.iter().enumerate() {
                for b in &all[i + 1..] {
                    assert!(a.short == '\0' || a.short != b.short, "{}: -{} twice", node.name, a.short);
                    assert!(a.long.is_empty() || a.long != b.long, "{}: --{} twice", node.name, a.long);
                }
            }
            for sub in node.subs {
                walk(sub, &all);
            }
        }
        for p in PROGRAMS {
            walk(&p.root, &[]);
        }
    }

    #[test]
    fn secrets_are_not_a_read_only_kubernetes_type() {
        let types = super::super::kinds::KUBE_TYPES;
        assert!(types.iter().all(|t| !t.starts_with("secret") && !t.contains("token")));
    }
}
