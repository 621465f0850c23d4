//! Studio settings: branding and API keys.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use proofsheet_domain::ApiKeyId;
use proofsheet_domain::db::{auth, tenants};
use serde::Deserialize;

use super::account::CsrfOnly;
use super::render;
use crate::AppState;
use crate::api::parse_id;
use crate::auth::{StudioUser, csrf_token, verify_csrf};
use crate::error::PageError;
use crate::stripe::billing::SettingsView;

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let studio = tenants::current(&mut tx).await?;
    let keys = auth::list_api_keys(&mut tx).await?;
    let stripe = SettingsView::load(&state, &mut tx, &studio).await?;
    tx.commit().await?;
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = tera::Context::new();
    context.insert("csrf_token", &token);
    context.insert("studio_name", &studio.name);
    context.insert("studio", &studio);
    context.insert("keys", &keys);
    context.insert("stripe", &stripe);
    Ok((jar, render(&state, "settings.html", &context)?).into_response())
}

#[derive(Deserialize)]
pub struct BrandingForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    studio_name: String,
    #[serde(default)]
    accent_colour: String,
}

/// `POST /settings/branding`.
pub async fn save_branding(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<BrandingForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    tenants::update_branding(&mut tx, &form.studio_name, &form.accent_colour).await?;
    tx.commit().await?;
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/api-keys`: shows the new key once.
pub async fn create_key(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let (_, secret) = auth::create_api_key(&mut tx, &form.name).await?;
    let studio = tenants::current(&mut tx).await?;
    let keys = auth::list_api_keys(&mut tx).await?;
    let stripe = SettingsView::load(&state, &mut tx, &studio).await?;
    tx.commit().await?;
    let mut context = tera::Context::new();
    context.insert("csrf_token", &form.csrf_token);
    context.insert("studio_name", &studio.name);
    context.insert("studio", &studio);
    context.insert("keys", &keys);
    context.insert("stripe", &stripe);
    context.insert("new_key", secret.expose());
    Ok(render(&state, "settings.html", &context)?.into_response())
}

/// `POST /settings/api-keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let id: ApiKeyId = parse_id(&id, "API key")?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    auth::revoke_api_key(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Redirect::to("/settings").into_response())
}
