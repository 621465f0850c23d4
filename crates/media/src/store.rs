//! The object storage interface that the web service and the worker share.

use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of body chunks, for example an HTTP request body being uploaded.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, io::Error>>;

/// Errors from a [`MediaStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key breaks the rules of [`crate::validate_key`].
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// The rule that the key breaks.
        reason: &'static str,
    },

    /// No object is stored under the key.
    #[error("object {key:?} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },

    /// The stream was longer than the `max_bytes` given to [`MediaStore::put_stream`].
    /// Nothing was stored.
    #[error("upload is larger than the maximum of {limit} bytes")]
    TooLarge {
        /// The maximum size in bytes.
        limit: u64,
    },

    /// Reading the input stream failed, for example because the client
    /// disconnected mid-upload. Nothing was stored.
    #[error("reading the upload stream failed: {0}")]
    Stream(#[source] io::Error),

    /// The store could not be created from its configuration.
    #[error("invalid media store configuration: {0}")]
    Config(String),

    /// The storage backend failed to read, write or delete the object.
    #[error("storage failed for object {key:?}: {source}")]
    Io {
        /// The key or prefix being accessed.
        key: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Object storage for originals and thumbnails, addressed by relative keys such as
/// `tenants/{tenant}/projects/{project}/photos/{photo}/original`.
///
/// Every method validates its key or prefix with [`crate::validate_key`] first and
/// returns [`StoreError::InvalidKey`] before touching storage. Writes are atomic:
/// a reader sees either the previous object or the complete new one, never a
/// partial write. The trait is object-safe, so callers can hold an
/// `Arc<dyn MediaStore>` and an S3-compatible backend can replace the local one.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Writes the chunks of `stream` to `key`, replacing any existing object, and
    /// returns the number of bytes written.
    ///
    /// The object appears only after the whole stream has been written. On any
    /// error nothing is stored and the previous object, if any, is unchanged.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] as soon as the stream exceeds `max_bytes` (exactly
    /// `max_bytes` is accepted), [`StoreError::Stream`] when the stream yields an
    /// error, [`StoreError::Io`] when the backend fails.
    async fn put_stream<'s>(
        &self,
        key: &str,
        stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError>;

    /// Writes `data` to `key`, replacing any existing object, with the same
    /// atomicity as [`MediaStore::put_stream`].
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError>;

    /// Reads the whole object at `key` into memory.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no object is stored under `key`.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Deletes the object at `key`. Deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes every object whose key starts with `prefix` followed by `/`, for
    /// example all objects of a photo or a project. The prefix is matched whole
    /// segments at a time, so `a/b` deletes `a/b/c` but not `a/bc`. Deleting a
    /// prefix with no objects succeeds.
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;
}
