//! Sign-up and API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use proofsheet_domain::ApiKeyId;
use proofsheet_domain::db::{auth, tenants};
use serde::Deserialize;
use serde_json::json;

use super::{ApiJson, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct SignUp {
    studio_name: String,
    email: String,
    password: String,
    time_zone: String,
}

/// `POST /signup`: creates a studio on a 14-day trial and its first API key.
pub async fn sign_up(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let studio = tokio::task::spawn_blocking(move || {
        tenants::NewStudio::parse(
            &body.studio_name,
            &body.email,
            &body.password,
            &body.time_zone,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))??;
    let signed_up = tenants::sign_up(&state.db, studio).await?;
    tracing::info!(tenant.id = %signed_up.tenant_id, "studio signed up");
    let body = json!({ "tenant_id": signed_up.tenant_id, "api_key": signed_up.api_key.expose() });
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
pub struct NewKey {
    name: String,
}

/// `POST /api-keys`: creates a key; the response is the only time it is shown.
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<impl IntoResponse, ApiError> {
    let mut tx = state.db.tenant(caller.tenant_id).await?;
    let (key, secret) = auth::create_api_key(&mut tx, &body.name).await?;
    tx.commit().await?;
    let body = json!({ "id": key.id, "name": key.name, "api_key": secret.expose(), "created_at": key.created_at });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api-keys`: lists keys by name and prefix, never the keys themselves.
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<impl IntoResponse, ApiError> {
    let mut tx = state.db.tenant(caller.tenant_id).await?;
    let keys = auth::list_api_keys(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "api_keys": keys })))
}

/// `DELETE /api-keys/{id}`: revokes a key at once, including the caller's own.
pub async fn revoke(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ApiKeyId = parse_id(&id, "API key")?;
    let mut tx = state.db.tenant(caller.tenant_id).await?;
    auth::revoke_api_key(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %caller.tenant_id, api_key.id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
