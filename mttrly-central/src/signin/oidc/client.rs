//! Central as an OpenID Connect relying party: the provider discovered at start, its keys kept
//! (and refreshed when a token names a key central has not seen, at most once a minute), and the
//! two requests a sign-in makes: the authorization URL the browser goes to, and the code exchange.
//!
//! Every request to the provider has a timeout and follows no redirect, and runs on the blocking
//! pool (ureq is blocking). The person signing in never sees what the provider answered: it is
//! logged for the operator, since the detail helps an attacker probing the flow more than them.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mttrly_core::ids::AccountId;
use mttrly_core::{ErrorCode, MttrlyError};
use serde::Deserialize;

use super::config::OidcConfig;
use super::discovery::{self, Provider};
use super::jwt::{self, Claims, Expected, IdTokenError, Jwks};
use crate::db::Db;

/// Each request to the provider must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (discovery, keys, token response).
const MAX_BODY: u64 = 1024 * 1024;
/// A token naming an unknown key refreshes the keys at most this often, so a forged `kid` cannot
/// make central hammer the provider.
pub const MIN_KEY_REFRESH: Duration = Duration::from_secs(60);

/// Why a request to the provider, or its answer, failed. Logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer (connection, timeout, TLS).
    #[error("request to {url} failed: {detail}")]
    Transport {
        /// Where.
        url: String,
        /// What the HTTP client said.
        detail: String,
    },
    /// An answer other than 200.
    #[error("{url} answered HTTP {status}{}", .error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status {
        /// Where.
        url: String,
        /// The status.
        status: u16,
        /// The OAuth `error` (and description) it gave, if any.
        error: Option<String>,
    },
    /// A 200 whose body is not what the protocol says.
    #[error("{url} answered something unexpected: {detail}")]
    Malformed {
        /// Where.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The ID token was refused.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// The relying party: configuration, the provider's endpoints and keys, the account people sign
/// into. Built once at start by [`OidcClient::start`].
pub struct OidcClient {
    config: OidcConfig,
    secret: String,
    provider: Provider,
    account: AccountId,
    keys: RwLock<Arc<Jwks>>,
    /// When the keys were last fetched; held across a refresh so concurrent ones coalesce.
    refreshed: tokio::sync::Mutex<Instant>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the secret, nor the keys.
        f.debug_struct("OidcClient")
            .field("issuer", &self.provider.issuer)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> MttrlyError {
    MttrlyError::new(ErrorCode::ValidationError, message)
}

impl OidcClient {
    /// Checks the `[oidc]` table, finds the account people sign into, reads the provider's
    /// discovery document and keys. Any failure is `VALIDATION_ERROR` naming what to fix: central
    /// does not start with a sign-in that cannot work.
    pub async fn start(config: &OidcConfig, db: &Db) -> Result<Arc<Self>, MttrlyError> {
        let secret = config
            .client_secret
            .as_ref()
            .map(|s| s.0.clone())
            .or_else(|| std::env::var(&config.client_secret_env).ok());
        config.validate(secret.as_deref()).map_err(|e| invalid(e.to_string()))?;
        let secret = secret.unwrap_or_default();
        let account = match &config.account {
            Some(name) => db.account_named(name).await?.ok_or_else(|| {
                invalid(format!("invalid [oidc] configuration: account `{name}` does not exist in this central"))
            })?,
            None => db.first_account().await?.map(|(id, _)| id).ok_or_else(|| {
                invalid("invalid [oidc] configuration: no account exists yet; run `mttrly-central init` first".into())
            })?,
        };
        let issuer = config.issuer.clone();
        let (provider, keys) = tokio::task::spawn_blocking(move || {
            let document = get(&discovery::url(&issuer))?;
            let provider = discovery::check(&issuer, &document).map_err(|e| e.to_string())?;
            let keys = fetch_keys(&provider.jwks_uri).map_err(|e| e.to_string())?;
            Ok::<_, String>((provider, keys))
        })
        .await
        .map_err(|e| invalid(format!("OpenID provider discovery did not finish: {e}")))?
        .map_err(|e| invalid(format!("invalid [oidc] configuration: {e}")))?;
        tracing::info!(issuer = %provider.issuer, keys = keys.keys.len(), %account, "OpenID Connect sign-in ready");
        Ok(Arc::new(Self {
            config: config.clone(),
            secret,
            provider,
            account,
            keys: RwLock::new(Arc::new(keys)),
            refreshed: tokio::sync::Mutex::new(Instant::now()),
        }))
    }

    /// The `[oidc]` table.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The issuer, as discovered.
    pub fn issuer(&self) -> &str {
        &self.provider.issuer
    }

    /// The account people sign into.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The sign-in button's label.
    pub fn display_name(&self) -> &str {
        self.config.display_name.as_deref().unwrap_or("SSO")
    }

    /// Where the browser goes: an authorization request for the code flow with PKCE (S256).
    pub fn authorization_url(&self, redirect_uri: &str, state: &str, nonce: &str, code_verifier: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, code_verifier.as_bytes()));
        let scope = self.config.scope_string();
        let params = [
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let endpoint = &self.provider.authorization_endpoint;
        let mut url = endpoint.clone();
        let mut sep = if endpoint.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&form_encode(v));
            sep = '&';
        }
        url
    }

    /// Exchanges the code at the token endpoint (`client_secret_basic`, the PKCE verifier) and
    /// returns the validated ID token's claims.
    pub async fn exchange(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<Claims, ProviderError> {
        let token_endpoint = self.provider.token_endpoint.clone();
        let basic = STANDARD.encode(format!("{}:{}", form_encode(&self.config.client_id), form_encode(&self.secret)));
        let form = [
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.to_owned()),
            ("code_verifier".to_owned(), code_verifier.to_owned()),
        ];
        let id_token = tokio::task::spawn_blocking(move || exchange_code(&token_endpoint, &basic, &form))
            .await
            .map_err(|e| ProviderError::Transport { url: "token endpoint".into(), detail: e.to_string() })??;
        self.validate(&id_token, nonce).await
    }

    /// Validates an ID token; a token naming a key not in the cached set refreshes the keys once
    /// (at most once per [`MIN_KEY_REFRESH`]) and is checked again.
    pub async fn validate(&self, id_token: &str, nonce: &str) -> Result<Claims, ProviderError> {
        let expected = Expected {
            issuer: &self.provider.issuer,
            client_id: &self.config.client_id,
            nonce,
            now: jiff::Timestamp::now().as_second(),
        };
        let keys = self.keys();
        match jwt::validate(id_token, &keys, &expected) {
            Err(IdTokenError::NoKey(kid)) => {
                if self.refresh_keys(&keys).await? {
                    Ok(jwt::validate(id_token, &self.keys(), &expected)?)
                } else {
                    Err(IdTokenError::NoKey(kid).into())
                }
            }
            other => Ok(other?),
        }
    }

    fn keys(&self) -> Arc<Jwks> {
        Arc::clone(&self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Fetches the keys again unless they were fetched within [`MIN_KEY_REFRESH`]. `true` when
    /// the keys now differ from `seen` (fetched here, or by a concurrent refresh).
    async fn refresh_keys(&self, seen: &Arc<Jwks>) -> Result<bool, ProviderError> {
        let mut refreshed = self.refreshed.lock().await;
        if !Arc::ptr_eq(seen, &self.keys()) {
            return Ok(true);
        }
        if refreshed.elapsed() < MIN_KEY_REFRESH {
            tracing::warn!(issuer = %self.provider.issuer, "an ID token names an unknown key; keys were fetched less than a minute ago, not fetching again");
            return Ok(false);
        }
        *refreshed = Instant::now();
        let uri = self.provider.jwks_uri.clone();
        let fresh = tokio::task::spawn_blocking(move || fetch_keys(&uri))
            .await
            .map_err(|e| ProviderError::Transport { url: "jwks_uri".into(), detail: e.to_string() })??;
        tracing::info!(issuer = %self.provider.issuer, keys = fresh.keys.len(), "OpenID provider keys refreshed");
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        Ok(true)
    }
}

/// The HTTP client for the provider: a timeout on the whole request, no redirects (an issuer's
/// endpoints are exactly what discovery said), statuses read rather than raised.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("mttrly-central/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn read_body(url: &str, response: &mut ureq::http::Response<ureq::Body>) -> Result<String, ProviderError> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| ProviderError::Malformed { url: url.to_owned(), detail: e.to_string() })
}

