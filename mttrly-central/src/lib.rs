//! `mttrly-central`: the server.
//!
//! Central owns the database (SQLite, WAL, migrations), the live agent registry, alert rules,
//! and the gRPC (agents, CLI, API) and HTTP listeners. [`server::start`] returns the bound
//! addresses so tests and `quickstart` run everything in-process on port 0.
//!
//! Architecture invariant: this is the only crate that touches SQLite; callers reach it through
//! [`db::Db`]'s named operations, whose SQLite work runs on the blocking pool, never on a runtime
//! worker.

pub mod accounts;
pub mod actions;
pub mod agents;
pub mod alerts;
mod app_state;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod auth_cache;
mod background;
pub mod chat;
pub mod config;
mod conn;
pub mod dashboard;
pub mod db;
pub mod deploys;
pub mod dist;
pub mod env;
pub mod events;
mod fd_limit;
pub mod grpc;
pub mod hooks;
pub mod http;
mod http_serve;
pub mod init;
pub mod investigations;
pub mod knowledge;
pub mod mcp;
mod mcp_sessions;
pub mod notify;
pub mod oauth;
pub mod proactive;
#[cfg(feature = "quickstart-agent")]
pub mod quickstart;
pub mod ratelimit;
pub mod releases;
pub mod retrospective;
pub mod second_factor;
pub mod secrets;
pub mod server;
pub mod servers;
pub mod signal;
pub mod signin;
pub mod state;
pub mod timeline;
pub mod tls;
pub mod tokens;
pub mod tools;
pub mod users;
pub mod warroom;
mod web;
