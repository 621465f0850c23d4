//! The studio's pages, rendered with tera. Every form carries the CSRF
//! token, and every POST checks it before anything else.

mod account;
mod projects;
mod settings;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::PageError;

/// Loads the page templates, compiled into the binary.
pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.add_raw_templates([
        ("base.html", include_str!("../../templates/base.html")),
        ("signup.html", include_str!("../../templates/signup.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("forgot.html", include_str!("../../templates/forgot.html")),
        ("reset.html", include_str!("../../templates/reset.html")),
        ("message.html", include_str!("../../templates/message.html")),
        (
            "projects.html",
            include_str!("../../templates/projects.html"),
        ),
        (
            "project_new.html",
            include_str!("../../templates/project_new.html"),
        ),
        ("project.html", include_str!("../../templates/project.html")),
        (
            "settings.html",
            include_str!("../../templates/settings.html"),
        ),
        (
            "stripe_refresh.html",
            include_str!("../../templates/stripe_refresh.html"),
        ),
    ])?;
    tera.autoescape_on(vec![".html"]);
    Ok(tera)
}

/// Renders a template with `context`.
pub fn render(
    state: &AppState,
    name: &str,
    context: &tera::Context,
) -> Result<Html<String>, PageError> {
    state
        .templates
        .render(name, context)
        .map(Html)
        .map_err(|e| PageError::from(anyhow::Error::new(e).context(format!("rendering {name}"))))
}

/// Renders a template with a status other than 200, for a form shown again
/// with its errors.
pub fn render_with_status(
    state: &AppState,
    status: StatusCode,
    name: &str,
    context: &tera::Context,
) -> Response {
    match render(state, name, context) {
        Ok(html) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Builds the page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/projects") }))
        .route("/signup", get(account::signup_form).post(account::signup))
        .route("/login", get(account::login_form).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/forgot-password",
            get(account::forgot_form).post(account::forgot),
        )
        .route(
            "/reset-password",
            get(account::reset_form).post(account::reset),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/new", get(projects::new_form))
        .route("/projects/{id}", get(projects::show))
        .route("/projects/{id}/stage", post(projects::move_stage))
        .route("/projects/{id}/invoices", post(projects::save_invoice))
        .route(
            "/projects/{id}/invoices/{invoice_id}/paid",
            post(projects::mark_paid),
        )
        .route(
            "/projects/{id}/photos",
            post(projects::upload_photos).layer(DefaultBodyLimit::disable()),
        )
        .route("/projects/{id}/resend-link", post(projects::resend_link))
        .route("/projects/{id}/rotate-link", post(projects::rotate_link))
        .route("/settings", get(settings::show))
        .route("/settings/branding", post(settings::save_branding))
        .route("/settings/api-keys", post(settings::create_key))
        .route("/settings/api-keys/{id}/revoke", post(settings::revoke_key))
        .route("/assets/studio.css", get(stylesheet))
        .route("/assets/studio.js", get(script))
        .fallback(|| async {
            PageError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no page at this address.",
            )
        })
}

async fn stylesheet() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/studio.css"),
    )
}

async fn script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/studio.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}
