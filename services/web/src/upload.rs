//! Photo uploads: multipart bodies streamed file by file into the media
//! store, never held whole in memory.
//!
//! An upload is all or nothing. Every file is sniffed by its content (JPEG,
//! PNG, WebP or TIFF) and its header probed for its size before anything is
//! stored. It then streams under its own size limit, while its SHA-256 is
//! computed and a JPEG's structure is checked up to the end-of-image marker,
//! or a PNG's chunks up to IEND with their CRCs. Only when all files are stored are their rows written in one
//! transaction. On any error the files already stored are deleted, so a
//! failed upload leaves no rows and no orphaned files. A file whose bytes are
//! already a photo of the project is not stored again, and the response lists
//! the existing photo, marked as a duplicate.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use proofsheet_domain::db::photos::{self, Photo};
use proofsheet_domain::db::projects;
use proofsheet_domain::{PhotoId, ProjectId, TenantId};
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_media::{
    ImageKind, JpegCompletenessCheck, PhotoObject, PngCompletenessCheck, StoreError,
    ThumbnailError, photo_key, probe_upload,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Bytes read before anything is stored, to sniff the type and read the size
/// from the header. Camera JPEGs put up to about 64 KiB of EXIF, and more of
/// ICC profile and maker data, before the frame header.
const HEAD_BYTES: usize = 256 * 1024;

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
    sha256: [u8; 32],
}

/// A photo in the response to an upload.
#[derive(Debug, Serialize)]
pub struct UploadedPhoto {
    #[serde(flatten)]
    pub photo: Photo,
    /// Whether the file had the same bytes as this earlier photo of the
    /// project, so nothing new was stored.
    pub duplicate: bool,
}

/// The outcome of one uploaded file, in upload order.
enum Received {
    /// Stored as a new photo: the index into the new files of this upload.
    New(usize),
    /// The same bytes as a photo already in the project; nothing was kept.
    SameAsExisting(Photo),
    /// The same bytes as an earlier file of this upload (its index into the
    /// new files); nothing was kept.
    SameAsNew(usize),
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
) -> Result<Vec<UploadedPhoto>, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    projects::get(&mut tx, project).await?;
    tx.commit().await?;

    let mut stored: Vec<Stored> = Vec::new();
    let mut received: Vec<Received> = Vec::new();
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
            if received.len() == MAX_FILES_PER_UPLOAD {
                return Err(ApiError::invalid(
                    "file",
                    format!("at most {MAX_FILES_PER_UPLOAD} files can be uploaded at once; split the upload"),
                ));
            }
            let file = store_file(state, tenant, project, field).await?;
            let earlier = stored.iter().position(|other| other.sha256 == file.sha256);
            let existing = match earlier {
                Some(_) => None,
                None => find_existing(state, tenant, project, &file.sha256).await,
            };
            // Pushed before any early return, so a failure discards it too.
            stored.push(file);
            let entry = match (earlier, existing.transpose()?) {
                (Some(index), _) => Received::SameAsNew(index),
                (None, Some(photo)) => Received::SameAsExisting(photo),
                (None, None) => {
                    received.push(Received::New(stored.len() - 1));
                    continue;
                }
            };
            // The duplicate's bytes are not kept.
            if let Some(file) = stored.pop() {
                discard(state, tenant, project, std::slice::from_ref(&file)).await;
            }
            received.push(entry);
        }
        if received.is_empty() {
            return Err(ApiError::invalid(
                "file",
                "no file was uploaded; attach one or more JPEG, PNG, WebP or TIFF photos as 'file' fields",
            ));
        }
        Ok(())
    }
    .await;

    let inserted = match outcome {
        Ok(()) => insert_rows(state, tenant, project, &stored).await,
        Err(e) => Err(e),
    };
    let rows = match inserted {
        Ok(rows) => rows,
        Err(e) => {
            discard(state, tenant, project, &stored).await;
            return Err(e);
        }
    };

    // A parallel upload of the same bytes committed its photo first, so this
    // request's copy of the file is not kept.
    let lost_race: Vec<&Stored> = stored
        .iter()
        .zip(&rows)
        .filter(|(_, row)| matches!(row, Inserted::Existing(_)))
        .map(|(file, _)| file)
        .collect();
    discard(state, tenant, project, lost_race).await;

    let answer: Vec<UploadedPhoto> = received
        .into_iter()
        .filter_map(|entry| match entry {
            Received::New(index) => rows.get(index).map(|row| row.answer(false)),
            Received::SameAsNew(index) => rows.get(index).map(|row| row.answer(true)),
            Received::SameAsExisting(photo) => Some(UploadedPhoto {
                photo,
                duplicate: true,
            }),
        })
        .collect();
    let photos: Vec<&Photo> = rows
        .iter()
        .filter_map(|row| match row {
            Inserted::New(photo) => Some(photo),
            Inserted::Existing(_) => None,
        })
        .collect();

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
    tracing::info!(
        tenant.id = %tenant,
        project.id = %project,
        photos = photos.len(),
        duplicates = answer.len() - photos.len(),
        "photos uploaded"
    );
    Ok(answer)
}

/// Returns the photo of `project` whose original has this SHA-256, if any.
async fn find_existing(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    sha256: &[u8; 32],
) -> Option<Result<Photo, ApiError>> {
    let lookup = async {
        let mut tx = state.db.tenant(tenant).await?;
        let photo = photos::find_by_content_hash(&mut tx, project, sha256).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(photo)
    };
    lookup.await.transpose()
}

