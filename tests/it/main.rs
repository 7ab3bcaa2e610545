//! End-to-end scenarios. One test binary, one module per area.

mod audit;
mod catalog;
mod fleet;
mod quickstart;
mod tls;
