//! Which key names hold a secret, and which values are never one. One place, as tables.
//!
//! A key is split into lower-case words at `_`, `-`, `.`, `/`, spaces and camelCase boundaries
//! (`spring.datasource.password` → spring, datasource, password; `AccountKey` → account, key;
//! `secretName` → secret, name). Then, in order:
//! 1. a last word that names *about* a secret (`secretName`, `token_type`, `password_file`,
//!    `max_token_age_seconds`) or a quantity word anywhere (`max_tokens`) → not a secret;
//! 2. a word that is a credential (`password`, `token`, `bindpw`, `dbpassword`, `PHPSESSID`) or a
//!    key qualified as secret (`api key`, `AccountKey`, `client-key-data`) → a secret;
//! 3. a weak word (`key`, `access`, `api`, a provider's name) → a secret only if the value looks
//!    like a random token (checked by the caller with [`looks_random`]).
//!
//! Words are matched whole, so `compass`, `bypass`, `keyboard` and `monkey` never count; glued
//! words count by their credential suffix (`dbpassword`, `jsessionid`, `authtoken`).

/// Words that are a credential wherever they appear in a key.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pass",
    "pwd",
    "pw",
    "secret",
    "token",
    "credential",
    "credentials",
    "creds",
    "cred",
    "apikey",
    "bindpw",
    "rootpw",
    "sshpass",
    "dbpass",
    "rootpass",
    "adminpass",
    "userpass",
    "smtppass",
    "mailpass",
    "ftppass",
    "ldappass",
    "redispass",
    "mysqlpass",
    "requirepass",
    "masterauth",
    "masterpass",
    "storepass",
    "keypass",
    "dsn",
    "cookie",
    "auth",
    "authorization",
    "signature",
    "sig",
    "sessionid",
    "sessid",
    "session",
    "passwords",
    "passw",
    "pswd",
    "psw",
    "pgpass",
    "mongopass",
    "mnemonic",
    "seedphrase",
    // A pre-shared key: IPsec's `: PSK "…"`, wpa_supplicant's and NetworkManager's `psk=`.
    "psk",
    // SSSD's `ldap_default_authtok`, PAM's authentication token.
    "authtok",
    // SNMP's community strings (`rocommunity <community> <source>`).
    "rocommunity",
    "rwcommunity",
];

/// `X seed` and `X phrase` are secrets for these X: a one-time-password generator's seed, a
/// wallet's recovery words (a test's random `SEED=42` is not one).
const SEED_QUALIFIERS: &[&str] = &["totp", "mfa", "otp", "twofa", "hotp", "wallet", "recovery", "seed"];

/// Glued words that end in a credential (`dbpassword`, `authtoken`, `jsessionid`).
const SECRET_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "accountkey",
    "masterkey",
    "authkey",
    "sharedkey",
    "signingkey",
    "encryptionkey",
    "sessionid",
    "sessid",
    "credential",
    "credentials",
    "bindpw",
    "rootpw",
    "storepass",
    "keypass",
];

/// `X key` (or `Xkey`) is a secret for these X.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "account",
    "master",
    "encryption",
    "decryption",
    "enc",
    "signing",
    "sign",
    "shared",
    "app",
    "client",
    "auth",
    "license",
    "licence",
    "service",
    "storage",
    "subscription",
    "consumer",
    "ssh",
    "gpg",
    "pgp",
    "hmac",
    "jwt",
    "webhook",
    "deploy",
    "session",
    "sess",
    "cookie",
    "crypt",
    "crypto",
    "cipher",
    "aes",
    "root",
    "admin",
    "partner",
    "integration",
    "ingest",
    "server",
    "push",
    "mac",
    "wrapping",
    "write",
    "tls",
    "ssl",
];

