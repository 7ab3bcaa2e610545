//! The append-only, hash-chained audit log.
//!
//! Every tool call, approval decision, execution result, alert and agent event becomes one row.
//! Each row stores the SHA-256 of its content and of the previous row of the same account, so
//! `audit verify` detects an edited, deleted or reordered row. One writer thread owns the writes
//! (batched transactions, `synchronous = FULL`), so appends never block the async runtime and the
//! chain is computed in exactly one place.

pub mod chain;
pub mod events;
pub mod verified;
pub mod writer;

pub use writer::AuditLog;
