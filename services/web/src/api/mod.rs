//! The `/api/v1` JSON API. Every call but sign-up takes
//! `Authorization: Bearer <api key>`; errors are JSON that name the field and
//! the problem (see [`crate::error::ApiError`]).

mod keys;
mod projects;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::header;
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// Largest JSON body accepted; API bodies are a few hundred bytes.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Builds the API routes. Photo uploads get their own body limit: each file is
/// checked against `max_upload_bytes` while it streams, and the request as a
/// whole may carry many files.
pub fn routes(max_upload_bytes: u64) -> Router<AppState> {
    let upload_limit = usize::try_from(
        max_upload_bytes.saturating_mul(crate::upload::MAX_FILES_PER_UPLOAD as u64),
    )
    .unwrap_or(usize::MAX);
    Router::new()
        .route("/signup", post(keys::sign_up))
        .route("/api-keys", get(keys::list).post(keys::create))
        .route("/api-keys/{id}", delete(keys::revoke))
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{id}", get(projects::show))
        .route("/projects/{id}/stage", put(projects::move_stage))
        .route("/projects/{id}/invoices", post(projects::save_invoice))
        .route(
            "/projects/{id}/invoices/{invoice_id}/paid",
            post(projects::mark_paid),
        )
        .route(
            "/projects/{id}/photos",
            post(projects::upload_photos).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/projects/{id}/resend-link", post(projects::resend_link))
        .route("/projects/{id}/rotate-link", post(projects::rotate_link))
        .fallback(|| async { ApiError::NotFound("API route") })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed(
                "this method is not allowed on this route; see the API table in the README",
            )
        })
}

/// A JSON body whose errors name the offending field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::BadRequest(
                "the body must be JSON; send 'Content-Type: application/json'".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| {
                ApiError::TooLarge(format!(
                    "the JSON body is larger than {MAX_JSON_BYTES} bytes"
                ))
            })?;
        if bytes.len() > MAX_JSON_BYTES {
            return Err(ApiError::TooLarge(format!(
                "the JSON body is larger than {MAX_JSON_BYTES} bytes"
            )));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(ApiJson)
            .map_err(|e| json_error(&e))
    }
}

fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner().to_string();
    let path = e.path().to_string();
    // serde reports a missing field at its parent, naming it in the message.
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ApiError::invalid(field, "is required");
    }
    if e.inner().is_syntax() || e.inner().is_eof() {
        return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
    }
    if path == "." {
        // serde names our Rust struct here, which means nothing to a caller.
        return ApiError::invalid(
            "body",
            "the body must be a JSON object with the documented fields",
        );
    }
    let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    ApiError::invalid(path, message)
}

/// Reads the first value of `name` from a query string, ignoring repeats
/// and unknown parameters rather than failing on them.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Parses an id from the path; a malformed id is simply not found.
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}
