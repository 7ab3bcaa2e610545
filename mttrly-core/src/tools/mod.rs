//! The typed inputs and outputs of the catalog's tools, one file per toolset.
//!
//! Inputs reject unknown fields and carry their limits in their types (see [`crate::bounded`]),
//! so the JSON Schema a client sees is exactly what the server enforces. Every field is
//! documented: the doc comment becomes the schema's `description`, which is what a model reads.

pub mod actions;
pub mod commands;
pub mod common;
pub mod deploys;
pub mod diagnostics;
pub mod files;
pub mod install;
pub mod investigations;
pub mod knowledge;
pub mod notify;
pub mod playbooks;
pub mod proactive;
pub mod servers;
pub mod timeline;
mod toolset;
pub mod updates;

pub use toolset::Toolset;
