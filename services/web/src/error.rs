//! The two error surfaces of the web service.
//!
//! API handlers return [`ApiError`], which responds with JSON of the form
//! `{"error": {"code", "field", "message"}}`. Page handlers return
//! [`PageError`], which renders a readable page with a link back. Both map a
//! [`DomainError`] the same way, and both log internal errors once, with
//! their cause, and give the client a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use proofsheet_domain::DomainError;
use serde_json::json;

/// An error of the JSON API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// Builds an `Invalid` error for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => ApiError::invalid(field, message),
            DomainError::NotFound(what) => ApiError::NotFound(what),
            DomainError::Conflict(message) => ApiError::Conflict(message),
            DomainError::Forbidden(message) => ApiError::Forbidden(message),
            DomainError::Database(e) => ApiError::Internal(e.into()),
        }
    }
}

impl From<proofsheet_jobs::QueueError> for ApiError {
    fn from(e: proofsheet_jobs::QueueError) -> Self {
        tracing::error!(error = %e, "job queue unavailable");
        ApiError::Unavailable(
            "the job queue is unavailable right now; nothing was queued, so try again in a moment"
                .into(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "something went wrong on our side; try again in a moment".to_owned()
            }
            ApiError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = json!({ "error": { "code": self.code(), "field": field, "message": message } });
        (status, Json(body)).into_response()
    }
}

/// An error on a page of the studio app, rendered as a readable page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    /// Builds a page error with its own status, title and message.
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    /// Builds the error for a form whose CSRF token does not match its cookie.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form could not be verified. Go back, reload the page and submit it again.",
        )
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::PAYLOAD_TOO_LARGE => "File too large",
            StatusCode::CONFLICT => "Not possible right now",
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED => {
                "Not allowed"
            }
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong",
            _ => "Please check your input",
        };
        let message = match e {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "page request failed");
                "Something went wrong on our side. Try again in a moment.".to_owned()
            }
            ApiError::Invalid { field, message } => {
                format!("{}: {message}", field.replace('_', " "))
            }
            other => other.to_string(),
        };
        Self::new(status, title, message)
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // Rendered without the template engine so that an error page can
        // never fail to render; the message is escaped by hand.
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · Proofsheet</title><link rel=\"stylesheet\" href=\"/assets/studio.css\"></head>\
             <body><main class=\"narrow\"><h1>{title}</h1><p class=\"error\">{message}</p>\
             <p><a href=\"/projects\">Back to projects</a></p>\
             </main></body></html>",
            title = escape(self.title),
            message = escape(&self.message),
        );
        (self.status, Html(body)).into_response()
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
