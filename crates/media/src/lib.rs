//! Photo storage and thumbnails for Proofsheet.
//!
//! [`MediaStore`] stores originals and renditions under relative keys, with
//! [`LocalDiskStore`] as the default backend. [`make_thumbnails`] turns an
//! uploaded JPEG or PNG into the grid and lightbox JPEGs that galleries show.

mod key;
mod local;
mod probe;
mod store;
mod thumbnail;

pub use key::{
    MAX_KEY_LEN, PhotoObject, photo_key, photo_prefix, project_prefix, tenant_prefix, validate_key,
};
pub use local::LocalDiskStore;
pub use probe::{ImageKind, sniff};
pub use store::{ByteStream, MediaStore, StoreError};
pub use thumbnail::{
    GRID_MAX_SIDE, JPEG_QUALITY, LIGHTBOX_MAX_SIDE, MAX_PIXELS, MAX_SIDE, Rendition,
    ThumbnailError, Thumbnails, make_thumbnails,
};
