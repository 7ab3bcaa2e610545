//! The `[oidc]` table of central's configuration: which provider, which client, who may sign in
//! and with which role.
//!
//! ```toml
//! [oidc]
//! issuer = "https://login.example.com/realms/ops"   # exactly as the provider's discovery says
//! client_id = "mttrly"
//! client_secret_env = "MTTRLY_OIDC_CLIENT_SECRET"   # the secret is read from this variable
//! allowed_domains = ["example.com"]                 # verified e-mail domains that may sign in
//! role_claim = "groups"                             # optional: a claim listing groups
//! role_map = { sre-leads = "admin", sre = "operator" }
//! create_users = false                              # just-in-time creation (needs role_claim)
//! account = "default"                               # optional: the account people sign into
//! display_name = "Okta"                             # optional: "Sign in with Okta"
//! ```

use std::collections::BTreeMap;

use mttrly_core::Role;
use serde::{Deserialize, Serialize};

/// The `[oidc]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer identifier: discovery is read from `ISSUER/.well-known/openid-configuration`
    /// and its `issuer` must equal this exactly.
    pub issuer: String,
    /// This central's client id at the provider.
    pub client_id: String,
    /// The environment variable holding the client secret (never the secret in the file).
    pub client_secret_env: String,
    /// E-mail domains whose verified addresses may sign in. Empty: any verified address that
    /// matches an existing user (by e-mail or subject).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// A claim holding the person's groups (a list of strings), mapped to roles by `role_map`.
    #[serde(default)]
    pub role_claim: Option<String>,
    /// Group → role. The most powerful role among the person's groups wins.
    #[serde(default)]
    pub role_map: BTreeMap<String, Role>,
    /// Create a user at first sign-in when no user matches (needs `role_claim` and a mapped group,
    /// so nobody is created without a role someone chose).
    #[serde(default)]
    pub create_users: bool,
    /// Extra scopes to ask for besides `openid email profile` (e.g. `groups`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The button's label on the sign-in page ("Sign in with …"; default `SSO`).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The account (by name) whose users sign in through this provider; default: the first
    /// account, the one `init` created. The table belongs to the deployment, so one provider
    /// serves one account; a user with the same e-mail in another account is never signed in.
    #[serde(default)]
    pub account: Option<String>,
    /// The client secret, set by code that embeds central (tests) instead of the variable named
    /// by `client_secret_env`. Never read from nor written to a file: the key is refused there.
    #[serde(skip)]
    pub client_secret: Option<ClientSecret>,
}

/// A client secret, which `Debug` never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// What is wrong with an `[oidc]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [oidc] configuration: {0}")]
pub struct OidcConfigError(pub String);

impl OidcConfig {
    /// Checks the table; `secret` is the value of `client_secret_env` at start.
    pub fn validate(&self, secret: Option<&str>) -> Result<(), OidcConfigError> {
        let bad = |m: String| Err(OidcConfigError(m));
        let Ok(url) = url_parts(&self.issuer) else {
            return bad(format!("issuer `{}` is not an absolute http(s) URL", self.issuer));
        };
        if url.scheme == "http" && !url.loopback {
            return bad(format!(
                "issuer `{}` must use https (plain http is accepted only on a loopback address, for tests)",
                self.issuer
            ));
        }
        if self.issuer.contains(['?', '#']) {
            return bad("issuer must not contain a query or fragment (OpenID Connect Discovery §2)".into());
        }
        if self.client_id.is_empty() || self.client_id.len() > 255 {
            return bad("client_id must be 1–255 characters".into());
        }
        match secret {
            None => {
                return bad(format!(
                    "client_secret_env names `{}`, which is not set; export the client secret there",
                    self.client_secret_env
                ));
            }
            Some(s) if s.len() < 16 => {
                return bad(format!("the client secret in `{}` is shorter than 16 characters", self.client_secret_env));
            }
            Some(_) => {}
        }
        for domain in &self.allowed_domains {
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                && domain.contains('.');
            if !ok {
                return bad(format!("allowed_domains: `{domain}` is not a lower-case domain name"));
            }
        }
        if let Some(label) = &self.display_name
            && (label.trim().is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control))
        {
            return bad("display_name must be 1–64 printable characters".into());
        }
        if self.account.as_deref().is_some_and(str::is_empty) {
            return bad("account must name an account (or be left out for the first one)".into());
        }
        if !self.role_map.is_empty() && self.role_claim.is_none() {
            return bad("role_map needs role_claim (the claim that lists groups)".into());
        }
        if self.create_users && (self.role_claim.is_none() || self.role_map.is_empty()) {
            return bad(
                "create_users needs role_claim and role_map, so every created user gets a role someone chose".into()
            );
        }
        for scope in &self.scopes {
            if scope.is_empty() || !scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
                return bad(format!("scopes: `{scope}` is not a scope token (RFC 6749 §3.3)"));
            }
        }
        Ok(())
    }

    /// The scopes asked for.
    pub fn scope_string(&self) -> String {
        let mut scopes = vec!["openid".to_owned(), "email".to_owned(), "profile".to_owned()];
        for s in &self.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        scopes.join(" ")
    }
}

