//! The command-line grammar. Names here are a contract with users and scripts.

use clap::{Args, Parser, Subcommand, ValueEnum};
use mttrly_core::{ChatProvider, Environment, Plan, Role, ToolKind, Toolset};

/// The central used when neither --central nor MTTRLY_CENTRAL is given (quickstart's default).
pub(crate) const DEFAULT_CENTRAL: &str = "http://127.0.0.1:50051";

/// mttrly-cli: the human's tool for mttrly, the incident-response action layer for MCP.
#[derive(Debug, Parser)]
#[command(name = "mttrly-cli", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Central's gRPC URL.
    #[arg(long, global = true, env = "MTTRLY_CENTRAL", default_value = DEFAULT_CENTRAL)]
    pub central: String,

    /// Your token (printed by `mttrly-central init` or `quickstart`). Without a value, only in
    /// `users add NAME --role R --token`: print a token for the new user (yours then comes from
    /// MTTRLY_TOKEN).
    #[arg(long, global = true, env = "MTTRLY_TOKEN", hide_env_values = true, num_args = 0..=1, default_missing_value = "")]
    pub token: Option<String>,

    /// Central's CA certificate (PEM), for an https:// central (`DATA_DIR/tls/ca.pem`).
    #[arg(long, global = true, env = "MTTRLY_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// How to print results: a readable table, or stable JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Whether `--token`'s value came from MTTRLY_TOKEN rather than the command line (set by
    /// [`crate::parse`]; `whoami` says where the token came from).
    #[arg(skip)]
    pub token_from_env: bool,

    /// Whether `--central` is clap's default, neither given nor in MTTRLY_CENTRAL (set by
    /// [`crate::parse`]): only then does the credentials file's central apply. False unless
    /// known, so a central the user named is never replaced.
    #[arg(skip)]
    pub central_defaulted: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document on stdout; errors as a JSON error body on stderr.
    Json,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register servers, see their health, remove offline ones.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Actions waiting for a human, and their results: approve or reject them here.
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// Alerts opened by threshold rules.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Deploys: record one from a CI script or by hand, list what CI, people and agents recorded.
    #[command(subcommand)]
    Deploys(DeploysCommand),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Investigations assistants opened, and their bypasses: list, show, grant (with your TOTP
    /// code), revoke, close.
    #[command(subcommand)]
    Investigations(InvestigationsCommand),
    /// Postmortems, recipes and notes that assistants find with mttrly_search_knowledge.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// Bearer tokens for assistants (MCP clients without OAuth) and humans: create, list, revoke.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The account's people and their roles (changes need the admin role).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Who your token belongs to: user, role, account and plan.
    ///
    /// Also says where the token came from: --token, MTTRLY_TOKEN or the credentials file.
    Whoami,
    /// Sign in through your browser and keep the token for every command.
    ///
    /// Prints a URL and a short code; open the URL where you are signed in to central, check that
    /// the page names this computer, and allow it. The new token (yours, with your role) goes to
    /// $XDG_CONFIG_HOME/mttrly/credentials.toml (else ~/.config/mttrly/credentials.toml), readable
    /// by you alone, and every command uses it when neither --token nor MTTRLY_TOKEN is given (and
    /// its central when neither --central nor MTTRLY_CENTRAL is). The token is never printed.
    Login,
    /// Revoke the stored token and delete the credentials file.
    ///
    /// The token is revoked on its central when that is reachable; the file is deleted either way.
    Logout,
    /// The catalog of MCP tools (works offline, without a central).
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Try mttrly's safety rules locally before rolling them out (nothing is executed).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Signed agent releases: make keys (offline), publish a release, list what is published.
    #[command(subcommand)]
    Releases(crate::commands::releases::ReleasesCommand),
    /// Your own second factor (TOTP): enrol an authenticator app from the terminal, or see its
    /// state. Needs your human token (not an assistant's).
    #[command(subcommand)]
    Totp(TotpCommand),
}

