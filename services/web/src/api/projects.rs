//! Projects, stages, invoices, photos and the portal link.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use proofsheet_domain::db::invoices::InvoiceInput;
use proofsheet_domain::db::projects::NewProject;
use proofsheet_domain::{InvoiceId, ProjectId, Stage};
use serde::Deserialize;
use serde_json::json;

use super::{ApiJson, parse_id, query_value};
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::{AppState, ops, upload};

/// `GET /projects?stage=…`: the studio's projects, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let stage = query_value(query.as_deref(), "stage")
        .filter(|s| !s.is_empty())
        .as_deref()
        .map(str::parse::<Stage>)
        .transpose()?;
    let mut tx = state.db.tenant(caller.tenant_id).await?;
    let projects = proofsheet_domain::db::projects::list(&mut tx, stage).await?;
    tx.commit().await?;
    let items: Vec<_> = projects
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "title": p.title, "client_name": p.client_name, "stage": p.stage,
                "shoot_date": p.shoot_date, "portal_url": ops::portal_url(&state, p),
            })
        })
        .collect();
    Ok(Json(json!({ "projects": items })))
}

#[derive(Deserialize)]
pub struct CreateProject {
    title: String,
    client_name: String,
    client_email: String,
    shoot_date: String,
}

/// `POST /projects`: creates a project with its portal link.
pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewProject::parse(
        &body.title,
        &body.client_name,
        &body.client_email,
        &body.shoot_date,
    )?;
    let project = ops::create_project(&state, caller.tenant_id, new).await?;
    let body = json!({ "id": project.id, "stage": project.stage, "portal_url": ops::portal_url(&state, &project) });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /projects/{id}`: the project with invoices, photos, favourites and responses.
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let detail = ops::project_detail(&state, caller.tenant_id, id).await?;
    Ok(Json(detail.to_json(&state, Utc::now())))
}

#[derive(Deserialize)]
pub struct MoveStage {
    stage: String,
}

/// `PUT /projects/{id}/stage`: moves the project to another stage.
pub async fn move_stage(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveStage>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let to: Stage = body.stage.parse()?;
    let stage = ops::move_stage(&state, caller.tenant_id, id, to).await?;
    Ok(Json(json!({ "id": id, "stage": stage })))
}

#[derive(Deserialize)]
pub struct SaveInvoice {
    kind: String,
    amount_minor: i64,
    currency: String,
    due_date: String,
}

/// `POST /projects/{id}/invoices`: adds the deposit or final invoice, or edits it.
pub async fn save_invoice(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SaveInvoice>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let input = InvoiceInput::parse(
        &body.kind,
        body.amount_minor,
        &body.currency,
        &body.due_date,
    )?;
    let invoice = ops::save_invoice(&state, caller.tenant_id, id, input).await?;
    Ok((StatusCode::CREATED, Json(invoice)))
}

/// `POST /projects/{id}/invoices/{invoice_id}/paid`: marks the invoice paid by hand.
pub async fn mark_paid(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((id, invoice_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let invoice_id: InvoiceId = parse_id(&invoice_id, "invoice")?;
    let invoice = ops::mark_paid(&state, caller.tenant_id, id, invoice_id).await?;
    Ok(Json(invoice))
}

/// `POST /projects/{id}/photos`: multipart with one or more `file` fields.
/// Responds 202 because thumbnails are made in the background.
pub async fn upload_photos(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let multipart = multipart.map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be multipart/form-data with one or more 'file' fields: {}",
            e.body_text()
        ))
    })?;
    let photos = upload::receive_photos(&state, caller.tenant_id, id, multipart, None).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "photos": photos }))))
}

/// `POST /projects/{id}/resend-link`: emails the current portal link to the client.
pub async fn resend_link(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    ops::resend_link(&state, caller.tenant_id, id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": true }))))
}

/// `POST /projects/{id}/rotate-link`: replaces the portal link; the old one stops working.
pub async fn rotate_link(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ProjectId = parse_id(&id, "project")?;
    let portal_url = ops::rotate_link(&state, caller.tenant_id, id).await?;
    Ok(Json(json!({ "id": id, "portal_url": portal_url })))
}
