//! The second factor for humans: TOTP codes (RFC 6238), single-use recovery codes, and the lockout
//! after repeated failures.
//!
//! Everything here is pure: the caller supplies the random bytes, the clock and the state it
//! persisted (the last accepted step, the failure count), so every rule is testable without a
//! database or a clock, and central decides where state lives. A code is something a human types
//! into central's own pages or terminal prompt; it is never a tool argument and never passes
//! through an assistant.

pub mod lockout;
pub mod recovery;
pub mod totp;

pub use lockout::{Lockout, LockoutState};
pub use recovery::{RecoveryCode, RecoveryCodeHash};
pub use totp::{TotpRefusal, TotpSecret};
