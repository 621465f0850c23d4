//! [`MediaStore`] on Amazon S3 or an S3-compatible server, through `object_store`.

use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use proofsheet_config::S3Config;

use crate::key::validate_key;
use crate::store::{ByteStream, MediaStore, StoreError};

/// Size in bytes at which [`S3Store::put_stream`] switches to a multipart
/// upload and sends the buffered chunks as one part. 5 MiB is the minimum
/// size of every part but the last on Amazon S3.
pub const S3_PART_SIZE: usize = 5 * 1024 * 1024;

/// A [`MediaStore`] that keeps each object in one S3 bucket under its key.
///
/// A stream of up to [`S3_PART_SIZE`] bytes is buffered and written with one
/// `PutObject`. A longer stream becomes a multipart upload whose parts are sent
/// as they fill, so memory stays near one part per upload. S3 publishes an
/// object only when `PutObject` or `CompleteMultipartUpload` succeeds, which
/// makes every write atomic. On an error the multipart upload is aborted
/// before the error is returned.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: AmazonS3,
    bucket: String,
}

impl S3Store {
    /// Creates a client for the bucket in `config`. No request is sent until
    /// the first store operation.
    ///
    /// Requests are signed with the credentials in `config`. Because both keys
    /// are set, object_store 0.14 uses its static credential provider and never
    /// queries an instance metadata endpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when `object_store` rejects the settings, for
    /// example an endpoint that is not a valid URL.
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        install_crypto_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint.as_str().trim_end_matches('/'));
        }
        let store = builder.build().map_err(|error| {
            StoreError::Config(format!(
                "the S3 client for bucket {:?} could not be created: {error}",
                config.bucket
            ))
        })?;
        Ok(Self {
            store,
            bucket: config.bucket.clone(),
        })
    }

    /// Returns the name of the bucket that contains the objects.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn write_chunks<'s>(
        &self,
        key: &str,
        mut stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError> {
        let path = object_path(key)?;
        let mut part: Vec<Bytes> = Vec::new();
        let mut part_len: usize = 0;
        let mut written: u64 = 0;
        let mut upload: Option<PendingUpload> = None;

        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    abort(upload, key).await;
                    return Err(StoreError::Stream(error));
                }
            };
            let chunk_len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            written = written.saturating_add(chunk_len);
            if written > max_bytes {
                abort(upload, key).await;
                return Err(StoreError::TooLarge { limit: max_bytes });
            }
            part_len = part_len.saturating_add(chunk.len());
            part.push(chunk);
            if part_len < S3_PART_SIZE {
                continue;
            }

            let pending = match upload.as_mut() {
                Some(pending) => pending,
                None => {
                    let created = self
                        .store
                        .put_multipart(&path)
                        .await
                        .map_err(|error| io_error(key, error))?;
                    upload.insert(PendingUpload::new(created))
                }
            };
            let payload = PutPayload::from_iter(std::mem::take(&mut part));
            part_len = 0;
            if let Err(error) = pending.upload.put_part(payload).await {
                abort(upload, key).await;
                return Err(io_error(key, error));
            }
        }

        match upload {
            None => {
                self.store
                    .put(&path, PutPayload::from_iter(part))
                    .await
                    .map_err(|error| io_error(key, error))?;
            }
            Some(mut pending) => {
                if part_len > 0
                    && let Err(error) = pending.upload.put_part(PutPayload::from_iter(part)).await
                {
                    abort(Some(pending), key).await;
                    return Err(io_error(key, error));
                }
                if let Err(error) = pending.upload.complete().await {
                    abort(Some(pending), key).await;
                    return Err(io_error(key, error));
                }
                pending.finished = true;
            }
        }
        Ok(written)
    }
}

#[async_trait]
impl MediaStore for S3Store {
    async fn put_stream<'s>(
        &self,
        key: &str,
        stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError> {
        self.write_chunks(key, stream, max_bytes).await
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let path = object_path(key)?;
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .map_err(|error| io_error(key, error))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = object_path(key)?;
        let read = async { self.store.get(&path).await?.bytes().await };
        match read.await {
            Ok(data) => Ok(data),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound {
                key: key.to_owned(),
            }),
            Err(error) => Err(io_error(key, error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = object_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(io_error(key, error)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let path = object_path(prefix)?;
        // `object_store` lists `{prefix}/`, so only whole segments match.
        let locations = self
            .store
            .list(Some(&path))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(io_error(prefix, error)),
            }
        }
        Ok(())
    }
}

/// Validates `key` and converts it to an `object_store` path.
fn object_path(key: &str) -> Result<Path, StoreError> {
    validate_key(key)?;
    // A valid key has no empty, `.` or `..` segments, so `Path::parse` accepts
    // it. The error branch guards against a later change to either rule.
    Path::parse(key).map_err(|_| StoreError::InvalidKey {
        key: key.to_owned(),
        reason: "the key is not a valid object store path",
    })
}

fn io_error(key: &str, error: object_store::Error) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        source: io::Error::from(error),
    }
}

/// Installs ring as the process-wide rustls crypto provider, which the HTTP
/// client of `object_store` needs because this crate builds it without a
/// bundled provider. A provider installed earlier is kept.
fn install_crypto_provider() {
    // Err means a provider is already installed, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Aborts a multipart upload, if one was started, and logs a failure.
async fn abort(upload: Option<PendingUpload>, key: &str) {
    let Some(mut pending) = upload else {
        return;
    };
    pending.finished = true;
    if let Err(error) = pending.upload.abort().await {
        tracing::warn!(key, %error, "aborting an S3 multipart upload failed");
    }
}

/// A multipart upload that is aborted in the background when dropped before
/// it finished, for example when the upload future is cancelled.
struct PendingUpload {
    upload: Box<dyn MultipartUpload>,
    /// Whether the upload was completed or aborted, so the drop does nothing.
    finished: bool,
}

impl PendingUpload {
    fn new(upload: Box<dyn MultipartUpload>) -> Self {
        Self {
            upload,
            finished: false,
        }
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut upload = std::mem::replace(&mut self.upload, Box::new(FinishedUpload));
        // Drop cannot await, so the abort runs as a task on the current runtime.
        // NOTE: without a runtime, or if the process exits first, the parts stay
        // on the server (not visible as an object) until a bucket lifecycle rule
        // for incomplete multipart uploads removes them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "aborting a cancelled S3 multipart upload failed");
                }
            });
        }
    }
}

/// Placeholder left in a dropped [`PendingUpload`] after its upload moved to
/// the abort task. It is never called.
#[derive(Debug)]
struct FinishedUpload;

#[async_trait]
impl MultipartUpload for FinishedUpload {
    fn put_part(&mut self, _data: PutPayload) -> object_store::UploadPart {
        Box::pin(async { Err(absent_upload_error()) })
    }

    async fn complete(&mut self) -> object_store::Result<object_store::PutResult> {
        Err(absent_upload_error())
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        Ok(())
    }
}

fn absent_upload_error() -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: "the multipart upload was already finished".into(),
    }
}
