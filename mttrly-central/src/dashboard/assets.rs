//! The dashboard's two assets, built into the binary (no CDN, no separate web server): the style
//! sheet and the one script that keeps pages live. Pages link them with their content hash in the
//! query (`/assets/app.css?v=…`), so a browser may keep them for a year: a new binary links a new
//! URL. The `ETag` is the same hash, for revalidation.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

/// Where the style sheet is served.
pub(super) const CSS_PATH: &str = "/assets/app.css";
/// Where the script is served.
pub(super) const JS_PATH: &str = "/assets/app.js";

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");

/// An asset's body and the first 16 hex digits of its SHA-256.
struct Asset {
    body: &'static str,
    hash: String,
    content_type: &'static str,
    path: &'static str,
}

impl Asset {
    fn new(path: &'static str, body: &'static str, content_type: &'static str) -> Self {
        let hash = hex::encode(&sha2::Sha256::digest(body.as_bytes())[..8]);
        Self { body, hash, content_type, path }
    }

    fn url(&self) -> String {
        format!("{}?v={}", self.path, self.hash)
    }

    fn serve(&self, headers: &HeaderMap) -> Response {
        let etag = format!("\"{}\"", self.hash);
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut response =
            if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, self.body).into_response() };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        response
    }
}

static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::new(CSS_PATH, CSS, "text/css; charset=utf-8"));
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::new(JS_PATH, JS, "text/javascript; charset=utf-8"));

/// The style sheet's URL, with its hash.
pub(super) fn css_url() -> String {
    STYLE.url()
}

/// The script's URL, with its hash.
pub(super) fn js_url() -> String {
    SCRIPT.url()
}

/// `GET /assets/app.css`.
pub(super) async fn css(headers: HeaderMap) -> Response {
    STYLE.serve(&headers)
}

/// `GET /assets/app.js`.
pub(super) async fn js(headers: HeaderMap) -> Response {
    SCRIPT.serve(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_cached_by_hash_and_revalidated_by_etag() {
        let fresh = STYLE.serve(&HeaderMap::new());
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(fresh.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let etag = fresh.headers()[header::ETAG].clone();
        assert!(css_url().ends_with(etag.to_str().unwrap_or_default().trim_matches('"')), "{}", css_url());
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(SCRIPT.serve(&again).status(), StatusCode::OK, "another asset's tag does not match");
        assert_eq!(STYLE.serve(&again).status(), StatusCode::NOT_MODIFIED);
    }
}
