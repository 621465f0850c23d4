//! Route handlers. Each one loads what it needs, checks that the token may
//! see it, applies the change if any, and responds.

mod actions;
mod pages;
mod pay;

pub use actions::{respond, toggle_favourite};
pub use pages::{events, not_found, page, photo, project_state};
pub use pay::pay;

use proofsheet_domain::PhotoId;
use proofsheet_domain::db::TenantTx;
use proofsheet_domain::db::photos::{self, Photo, PhotoStatus};
use proofsheet_domain::db::projects;

use crate::error::PortalError;
use crate::link::PortalLink;

/// Loads a photo the link's client may see: one of the link's project,
/// while the project shows its photos, and not one whose thumbnails failed.
/// Anything else, including an id that is not a UUID, is not found.
async fn visible_photo(
    tx: &mut TenantTx,
    link: &PortalLink,
    photo_id: &str,
) -> Result<Photo, PortalError> {
    let not_found = || PortalError::NotFound("photo");
    let id: PhotoId = photo_id.parse().map_err(|_| not_found())?;
    let project = projects::get(tx, link.project).await?;
    if !project.stage.photos_visible() {
        return Err(not_found());
    }
    let photo = match photos::get(tx, id).await {
        Err(proofsheet_domain::DomainError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    if photo.project_id != link.project || photo.status == PhotoStatus::Failed {
        return Err(not_found());
    }
    Ok(photo)
}
