//! End-to-end scenarios. One test binary, one module per area.

mod actions;
mod audit;
mod catalog;
mod commands;
mod contract;
mod diagnostics;
mod files;
mod fleet;
mod mcp;
mod oauth;
mod playbooks;
mod quickstart;
mod redaction;
mod standalone;
mod tls;