/// `mttrly-cli investigations ...`
#[derive(Debug, Subcommand)]
pub enum InvestigationsCommand {
    /// The account's open investigations (with --all, closed ones too), newest first.
    List {
        /// Closed investigations too.
        #[arg(long)]
        all: bool,
    },
    /// One investigation: its bypass and the actions run under it.
    Show {
        /// The investigation id (inv_…).
        investigation_id: String,
    },
    /// Grant a pending bypass after reviewing it: asks for your TOTP code (never a flag, so it
    /// never lands in shell history). You may narrow what was asked, never widen it.
    Grant {
        /// The bypass id (byp_…), as the assistant's answer names it.
        bypass_id: String,
        /// Fewer minutes than asked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(5..=60))]
        minutes: Option<u32>,
        /// Fewer actions than asked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
        max_actions: Option<u32>,
        /// Cover only this tool (execute_command or execute_script); repeat for both.
        #[arg(long = "tool")]
        tools: Vec<String>,
        /// Allow only exactly this command, e.g. --pattern "systemctl restart nginx"; end it with
        /// " *" to allow further (harmless) arguments. Repeat for more. Each must lie within a
        /// pattern that was asked for.
        #[arg(long = "pattern")]
        patterns: Vec<String>,
        /// Do not ask for confirmation (the code is still asked for).
        #[arg(long)]
        yes: bool,
    },
    /// Revoke an investigation's bypass now (idempotent).
    Revoke {
        /// The investigation id (inv_…).
        investigation_id: String,
    },
    /// Close an investigation; its bypass is revoked with it.
    Close {
        /// The investigation id (inv_…).
        investigation_id: String,
    },
}

/// `mttrly-cli totp ...`
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Enrol (or replace) your TOTP second factor: prints an otpauth:// URI and a QR code to scan
    /// with an authenticator app, asks for a code from it to confirm, then prints 10 single-use
    /// recovery codes once. If a factor is already enrolled, first asks for a current code from
    /// it (or a recovery code); the old factor works until the new one is confirmed. Codes are
    /// read from the terminal, never from the command line.
    #[command(after_help = "Lost your phone and your recovery codes? An admin can send you a fresh invite link: \
                            mttrly-cli users invite NAME")]
    Enroll,
    /// Whether you have a second factor, how many recovery codes are left, and any lock after
    /// wrong codes.
    Status,
}

/// `mttrly-cli policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Would this command run at once (read_only) or need a human's approval, and why?
    /// Prints the exact argv a read-only command would run (without a shell) and the files it
    /// reads, checked on this host as the agent would.
    Classify {
        /// The command line, quoted as one argument: mttrly-cli policy classify 'df -h'
        command: String,
        /// The agent's policy file (TOML) whose file rules check the files the command reads; the
        /// built-in default policy when absent.
        #[arg(long, value_name = "FILE")]
        policy: Option<std::path::PathBuf>,
    },
    /// Redact secrets from a file (or standard input) to standard output, as mttrly does to
    /// everything that leaves a server.
    Redact {
        /// The file to read; standard input when absent.
        file: Option<std::path::PathBuf>,
        /// Also list, on standard error, which rules fired and how often.
        #[arg(long)]
        explain: bool,
    },
    /// Would an agent with this policy read this path, and why (or why not)? Resolves the path on
    /// this machine (symlinks included) exactly as the agent does. Exit status 0 when allowed, 1
    /// when denied.
    CheckPath {
        /// The absolute path to check.
        path: String,
        /// The agent's policy file (TOML); the built-in default policy when absent.
        #[arg(long, value_name = "FILE")]
        policy: Option<std::path::PathBuf>,
        /// Check against the privileged allowlist (mttrly_read_privileged_file) instead.
        #[arg(long, conflicts_with = "write")]
        privileged: bool,
        /// Check whether the path is a managed file mttrly_write_file / mttrly_cleanup_file may change.
        #[arg(long)]
        write: bool,
    },
    /// The effective approval rule of every scope (environment, action type, playbook): who may
    /// approve, how many, whether the requester may (four eyes, solo mode), the channels, the ttl
    /// and the second factor. From the running central (any human token), with whether your
    /// account's people can satisfy each rule and the fix when not. With --config, checks a
    /// central config file offline instead (its [approvals] tables and action_ttl_minutes): exit
    /// status 1 with every problem listed when it would not start.
    Approvals {
        /// A central config file (TOML) to check without a central, e.g. before a restart.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

impl PolicyCommand {
    /// Whether the command runs on this machine alone (no central, no token).
    pub(crate) fn is_offline(&self) -> bool {
        !matches!(self, Self::Approvals { config: None })
    }
}

/// `mttrly-cli servers ...`
#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Register a server and print the single-use install token and the exact agent command.
    Add(ServersAddArgs),
    /// List the servers with their status.
    List,
    /// Show one server's health: CPU, memory, disks, load, active alerts.
    Status {
        /// The server id (srv_…).
        server_id: String,
    },
    /// Remove an offline server from the registry (its audit history stays).
    Remove {
        /// The server id (srv_…).
        server_id: String,
    },
}