/// `X key` is an identifier, not a credential, for these X: a cache's, a table's or a
/// message's key, a WebSocket handshake nonce (`X-Cache-Key`, `primary_key`, `Sec-WebSocket-Key`).
const ID_KEY_QUALIFIERS: &[&str] = &[
    "cache",
    "foreign",
    "sort",
    "partition",
    "routing",
    "idempotency",
    "dedup",
    "dedupe",
    "deduplication",
    "socket",
    "lookup",
    "hash",
    "range",
    "row",
    "shard",
    "composite",
    "unique",
    "index",
    "object",
    "map",
    "group",
    "message",
    "event",
    "record",
    "sequence",
    "order",
];

/// A last word saying the value is *about* a secret, not the secret: its name, kind, place,
/// size or lifetime.
const ABOUT_WORDS: &[&str] = &[
    // `--password-stdin`: where the secret comes from, a switch without a value.
    "stdin",
    // Vault's `token_accessor`: a handle on a token that cannot be used as one.
    "accessor",
    // Switches and settings about a credential, not holding one: `--no-auth-warning`,
    // `--cookie-jar FILE`, `--manual-auth-hook SCRIPT`, `--discovery-token-ca-cert-hash
    // sha256:…` (a public key's digest), `PASSWORD_HASHER=argon2`.
    "warning",
    "warnings",
    "jar",
    "hook",
    "hooks",
    "hash",
    "hasher",
    // PAM's `new_authtok_reqd`, a PSK's `psk_identity` (the public half).
    "reqd",
    "identity",
    "name",
    "names",
    "type",
    "types",
    "kind",
    "file",
    "files",
    "filename",
    "path",
    "paths",
    "dir",
    "directory",
    "url",
    "uri",
    "urls",
    "endpoint",
    "endpoints",
    "host",
    "hostname",
    "port",
    "user",
    "username",
    "id",
    "ids",
    "arn",
    "ref",
    "reference",
    "length",
    "len",
    "size",
    "bits",
    "age",
    "ttl",
    "seconds",
    "secs",
    "sec",
    "ms",
    "millis",
    "minutes",
    "mins",
    "hours",
    "days",
    "expiry",
    "expires",
    "expiration",
    "expire",
    "expired",
    "timeout",
    "lifetime",
    "duration",
    "interval",
    "window",
    "policy",
    "policies",
    "format",
    "hint",
    "prompt",
    "header",
    "headers",
    "field",
    "fields",
    "param",
    "params",
    "parameter",
    "enabled",
    "enable",
    "disabled",
    "disable",
    "required",
    "require",
    "mode",
    "method",
    "methods",
    "algorithm",
    "algorithms",
    "alg",
    "algo",
    "scheme",
    "provider",
    "providers",
    "version",
    "label",
    "labels",
    "location",
    "manager",
    "source",
    "env",
    "var",
    "vars",
    "variable",
    "authentication",
    "rotation",
    "reset",
    "change",
    "changed",
    "update",
    "updated",
    "created",
    "status",
    "state",
    "valid",
    "usage",
    "strength",
    "complexity",
    "regex",
    "pattern",
    "rule",
    "rules",
    "check",
    "mask",
    "masked",
    "prefix",
    "suffix",
    "template",
    "placeholder",
    "selector",
    "namespace",
    "flow",
    "backend",
    "plugin",
    "module",
    "handler",
    "config",
    "configuration",
    "settings",
    "options",
    "level",
    "context",
    "realm",
    "scope",
    "scopes",
    "audience",
    "issuer",
    "domain",
    "group",
    "groups",
    "role",
    "roles",
    "error",
    "errors",
    "failed",
    "failure",
    "failures",
    "success",
    "attempts",
    "retries",
    "bucket",
    "rate",
    "date",
    "time",
    "timestamp",
    "at",
    "class",
    "encoding",
    "charset",
    "sent",
    "received",
    "exchange",
    "introspection",
    "revocation",
    "delay",
    "title",
    "description",
    "desc",
    "help",
    "message",
    "msg",
    "store",
    "stores",
    "vault",
    "basic",
    "key_id",
    "keyid",
    "fingerprint",
    "digest",
    "checksum",
    "public",
    "pub",
    "usages",
    "spec",
    "specs",
    "volume",
    "volumes",
    "mount",
    "mounts",
    "data_source",
    "store_name",
    "count",
    "limit",
];

