//! One module per top-level command.

pub(crate) mod tools;