/// Arguments of `servers add`.
#[derive(Debug, Args)]
pub struct ServersAddArgs {
    /// A name for the server (letters, digits, `-`, `.`, `_`).
    pub name: String,
    /// The server's environment (decides its approval rules).
    #[arg(long, value_parser = parse_environment)]
    pub env: Environment,
}

/// `mttrly-cli actions ...`
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// Only this server's actions.
        #[arg(long)]
        server: Option<String>,
        /// Only actions in this state (e.g. pending_approval, running, succeeded).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one action: exactly what runs, who asked, the decisions and the result.
    Show {
        /// The action id (act_…).
        action_id: String,
    },
    /// Approve an action after reviewing exactly what will run; prints the result when it ends.
    Approve {
        /// The action id (act_…).
        action_id: String,
        /// Do not ask for confirmation (for scripts; you still approve only what was shown).
        #[arg(long)]
        yes: bool,
        /// How long to wait for the execution to finish, in seconds (0 to 300).
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(0..=300))]
        wait: u32,
    },
    /// Reject an action.
    Reject {
        /// The action id (act_…).
        action_id: String,
        /// Why, recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `mttrly-cli knowledge ...`
#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// Store an entry (central redacts secrets before storing it).
    Add {
        /// What it is.
        #[arg(long, value_parser = ["postmortem", "recipe", "note"])]
        kind: String,
        /// Its title (1 to 200 characters).
        #[arg(long)]
        title: String,
        /// Its text; without --body or --file, read from stdin.
        #[arg(long)]
        body: Option<String>,
        /// Read the text from this file (`-` for stdin).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The server it concerns (its searches rank it first).
        #[arg(long)]
        server: Option<String>,
    },
    /// List entries, newest first.
    List {
        /// Only this kind.
        #[arg(long, value_parser = ["postmortem", "recipe", "note"])]
        kind: Option<String>,
        /// Only this server's entries.
        #[arg(long)]
        server: Option<String>,
        /// At most this many (default 50, at most 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Print one entry with its provenance.
    Show {
        /// The entry (`kno_…`).
        id: String,
    },
    /// Remove an entry: it is no longer found by any search.
    Remove {
        /// The entry (`kno_…`).
        id: String,
    },
}

/// `mttrly-cli alerts ...`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first.
    List {
        /// Only this server's alerts.
        #[arg(long)]
        server: Option<String>,
        /// Only open or only resolved alerts.
        #[arg(long, value_parser = ["open", "resolved"])]
        status: Option<String>,
    },
}