async fn store_file(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    field: Field<'_>,
) -> Result<Stored, ApiError> {
    let file_name = clean_file_name(field.file_name().unwrap_or("photo"));
    let mut chunks = field.map_err(|e| io::Error::other(e.body_text()));

    // Read the head of the file, enough for the type and the size in the
    // header, before anything is stored.
    let mut head: Vec<Bytes> = Vec::new();
    let mut head_len = 0;
    let mut ended = false;
    while head_len < HEAD_BYTES {
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
            None => {
                ended = true;
                break;
            }
        }
    }
    let first: Vec<u8> = head.iter().flat_map(|c| c.iter().copied()).collect();
    let kind = probe_upload(&first, ended).map_err(|e| rejected(&file_name, &e))?;
    drop(first);

    // The hash and the structure check see every chunk on its way to the store.
    let inspected = Arc::new(Mutex::new(Inspected {
        sha256: Sha256::new(),
        jpeg: (kind == ImageKind::Jpeg).then(JpegCompletenessCheck::new),
        png: (kind == ImageKind::Png).then(PngCompletenessCheck::new),
    }));
    let inspector = Arc::clone(&inspected);
    let body = stream::iter(head.into_iter().map(Ok))
        .chain(chunks)
        .inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                inspector
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .update(chunk);
            }
        })
        .boxed();

    let id = PhotoId::new();
    let key = photo_key(tenant, project, id, PhotoObject::Original);
    let limit = state.config.max_upload_bytes;
    let size = match state.media.put_stream(&key, body, limit).await {
        Ok(size) => size,
        Err(StoreError::TooLarge { limit }) => {
            return Err(ApiError::TooLarge(format!(
                "'{file_name}' is larger than the limit of {} per file; export a smaller file and upload it again",
                human_bytes(limit)
            )));
        }
        Err(StoreError::Stream(e)) => {
            return Err(ApiError::BadRequest(format!(
                "the upload of '{file_name}' was interrupted ({e}); upload it again"
            )));
        }
        Err(e) => return Err(ApiError::Internal(e.into())),
    };

    let inspected = std::mem::replace(
        &mut *inspected.lock().unwrap_or_else(PoisonError::into_inner),
        Inspected {
            sha256: Sha256::new(),
            jpeg: None,
            png: None,
        },
    );
    let structure = match (&inspected.jpeg, &inspected.png) {
        (Some(jpeg), _) => jpeg.finish(),
        (None, Some(png)) => png.finish(),
        (None, None) => Ok(()),
    };
    if let Err(error) = structure {
        // The file is stored whole but is not a whole JPEG or PNG: remove it,
        // so nothing of a rejected file stays in the media store.
        if let Err(e) = state.media.delete(&key).await {
            tracing::error!(tenant.id = %tenant, photo.id = %id, error = %e, "could not delete a rejected upload");
        }
        return Err(rejected(&file_name, &error));
    }
    Ok(Stored {
        id,
        file_name,
        size,
        sha256: inspected.sha256.finalize().into(),
    })
}

/// The digest and checks computed over a file's bytes while it streams to the store.
struct Inspected {
    sha256: Sha256,
    /// Present for JPEG files only.
    jpeg: Option<JpegCompletenessCheck>,
    /// Present for PNG files only.
    png: Option<PngCompletenessCheck>,
}

impl Inspected {
    fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        if let Some(check) = &mut self.jpeg {
            check.feed(chunk);
        }
        if let Some(check) = &mut self.png {
            check.feed(chunk);
        }
    }
}

/// Returns the 422 error for a file that can never become a photo, with the
/// pipeline's message for the studio.
fn rejected(file_name: &str, error: &ThumbnailError) -> ApiError {
    ApiError::invalid("file", format!("'{file_name}': {error}"))
}

/// The row of a stored file after [`insert_rows`].
enum Inserted {
    /// A new photo.
    New(Photo),
    /// The photo of the project with the same bytes that a parallel upload
    /// committed after this request looked for one. No row was added.
    Existing(Photo),
}

impl Inserted {
    /// Returns the entry of the upload's response. `repeated` marks a file
    /// that repeats an earlier file of the same upload.
    fn answer(&self, repeated: bool) -> UploadedPhoto {
        match self {
            Inserted::New(photo) => UploadedPhoto {
                photo: photo.clone(),
                duplicate: repeated,
            },
            Inserted::Existing(photo) => UploadedPhoto {
                photo: photo.clone(),
                duplicate: true,
            },
        }
    }
}

/// Writes the rows of the stored files in one transaction, one entry per
/// file in the order of `stored`.
async fn insert_rows(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    stored: &[Stored],
) -> Result<Vec<Inserted>, ApiError> {
    let mut tx = state.db.tenant(tenant).await?;
    let mut rows = Vec::with_capacity(stored.len());
    for file in stored {
        let size = i64::try_from(file.size).unwrap_or(i64::MAX);
        let inserted = photos::insert_unless_duplicate(
            &mut tx,
            file.id,
            project,
            &file.file_name,
            size,
            &file.sha256,
        )
        .await?;
        let row = match inserted {
            Some(photo) => Inserted::New(photo),
            None => match photos::find_by_content_hash(&mut tx, project, &file.sha256).await? {
                Some(photo) => Inserted::Existing(photo),
                // The conflicting photo was deleted between the two statements.
                None => {
                    return Err(ApiError::Conflict(format!(
                        "a photo with the same bytes as '{}' was deleted during the upload; upload it again",
                        file.file_name
                    )));
                }
            },
        };
        rows.push(row);
    }
    tx.commit().await?;
    Ok(rows)
}

async fn discard(
    state: &AppState,
    tenant: TenantId,
    project: ProjectId,
    stored: impl IntoIterator<Item = &Stored>,
) {
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
