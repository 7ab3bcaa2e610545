//! `mttrly-cli tools list | schema`: the catalog, offline.

use mttrly_core::catalog::{ToolSpec, specs};
use mttrly_core::{MttrlyError, Plan, ToolId};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{OutputFormat, ToolsCommand, ToolsListArgs, ToolsSchemaArgs};
use crate::output::Printer;

pub(crate) fn run(cmd: &ToolsCommand, printer: &Printer) -> Result<(), MttrlyError> {
    match cmd {
        ToolsCommand::List(args) => list(args, printer),
        ToolsCommand::Schema(args) => schema(args, printer),
    }
}

/// One tool in `tools list --output json`. Field names are a contract with scripts.
#[derive(Serialize)]
struct ToolRow {
    id: &'static str,
    title: &'static str,
    kind: &'static str,
    min_plan: Plan,
    plans: Vec<Plan>,
    toolset: &'static str,
    annotations: Annotations,
    description: &'static str,
}

#[derive(Serialize)]
#[allow(clippy::struct_excessive_bools)]
struct Annotations {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
}

#[derive(Serialize)]
struct ToolList {
    tools: Vec<ToolRow>,
}

fn row(spec: &ToolSpec) -> ToolRow {
    ToolRow {
        id: spec.id.as_str(),
        title: spec.title,
        kind: spec.kind.as_str(),
        min_plan: spec.min_plan,
        plans: Plan::ALL.into_iter().filter(|p| p.allows(spec.id)).collect(),
        toolset: spec.toolset.as_str(),
        annotations: Annotations {
            read_only: spec.hints.read_only(),
            destructive: spec.hints.destructive(),
            idempotent: spec.hints.idempotent(),
            open_world: spec.hints.open_world(),
        },
        description: spec.description,
    }
}

fn list(args: &ToolsListArgs, printer: &Printer) -> Result<(), MttrlyError> {
    let selected: Vec<&ToolSpec> = specs()
        .iter()
        .filter(|s| args.plan.is_none_or(|p| p.allows(s.id)))
        .filter(|s| args.toolset.is_none_or(|t| t == s.toolset))
        .filter(|s| args.kind.is_none_or(|k| k == s.kind))
        .collect();
    match printer.format() {
        OutputFormat::Json => printer.json(&ToolList { tools: selected.into_iter().map(row).collect() }),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = selected
                .iter()
                .map(|s| {
                    vec![
                        s.id.as_str().to_owned(),
                        s.kind.as_str().to_owned(),
                        s.min_plan.as_str().to_owned(),
                        s.toolset.as_str().to_owned(),
                        s.title.to_owned(),
                    ]
                })
                .collect();
            printer.table(&["ID", "KIND", "MIN PLAN", "TOOLSET", "TITLE"], &rows);
            Ok(())
        }
    }
}

fn schema(args: &ToolsSchemaArgs, printer: &Printer) -> Result<(), MttrlyError> {
    let tool: ToolId = args
        .tool_id
        .parse()
        .map_err(|err: MttrlyError| err.with_detail("hint", "run `mttrly-cli tools list` to see every tool id"))?;
    let spec = tool.spec();
    let schema: Value = if args.result { spec.output_schema() } else { spec.input_schema() };
    printer.json(&schema)
}