/// `mttrly-cli deploys ...`
#[derive(Debug, Subcommand)]
pub enum DeploysCommand {
    /// Record a deploy (or a later report of it: the same --id again is the same deploy, and its
    /// status only moves forward, e.g. started then succeeded).
    #[command(disable_version_flag = true)]
    Record(DeploysRecordArgs),
    /// List deploys, newest first.
    List {
        /// Only this server's (id or name).
        #[arg(long)]
        server: Option<String>,
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Arguments of `deploys record`.
#[derive(Debug, Args)]
pub struct DeploysRecordArgs {
    /// Your id for this deploy (a CI run id): recording it again updates the same deploy.
    #[arg(long)]
    pub id: String,
    /// The server (id or name).
    #[arg(long)]
    pub server: String,
    /// The service deployed.
    #[arg(long)]
    pub service: String,
    /// The version deployed.
    #[arg(long)]
    pub version: String,
    /// started, succeeded, failed or rolled_back.
    #[arg(long, value_parser = ["started", "succeeded", "failed", "rolled_back"])]
    pub status: String,
    /// The commit (hex).
    #[arg(long)]
    pub commit: Option<String>,
    /// The repository URL (http or https).
    #[arg(long)]
    pub repo_url: Option<String>,
    /// The environment name (production, staging, ...).
    #[arg(long)]
    pub environment: Option<String>,
    /// When it began (RFC 3339); now when absent.
    #[arg(long, value_parser = parse_time)]
    pub started_at: Option<i64>,
    /// When it ended (RFC 3339); now when absent and the status is not `started`.
    #[arg(long, value_parser = parse_time)]
    pub finished_at: Option<i64>,
    /// A link to the CI run or release page (http or https).
    #[arg(long)]
    pub url: Option<String>,
}

/// An RFC 3339 time as Unix milliseconds.
fn parse_time(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(jiff::Timestamp::as_millisecond)
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-12-03T10:00:00Z: {e}"))
}

/// `mttrly-cli audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first.
    List {
        /// Only entries about this server.
        #[arg(long)]
        server: Option<String>,
        /// At most this many entries (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only entries older than this sequence number (paging back).
        #[arg(long)]
        before: Option<u64>,
    },
    /// Re-compute the hash chain and report the first edited, deleted or reordered entry.
    /// Exits 1 when the chain is broken.
    Verify,
}

/// `mttrly-cli tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token (shown once).
    Create(TokensCreateArgs),
    /// List live tokens and OAuth grants (an admin sees the account's, others their own); never
    /// a secret.
    List,
    /// Revoke a token or OAuth grant by its id (from `tokens list`), at once, everywhere.
    Revoke {
        /// The id (tkn_… or oauth_…).
        id: String,
    },
}

/// `mttrly-cli users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user and print their single-use invite link (72 hours: they set a password and a
    /// second factor in the browser). With --token (no value) or --print-token, prints a human
    /// token for them instead (for automation). Once an admin of the account has a second factor,
    /// a new admin, a token (any role) or a removed user's name asks for a fresh code of your own
    /// (terminal, or one line of stdin).
    Add(UsersAddArgs),
    /// A fresh invite link for an existing user (a lost phone or password): their earlier links
    /// stop working; using it replaces their password and second factor. When they have a second
    /// factor enrolled, asks for a fresh code of your own (terminal, or one line of stdin).
    Invite {
        /// The user's name.
        name: String,
    },
    /// List the account's users.
    List,
    /// Change a user's role (the last admin cannot be demoted). Making someone an admin, once an
    /// admin of the account has a second factor, asks for a fresh code of your own (terminal, or
    /// one line of stdin).
    SetRole {
        /// The user's name.
        name: String,
        /// admin, operator or viewer.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Remove a user: their tokens and OAuth grants stop working at once; their history stays in
    /// the audit log (the last admin cannot be removed).
    Remove {
        /// The user's name.
        name: String,
    },
    /// Link your chat account so approval messages reach you there: prints a single-use code
    /// (10 minutes) to send to the bot (Telegram: `/start CODE`) or the app (Slack:
    /// `/mttrly link CODE`).
    Link {
        /// telegram or slack.
        #[arg(value_parser = parse_chat_provider)]
        provider: ChatProvider,
    },
    /// Remove a chat link (yours; admins: anyone's with --user).
    Unlink {
        /// telegram or slack.
        #[arg(value_parser = parse_chat_provider)]
        provider: ChatProvider,
        /// Whose link (admins only); default: yours.
        #[arg(long)]
        user: Option<String>,
    },
    /// List your chat links.
    Links,
}

