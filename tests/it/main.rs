//! End-to-end scenarios and central's in-process tests. One test binary, one module per area;
//! `common` is the in-process harness the central modules share.

mod actions;
mod architecture;
mod audit;
mod auth_cache;
mod catalog;
mod central_actions;
mod central_audit;
mod commands;
mod common;
mod contract;
mod diagnostics;
mod events;
mod files;
mod first_user;
mod fleet;
mod mcp;
mod notify;
mod oauth;
mod playbooks;
mod quickstart;
mod redaction;
mod scopes;
mod standalone;
mod tls;
mod transports;
mod users;
