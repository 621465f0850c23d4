//! Routes that change the project: hearts and responses. Each works as a
//! plain HTML form (303 back to the page) and, for the page's script, as
//! JSON when the request accepts it.

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use proofsheet_domain::db::projects;
use proofsheet_domain::response::NewResponse;
use proofsheet_jobs::live::ProjectEvent;
use serde::{Deserialize, Serialize};

use super::visible_photo;
use crate::error::PortalError;
use crate::http::wants_json;
use crate::state::AppState;

#[derive(Serialize)]
struct FavouriteJson {
    favourite: bool,
}

/// `POST /p/{token}/favourites/{photo_id}`: toggles the heart on a photo.
/// Responds `{favourite}` as JSON, or 303 back to the photo on the page.
pub async fn toggle_favourite(
    State(state): State<AppState>,
    Path((token, photo_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let mut tx = state.begin(&link).await?;
    let photo = visible_photo(&mut tx, &link, &photo_id).await?;
    let favourite = projects::toggle_favourite(&mut tx, link.project, photo.id).await?;
    tx.commit().await?;
    state.publish(link.project, ProjectEvent::Favourites).await;

    if wants_json(&headers) {
        return Ok(Json(FavouriteJson { favourite }).into_response());
    }
    Ok(Redirect::to(&format!("/p/{token}#photo-{}", photo.id)).into_response())
}

/// The fields of the response form. Missing fields read as empty, so that
/// validation names them instead of a generic decoding error.
#[derive(Deserialize)]
pub struct ResponseForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
}

#[derive(Serialize)]
struct RespondedJson {
    stage: proofsheet_domain::Stage,
    stage_label: &'static str,
}

/// `POST /p/{token}/responses`: appends "Looks great!" (`kind=approve`) or
/// "Some changes" (`kind=changes` with `text`) to the project's history and
/// moves the stage as the response requires. Responds with the new stage as
/// JSON, or 303 back to the responses on the page.
pub async fn respond(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ResponseForm>, FormRejection>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let Form(form) = form.map_err(|rejection| PortalError::Invalid {
        field: "body",
        message: rejection.body_text(),
    })?;
    let response = NewResponse::parse(&form.kind, &form.text)?;

    let mut tx = state.begin(&link).await?;
    let before = projects::get(&mut tx, link.project).await?.stage;
    let stage = projects::record_response(&mut tx, link.project, &response).await?;
    tx.commit().await?;
    state.publish(link.project, ProjectEvent::Responses).await;
    if stage != before {
        state.publish(link.project, ProjectEvent::Stage).await;
    }

    if wants_json(&headers) {
        let body = RespondedJson {
            stage,
            stage_label: stage.label(),
        };
        return Ok(Json(body).into_response());
    }
    Ok(Redirect::to(&format!("/p/{token}#responses")).into_response())
}