/// Words anywhere in a key that make it a quantity (`max_tokens`, `token_count_total`).
const QUANTITY_WORDS: &[&str] = &["max", "min", "num", "total", "count", "limit"];

/// Weak words: a secret only when the value looks like a random token. Provider names are here
/// too (gitleaks' provider rules: `heroku`, `datadog`, … next to a random value).
const WEAK_WORDS: &[&str] = &[
    "key",
    // A list of tokens (`API_TOKENS=…,…`) or a count of them (`prompt_tokens: 512`), secrets or
    // where they come from (`secrets: inherit`): the value tells.
    "tokens",
    "secrets",
    "access",
    "api",
    "private",
    "signing",
    "hmac",
    "salt",
    "otp",
    "pin",
    "nonce",
    "adafruit",
    "adobe",
    "airtable",
    "algolia",
    "alibaba",
    "asana",
    "atlassian",
    "beamer",
    "bitbucket",
    "bittrex",
    "cloudflare",
    "codecov",
    "cohere",
    "coinbase",
    "confluent",
    "contentful",
    "datadog",
    "discord",
    "droneci",
    "dropbox",
    "etsy",
    "facebook",
    "fastly",
    "finicity",
    "finnhub",
    "flickr",
    "freshbooks",
    "gitter",
    "gocardless",
    "heroku",
    "hubspot",
    "intercom",
    "jfrog",
    "kraken",
    "kucoin",
    "launchdarkly",
    "linkedin",
    "lob",
    "looker",
    "mailchimp",
    "mailgun",
    "mapbox",
    "mattermost",
    "messagebird",
    "meraki",
    "netlify",
    "newrelic",
    "okta",
    "plaid",
    "rapidapi",
    "sendbird",
    "sentry",
    "snyk",
    "sonar",
    "squarespace",
    "sumo",
    "sumologic",
    "telegram",
    "travis",
    "twilio",
    "twitch",
    "twitter",
    "yandex",
    "zendesk",
    "mistral",
    "openai",
    "anthropic",
    "gemini",
    "pagerduty",
    "opsgenie",
    "circleci",
    "vercel",
    "supabase",
    "firebase",
    "algolia",
    "pusher",
    "segment",
    "mixpanel",
    "amplitude",
    "rollbar",
    "bugsnag",
    "honeycomb",
    "logdna",
    "loggly",
    "papertrail",
    "splunk",
];

/// Provider names that start a key-aware look (the weak words that are not everyday words).
pub(super) fn provider_roots() -> impl Iterator<Item = &'static str> {
    WEAK_WORDS.iter().copied().filter(|w| {
        !matches!(
            *w,
            "key"
                | "access"
                | "api"
                | "private"
                | "signing"
                | "hmac"
                | "salt"
                | "otp"
                | "pin"
                | "nonce"
                | "lob"
                | "segment"
                | "sumo"
        )
    })
}

/// How a key name reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyClass {
    /// Not a secret.
    Plain,
    /// Holds a secret, whatever its value looks like.
    Secret,
    /// Holds a secret only when its value looks random.
    Weak,
}

