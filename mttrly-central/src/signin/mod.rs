//! How people (not assistants) prove who they are: passwords with a second factor, an OpenID
//! Connect provider, and the device flow that hands the CLI a token after a browser sign-in.
//!
//! - [`password`]: argon2id hashes and the rules for a new password.
//! - [`oidc`]: the `[oidc]` configuration, ID-token validation, identity and role mapping.
//! - [`device`]: RFC 8628 user codes.
//! - [`session`]: the browser session cookie, its timeouts and the CSRF token bound to it.
//!
//! The second factor's rules (TOTP, recovery codes, lockout) are pure and live in
//! `mttrly_core::second_factor`.

pub mod device;
pub mod oidc;
pub mod password;
pub mod session;
