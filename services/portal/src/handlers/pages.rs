//! Read-only routes: the page, its state, its live events and its photos.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_media::{RenditionSize, StoreError, content_etag};

use super::visible_photo;
use crate::assets;
use crate::error::PortalError;
use crate::live;
use crate::state::AppState;
use crate::view::{Snapshot, StateJson};

/// Interval of SSE comments on an idle stream, short enough that proxies
/// with a 30 or 60 second idle timeout keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Caching of a rendition requested with its current version. That URL
/// never returns other bytes, and `private` keeps shared caches from storing
/// a client's photos.
const PHOTO_CACHE: &str = "private, max-age=31536000, immutable";

/// Caching of a rendition requested without its current version: the bytes
/// change when the renditions are regenerated, so the browser revalidates
/// with the ETag each time.
const UNVERSIONED_PHOTO_CACHE: &str = "private, no-cache";

/// `GET /p/{token}`: the portal page.
pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let mut tx = state.begin(&link).await?;
    let mut snapshot = Snapshot::load(&mut tx, link.project).await?;
    tx.commit().await?;
    snapshot.online_payment &= state.stripe().is_some();
    snapshot.returned_from_checkout = query.payment.as_deref() == Some("processing");

    let page = snapshot.page(&token, assets::version(), Utc::now());
    let context = tera::Context::from_serialize(page)
        .map_err(|e| PortalError::internal(e, "building the page context failed"))?;
    let html = state
        .templates()
        .render("page.html", &context)
        .map_err(|e| PortalError::internal(e, "rendering the portal page failed"))?;
    Ok(Html(html).into_response())
}

/// The query of the portal page: `payment=processing` after a return from
/// Stripe Checkout.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    payment: Option<String>,
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

/// `GET /p/{token}/photos/{photo_id}/{size}`: one JPEG rendition of a ready
/// photo of this token's project, where `size` is a [`RenditionSize`] URL
/// name (`grid`, `grid-2x`, `lightbox`, `lightbox-2x`).
///
/// The page adds `?v=` with the time the renditions were written, so a
/// regenerated rendition gets a new URL. The response has a strong `ETag` of
/// the content, and a matching `If-None-Match` gets 304. Only the current
/// version is cached as `immutable` for a year. URLs without a version, or
/// with an older one, still return the current rendition, but the browser
/// must revalidate them.
pub async fn photo(
    State(state): State<AppState>,
    Path((token, photo_id, size)): Path<(String, String, String)>,
    Query(query): Query<RenditionQuery>,
    request_headers: HeaderMap,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let Some(size) = RenditionSize::from_url_name(&size) else {
        return Err(PortalError::NotFound("photo"));
    };
    let mut tx = state.begin(&link).await?;
    let photo = visible_photo(&mut tx, &link, &photo_id).await?;
    tx.commit().await?;
    if photo.status != PhotoStatus::Ready {
        return Err(PortalError::NotFound("photo"));
    }

    let read = |size: RenditionSize| {
        let key = proofsheet_media::photo_key(link.tenant, link.project, photo.id, size.object());
        let media = state.media();
        async move { (media.get(&key).await, key) }
    };
    let (mut result, mut key) = read(size).await;
    if matches!(result, Err(StoreError::NotFound { .. })) && size != size.standard_density() {
        // Photos processed before the 2x renditions existed have only the
        // 1x ones, which still fill the slot, at lower density.
        (result, key) = read(size.standard_density()).await;
    }
    let jpeg = match result {
        Ok(jpeg) => jpeg,
        Err(StoreError::NotFound { .. }) => {
            // The photo is marked ready, so its renditions should exist.
            tracing::warn!(photo.id = %photo.id, key, "rendition of a ready photo is missing");
            return Err(PortalError::NotFound("photo"));
        }
        Err(e) => return Err(PortalError::internal(e, "reading a photo rendition failed")),
    };

    let etag = content_etag(&jpeg);
    let etag_value = HeaderValue::from_str(&etag)
        .map_err(|e| PortalError::internal(e, "building the ETag header failed"))?;
    let cache = if query.v.is_some() && query.v == photo.rendition_version() {
        PHOTO_CACHE
    } else {
        UNVERSIONED_PHOTO_CACHE
    };
    let cache_headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, etag_value),
    ];
    if if_none_match_hits(&request_headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"))];
    Ok((content_type, cache_headers, jpeg).into_response())
}

/// The query of a rendition URL: `v`, the version of the renditions.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RenditionQuery {
    #[serde(default)]
    v: Option<String>,
}

/// Returns whether `If-None-Match` lists `etag` or is `*`. Weak tags
/// (`W/"…"`) match too, because RFC 9110 specifies the weak comparison for this header.
fn if_none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// Returns the unknown-link page for every other path.
pub async fn not_found() -> PortalError {
    PortalError::LinkNotFound
}