/// Splits a key into its words (byte ranges of `key`): the last 16, since a key's last words say
/// what it holds.
fn words(key: &str) -> ([(usize, usize); 16], usize) {
    let bytes = key.as_bytes();
    let mut out = [(0usize, 0usize); 16];
    let mut n = 0;
    let mut push = |range: (usize, usize)| {
        if n == out.len() {
            out.rotate_left(1);
            n -= 1;
        }
        out[n] = range;
        n += 1;
    };
    let mut start = None::<usize>;
    for (i, &b) in bytes.iter().enumerate() {
        let alnum = b.is_ascii_alphanumeric();
        if let Some(s) = start {
            let boundary = !alnum
                // camelCase: a lower-case letter or digit followed by an upper-case one.
                || (b.is_ascii_uppercase() && (bytes[i - 1].is_ascii_lowercase() || bytes[i - 1].is_ascii_digit()))
                // ACRONYMWord: the last upper-case letter of a run before a lower-case one.
                || (b.is_ascii_uppercase()
                    && bytes[i - 1].is_ascii_uppercase()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase));
            if boundary {
                push((s, i));
                start = alnum.then_some(i);
            }
        } else if alnum {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        push((s, bytes.len()));
    }
    (out, n)
}

pub(super) fn is_in(word: &str, list: &[&str]) -> bool {
    list.iter().any(|w| w.eq_ignore_ascii_case(word))
}

fn ends_with_ci(word: &str, suffix: &str) -> bool {
    word.len() >= suffix.len()
        && word.is_char_boundary(word.len() - suffix.len())
        && word[word.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A numbered word as the word it numbers (`token1`, `password2`, `pw3` → `token`, `password`,
/// `pw`): a second credential is still a credential. Words with fewer than two letters before the
/// digits stay whole (`s3`, `x509`).
fn numbered(w: &str) -> &str {
    let t = w.trim_end_matches(|c: char| c.is_ascii_digit());
    if t.len() >= 2 && t.len() < w.len() && t.bytes().all(|b| b.is_ascii_alphabetic()) { t } else { w }
}

/// Classifies a key name.
pub(super) fn classify(key: &str) -> KeyClass {
    // The shell's working directory, not a password (`MYSQL_PWD` and `Pwd=` still are); web
    // servers' pass-through directives, whose value is an upstream.
    if key == "PWD" || key == "OLDPWD" || PLAIN_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return KeyClass::Plain;
    }
    let (ranges, n) = words(key);
    if n == 0 {
        return KeyClass::Plain;
    }
    let word = |i: usize| {
        let (s, e) = ranges[i];
        // Only a word of its own is numbered (`token1`, `api_token_2`): a camelCase part of a
        // would-be key (`FakeReg1stryPass9`, a password read as a key) is not.
        if s == 0 || !key.as_bytes()[s - 1].is_ascii_alphanumeric() { numbered(&key[s..e]) } else { &key[s..e] }
    };
    let last = word(n - 1);
    // A session's id is its credential (`session_id`, `sess_id`), unlike other ids.
    if n >= 2 && last.eq_ignore_ascii_case("id") && is_in(word(n - 2), &["session", "sess"]) {
        return KeyClass::Secret;
    }
    // Vault AppRole's `secret_id` is a credential (a UUID); AWS's `SecretId` names a secret
    // (`prod/db`): the value tells.
    if n >= 2 && last.eq_ignore_ascii_case("id") && word(n - 2).eq_ignore_ascii_case("secret") {
        return KeyClass::Weak;
    }
    if n >= 2 && is_in(last, &["seed", "phrase"]) && is_in(word(n - 2), SEED_QUALIFIERS) {
        return KeyClass::Secret;
    }
    if is_in(last, ABOUT_WORDS) || (0..n).any(|i| is_in(word(i), QUANTITY_WORDS)) {
        return KeyClass::Plain;
    }
    let mut weak = false;
    for i in 0..n {
        let w = word(i);
        if is_in(w, SECRET_WORDS) {
            return KeyClass::Secret;
        }
        if w.eq_ignore_ascii_case("key") && i > 0 && is_in(word(i - 1), KEY_QUALIFIERS) {
            return KeyClass::Secret;
        }
        if w.eq_ignore_ascii_case("key") && i > 0 && is_in(word(i - 1), ID_KEY_QUALIFIERS) {
            continue;
        }
        if w.len() > 3
            && (SECRET_SUFFIXES.iter().any(|s| ends_with_ci(w, s))
                || (ends_with_ci(w, "key") && is_in(&w[..w.len() - 3], KEY_QUALIFIERS)))
        {
            return KeyClass::Secret;
        }
        if is_in(w, WEAK_WORDS) {
            weak = true;
        }
    }
    if weak { KeyClass::Weak } else { KeyClass::Plain }
}

/// Whether a would-be key is a random token that merely ends in a credential word
/// (`…cqedzlczKeunS5oPw` reads as `… Pw`): digits, and case flipping again and again.
pub(super) fn is_random_run(key: &str) -> bool {
    let b = key.as_bytes();
    let flips = b.windows(2).filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase()).count();
    key.len() >= 16 && flips >= 6 && b.iter().any(u8::is_ascii_digit)
}

/// Whether `key` is an Authorization-style header whose value starts with a scheme word.
pub(super) fn is_authorization(key: &str) -> bool {
    let (ranges, n) = words(key);
    n > 0 && {
        let last = &key[ranges[n - 1].0..ranges[n - 1].1];
        last.eq_ignore_ascii_case("authorization")
    }
}

/// Whether the key's last word is `key` (its value may be a path to a key file).
pub(super) fn ends_in_key(key: &str) -> bool {
    let (ranges, n) = words(key);
    n > 0 && ends_with_ci(&key[ranges[n - 1].0..ranges[n - 1].1], "key")
}

/// Words strong enough that a value after a mere space is read as theirs (`bindpw X`,
/// `password FakeS65`): never `session`, `key` or `auth`, which prose uses all the time.
const STRONG_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pass",
    "pwd",
    "pw",
    "secret",
    "token",
    "bindpw",
    "rootpw",
    "requirepass",
    "masterauth",
    "apikey",
    "psk",
    "authtok",
    "rocommunity",
    "rwcommunity",
];

