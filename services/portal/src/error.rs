//! The portal's one error type, and the middleware that turns an error into
//! an HTML page or a JSON body, whichever the request accepts.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use proofsheet_domain::DomainError;
use serde::Serialize;

use crate::http::{self, wants_json};
use crate::state::AppState;

/// Everything that can go wrong on a portal request, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// 404 for a token that opens no project: unknown, mistyped or rotated.
    /// Every such token gets the same page, which names no studio.
    #[error("portal link not found")]
    LinkNotFound,
    /// 404 for something that is not part of this link's project, such as a
    /// photo of another project or a malformed photo id.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 422 for input that breaks a rule; `field` names the input.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 409 for a valid request that the project's current state rejects.
    #[error("{0}")]
    Conflict(String),
    /// 403 for an action the studio's plan does not allow.
    #[error("{0}")]
    Forbidden(String),
    /// 500. The cause is logged once; the client sees a generic message.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl PortalError {
    /// Returns the HTTP status of the variant.
    pub fn status(&self) -> StatusCode {
        match self {
            PortalError::LinkNotFound | PortalError::NotFound(_) => StatusCode::NOT_FOUND,
            PortalError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PortalError::Conflict(_) => StatusCode::CONFLICT,
            PortalError::Forbidden(_) => StatusCode::FORBIDDEN,
            PortalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Wraps an unexpected failure with what the portal was doing.
    pub(crate) fn internal(error: impl Into<anyhow::Error>, doing: &'static str) -> Self {
        PortalError::Internal(error.into().context(doing))
    }

    fn report(&self) -> ErrorReport {
        let (title, field, message, back_link) = match self {
            PortalError::LinkNotFound => (
                "Link not found",
                None,
                "This link does not open a project. It may be mistyped, or your photographer \
                 may have replaced it with a new one. Ask them for the current link."
                    .to_owned(),
                false,
            ),
            PortalError::NotFound(what) => (
                "Not found",
                None,
                format!("This {what} is not part of your project."),
                true,
            ),
            PortalError::Invalid { field, message } => (
                "Please check your response",
                Some(*field),
                sentence(message),
                true,
            ),
            PortalError::Conflict(message) => ("Not possible yet", None, sentence(message), true),
            PortalError::Forbidden(message) => ("Not allowed", None, sentence(message), true),
            PortalError::Internal(_) => (
                "Something went wrong",
                None,
                "Something went wrong on our side. Please try again in a moment.".to_owned(),
                true,
            ),
        };
        ErrorReport {
            title,
            field,
            message,
            back_link,
        }
    }
}

impl From<DomainError> for PortalError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid { field, message } => PortalError::Invalid { field, message },
            // The token resolved a moment ago; a project or studio gone since
            // is a dead link like any other.
            DomainError::NotFound("project" | "studio") => PortalError::LinkNotFound,
            DomainError::NotFound(what) => PortalError::NotFound(what),
            DomainError::Conflict(message) => PortalError::Conflict(message),
            DomainError::Forbidden(message) => PortalError::Forbidden(message),
            DomainError::Database(e) => PortalError::internal(e, "database query failed"),
        }
    }
}

impl IntoResponse for PortalError {
    /// Logs an internal error with its cause, then returns the status with an
    /// [`ErrorReport`] for [`render_errors`] to turn into the body.
    fn into_response(self) -> Response {
        if let PortalError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "portal request failed");
        }
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self.report());
        response
    }
}

/// The title and message the client sees for an error, carried from the
/// handler to [`render_errors`] as a response extension.
#[derive(Clone, Debug)]
struct ErrorReport {
    title: &'static str,
    field: Option<&'static str>,
    message: String,
    /// Whether the page links back to the project. Never for a bad token,
    /// because the link would lead nowhere.
    back_link: bool,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: ErrorJsonBody<'a>,
}

#[derive(Serialize)]
struct ErrorJsonBody<'a> {
    field: Option<&'static str>,
    message: &'a str,
}

/// Renders the body of every error response: JSON `{error: {field, message}}`
/// when the request accepts JSON, the error page otherwise. Other responses
/// pass through unchanged.
pub(crate) async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let json = wants_json(request.headers());
    let project_page = http::project_page_path(request.uri().path());
    let response = next.run(request).await;
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let status = response.status();

    if json {
        let body = ErrorJson {
            error: ErrorJsonBody {
                field: report.field,
                message: &report.message,
            },
        };
        return (status, Json(body)).into_response();
    }

    let back = project_page.filter(|_| report.back_link);
    let mut context = tera::Context::new();
    context.insert("asset_version", crate::assets::version());
    context.insert("title", report.title);
    context.insert("message", &report.message);
    context.insert("back", &back);
    match state.templates().render("error.html", &context) {
        Ok(page) => (status, Html(page)).into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "rendering the error page failed");
            let mut fallback = (status, report.message).into_response();
            fallback.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            fallback
        }
    }
}

/// Starts a domain message, written to follow a field name, with a capital
/// letter and ends it with a full stop, so it reads as a sentence on a page.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut text: String = first.to_uppercase().chain(chars).collect();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_capitalises_and_ends_with_full_stop() {
        assert_eq!(
            sentence("describe the changes you would like before sending"),
            "Describe the changes you would like before sending."
        );
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn statuses_per_variant() {
        let cases = [
            (PortalError::LinkNotFound, 404),
            (PortalError::NotFound("photo"), 404),
            (
                PortalError::Invalid {
                    field: "text",
                    message: "missing".into(),
                },
                422,
            ),
            (PortalError::Conflict("not yet".into()), 409),
            (PortalError::Forbidden("plan".into()), 403),
            (PortalError::Internal(anyhow::anyhow!("boom")), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn bad_link_report_has_no_back_link() {
        let report = PortalError::LinkNotFound.report();
        assert!(!report.back_link);
        let report = PortalError::NotFound("photo").report();
        assert!(report.back_link);
        assert_eq!(report.message, "This photo is not part of your project.");
    }

    #[test]
    fn missing_project_becomes_link_not_found() {
        let error = PortalError::from(DomainError::NotFound("project"));
        assert!(matches!(error, PortalError::LinkNotFound));
        let error = PortalError::from(DomainError::NotFound("photo"));
        assert!(matches!(error, PortalError::NotFound("photo")));
    }
}