/// GET `url` and its body, which must come with 200.
fn get(url: &str) -> Result<String, String> {
    let mut response =
        agent().get(url).header("Accept", "application/json").call().map_err(|e| format!("cannot reach {url}: {e}"))?;
    if response.status() != 200 {
        return Err(format!("{url} answered HTTP {}", response.status().as_u16()));
    }
    read_body(url, &mut response).map_err(|e| e.to_string())
}

fn fetch_keys(uri: &str) -> Result<Jwks, ProviderError> {
    let body = get(uri).map_err(|detail| ProviderError::Transport { url: uri.to_owned(), detail })?;
    serde_json::from_str(&body).map_err(|e| ProviderError::Malformed { url: uri.to_owned(), detail: e.to_string() })
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn exchange_code(url: &str, basic: &str, form: &[(String, String)]) -> Result<String, ProviderError> {
    let mut response = agent()
        .post(url)
        .header("Authorization", &format!("Basic {basic}"))
        .header("Accept", "application/json")
        .send_form(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ProviderError::Transport { url: url.to_owned(), detail: e.to_string() })?;
    let status = response.status().as_u16();
    let body = read_body(url, &mut response)?;
    if status != 200 {
        let error = serde_json::from_str::<TokenError>(&body).ok().map(|e| {
            let mut text: String = e.error.chars().filter(|c| !c.is_control()).take(100).collect();
            if let Some(d) = e.error_description {
                text.push_str(": ");
                text.extend(d.chars().filter(|c| !c.is_control()).take(300));
            }
            text
        });
        return Err(ProviderError::Status { url: url.to_owned(), status, error });
    }
    let parsed: TokenResponse = serde_json::from_str(&body)
        .map_err(|e| ProviderError::Malformed { url: url.to_owned(), detail: e.to_string() })?;
    parsed
        .id_token
        .ok_or_else(|| ProviderError::Malformed { url: url.to_owned(), detail: "no id_token in the answer".into() })
}

/// `application/x-www-form-urlencoded` for one value (also what RFC 6749 §2.3.1 asks of the
/// client id and secret inside HTTP Basic).
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    use serde_json::{Value, json};

    use super::*;
    use crate::signin::oidc::config::ClientSecret;

    /// A provider's discovery and keys on loopback: the published keys can change, and key
    /// fetches are counted.
    struct Keys {
        published: Mutex<Value>,
        fetches: AtomicUsize,
    }

    fn ed_key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn jwk(kid: &str, key: &Ed25519KeyPair) -> Value {
        json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()) })
    }

    fn sign(kid: &str, key: &Ed25519KeyPair, issuer: &str) -> String {
        let now = jiff::Timestamp::now().as_second();
        let header = json!({ "alg": "EdDSA", "kid": kid });
        let claims = json!({ "iss": issuer, "sub": "s", "aud": "mttrly", "exp": now + 300, "iat": now, "nonce": "n" });
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let sig = key.sign(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    async fn provider(keys: Arc<Keys>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let doc = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", axum::routing::get(move || async move { axum::Json(doc) }))
            .route(
                "/jwks",
                axum::routing::get(move || async move {
                    keys.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(keys.published.lock().unwrap().clone())
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    #[tokio::test]
    async fn unknown_keys_refresh_the_set_at_most_once_a_minute() {
        let (old, new) = (ed_key(), ed_key());
        let keys = Arc::new(Keys { published: Mutex::new(json!({ "keys": [jwk("old", &old)] })), fetches: 0.into() });
        let issuer = provider(Arc::clone(&keys)).await;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        db.create_tenant("t", mttrly_core::Plan::DeploymentCrew, "admin", &[1; 32]).await.unwrap();
        let config = OidcConfig {
            issuer: issuer.clone(),
            client_id: "mttrly".into(),
            client_secret_env: "UNUSED".into(),
            allowed_domains: Vec::new(),
            role_claim: None,
            role_map: std::collections::BTreeMap::new(),
            create_users: false,
            scopes: Vec::new(),
            display_name: None,
            account: None,
            client_secret: Some(ClientSecret("0123456789abcdef0123".into())),
        };
        let client = OidcClient::start(&config, &db).await.unwrap();
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);
        client.validate(&sign("old", &old, &issuer), "n").await.unwrap();

        // The provider rotates. Right after a fetch, a token with the new key is not worth another.
        *keys.published.lock().unwrap() = json!({ "keys": [jwk("old", &old), jwk("new", &new)] });
        let rotated = sign("new", &new, &issuer);
        assert!(matches!(client.validate(&rotated, "n").await, Err(ProviderError::IdToken(IdTokenError::NoKey(_)))));
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);

        // A minute on, it is: fetched once, and the token passes.
        *client.refreshed.lock().await = Instant::now().checked_sub(MIN_KEY_REFRESH).unwrap();
        client.validate(&rotated, "n").await.unwrap();
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);

        // Forged key ids, however many, fetch nothing more.
        for i in 0..20 {
            let forged = sign(&format!("forged-{i}"), &ed_key(), &issuer);
            assert!(client.validate(&forged, "n").await.is_err());
        }
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
        // A token from a published key with another nonce is still refused.
        assert!(matches!(
            client.validate(&rotated, "other").await,
            Err(ProviderError::IdToken(IdTokenError::Claim { claim: "nonce", .. }))
        ));
    }

    #[test]
    fn form_encoding_leaves_only_unreserved_characters() {
        assert_eq!(form_encode("a b:c/d?e=f&g+h~i"), "a%20b%3Ac%2Fd%3Fe%3Df%26g%2Bh~i");
        assert_eq!(form_encode("é"), "%C3%A9");
    }
}