/// Whether the key's last word is a strong credential word (or ends in one).
pub(super) fn is_strong(key: &str) -> bool {
    let (ranges, n) = words(key);
    n > 0 && {
        let last = &key[ranges[n - 1].0..ranges[n - 1].1];
        is_in(last, STRONG_WORDS) || SECRET_SUFFIXES.iter().any(|s| last.len() > s.len() && ends_with_ci(last, s))
    }
}

/// Authorization schemes whose credential follows them.
pub(super) const AUTH_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "token",
    "digest",
    "negotiate",
    "ntlm",
    "bot",
    "key",
    "apikey",
    "api-key",
    "aws4-hmac-sha256",
    "hmac",
    "mac",
    "oauth",
    "splunk",
    "sswS",
    "geniekey",
    "jwt",
    "hawk",
    "sharedkey",
    "sharedaccesssignature",
    "dsn",
    "klar",
];

/// Placeholder and masked values: they can never authenticate, so they stay byte-identical.
const PLACEHOLDER_WORDS: &[&str] = &[
    "null",
    "nil",
    "none",
    "undefined",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "redacted",
    "hidden",
    "filtered",
    "masked",
    "removed",
    "omitted",
    "sensitive",
    "required",
    "optional",
    "empty",
    "unset",
    "notset",
    "n/a",
];

/// Whole keys that hold no secret although a credential word is in them.
const PLAIN_KEYS: &[&str] = &[
    "proxy_pass",
    "fastcgi_pass",
    "uwsgi_pass",
    "scgi_pass",
    "grpc_pass",
    "memcached_pass",
    "proxy_pass_header",
    "proxy_pass_request_body",
    "proxy_pass_request_headers",
    "fastcgi_pass_header",
];

