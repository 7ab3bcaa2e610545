//! How people (not assistants) prove who they are: passwords with a second factor, an OpenID
//! Connect provider, and the device flow that hands the CLI a token after a browser sign-in.
//!
//! - [`password`]: argon2id hashes and the rules for a new password.
//! - [`oidc`]: the `[oidc]` configuration, ID-token validation, identity and role mapping.
//! - [`device`]: RFC 8628 user codes.
//! - [`device_flow`]: `mttrly-cli login`, the device authorization flow and its `/device` page.
//! - [`session`]: the browser session cookie, its timeouts and the CSRF token bound to it.
//! - [`invite`]: invite links (a password and a TOTP enrolment for people without an IdP).
//! - `web`: browser sessions on central's pages (`SignedIn`, `start_session`, CSRF) and the
//!   sign-in, sign-out and invite pages.
//!
//! The second factor's rules (TOTP, recovery codes, lockout) are pure and live in
//! `mttrly_core::second_factor`.

pub mod device;
pub mod device_flow;
pub mod invite;
pub mod oidc;
pub mod password;
pub mod session;
pub(crate) mod web;
