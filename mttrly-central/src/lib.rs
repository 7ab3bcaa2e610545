//! `mttrly-central`: the library behind the central server.
//!
//! Central owns the database (SQLite), the action engine, approvals and the audit log, and serves
//! gRPC to agents and API clients and HTTP for `/mcp`. Its code arrives with the issues that build
//! it; this crate has no behaviour yet.
