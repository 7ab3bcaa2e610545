//! OpenID Connect Discovery (§3, §4): what the provider's
//! `ISSUER/.well-known/openid-configuration` must say before central sends anyone there.
//!
//! Checked once at start, so a misconfigured provider stops central with a clear error instead
//! of failing every sign-in: the document's `issuer` must equal the configured one exactly (§4.3:
//! otherwise a document from one provider could impersonate another), the provider must offer
//! the authorization code flow with PKCE S256 and accept `client_secret_basic`, and every endpoint
//! must be HTTPS (plain HTTP only on loopback, for tests).

use serde::Deserialize;

use super::config::url_parts;

/// The discovery document's path under the issuer.
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The discovery document, the members central reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Document {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
    /// OAuth response types offered.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// PKCE methods offered (absent: none advertised).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods (absent: `client_secret_basic`, per Discovery §3).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The provider's endpoints, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The issuer, exactly as configured and discovered.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
}

/// What is wrong with the provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the OpenID provider's discovery document {0}")]
pub struct DiscoveryError(pub String);

/// The discovery URL of `issuer` (a trailing `/` is not doubled, Discovery §4.1).
pub fn url(issuer: &str) -> String {
    format!("{}{WELL_KNOWN}", issuer.trim_end_matches('/'))
}

/// Checks a discovery document against the configured issuer.
pub fn check(issuer: &str, document: &str) -> Result<Provider, DiscoveryError> {
    let bad = |m: String| Err(DiscoveryError(m));
    let doc: Document = match serde_json::from_str(document) {
        Ok(doc) => doc,
        Err(e) => return bad(format!("is not valid: {e}")),
    };
    if doc.issuer != issuer {
        return bad(format!(
            "names issuer `{}`, not `{issuer}`; set `issuer` to exactly what the provider publishes",
            doc.issuer
        ));
    }
    if !doc.response_types_supported.iter().any(|t| t == "code") {
        return bad("does not offer the authorization code flow (`code` in response_types_supported)".into());
    }
    if !doc.code_challenge_methods_supported.iter().any(|m| m == "S256") {
        return bad("does not offer PKCE with S256 (code_challenge_methods_supported)".into());
    }
    if let Some(methods) = &doc.token_endpoint_auth_methods_supported
        && !methods.iter().any(|m| m == "client_secret_basic")
    {
        return bad(
            "does not accept client_secret_basic at its token endpoint; configure the client as confidential with a secret".into(),
        );
    }
    for (name, endpoint) in [
        ("authorization_endpoint", &doc.authorization_endpoint),
        ("token_endpoint", &doc.token_endpoint),
        ("jwks_uri", &doc.jwks_uri),
    ] {
        match url_parts(endpoint) {
            Ok(parts) if parts.scheme == "https" || parts.loopback => {}
            Ok(_) => return bad(format!("gives {name} `{endpoint}` over plain http; it must use https")),
            Err(()) => return bad(format!("gives {name} `{endpoint}`, which is not an absolute http(s) URL")),
        }
    }
    Ok(Provider {
        issuer: doc.issuer,
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        jwks_uri: doc.jwks_uri,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example.com/realms/ops";

    fn document() -> serde_json::Value {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code", "id_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
        })
    }

    #[test]
    fn a_complete_document_gives_the_endpoints() {
        let p = check(ISSUER, &document().to_string()).unwrap();
        assert_eq!(p.token_endpoint, "https://idp.example.com/token");
        assert_eq!(url("https://a.example/"), "https://a.example/.well-known/openid-configuration");
    }

    #[test]
    fn each_gap_is_named() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("issuer", json!("https://idp.example.com/realms/ops/"), "names issuer"),
            ("issuer", json!("https://evil.example/realms/ops"), "names issuer"),
            ("response_types_supported", json!(["id_token"]), "authorization code flow"),
            ("code_challenge_methods_supported", json!(["plain"]), "S256"),
            ("code_challenge_methods_supported", json!(null), "not valid"),
            ("token_endpoint_auth_methods_supported", json!(["private_key_jwt"]), "client_secret_basic"),
            ("token_endpoint", json!("http://idp.example.com/token"), "plain http"),
            ("jwks_uri", json!("/jwks"), "not an absolute"),
        ];
        for (member, value, expected) in cases {
            let mut doc = document();
            doc[member] = value;
            let err = check(ISSUER, &doc.to_string()).unwrap_err();
            assert!(err.to_string().contains(expected), "{member}: {err} (wanted {expected})");
        }
        let mut doc = document();
        doc.as_object_mut().unwrap().remove("code_challenge_methods_supported");
        assert!(check(ISSUER, &doc.to_string()).unwrap_err().to_string().contains("S256"));
        assert!(check(ISSUER, "not json").is_err());
    }

    #[test]
    fn loopback_providers_may_use_plain_http() {
        let issuer = "http://127.0.0.1:4000";
        let doc = json!({
            "issuer": issuer,
            "authorization_endpoint": "http://127.0.0.1:4000/auth",
            "token_endpoint": "http://127.0.0.1:4000/token",
            "jwks_uri": "http://localhost:4000/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        });
        check(issuer, &doc.to_string()).unwrap();
    }
}
