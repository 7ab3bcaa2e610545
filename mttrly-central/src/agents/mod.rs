//! Agents connected to central.

pub mod ask;
pub mod registry;
