//! The stylesheet and script of the portal page, embedded at build time.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::PortalError;
use crate::view::is_hex_colour;

const STYLESHEET: &str = include_str!("../assets/portal.css");
const SCRIPT: &str = include_str!("../assets/portal.js");

/// Caching of asset URLs. Each URL names its content (the page adds
/// [`version`] to the stylesheet and script URLs, and the accent colour is
/// in its file name), so browsers may keep them for a year.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// Returns a short hash of the embedded assets. The page adds it to their
/// URLs, so browsers fetch a new build's assets instead of cached old ones.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        // DefaultHasher may change between Rust releases; that only changes
        // the URLs, once, after such an upgrade.
        let mut hasher = DefaultHasher::new();
        STYLESHEET.hash(&mut hasher);
        SCRIPT.hash(&mut hasher);
        format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
    });
    &VERSION
}

/// `GET /assets/portal.css`.
pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET.to_owned())
}

/// `GET /assets/portal.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

/// `GET /assets/accent/{rrggbb}.css`: the studio's accent colour as CSS
/// variables. It is a file rather than an inline style so the
/// Content-Security-Policy can forbid inline styles.
pub async fn accent_stylesheet(Path(file): Path<String>) -> Result<Response, PortalError> {
    let hex = file
        .strip_suffix(".css")
        .filter(|hex| is_hex_colour(hex))
        .ok_or(PortalError::LinkNotFound)?;
    let ink = if is_light(hex) { "#111111" } else { "#ffffff" };
    let css = format!(":root {{\n  --accent: #{hex};\n  --accent-ink: {ink};\n}}\n");
    Ok(asset("text/css; charset=utf-8", css))
}

fn asset(content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_FOREVER),
    );
    response
}

/// Returns whether dark text reads better than white on the colour `hex`
/// (six hex digits), by the WCAG relative luminance: above 0.179, black text
/// has the higher contrast ratio.
fn is_light(hex: &str) -> bool {
    let channel = |range: std::ops::Range<usize>| {
        let value = hex
            .get(range)
            .and_then(|digits| u8::from_str_radix(digits, 16).ok())
            .unwrap_or(0);
        let srgb = f64::from(value) / 255.0;
        if srgb <= 0.04045 {
            srgb / 12.92
        } else {
            ((srgb + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0..2) + 0.7152 * channel(2..4) + 0.0722 * channel(4..6);
    luminance > 0.179
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_on_accent_keeps_contrast() {
        assert!(is_light("ffffff"));
        assert!(is_light("ffd43b"));
        assert!(!is_light("000000"));
        assert!(!is_light("3b5bdb"));
    }

    #[test]
    fn version_is_stable_within_a_build() {
        assert_eq!(version(), version());
        assert_eq!(version().len(), 12);
    }
}
