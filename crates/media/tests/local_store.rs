//! `LocalDiskStore` tests, each in its own temporary directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use proofsheet_media::{ByteStream, LocalDiskStore, MediaStore, StoreError};

const KEY: &str = "tenants/t1/projects/p1/photos/ph1/original";

fn new_store() -> (tempfile::TempDir, LocalDiskStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalDiskStore::new(dir.path().join("media"));
    (dir, store)
}

fn chunks(parts: &[&'static [u8]]) -> ByteStream<'static> {
    let items: Vec<Result<Bytes, io::Error>> = parts
        .iter()
        .map(|part| Ok(Bytes::from_static(part)))
        .collect();
    stream::iter(items).boxed()
}

/// Lists every file below `root`, including hidden temporary files.
fn files_under(root: &Path) -> Vec<PathBuf> {
    walk(root).0
}

/// Lists every directory below `root`, not including `root` itself.
fn directories_under(root: &Path) -> Vec<PathBuf> {
    walk(root).1
}

/// Returns the files and the directories below `root`, each sorted.
fn walk(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut directories = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                directories.push(path.clone());
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    directories.sort();
    (files, directories)
}

#[tokio::test]
async fn put_then_get_round_trips() {
    let (_dir, store) = new_store();
    store
        .put(KEY, Bytes::from_static(b"photo bytes"))
        .await
        .expect("put");
    assert_eq!(store.get(KEY).await.expect("get"), "photo bytes");
    assert_eq!(files_under(store.root()), vec![store.root().join(KEY)]);
}

#[tokio::test]
async fn put_replaces_existing_object() {
    let (_dir, store) = new_store();
    store
        .put(KEY, Bytes::from_static(b"old"))
        .await
        .expect("put");
    store
        .put(KEY, Bytes::from_static(b"new"))
        .await
        .expect("put");
    assert_eq!(store.get(KEY).await.expect("get"), "new");
}

#[tokio::test]
async fn put_stream_counts_bytes() {
    let (_dir, store) = new_store();
    let written = store
        .put_stream(KEY, chunks(&[b"abc", b"", b"defg"]), 100)
        .await
        .expect("put_stream");
    assert_eq!(written, 7);
    assert_eq!(store.get(KEY).await.expect("get"), "abcdefg");
}

#[tokio::test]
async fn put_stream_accepts_exact_limit() {
    let (_dir, store) = new_store();
    let written = store
        .put_stream(KEY, chunks(&[b"abc", b"def"]), 6)
        .await
        .expect("a stream of exactly max_bytes is accepted");
    assert_eq!(written, 6);
}

#[tokio::test]
async fn put_stream_over_limit_leaves_nothing() {
    let (_dir, store) = new_store();
    let result = store
        .put_stream(KEY, chunks(&[b"abc", b"def", b"g"]), 6)
        .await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { limit: 6 })),
        "{result:?}"
    );
    assert_eq!(files_under(store.root()), Vec::<PathBuf>::new());
    assert_eq!(directories_under(store.root()), Vec::<PathBuf>::new());
    assert!(matches!(
        store.get(KEY).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn failed_put_stream_keeps_old_object() {
    let (_dir, store) = new_store();
    store
        .put(KEY, Bytes::from_static(b"old"))
        .await
        .expect("put");

    let result = store.put_stream(KEY, chunks(&[b"new", b"data"]), 5).await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(store.get(KEY).await.expect("get"), "old");
    assert_eq!(files_under(store.root()), vec![store.root().join(KEY)]);
}

#[tokio::test]
async fn stream_error_leaves_nothing() {
    let (_dir, store) = new_store();
    let items = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let result = store
        .put_stream(KEY, stream::iter(items).boxed(), 100)
        .await;
    assert!(matches!(result, Err(StoreError::Stream(_))), "{result:?}");
    assert_eq!(files_under(store.root()), Vec::<PathBuf>::new());
    assert_eq!(directories_under(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn cancelled_put_stream_leaves_nothing() {
    let (_dir, store) = new_store();
    // One chunk, then a stream that never ends, like a stalled upload.
    let stalled = stream::iter(vec![Ok(Bytes::from_static(b"partial"))])
        .chain(stream::pending())
        .boxed();
    let upload = store.put_stream(KEY, stalled, 100);
    let timed_out = tokio::time::timeout(Duration::from_millis(200), upload).await;
    assert!(timed_out.is_err(), "the upload should still be waiting");
    // The timeout dropped the upload future, which must remove its temporary
    // file and the folders made for it.
    assert_eq!(files_under(store.root()), Vec::<PathBuf>::new());
    assert_eq!(directories_under(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn get_missing_is_not_found() {
    let (_dir, store) = new_store();
    let result = store.get(KEY).await;
    assert!(
        matches!(&result, Err(StoreError::NotFound { key }) if key == KEY),
        "{result:?}"
    );

    // A prefix of stored keys is a directory on disk, not an object.
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    let result = store.get("tenants/t1").await;
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );

    // A key below an existing object cannot exist either.
    let result = store.get(&format!("{KEY}/below")).await;
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn delete_removes_object() {
    let (_dir, store) = new_store();
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    store.delete(KEY).await.expect("delete");
    assert!(matches!(
        store.get(KEY).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delete_missing_succeeds() {
    let (_dir, store) = new_store();
    store.delete(KEY).await.expect("deleting a missing object");
    store
        .delete_prefix("tenants/t1")
        .await
        .expect("deleting a missing prefix");
}

#[tokio::test]
async fn delete_prefix_matches_whole_segments() {
    let (_dir, store) = new_store();
    let inside = [
        "tenants/t1/projects/p1/photos/ph1/original",
        "tenants/t1/projects/p1/photos/ph1/grid.jpg",
        "tenants/t1/projects/p1/photos/ph2/original",
    ];
    // Keys that start with the same characters but not the same segments.
    let outside = [
        "tenants/t1/projects/p10/photos/ph1/original",
        "tenants/t1/projects/p1x",
        "tenants/t1/projects/p2/photos/ph1/original",
    ];
    for key in inside.iter().chain(&outside) {
        store.put(key, Bytes::from_static(b"x")).await.expect("put");
    }

    store
        .delete_prefix("tenants/t1/projects/p1")
        .await
        .expect("delete_prefix");

    for key in inside {
        let result = store.get(key).await;
        assert!(
            matches!(result, Err(StoreError::NotFound { .. })),
            "{key} survived: {result:?}"
        );
    }
    for key in outside {
        assert!(store.get(key).await.is_ok(), "{key} was deleted");
    }
}

#[tokio::test]
async fn bad_keys_rejected_everywhere() {
    let (_dir, store) = new_store();
    for key in ["", "/etc/passwd", "a/../../b", "a//b", "a\\b", "a/", ".."] {
        let is_invalid =
            |result: Result<(), StoreError>| matches!(result, Err(StoreError::InvalidKey { .. }));
        assert!(
            is_invalid(store.put(key, Bytes::from_static(b"x")).await),
            "put {key:?}"
        );
        assert!(
            is_invalid(store.put_stream(key, chunks(&[b"x"]), 10).await.map(|_| ())),
            "put_stream {key:?}"
        );
        assert!(is_invalid(store.get(key).await.map(|_| ())), "get {key:?}");
        assert!(is_invalid(store.delete(key).await), "delete {key:?}");
        assert!(
            is_invalid(store.delete_prefix(key).await),
            "delete_prefix {key:?}"
        );
    }
    assert_eq!(files_under(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn usable_as_trait_object() {
    let (_dir, store) = new_store();
    let shared: Arc<dyn MediaStore> = Arc::new(store);
    shared
        .put(KEY, Bytes::from_static(b"x"))
        .await
        .expect("put through Arc<dyn MediaStore>");
    assert_eq!(shared.get(KEY).await.expect("get"), "x");
}

#[tokio::test]
async fn delete_removes_emptied_directories() {
    let (_dir, store) = new_store();
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");

    store.delete(KEY).await.expect("delete");

    assert!(store.root().is_dir(), "the store root was removed");
    assert_eq!(directories_under(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn delete_keeps_directories_with_objects() {
    let (_dir, store) = new_store();
    let sibling = "tenants/t1/projects/p1/photos/ph2/original";
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    store
        .put(sibling, Bytes::from_static(b"y"))
        .await
        .expect("put");

    store.delete(KEY).await.expect("delete");

    let photos = store.root().join("tenants/t1/projects/p1/photos");
    assert!(
        !photos.join("ph1").exists(),
        "the emptied photo folder stayed"
    );
    assert!(
        photos.join("ph2").is_dir(),
        "a folder with an object was removed"
    );
    assert_eq!(store.get(sibling).await.expect("get sibling"), "y");
}

#[tokio::test]
async fn delete_prefix_removes_emptied_directories() {
    let (_dir, store) = new_store();
    let other_project = "tenants/t1/projects/p2/photos/ph1/original";
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    store
        .put(other_project, Bytes::from_static(b"y"))
        .await
        .expect("put");

    store
        .delete_prefix("tenants/t1/projects/p1/photos/ph1")
        .await
        .expect("delete_prefix");

    let projects = store.root().join("tenants/t1/projects");
    assert!(
        !projects.join("p1").exists(),
        "the emptied project folder stayed"
    );
    assert!(
        projects.join("p2").is_dir(),
        "a folder with an object was removed"
    );

    store
        .delete_prefix("tenants/t1/projects/p2")
        .await
        .expect("delete_prefix");

    assert!(store.root().is_dir(), "the store root was removed");
    assert_eq!(directories_under(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn delete_never_removes_above_root() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("media");
    let store = LocalDiskStore::new(root.clone());
    store.put("a", Bytes::from_static(b"x")).await.expect("put");

    store.delete("a").await.expect("delete");
    store.delete_prefix("b").await.expect("delete_prefix");

    assert!(root.is_dir(), "the store root was removed");
    assert!(dir.path().is_dir(), "the folder above the root was removed");
}
