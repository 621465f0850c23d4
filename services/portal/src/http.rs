//! HTTP concerns shared by every route: security headers, request logging
//! without tokens, body limits and content negotiation.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::render_errors;
use crate::state::AppState;

/// Content-Security-Policy of every response. Scripts and styles come only
/// from `/assets`, which is why the pages carry no inline script, style
/// element or style attribute.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self'; \
     style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Largest request body accepted, in bytes. The largest legitimate body is a
/// "Some changes" form: 10,000 characters of feedback, up to 12 bytes each
/// once UTF-8 and percent-encoded.
const MAX_BODY_BYTES: usize = 128 * 1024;

/// Wraps the routes in the layers every response goes through, outermost
/// first: security headers, request logging, error rendering, body limit.
pub fn layers(routes: Router<AppState>, state: AppState) -> Router {
    let headers = ServiceBuilder::new()
        .layer(static_header(
            HeaderName::from_static("x-robots-tag"),
            "noindex, nofollow",
        ))
        // The token is in every path, so no page may send it on as a Referer.
        .layer(static_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(static_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(static_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(static_header(header::X_FRAME_OPTIONS, "DENY"));
    // Pages and JSON show the live state of a project, so they are never
    // reused without asking; photo and asset routes set their own policy.
    let default_cache = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %redact_path(request.uri().path()),
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        // The response line above already carries the status, and a 500's
        // cause is logged where it happens, so a second error line adds nothing.
        .on_failure(());

    routes
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(trace)
        .layer(default_cache)
        .layer(headers)
        .with_state(state)
}

fn static_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// Returns the path with the portal token replaced by `…`, for logs:
/// `/p/pp_secret/photos/1/grid` becomes `/p/…/photos/1/grid`.
pub fn redact_path(path: &str) -> String {
    match path.strip_prefix("/p/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/p/…/{tail}"),
            None => "/p/…".to_owned(),
        },
        None => path.to_owned(),
    }
}

/// Returns the project page of a portal path, `/p/{token}`, or `None` for a
/// path outside `/p/`.
pub fn project_page_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/p/")?;
    let token = rest.split('/').next().filter(|token| !token.is_empty())?;
    Some(format!("/p/{token}"))
}

/// Returns whether the request prefers JSON to a page, which is when its
/// Accept header names `application/json` before any HTML type.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let json = accept.find("application/json");
    let html = accept.find("text/html");
    match (json, html) {
        (Some(json), Some(html)) => json < html,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_path_hides_token() {
        assert_eq!(redact_path("/p/pp_secret"), "/p/…");
        assert_eq!(redact_path("/p/pp_secret/"), "/p/…/");
        assert_eq!(
            redact_path("/p/pp_secret/photos/abc/grid"),
            "/p/…/photos/abc/grid"
        );
        assert_eq!(redact_path("/assets/portal.css"), "/assets/portal.css");
    }

    #[test]
    fn project_page_path_keeps_token() {
        assert_eq!(
            project_page_path("/p/pp_x/responses").as_deref(),
            Some("/p/pp_x")
        );
        assert_eq!(project_page_path("/p/").as_deref(), None);
        assert_eq!(project_page_path("/assets/portal.js").as_deref(), None);
    }

    #[test]
    fn wants_json_reads_accept_order() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            headers
        };
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("application/json, text/html;q=0.5")));
        assert!(!wants_json(&accept(
            "text/html,application/xhtml+xml,application/json;q=0.9"
        )));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&HeaderMap::new()));
    }
}
