//! [`MediaStore`] on the local file system.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncWriteExt;

use crate::key::validate_key;
use crate::store::{ByteStream, MediaStore, StoreError};

/// A [`MediaStore`] that keeps each object as a file at `root/{key}`.
///
/// Writes go to a temporary file `.{name}.{pid}-{n}.tmp` next to the target and
/// are renamed into place once complete and synced to disk. Key validation rejects
/// segments that start with `.`, so temporary files never clash with objects.
/// [`MediaStore::delete`] and [`MediaStore::delete_prefix`] also remove the
/// directories they leave empty, up to but never including `root`.
#[derive(Debug, Clone)]
pub struct LocalDiskStore {
    root: PathBuf,
}

impl LocalDiskStore {
    /// Creates a store under `root`. Nothing is created on disk until the first
    /// write, which creates `root` and any parent directories it needs.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Returns the folder that contains the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Removes the parent directories of `path` that are empty, from the
    /// nearest upwards, and stops at the first one that is not empty or at
    /// `root`, which is never removed.
    ///
    /// A failure only leaves an empty directory behind, so it is not an
    /// error of the delete that called this. A writer that loses its new
    /// directory to this removal recreates it (see [`TempFile::create_next_to`]).
    async fn remove_empty_parents(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(current) = dir {
            if current == self.root || !current.starts_with(&self.root) {
                break;
            }
            // `remove_dir` removes only an empty directory, atomically, so a
            // file written meanwhile is never lost.
            match fs::remove_dir(current).await {
                Ok(()) => {}
                Err(error) if is_missing(&error) => {}
                Err(_) => break,
            }
            dir = current.parent();
        }
    }

    async fn write_chunks<'s>(
        &self,
        key: &str,
        mut stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError> {
        let path = self.object_path(key)?;
        let io_error = |source| StoreError::Io {
            key: key.to_owned(),
            source,
        };

        let mut temp = TempFile::create_next_to(&path, &self.root)
            .await
            .map_err(io_error)?;
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(StoreError::Stream)?;
            let chunk_len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            written = written.saturating_add(chunk_len);
            if written > max_bytes {
                return Err(StoreError::TooLarge { limit: max_bytes });
            }
            temp.file.write_all(&chunk).await.map_err(io_error)?;
        }
        temp.persist(&path).await.map_err(io_error)?;
        Ok(written)
    }
}

#[async_trait]
impl MediaStore for LocalDiskStore {
    async fn put_stream<'s>(
        &self,
        key: &str,
        stream: ByteStream<'s>,
        max_bytes: u64,
    ) -> Result<u64, StoreError> {
        self.write_chunks(key, stream, max_bytes).await
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let size = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let stream = futures::stream::once(async move { Ok(data) }).boxed();
        self.write_chunks(key, stream, size).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.object_path(key)?;
        match fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            // A directory at the path is a prefix of other keys, not an object,
            // and a file among the parents means no object can be below it.
            Err(error) if is_missing(&error) || error.kind() == io::ErrorKind::IsADirectory => {
                Err(StoreError::NotFound {
                    key: key.to_owned(),
                })
            }
            Err(source) => Err(StoreError::Io {
                key: key.to_owned(),
                source,
            }),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.object_path(key)?;
        removed(fs::remove_file(&path).await, key)?;
        self.remove_empty_parents(&path).await;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let path = self.object_path(prefix)?;
        removed(fs::remove_dir_all(&path).await, prefix)?;
        self.remove_empty_parents(&path).await;
        Ok(())
    }
}

/// Maps the result of removing the file or folder of `key`, where nothing
/// at the path counts as removed.
fn removed(result: io::Result<()>, key: &str) -> Result<(), StoreError> {
    match result {
        Ok(()) => Ok(()),
        Err(error) if is_missing(&error) => Ok(()),
        Err(source) => Err(StoreError::Io {
            key: key.to_owned(),
            source,
        }),
    }
}

/// Returns whether `error` means that nothing exists at the path.
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Counter that makes temporary file names unique within this process. The
/// process id in the name keeps them apart from other processes.
static NEXT_TEMP_ID: AtomicU64 = AtomicU64::new(0);

/// A temporary file that is removed when dropped unless [`TempFile::persist`]
/// renamed it into place, together with the folders it leaves empty below
/// `root`. The drop also covers a cancelled upload future.
struct TempFile {
    path: PathBuf,
    root: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates a new, empty temporary file in the folder of `target`, creating
    /// that folder first if needed. `root` is the store's root folder, the
    /// highest folder a dropped file may remove.
    async fn create_next_to(target: &Path, root: &Path) -> io::Result<TempFile> {
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no parent folder", target.display()),
            ));
        };
        fs::create_dir_all(dir).await?;

        let name = name.to_string_lossy();
        let mut directory_recreated = false;
        let pid = std::process::id();
        // A clash is possible only with a file left behind by a crashed process
        // that had the same pid, so a few attempts are enough.
        let mut attempts = 0;
        loop {
            let id = NEXT_TEMP_ID.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{pid}-{id}.tmp"));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await;
            match opened {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        root: root.to_path_buf(),
                        file,
                        persisted: false,
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                // A concurrent delete removed the folder once it was empty,
                // between `create_dir_all` and this open.
                Err(error) if error.kind() == io::ErrorKind::NotFound && !directory_recreated => {
                    directory_recreated = true;
                    fs::create_dir_all(dir).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Syncs the file to disk and renames it to `target`.
    async fn persist(&mut self, target: &Path) -> io::Result<()> {
        // tokio runs writes in the background, and flush waits for them to finish.
        self.file.flush().await?;
        self.file.sync_all().await?;
        fs::rename(&self.path, target).await?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.persisted {
            return;
        }
        // A blocking unlink in async code is acceptable here: it is one quick
        // system call, and Drop cannot await. Failure leaves only a hidden
        // `.tmp` file, so it is ignored.
        let _ = std::fs::remove_file(&self.path);
        // A rejected or interrupted upload must not leave its photo's new
        // folder behind. `remove_dir` removes only an empty folder, so the
        // files of other objects are safe, and the walk stops at the first
        // folder that is not empty.
        let mut dir = self.path.parent();
        while let Some(current) = dir {
            if current == self.root
                || !current.starts_with(&self.root)
                || std::fs::remove_dir(current).is_err()
            {
                break;
            }
            dir = current.parent();
        }
    }
}
