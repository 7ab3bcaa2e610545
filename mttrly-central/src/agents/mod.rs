//! Agents connected to central.

pub mod registry;
