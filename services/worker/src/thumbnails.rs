//! The thumbnail job: the grid and lightbox renditions, each with its
//! high-density twin, of one uploaded photo.

use bytes::Bytes;
use proofsheet_domain::ProjectId;
use proofsheet_domain::db::photos::{self, Photo, PhotoStatus, ReadySizes};
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_media::{
    PhotoObject, RenditionSize, StoreError, Thumbnails, make_thumbnails, photo_key, photo_prefix,
};

use crate::context::JobContext;
use crate::error::Error;

/// Reason shown to the studio when a thumbnail job ends without a result
/// for a reason other than the file, for example because the media store
/// stayed unreachable through every retry.
pub const GIVE_UP_REASON: &str =
    "Processing this photo failed. Upload it again, and contact support if it fails again.";

/// Result of a thumbnail job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThumbnailOutcome {
    /// Every rendition is stored and the photo is ready.
    Ready {
        /// Width of the full image after its EXIF orientation is applied.
        width: u32,
        /// Height of the full image after its EXIF orientation is applied.
        height: u32,
        grid_width: u32,
        grid_height: u32,
    },
    /// No thumbnails can be made from the file, so the photo is marked
    /// failed with `reason`, a message for the studio, and has no renditions.
    Rejected { reason: String },
}

/// Makes and stores every rendition of a photo, then marks
/// it ready and publishes a `Photos` event to its open portal pages.
///
/// A file that is not a usable image is not an error: the photo is marked
/// failed with a readable reason, its original and any earlier renditions
/// are deleted from the media store, and the result is
/// [`ThumbnailOutcome::Rejected`]. Running the job again stores the same
/// renditions and sizes, because writes replace objects and `mark_ready`
/// sets absolute values. For a rejected photo it returns the same rejection.
///
/// # Errors
///
/// Database and media store failures, which are worth retrying, and
/// `DomainError::NotFound` when the photo was deleted.
pub async fn generate_thumbnails(
    ctx: &JobContext,
    job: &GenerateThumbnails,
) -> Result<ThumbnailOutcome, Error> {
    let photo = load_photo(ctx, job).await?;
    let original_key = rendition_key(job, photo.project_id, PhotoObject::Original);
    let original = match ctx.store.get(&original_key).await {
        Ok(original) => original,
        // A rejection deletes the original, so a repeated job for a photo
        // rejected earlier has nothing to decode and must not be retried.
        Err(StoreError::NotFound { .. }) if photo.status == PhotoStatus::Failed => {
            let reason = photo.error.unwrap_or_default();
            return Ok(ThumbnailOutcome::Rejected { reason });
        }
        Err(error) => return Err(error.into()),
    };

    // Decoding and resizing take seconds of CPU, which would stall every
    // other job on this runtime thread.
    let rendered = tokio::task::spawn_blocking(move || make_thumbnails(&original))
        .await
        .map_err(|join_error| Error::Panicked(join_error.to_string()))?;

    match rendered {
        Ok(thumbnails) => store_renditions(ctx, job, photo.project_id, thumbnails).await,
        Err(error) if error.is_permanent() => {
            let reason = error.to_string();
            reject_file(ctx, job, photo.project_id, &reason).await?;
            Ok(ThumbnailOutcome::Rejected { reason })
        }
        Err(error) => Err(error.into()),
    }
}

/// Marks a photo failed with [`GIVE_UP_REASON`] after its job ended without
/// a result, so the studio does not wait for it forever. A photo that is
/// already ready or failed keeps its state, because an earlier run finished.
/// Its renditions are deleted, but its original stays, because the cause
/// was not the file and the photo can be queued again.
///
/// # Errors
///
/// Database and media store failures.
pub async fn give_up_on_photo(ctx: &JobContext, job: &GenerateThumbnails) -> Result<(), Error> {
    let photo = load_photo(ctx, job).await?;
    if photo.status != PhotoStatus::Processing {
        return Ok(());
    }
    for size in RenditionSize::ALL {
        ctx.store
            .delete(&rendition_key(job, photo.project_id, size.object()))
            .await?;
    }
    mark_failed(ctx, job, photo.project_id, GIVE_UP_REASON).await
}

