//! `mttrly-mcp`: the MCP surface of mttrly.
//!
//! This is the only crate that knows rmcp. Tool definitions are generated from the core catalog
//! ([`tools::definition`]), so what a client sees in `tools/list` (titles, descriptions, schemas,
//! annotations) is the catalog and nothing else.

pub mod tools;
