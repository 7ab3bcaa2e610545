//! Sign-in through an OpenID Connect provider (Okta, Entra ID, Google, Keycloak, Dex, …).
//!
//! [`config`] is the `[oidc]` table and its checks; [`jwt`] validates an ID token against the
//! provider's published keys and this sign-in's expectations; [`identity`] reads who the person
//! is under the configured rules (verified e-mail, allowed domains, group → role). All three are
//! pure, so every refusal is tested without a provider.

pub mod config;
pub mod identity;
pub mod jwt;