/// How code reads a value from somewhere else: an assignment from one of these names no secret.
const CODE_REFERENCES: &[&str] = &[
    "os.environ[",
    "os.environ.get(",
    "os.getenv(",
    "getenv(",
    "process.env.",
    "process.env[",
    "import.meta.env.",
    "ENV[",
    "ENV.fetch(",
    "System.getenv(",
    "Environment.GetEnvironmentVariable(",
    "env(",
    "env::var(",
    "std::env::var(",
    "Deno.env.get(",
    "$_ENV[",
    "$_SERVER[",
    "$_POST[",
    "$_GET[",
    "$_REQUEST[",
    "$this->",
    "request.form[",
    "request.args.get(",
    "params[",
    "config(",
    "settings.",
    "secrets.",
    "vars.",
    "var.",
    "local.",
    "data.",
];

/// A function call in code (`issue_token(user)`, `vault.read(path)`): a name with `_` or `.`
/// in it, then `(`. A password merely holding a parenthesis has no such name in front of it.
fn is_call(v: &str) -> bool {
    let name = v.bytes().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.')).count();
    name >= 3
        && v.as_bytes().get(name) == Some(&b'(')
        && v.as_bytes()[0].is_ascii_alphabetic()
        && v[..name].contains(['_', '.'])
}

/// Whether `value` (quotes already removed) is a placeholder, a mask, a reference or empty.
///
/// `changeme`, `password`, `admin` and other weak defaults are *not* placeholders: a value that
/// authenticates is a secret, however guessable.
pub(super) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v.starts_with("[REDACTED") {
        return true;
    }
    let b = v.as_bytes();
    // Template and variable references: ${X}, $(cmd), $X, {{ x }}, {% x %}, <%= x %>, %(x)s,
    // %X%, #{x}, {x}.
    if v.starts_with("${") || v.starts_with("$(") || v.starts_with("{{") || v.starts_with("{%") || v.starts_with("<%") {
        return true;
    }
    if b[0] == b'$'
        && b.len() > 1
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !mixed_token(&v[1..])
    {
        return true;
    }
    if (v.starts_with("%(") && v.ends_with(")s")) || (v.starts_with("#{") && v.ends_with('}')) {
        return true;
    }
    if b.len() > 2
        && b[0] == b'%'
        && b[b.len() - 1] == b'%'
        && b[1..b.len() - 1].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return true;
    }
    // `kubectl describe pod`: `<set to the key 'password' in secret 'db-credentials'>`, then
    // perhaps `Optional: false`; a reference to where the value is kept.
    if let Some(phrase) = v.strip_prefix("<set to the key '").and_then(|r| r.split_once('>')).map(|(p, _)| p)
        && phrase.contains("' in secret '")
    {
        return true;
    }
    // <your-token>, [FILTERED], (sensitive value), {placeholder}: one bracketed phrase of words
    // (a random token in braces is a value: Jenkins' `{AQAAABAAAAAQ…}`).
    for (open, close) in [(b'<', b'>'), (b'[', b']'), (b'(', b')'), (b'{', b'}')] {
        if b.len() > 2
            && b[0] == open
            && b[b.len() - 1] == close
            && b[1..b.len() - 1].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b' ' | b'.'))
            && !v[1..v.len() - 1].split(' ').any(looks_random)
        {
            return true;
        }
    }
    // Masks: ****, xxxx, ••••, ..., ???.
    if v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•' | '·' | '●' | '#' | '.' | '…' | '?' | '-' | '_')) {
        return true;
    }
    if is_in(v, PLACEHOLDER_WORDS) {
        return true;
    }
    // Flags and counters: `auth: 1`, `pass: 0`.
    if v.len() <= 2 && v.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    // `kubectl describe secret`: sizes, not values.
    if let Some(n) = v.strip_suffix(" bytes")
        && n.trim().bytes().all(|c| c.is_ascii_digit())
    {
        return true;
    }
    // References to a secret kept elsewhere (AWS ARNs, 1Password and Vault references), and code
    // reading it from the environment or a request (`os.environ["X"]`, `$_POST['password']`).
    if v.starts_with("arn:") || v.starts_with("op://") || v.starts_with("vault:") {
        return true;
    }
    if CODE_REFERENCES.iter().any(|p| v.starts_with(p) && !mixed_token(&v[p.len()..])) || is_call(v) {
        return true;
    }
    is_public_key(v)
}