/// The parts of an absolute URL this module cares about.
pub(super) struct UrlParts {
    pub(super) scheme: String,
    pub(super) loopback: bool,
}

/// Parses the scheme and host of an absolute http(s) URL.
pub(super) fn url_parts(url: &str) -> Result<UrlParts, ()> {
    let uri: http::Uri = url.parse().map_err(|_| ())?;
    let scheme = uri.scheme_str().ok_or(())?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(());
    }
    let host = uri.host().ok_or(())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(UrlParts { scheme, loopback })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        toml::from_str(
            r#"
            issuer = "https://idp.example.com/realms/ops"
            client_id = "mttrly"
            client_secret_env = "X"
            allowed_domains = ["example.com"]
            role_claim = "groups"
            role_map = { sre = "operator", leads = "admin" }
            create_users = true
            scopes = ["groups"]
            "#,
        )
        .unwrap()
    }

    const SECRET: Option<&str> = Some("0123456789abcdef0123");

    #[test]
    fn a_complete_table_is_valid() {
        config().validate(SECRET).unwrap();
        assert_eq!(config().scope_string(), "openid email profile groups");
    }

    #[test]
    fn each_mistake_is_named() {
        type Mutation = Box<dyn Fn(&mut OidcConfig)>;
        let cases: Vec<(Mutation, Option<&str>, &str)> = vec![
            (Box::new(|c| c.issuer = "http://idp.example.com".into()), SECRET, "must use https"),
            (Box::new(|c| c.issuer = "idp.example.com".into()), SECRET, "not an absolute"),
            (Box::new(|c| c.issuer = "https://idp.example.com/?x=1".into()), SECRET, "query or fragment"),
            (Box::new(|_| {}), None, "not set"),
            (Box::new(|_| {}), Some("short"), "shorter than 16"),
            (Box::new(|c| c.allowed_domains = vec!["Example.com".into()]), SECRET, "allowed_domains"),
            (Box::new(|c| c.allowed_domains = vec!["@example.com".into()]), SECRET, "allowed_domains"),
            (Box::new(|c| c.role_claim = None), SECRET, "role_map needs role_claim"),
            (Box::new(|c| c.role_map.clear()), SECRET, "create_users needs"),
            (Box::new(|c| c.scopes = vec!["a b".into()]), SECRET, "scope token"),
            (Box::new(|c| c.display_name = Some("x\n".into())), SECRET, "display_name"),
            (Box::new(|c| c.account = Some(String::new())), SECRET, "account"),
        ];
        for (mutate, secret, expected) in cases {
            let mut c = config();
            mutate(&mut c);
            let err = c.validate(secret).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} (wanted {expected})");
        }
        let mut c = config();
        c.issuer = "http://127.0.0.1:9000".into();
        c.validate(SECRET).unwrap();
    }

    #[test]
    fn central_reads_the_table_and_never_a_secret_from_the_file() {
        let base = "[oidc]\nissuer = 'https://idp.example.com'\nclient_id = 'x'\nclient_secret_env = 'X'\n";
        let c: crate::config::Config =
            toml::from_str(&format!("{base}account = 'ops'\ndisplay_name = 'Okta'")).unwrap();
        let oidc = c.oidc.unwrap();
        assert_eq!((oidc.account.as_deref(), oidc.display_name.as_deref()), (Some("ops"), Some("Okta")));
        assert_eq!(oidc.client_secret, None);
        assert!(toml::from_str::<crate::config::Config>(&format!("{base}client_secret = 'leak'")).is_err());
        assert_eq!(toml::from_str::<crate::config::Config>("").unwrap().oidc, None, "off by default");
        let secret = ClientSecret("0123456789abcdef".into());
        assert_eq!(format!("{secret:?}"), "ClientSecret(…)");
    }

    #[test]
    fn unknown_keys_and_roles_are_refused() {
        assert!(
            toml::from_str::<OidcConfig>(
                "issuer='https://a.b'\nclient_id='x'\nclient_secret_env='X'\nclient_secret='leak'"
            )
            .is_err()
        );
        assert!(
            toml::from_str::<OidcConfig>(
                "issuer='https://a.b'\nclient_id='x'\nclient_secret_env='X'\nrole_map={a='root'}"
            )
            .is_err()
        );
    }
}
