//! The command-line grammar. Names here are a contract with users and scripts.

use clap::{Args, Parser, Subcommand, ValueEnum};
use mttrly_core::{Plan, ToolKind, Toolset};

/// mttrly-cli: the human's tool for mttrly, the incident-response action layer for MCP.
#[derive(Debug, Parser)]
#[command(name = "mttrly-cli", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// How to print results: a readable table, or stable JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// The catalog of MCP tools (works offline, without a central).
    #[command(subcommand)]
    Tools(ToolsCommand),
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
