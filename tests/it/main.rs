//! End-to-end scenarios. One test binary, one module per area.

mod actions;
mod audit;
mod catalog;
mod commands;
mod diagnostics;
mod files;
mod fleet;
mod mcp;
mod oauth;
mod playbooks;
mod quickstart;
mod standalone;
mod tls;
