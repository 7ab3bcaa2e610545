//! End-to-end scenarios. One test binary, one module per area.

mod catalog;
