//! Read-only routes: the page, its state, its live events and its photos.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_media::{PhotoObject, StoreError};

use super::visible_photo;
use crate::assets;
use crate::error::PortalError;
use crate::live;
use crate::state::AppState;
use crate::view::{Snapshot, StateJson};

/// Interval of SSE comments on an idle stream, short enough that proxies
/// with a 30 or 60 second idle timeout keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Caching of photo renditions. A photo id's renditions never change, and
/// `private` keeps shared caches from storing a client's photos.
const PHOTO_CACHE: &str = "private, max-age=31536000, immutable";

/// `GET /p/{token}`: the portal page.
pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let mut tx = state.begin(&link).await?;
    let snapshot = Snapshot::load(&mut tx, link.project).await?;
    tx.commit().await?;

    let page = snapshot.page(&token, assets::version(), Utc::now());
    let context = tera::Context::from_serialize(page)
        .map_err(|e| PortalError::internal(e, "building the page context failed"))?;
    let html = state
        .templates()
        .render("page.html", &context)
        .map_err(|e| PortalError::internal(e, "rendering the portal page failed"))?;
    Ok(Html(html).into_response())
}

/// `GET /p/{token}/state`: stage, invoices and counts as JSON, which the
/// page fetches after a live event to learn whether it is stale.
pub async fn project_state(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<StateJson>, PortalError> {
    let link = state.open_link(&token).await?;
    let mut tx = state.begin(&link).await?;
    let snapshot = Snapshot::load(&mut tx, link.project).await?;
    tx.commit().await?;
    Ok(Json(snapshot.state(Utc::now())))
}

/// `GET /p/{token}/events`: the project's live events as Server-Sent Events,
/// with keep-alive comments while idle.
pub async fn events(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let events = live::subscribe(&state, link.project).await?;
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Reverse proxies such as nginx would otherwise buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// `GET /p/{token}/photos/{photo_id}/{size}`: the `grid` or `lightbox` JPEG
/// of a ready photo of this token's project.
pub async fn photo(
    State(state): State<AppState>,
    Path((token, photo_id, size)): Path<(String, String, String)>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let object = match size.as_str() {
        "grid" => PhotoObject::Grid,
        "lightbox" => PhotoObject::Lightbox,
        _ => return Err(PortalError::NotFound("photo")),
    };
    let mut tx = state.begin(&link).await?;
    let photo = visible_photo(&mut tx, &link, &photo_id).await?;
    tx.commit().await?;
    if photo.status != PhotoStatus::Ready {
        return Err(PortalError::NotFound("photo"));
    }

    let key = proofsheet_media::photo_key(link.tenant, link.project, photo.id, object);
    let jpeg = match state.media().get(&key).await {
        Ok(jpeg) => jpeg,
        Err(StoreError::NotFound { .. }) => {
            // The photo is marked ready, so its renditions should exist.
            tracing::warn!(photo.id = %photo.id, key, "rendition of a ready photo is missing");
            return Err(PortalError::NotFound("photo"));
        }
        Err(e) => return Err(PortalError::internal(e, "reading a photo rendition failed")),
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (header::CACHE_CONTROL, HeaderValue::from_static(PHOTO_CACHE)),
    ];
    Ok((headers, jpeg).into_response())
}

/// Returns the unknown-link page for every other path.
pub async fn not_found() -> PortalError {
    PortalError::LinkNotFound
}
