//! Photo uploads: multipart bodies streamed file by file into the media
//! store, never held whole in memory.
//!
//! An upload is all or nothing. Every file is sniffed by its content (JPEG or
//! PNG), streamed under its own size limit, and only when all files are
//! stored are their rows written in one transaction. On any error the files
//! already stored are deleted, so a failed upload leaves no rows and no
//! orphaned files.

use std::io;

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use proofsheet_domain::db::photos::{self, Photo};
use proofsheet_domain::db::projects;
use proofsheet_domain::{PhotoId, ProjectId, TenantId};
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_media::{PhotoObject, StoreError, photo_key, sniff};

use crate::AppState;
use crate::error::ApiError;

/// Bytes read before sniffing a file's type; every supported signature fits.
const SNIFF_BYTES: usize = 32;

/// Maximum length of a kept file name, in characters; longer names are cut.
const MAX_FILE_NAME_CHARS: usize = 200;

/// Maximum number of files in one upload request.
pub const MAX_FILES_PER_UPLOAD: usize = 500;

/// A non-file form field that must arrive before the first file, such as the
/// CSRF token of the studio page's form.
pub type FieldCheck<'a> = &'a (dyn Fn(&str, &str) -> Result<(), ApiError> + Sync);

struct Stored {
    id: PhotoId,
    file_name: String,
    size: u64,
}

/// Receives the `file` fields of a multipart body as new photos of `project`
/// and queues their thumbnails. When `required_field` names a text field and
/// its check, that field must arrive before the first file and its check must
/// return `Ok`; pass `None` when no field is required.
pub async fn receive_photos(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    mut multipart: Multipart,
    required_field: Option<(&str, FieldCheck<'_>)>,
) -> Result<Vec<Photo>, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    projects::get(&mut tx, project).await?;
    tx.commit().await?;

    let mut stored: Vec<Stored> = Vec::new();
    let mut required_seen = required_field.is_none();
    let outcome = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name != "file" {
                let value = field.text().await.map_err(multipart_error)?;
                if let Some((required, check)) = &required_field
                    && name == *required
                {
                    check(&name, &value)?;
                    required_seen = true;
                }
                continue;
            }
            if !required_seen {
                return Err(ApiError::BadRequest(
                    "the form's fields arrived in an unexpected order; reload the page and upload again".into(),
                ));
            }
            if stored.len() == MAX_FILES_PER_UPLOAD {
                return Err(ApiError::invalid(
                    "file",
                    format!("at most {MAX_FILES_PER_UPLOAD} files can be uploaded at once; split the upload"),
                ));
            }
            stored.push(store_file(state, tenant, project, field).await?);
        }
        if stored.is_empty() {
            return Err(ApiError::invalid(
                "file",
                "no file was uploaded; attach one or more JPEG or PNG photos as 'file' fields",
            ));
        }
        Ok(())
    }
    .await;

    let inserted = match outcome {
        Ok(()) => insert_rows(state, tenant, project, &stored).await,
        Err(e) => Err(e),
    };
    let photos = match inserted {
        Ok(photos) => photos,
        Err(e) => {
            discard(state, tenant, project, &stored).await;
            return Err(e);
        }
    };

    for photo in &photos {
        let job = GenerateThumbnails {
            tenant_id: tenant,
            photo_id: photo.id,
        };
        // The rows are committed; a lost enqueue leaves the photo in
        // 'processing', which the worker's sweep of stale photos re-queues.
        if let Err(e) = state.queues.enqueue_thumbnails(job).await {
            tracing::error!(tenant.id = %tenant, photo.id = %photo.id, error = %e, "could not queue thumbnails");
        }
    }
    live::publish(
        &state.queues.connection(),
        state.queues.namespace(),
        project,
        ProjectEvent::Photos,
    )
    .await;
    tracing::info!(tenant.id = %tenant, project.id = %project, photos = photos.len(), "photos uploaded");
    Ok(photos)
}

async fn store_file(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    field: Field<'_>,
) -> Result<Stored, ApiError> {
    let file_name = clean_file_name(field.file_name().unwrap_or("photo"));
    let mut chunks = field.map_err(|e| io::Error::other(e.body_text()));

    // Read just enough to sniff the type before anything is stored.
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0;
    while head_len < SNIFF_BYTES {
        match chunks.next().await {
            Some(Ok(chunk)) => {
                head_len += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => {
                return Err(ApiError::BadRequest(format!(
                    "the upload of '{file_name}' was interrupted: {e}"
                )));
            }
            None => break,
        }
    }
    let first: Vec<u8> = head
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(SNIFF_BYTES)
        .collect();
    if sniff(&first).is_none() {
        return Err(ApiError::invalid(
            "file",
            format!(
                "'{file_name}' is not a JPEG or PNG image; export it as JPEG and upload it again"
            ),
        ));
    }

    let id = PhotoId::new();
    let key = photo_key(tenant, project, id, PhotoObject::Original);
    let body = stream::iter(head.into_iter().map(Ok)).chain(chunks).boxed();
    let limit = state.config.max_upload_bytes;
    match state.media.put_stream(&key, body, limit).await {
        Ok(size) => Ok(Stored {
            id,
            file_name,
            size,
        }),
        Err(StoreError::TooLarge { limit }) => Err(ApiError::TooLarge(format!(
            "'{file_name}' is larger than the limit of {} per file; export a smaller JPEG",
            human_bytes(limit)
        ))),
        Err(StoreError::Stream(e)) => Err(ApiError::BadRequest(format!(
            "the upload of '{file_name}' was interrupted ({e}); upload it again"
        ))),
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

async fn insert_rows(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    stored: &[Stored],
) -> Result<Vec<Photo>, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let mut photos = Vec::with_capacity(stored.len());
    for file in stored {
        let size = i64::try_from(file.size).unwrap_or(i64::MAX);
        photos.push(photos::insert(&mut tx, file.id, project, &file.file_name, size).await?);
    }
    tx.commit().await?;
    Ok(photos)
}

async fn discard(state: &AppState, tenant: TenantId, project: ProjectId, stored: &[Stored]) {
    for file in stored {
        let prefix = proofsheet_media::photo_prefix(tenant, project, file.id);
        if let Err(e) = state.media.delete_prefix(&prefix).await {
            tracing::error!(tenant.id = %tenant, photo.id = %file.id, error = %e, "could not delete a discarded upload");
        }
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(
            "the upload is larger than the request limit; upload fewer files at once".into(),
        )
    } else {
        ApiError::BadRequest(format!(
            "the upload could not be read as multipart/form-data: {}",
            e.body_text()
        ))
    }
}

/// Keeps the last path segment of a browser-supplied name, without control
/// characters, at most [`MAX_FILE_NAME_CHARS`] long.
pub fn clean_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "photo".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// Formats a byte count for people, e.g. `50 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(clean_file_name("C:\\Users\\ana\\IMG_1.jpg"), "IMG_1.jpg");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{0}b.jpg"), "ab.jpg");
        assert_eq!(clean_file_name("   "), "photo");
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(50 * 1024 * 1024), "50 MiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(1000), "1 KiB");
    }
}
