//! `mttrly-core`: the typed heart of mttrly.
//!
//! Everything here is plain data and pure functions, with no network code, so that central, the
//! agent, the MCP server, the CLI and anyone embedding the crate agree on one definition of each
//! tool, plan, error code and rule.
//!
//! - [`catalog`]: the tools, one table ([`catalog::ToolId`], [`catalog::ToolSpec`]).
//! - [`tools`]: each tool's typed input and output; their JSON Schemas come from the types.
//! - [`plan`]: plans and their limits; [`access`]: the access matrix derived from the catalog.
//! - [`error`]: the seed's error codes, one table, and [`MttrlyError`].
//! - [`action`]: the action state machine and action content.
//! - [`audit`]: the audit event.
//! - [`display`]: escaping for humans (what an approver reads is what is there).
//! - [`second_factor`]: TOTP codes, recovery codes and the lockout, pure (the caller persists).
//! - [`ids`], [`environment`], [`principal`]: shared domain types.

pub mod access;
pub mod action;
pub mod approval;
pub mod audit;
pub mod bounded;
pub mod capability;
pub mod catalog;
pub mod classifier;
pub mod deploys;
pub mod diagnose;
pub mod display;
pub mod environment;
pub mod error;
pub mod error_chain;
pub mod files;
pub mod ids;
pub mod input;
pub mod plan;
pub mod playbook;
pub mod policy;
pub mod principal;
pub mod reality;
pub mod redactor;
pub mod release;
pub mod role;
pub mod schema;
pub mod second_factor;
pub mod surface;
pub mod tools;

pub use catalog::{ToolId, ToolInput, ToolKind, ToolSpec, Toolset};
pub use environment::Environment;
pub use error::{ErrorBody, ErrorCode, MttrlyError};
pub use error_chain::ErrorChain;
pub use plan::Plan;
pub use principal::{ChatProvider, Principal, Source};
pub use role::Role;
pub use surface::ToolSurface;