fn parse_chat_provider(s: &str) -> Result<ChatProvider, String> {
    s.trim().to_ascii_lowercase().parse().map_err(|_| format!("unknown chat provider `{s}`: use telegram or slack"))
}

/// Arguments of `users add`.
#[derive(Debug, Args)]
pub struct UsersAddArgs {
    /// The user's name (letters, digits, `.`, `-`, `_`; unique in the account).
    pub name: String,
    /// admin, operator or viewer.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Their e-mail address.
    #[arg(long)]
    pub email: Option<String>,
    /// Print a human token for the new user now (shown once) instead of an invite link; the same
    /// as a bare `--token`, and usable with `--token YOURS`.
    #[arg(long)]
    pub print_token: bool,
}

/// Arguments of `tokens create`.
#[derive(Debug, Args)]
pub struct TokensCreateArgs {
    /// An assistant token, named for the assistant (e.g. claude-code).
    #[arg(long, required_unless_present = "human", conflicts_with = "human")]
    pub assistant: Option<String>,
    /// A human token for yourself.
    #[arg(long)]
    pub human: bool,
    /// Scope the token to tools that change nothing (a team can start read-only and open up later).
    #[arg(long)]
    pub read_only: bool,
    /// Scope the token to these toolsets, comma-separated (servers, diagnostics, playbooks, commands,
    /// files, actions, install, investigations, knowledge). Default: all.
    #[arg(long, value_name = "LIST")]
    pub toolsets: Option<String>,
}

/// `mttrly-cli tools ...`
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the tools with their kind, the lowest plan that unlocks them and their toolset.
    List(ToolsListArgs),
    /// Print the JSON Schema of a tool's arguments (or, with --result, of its result).
    Schema(ToolsSchemaArgs),
}

/// Filters for `tools list`.
#[derive(Debug, Args)]
pub struct ToolsListArgs {
    /// Only tools this plan unlocks.
    #[arg(long, value_parser = parse_plan)]
    pub plan: Option<Plan>,
    /// Only tools of this toolset.
    #[arg(long, value_parser = parse_toolset)]
    pub toolset: Option<Toolset>,
    /// Only read tools or only execute tools.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<ToolKind>,
}

/// Arguments of `tools schema`.
#[derive(Debug, Args)]
pub struct ToolsSchemaArgs {
    /// The tool id, for example mttrly_execute_command.
    pub tool_id: String,
    /// Print the schema of the tool's structured result instead of its arguments.
    #[arg(long)]
    pub result: bool,
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse().map_err(|e: mttrly_core::plan::UnknownPlan| e.to_string())
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: mttrly_core::role::UnknownRole| e.to_string())
}

fn parse_environment(s: &str) -> Result<Environment, String> {
    s.parse().map_err(|e: mttrly_core::environment::UnknownEnvironment| e.to_string())
}

fn parse_toolset(s: &str) -> Result<Toolset, String> {
    s.parse().map_err(|e: mttrly_core::MttrlyError| e.message().to_owned())
}

fn parse_kind(s: &str) -> Result<ToolKind, String> {
    match s {
        "read" => Ok(ToolKind::Read),
        "execute" => Ok(ToolKind::Execute),
        _ => Err(format!("unknown kind `{s}`: expected read or execute")),
    }
}