/// Whether `rest` (what follows `$` or `data.`) reads as a generated token rather than a name:
/// digits and both cases, no `_` or `.` between words (`$Qz7Hx6kwXoIIXG` is a password that
/// starts with `$`; `$DB_PASSWORD`, `$dbPassword` and `data.aws_secret.db.value` are names).
fn mixed_token(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() >= 8
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
}

/// Public keys and certificates are public: `ssh-ed25519 AAAA…`, `-----BEGIN CERTIFICATE-----`.
pub(super) fn is_public_key(v: &str) -> bool {
    let ssh = ["ssh-rsa ", "ssh-ed25519 ", "ssh-dss ", "ecdsa-sha2-", "sk-ssh-ed25519", "sk-ecdsa-sha2-"];
    if ssh.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    v.starts_with("-----BEGIN ") && !v.contains("PRIVATE") && !v.contains("SECRET")
}

/// An absolute path of two or more components (`/etc/ssl/private/site.key`): the place of a key,
/// not the key.
pub(super) fn is_path(v: &str) -> bool {
    v.starts_with('/')
        && v.matches('/').count() >= 2
        && v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b'@' | b'+'))
}

/// Whether a value looks like a random token rather than a word, a number, a name or a path:
/// at least 16 characters of a token alphabet, with letters and digits, or with letters whose
/// case flips as a random token's does ([`random_case`]).
pub(super) fn looks_random(v: &str) -> bool {
    let v = v.trim();
    v.len() >= 16
        && v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b'~'))
        && v.bytes().any(|c| c.is_ascii_alphabetic())
        && (v.bytes().any(|c| c.is_ascii_digit()) || random_case(v))
        && !is_path(v)
        && v.matches('.').count() < 2
}

/// Whether letters flip case the way a random token's do (`hfCnuVcYOgiRjlDEmAoRbN`), not the way
/// camelCase words do (`getUserAccountFromSession`): upper-case letters are at least a quarter of
/// the letters, and the lower-case runs between them average under two and a half letters (a
/// fair coin's runs average two; English words' are longer).
fn random_case(v: &str) -> bool {
    let (mut letters, mut upper, mut lower, mut runs) = (0usize, 0usize, 0usize, 0usize);
    let mut in_run = false;
    for b in v.bytes() {
        letters += usize::from(b.is_ascii_alphabetic());
        upper += usize::from(b.is_ascii_uppercase());
        if b.is_ascii_lowercase() {
            lower += 1;
            runs += usize::from(!in_run);
            in_run = true;
        } else {
            in_run = false;
        }
    }
    runs >= 3 && upper * 4 >= letters && lower * 2 < runs * 5
}

