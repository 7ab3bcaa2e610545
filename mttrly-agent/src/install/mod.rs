//! The agent's installation on its host: where it lives ([`layout`]).

pub mod layout;
