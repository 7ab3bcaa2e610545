//! End-to-end scenarios. One test binary, one module per area.

mod catalog;
mod fleet;
mod quickstart;
mod tls;