/// Whether a bare word after a secret key (`password FakeAuditS65`, no `=` or `:`) looks like a
/// credential rather than prose (`password policy`, `token bucket`): six or more characters
/// mixing letters with digits, inner capitals or symbols.
pub(super) fn looks_like_password(v: &str) -> bool {
    let chars: Vec<char> = v.chars().collect();
    if chars.len() < 6 || v.starts_with('-') || v.contains("://") || v.starts_with('/') {
        return false;
    }
    let letters = chars.iter().any(|c| c.is_alphabetic());
    let digits = chars.iter().any(char::is_ascii_digit);
    let inner_upper = chars.iter().skip(1).any(|c| c.is_uppercase()) && chars.iter().any(|c| c.is_lowercase());
    let symbols = chars.iter().any(|c| {
        !c.is_alphanumeric() && !matches!(c, '-' | '_' | '.' | ',' | '\'' | '"' | ':' | ';' | '!' | '?' | ')' | '(')
    });
    (letters && digits) || inner_upper || (letters && symbols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_classified_by_whole_words() {
        for key in [
            "password",
            "DB_PASS",
            "db.password",
            "dbpassword",
            "MYSQL_PWD",
            "Pwd",
            "bindpw",
            "olcRootPW",
            "AccountKey",
            "client-key-data",
            "x-api-key",
            "api_key",
            "apikey",
            "secret_key",
            "client_secret",
            "clientSecret",
            "Authorization",
            "auth",
            "_authToken",
            "access_token",
            "refresh_token",
            "PHPSESSID",
            "JSESSIONID",
            "session_id",
            "requirepass",
            "masterauth",
            "SharedAccessKey",
            "sig",
            "X-Amz-Signature",
            "AWS Secret Key",
            "private_key",
            "storepass",
            "ENCRYPTION_KEY",
            "cookie",
            "dsn",
            "passphrase",
            "token1",
            "typeform_token2",
            "DB_PASSWORD_2",
            "pw3",
            "aes256_key",
        ] {
            assert_eq!(classify(key), KeyClass::Secret, "{key}");
        }
        for key in [
            "secretName",
            "token_type",
            "max_token_age_seconds",
            "password_file",
            "compass",
            "bypass",
            "keyboard",
            "monkey",
            "PWD",
            "OLDPWD",
            "key_usage",
            "public_key",
            "secret_arn",
            "prompt_tokens",
            "max_tokens",
            "PasswordAuthentication",
            "token_url",
            "auth_type",
            "client_id",
            "user",
            "sessions",
            "passenger",
            "s3_bucket",
            "x509_cert",
            "token1_type",
            "md5sum",
            "FakeReg1stryPass9",
        ] {
            assert_ne!(classify(key), KeyClass::Secret, "{key}");
        }
        assert_eq!(classify("key"), KeyClass::Weak);
        assert_eq!(classify("DATADOG_APP"), KeyClass::Weak);
    }

    #[test]
    fn letters_alone_look_random_when_their_case_flips_like_a_coin() {
        for v in
            ["hfCnuVcYOgiRjlDEmAoRbN", "PSIYbVgfkbEPQoqJfzHpACTtihONkQ_cKmOpNDPNiCU", "xTiPNSDgJjzGfWoLbJlESBcMKkCx"]
        {
            assert!(looks_random(v), "{v}");
        }
        for v in [
            "getUserAccountFromSession",
            "createdAtTimestamp",
            "HTTPServerErrorHandler",
            "ABCDEFGHIJKLMNOPQRST",
            "abcdefghijklmnopqrst",
            "SessionCookieLifetimeSeconds",
            "XMLHttpRequestUpload",
        ] {
            assert!(!looks_random(v), "{v}");
        }
    }

    #[test]
    fn random_tokens_ending_in_a_credential_word_are_not_keys() {
        assert!(is_random_run("tMuQyhIOjCYhBCn1iQdYEa4qcedzlczKeunS5oPw"));
        for key in ["AWSSecretAccessKeyId", "spring.datasource.password", "X-Amz-Security-Token", "dbPassword2"] {
            assert!(!is_random_run(key), "{key}");
        }
    }

    #[test]
    fn placeholders_masks_and_references_are_kept() {
        for v in [
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
            "{{ .Values.password }}",
            "********",
            "xxxx",
            "<your-token>",
            "[FILTERED]",
            "null",
            "true",
            "",
            "%DB_PASS%",
            "%(password)s",
            "[REDACTED:secret_assignment]",
            "arn:aws:secretsmanager:x",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG",
            "(sensitive value)",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in [
            "changeme",
            "hunter2",
            "a b FakeX c",
            "x,FakeSecret",
            "12345678",
            "$ecret!",
            "{AQAAABAAA S2wg2NMlgalg9AUsrXPd1O}",
            "<xTiPNSDg6JjzG8fWoLb8JlE8SBcMKkCx>",
        ] {
            assert!(!is_placeholder(v), "{v}");
        }
    }
}
