//! Uploaded photos and the state of their thumbnails.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::TenantTx;
use crate::{DomainError, PhotoId, ProjectId, TenantId};

/// Where a photo's thumbnails stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoStatus {
    Processing,
    Ready,
    Failed,
}

/// A photo as the studio and the portal see it. `width` and `height` are
/// those of the image after its EXIF orientation is applied.
#[derive(Clone, Debug, Serialize)]
pub struct Photo {
    pub id: PhotoId,
    #[serde(skip)]
    pub project_id: ProjectId,
    pub file_name: String,
    pub status: PhotoStatus,
    pub width: Option<i32>,
    pub height: Option<i32>,
    #[serde(skip)]
    pub grid_width: Option<i32>,
    #[serde(skip)]
    pub grid_height: Option<i32>,
    pub error: Option<String>,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    /// When the thumbnail job last wrote the renditions, so that their URLs
    /// change with them. `None` until the first run, and for photos made
    /// ready before this was recorded.
    #[serde(skip)]
    pub rendered_at: Option<DateTime<Utc>>,
}

impl Photo {
    /// Returns the version of the current renditions that their URLs carry:
    /// [`Photo::rendered_at`] in microseconds since the Unix epoch.
    pub fn rendition_version(&self) -> Option<String> {
        self.rendered_at.map(|at| at.timestamp_micros().to_string())
    }
}

#[derive(sqlx::FromRow)]
struct PhotoRow {
    id: PhotoId,
    project_id: ProjectId,
    file_name: String,
    status: String,
    width: Option<i32>,
    height: Option<i32>,
    grid_width: Option<i32>,
    grid_height: Option<i32>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    rendered_at: Option<DateTime<Utc>>,
}

impl From<PhotoRow> for Photo {
    fn from(row: PhotoRow) -> Self {
        let status = match row.status.as_str() {
            "ready" => PhotoStatus::Ready,
            "failed" => PhotoStatus::Failed,
            _ => PhotoStatus::Processing,
        };
        Photo {
            id: row.id,
            project_id: row.project_id,
            file_name: row.file_name,
            status,
            width: row.width,
            height: row.height,
            grid_width: row.grid_width,
            grid_height: row.grid_height,
            error: row.error,
            created_at: row.created_at,
            rendered_at: row.rendered_at,
        }
    }
}

macro_rules! photo_columns {
    () => {
        "id, project_id, file_name, status, width, height, grid_width, grid_height, error, created_at, \
         rendered_at"
    };
}

/// Records an uploaded photo, waiting for its thumbnails.
pub async fn insert(
    tx: &mut TenantTx,
    id: PhotoId,
    project: ProjectId,
    file_name: &str,
    byte_size: i64,
) -> Result<Photo, DomainError> {
    let tenant: TenantId = tx.tenant_id();
    let row: PhotoRow = sqlx::query_as(concat!("INSERT INTO photos (id, tenant_id, project_id, file_name, byte_size) VALUES ($1, $2, $3, $4, $5) \
         RETURNING ", photo_columns!()))
    .bind(id)
    .bind(tenant)
    .bind(project)
    .bind(file_name)
    .bind(byte_size)
    .fetch_one(tx.conn())
    .await?;
    Ok(row.into())
}

/// Records an uploaded photo with the SHA-256 of its original, waiting for
/// its thumbnails, unless the project already has a photo with that hash.
///
/// Returns `None` when such a photo exists, and then inserts nothing. The
/// unique index `photos_project_content` decides this, so of parallel
/// uploads of the same bytes exactly one gets a row. `ON CONFLICT DO NOTHING`
/// is used in place of catching the unique violation (SQLSTATE 23505)
/// because that error would abort the transaction that contains the other
/// files of the same upload. A conflicting row that is not yet committed
/// makes this wait for its transaction to end.
pub async fn insert_unless_duplicate(
    tx: &mut TenantTx,
    id: PhotoId,
    project: ProjectId,
    file_name: &str,
    byte_size: i64,
    sha256: &[u8; 32],
) -> Result<Option<Photo>, DomainError> {
    let tenant: TenantId = tx.tenant_id();
    let row: Option<PhotoRow> = sqlx::query_as(concat!(
        "INSERT INTO photos (id, tenant_id, project_id, file_name, byte_size, content_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (project_id, content_sha256) WHERE content_sha256 IS NOT NULL DO NOTHING \
         RETURNING ",
        photo_columns!()
    ))
    .bind(id)
    .bind(tenant)
    .bind(project)
    .bind(file_name)
    .bind(byte_size)
    .bind(&sha256[..])
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Photo::from))
}

/// Returns the oldest photo of `project` whose original has this SHA-256,
/// if any, so an upload of the same bytes is recognised as a duplicate.
pub async fn find_by_content_hash(
    tx: &mut TenantTx,
    project: ProjectId,
    sha256: &[u8; 32],
) -> Result<Option<Photo>, DomainError> {
    let row: Option<PhotoRow> = sqlx::query_as(concat!(
        "SELECT ",
        photo_columns!(),
        " FROM photos WHERE project_id = $1 AND content_sha256 = $2 ORDER BY created_at, id LIMIT 1"
    ))
    .bind(project)
    .bind(&sha256[..])
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Photo::from))
}

/// Loads one photo.
pub async fn get(tx: &mut TenantTx, id: PhotoId) -> Result<Photo, DomainError> {
    let row: Option<PhotoRow> = sqlx::query_as(concat!(
        "SELECT ",
        photo_columns!(),
        " FROM photos WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.ok_or(DomainError::NotFound("photo"))?.into())
}

/// The photos of a project in upload order.
pub async fn for_project(tx: &mut TenantTx, project: ProjectId) -> Result<Vec<Photo>, DomainError> {
    let rows: Vec<PhotoRow> = sqlx::query_as(concat!(
        "SELECT ",
        photo_columns!(),
        " FROM photos WHERE project_id = $1 ORDER BY created_at, id"
    ))
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Photo::from).collect())
}

/// Sizes written by the thumbnail job.
#[derive(Clone, Copy, Debug)]
pub struct ReadySizes {
    pub width: i32,
    pub height: i32,
    pub grid_width: i32,
    pub grid_height: i32,
}

/// Marks the thumbnails written. Running it twice stores the same sizes and
/// a later `rendered_at`, because the renditions were written again.
pub async fn mark_ready(
    tx: &mut TenantTx,
    id: PhotoId,
    sizes: ReadySizes,
) -> Result<(), DomainError> {
    sqlx::query(
        "UPDATE photos SET status = 'ready', width = $2, height = $3, grid_width = $4, grid_height = $5, \
         error = NULL, rendered_at = clock_timestamp() WHERE id = $1",
    )
    .bind(id)
    .bind(sizes.width)
    .bind(sizes.height)
    .bind(sizes.grid_width)
    .bind(sizes.grid_height)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Marks a photo whose thumbnails can never be made, with a reason the studio
/// can read.
pub async fn mark_failed(tx: &mut TenantTx, id: PhotoId, reason: &str) -> Result<(), DomainError> {
    sqlx::query("UPDATE photos SET status = 'failed', error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(tx.conn())
        .await?;
    Ok(())
}
