//! Photo storage and thumbnails for Proofsheet.
//!
//! [`MediaStore`] stores originals and renditions under relative keys, with
//! [`LocalDiskStore`] as the default backend and [`S3Store`] for S3-compatible
//! object storage; [`open_store`] picks one from the configuration. [`make_thumbnails`] turns an
//! uploaded JPEG, PNG, WebP or TIFF into the grid and lightbox JPEGs, at the
//! sizes of [`RenditionSize`], that galleries show.

mod colour;
mod key;
mod local;
mod png_check;
mod probe;
mod s3;
mod sizes;
mod store;
mod thumbnail;

pub use key::{
    MAX_KEY_LEN, PhotoObject, photo_key, photo_prefix, project_prefix, tenant_prefix, validate_key,
};
pub use local::LocalDiskStore;
pub use png_check::PngCompletenessCheck;
pub use probe::{ImageKind, JpegCompletenessCheck, probe_upload, sniff};
pub use s3::{S3_PART_SIZE, S3Store};
pub use sizes::{GRID_MAX_SIDE, LIGHTBOX_MAX_SIDE, RenditionSize, content_etag, fit_within};
pub use store::{ByteStream, MediaStore, StoreError};
pub use thumbnail::{
    JPEG_QUALITY, MAX_DECODED_BYTES, MAX_PIXELS, MAX_SIDE, Rendition, ThumbnailError, Thumbnails,
    make_rendition, make_thumbnails,
};

use std::sync::Arc;

use proofsheet_config::MediaStoreConfig;

/// Creates the media store that `config` selects: [`LocalDiskStore`] or
/// [`S3Store`]. Neither sends a request or touches the disk here.
///
/// # Errors
///
/// [`StoreError::Config`] when the S3 client cannot be built from the settings.
pub fn open_store(config: &MediaStoreConfig) -> Result<Arc<dyn MediaStore>, StoreError> {
    match config {
        MediaStoreConfig::Local { root } => Ok(Arc::new(LocalDiskStore::new(root.clone()))),
        MediaStoreConfig::S3(s3) => Ok(Arc::new(S3Store::new(s3)?)),
    }
}
