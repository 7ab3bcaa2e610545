//! Threshold alerts evaluated on central from heartbeats.

pub mod engine;
pub mod rules;
