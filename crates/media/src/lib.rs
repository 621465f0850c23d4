//! Photo storage and thumbnails for Proofsheet.
//!
//! [`MediaStore`] stores originals and renditions under relative keys, with
//! [`LocalDiskStore`] as the default backend. [`make_thumbnails`] turns an
//! uploaded JPEG, PNG, WebP or TIFF into the grid and lightbox JPEGs, at the
//! sizes of [`RenditionSize`], that galleries show.

mod colour;
mod key;
mod local;
mod probe;
mod sizes;
mod store;
mod thumbnail;

pub use key::{
    MAX_KEY_LEN, PhotoObject, photo_key, photo_prefix, project_prefix, tenant_prefix, validate_key,
};
pub use local::LocalDiskStore;
pub use probe::{ImageKind, JpegCompletenessCheck, probe_upload, sniff};
pub use sizes::{GRID_MAX_SIDE, LIGHTBOX_MAX_SIDE, RenditionSize, content_etag, fit_within};
pub use store::{ByteStream, MediaStore, StoreError};
pub use thumbnail::{
    JPEG_QUALITY, MAX_PIXELS, MAX_SIDE, Rendition, ThumbnailError, Thumbnails, make_rendition,
    make_thumbnails,
};
