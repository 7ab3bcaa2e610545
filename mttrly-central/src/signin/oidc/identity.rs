//! Who an ID token says the person is, under the `[oidc]` rules: a subject always, a verified
//! e-mail in an allowed domain when configured, and the role their groups map to.
//!
//! An unverified e-mail never identifies anyone: many providers let people type any address, and
//! matching it to an existing user would let a stranger sign in as them.

use mttrly_core::Role;
use serde_json::Value;

use super::config::OidcConfig;
use super::jwt::Claims;

/// The person, as far as the provider vouches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable subject identifier.
    pub subject: String,
    /// The e-mail address, only if the provider marked it verified (lower-cased).
    pub verified_email: Option<String>,
    /// A display name, if given.
    pub name: Option<String>,
    /// The most powerful role the person's groups map to, if a role claim is configured and any
    /// group is mapped.
    pub mapped_role: Option<Role>,
}

/// Why the claims do not admit anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefusal {
    /// Domains are restricted and the token has no verified e-mail.
    #[error(
        "the provider did not vouch for an e-mail address (email_verified is not true), which this central requires"
    )]
    NoVerifiedEmail,
    /// The verified e-mail's domain is not allowed.
    #[error("e-mail domain `{0}` is not allowed to sign in here")]
    DomainNotAllowed(String),
}

/// Reads the identity out of validated claims.
pub fn identity(config: &OidcConfig, claims: &Claims) -> Result<Identity, IdentityRefusal> {
    let verified = claims.0.get("email_verified").is_some_and(|v| v == &Value::Bool(true));
    let verified_email = claims
        .str("email")
        .filter(|_| verified)
        .filter(|e| e.len() <= 254 && e.matches('@').count() == 1)
        .map(str::to_ascii_lowercase);
    if !config.allowed_domains.is_empty() {
        let Some(email) = &verified_email else {
            return Err(IdentityRefusal::NoVerifiedEmail);
        };
        let domain = email.rsplit('@').next().unwrap_or_default();
        if !config.allowed_domains.iter().any(|d| d == domain) {
            return Err(IdentityRefusal::DomainNotAllowed(domain.to_owned()));
        }
    }
    let mapped_role = config.role_claim.as_deref().and_then(|claim| {
        let groups: Vec<&str> = match claims.0.get(claim) {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => Vec::new(),
        };
        // Roles order from most to least powerful, so the minimum is the strongest.
        groups.iter().filter_map(|g| config.role_map.get(*g).copied()).min()
    });
    let name = claims.str("name").map(|n| n.chars().filter(|c| !c.is_control()).take(128).collect());
    Ok(Identity { subject: claims.subject().to_owned(), verified_email, name, mapped_role })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn config(domains: &[&str]) -> OidcConfig {
        OidcConfig {
            issuer: "https://idp.example".into(),
            client_id: "mttrly".into(),
            client_secret_env: "X".into(),
            allowed_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            role_claim: Some("groups".into()),
            role_map: BTreeMap::from([
                ("sre".into(), Role::Operator),
                ("leads".into(), Role::Admin),
                ("ro".into(), Role::Viewer),
            ]),
            create_users: false,
            scopes: Vec::new(),
            display_name: None,
            account: None,
            client_secret: None,
        }
    }

    fn claims(v: serde_json::Value) -> Claims {
        Claims(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn an_unverified_email_never_identifies_anyone() {
        let c = claims(json!({"sub": "s1", "email": "Bob@Example.com", "email_verified": false}));
        assert_eq!(identity(&config(&[]), &c).unwrap().verified_email, None);
        assert_eq!(identity(&config(&["example.com"]), &c), Err(IdentityRefusal::NoVerifiedEmail));
        let c = claims(json!({"sub": "s1", "email": "bob@example.com", "email_verified": "true"}));
        assert_eq!(
            identity(&config(&["example.com"]), &c),
            Err(IdentityRefusal::NoVerifiedEmail),
            "a string is not true"
        );
    }

    #[test]
    fn domains_match_exactly_not_by_suffix() {
        for (email, ok) in [
            ("bob@example.com", true),
            ("BOB@EXAMPLE.COM", true),
            ("bob@evil-example.com", false),
            ("bob@example.com.evil.io", false),
            ("bob@sub.example.com", false),
            ("bob@example.com@evil.io", false),
        ] {
            let c = claims(json!({"sub": "s", "email": email, "email_verified": true}));
            assert_eq!(identity(&config(&["example.com"]), &c).is_ok(), ok, "{email}");
        }
    }

    #[test]
    fn the_strongest_mapped_group_gives_the_role() {
        let c = claims(json!({"sub": "s", "groups": ["ro", "sre", "unknown"]}));
        assert_eq!(identity(&config(&[]), &c).unwrap().mapped_role, Some(Role::Operator));
        let c = claims(json!({"sub": "s", "groups": ["sre", "leads"]}));
        assert_eq!(identity(&config(&[]), &c).unwrap().mapped_role, Some(Role::Admin));
        let c = claims(json!({"sub": "s", "groups": "ro"}));
        assert_eq!(identity(&config(&[]), &c).unwrap().mapped_role, Some(Role::Viewer));
        let c = claims(json!({"sub": "s", "groups": [1, null]}));
        assert_eq!(identity(&config(&[]), &c).unwrap().mapped_role, None);
    }
}