async fn load_photo(ctx: &JobContext, job: &GenerateThumbnails) -> Result<Photo, Error> {
    let mut tx = ctx.db.tenant(job.tenant_id).await?;
    let photo = photos::get(&mut tx, job.photo_id).await?;
    tx.commit().await?;
    Ok(photo)
}

async fn store_renditions(
    ctx: &JobContext,
    job: &GenerateThumbnails,
    project: ProjectId,
    thumbnails: Thumbnails,
) -> Result<ThumbnailOutcome, Error> {
    let outcome = ThumbnailOutcome::Ready {
        width: thumbnails.width,
        height: thumbnails.height,
        grid_width: thumbnails.grid.width,
        grid_height: thumbnails.grid.height,
    };
    let sizes = ReadySizes {
        width: pixels(thumbnails.width),
        height: pixels(thumbnails.height),
        grid_width: pixels(thumbnails.grid.width),
        grid_height: pixels(thumbnails.grid.height),
    };

    // Every file is in place before the photo is marked ready, so a page
    // never links to a rendition that does not exist yet.
    for (size, rendition) in thumbnails.renditions() {
        let key = rendition_key(job, project, size.object());
        ctx.store
            .put(&key, Bytes::from(rendition.jpeg.clone()))
            .await?;
    }

    let mut tx = ctx.db.tenant(job.tenant_id).await?;
    photos::mark_ready(&mut tx, job.photo_id, sizes).await?;
    tx.commit().await?;

    publish_photos_changed(ctx, project).await;
    Ok(outcome)
}

/// Marks the photo failed with `reason` and deletes its original and every
/// rendition, because a file that can never be decoded is of no use in the
/// media store. The row stays, so the studio's pages show which file failed
/// and why.
///
/// The row is marked first: when a delete then fails, the retried job
/// decodes the original again, gets the same rejection and deletes again.
async fn reject_file(
    ctx: &JobContext,
    job: &GenerateThumbnails,
    project: ProjectId,
    reason: &str,
) -> Result<(), Error> {
    mark_failed(ctx, job, project, reason).await?;
    let prefix = photo_prefix(job.tenant_id, project, job.photo_id);
    ctx.store.delete_prefix(&prefix).await?;
    Ok(())
}

/// Marks the photo failed with `reason` and publishes a `Photos` event to its
/// open portal pages.
async fn mark_failed(
    ctx: &JobContext,
    job: &GenerateThumbnails,
    project: ProjectId,
    reason: &str,
) -> Result<(), Error> {
    let mut tx = ctx.db.tenant(job.tenant_id).await?;
    photos::mark_failed(&mut tx, job.photo_id, reason).await?;
    tx.commit().await?;

    publish_photos_changed(ctx, project).await;
    Ok(())
}

async fn publish_photos_changed(ctx: &JobContext, project: ProjectId) {
    let connection = ctx.queues.connection();
    live::publish(
        &connection,
        ctx.queues.namespace(),
        project,
        ProjectEvent::Photos,
    )
    .await;
}

fn rendition_key(job: &GenerateThumbnails, project: ProjectId, object: PhotoObject) -> String {
    photo_key(job.tenant_id, project, job.photo_id, object)
}

/// Converts a pixel count for the database. `make_thumbnails` rejects images
/// over 20,000 pixels on a side, so the value always fits.
fn pixels(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Age after which a photo still waiting for thumbnails gets its job queued
/// again: far longer than a photo's job takes, even behind a large upload, so
/// normally only a job lost between the upload's commit and its enqueue is
/// queued twice. A duplicate is harmless because the job is idempotent.
pub const STALE_PHOTO_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Queues the thumbnail job again for every photo still processing
/// `older_than` after its upload, and returns how many were queued.
///
/// # Errors
///
/// Database failures, and the first enqueue that failed after every photo
/// was tried.
pub async fn requeue_stale_photos(
    ctx: &JobContext,
    older_than: std::time::Duration,
) -> Result<usize, Error> {
    let stale = ctx.db.stale_processing_photos(older_than).await?;
    let mut first_error = None;
    for (tenant_id, photo_id) in &stale {
        let job = GenerateThumbnails {
            tenant_id: *tenant_id,
            photo_id: *photo_id,
        };
        if let Err(error) = ctx.queues.enqueue_thumbnails(job).await {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error.into()),
        None => Ok(stale.len()),
    }
}
