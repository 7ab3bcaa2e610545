//! Sign-in through an OpenID Connect provider (Okta, Entra ID, Google, Keycloak, Dex, …).
//!
//! [`config`] is the `[oidc]` table and its checks; [`jwt`] validates an ID token against the
//! provider's published keys and this sign-in's expectations; [`identity`] reads who the person
//! is under the configured rules (verified e-mail, allowed domains, group → role). All three are
//! pure, so every refusal is tested without a provider.
//!
//! Around them: [`discovery`] checks the provider's discovery document at start; [`client`] is
//! central as a relying party (the provider's endpoints and cached keys, the authorization URL,
//! the code exchange); [`flow`] the two routes (`/signin/oidc`, `/signin/oidc/callback`) with the
//! pending login bound to the browser, user matching and just-in-time creation.

pub mod client;
pub mod config;
pub mod discovery;
pub(crate) mod flow;
pub mod identity;
pub mod jwt;
