//! Threshold alerts evaluated on central from heartbeats.

pub mod config;
pub mod engine;
pub mod rules;
