//! Thumbnail throughput of the whole worker: 100 photos stored and queued,
//! then the real service runs until every one is ready. Ignored by default
//! because it measures rather than checks; run it with
//!
//! ```sh
//! BENCH_PHOTOS_DIR=/path/to/camera/jpegs cargo test --release -p proofsheet-worker \
//!     --test throughput -- --ignored --nocapture
//! ```
//!
//! It uses the JPEGs of `BENCH_PHOTOS_DIR` in turn when set, and this
//! crate's 1800 x 1200 test photos otherwise, and prints which.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, fixture};
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_jobs::GenerateThumbnails;
use tokio::sync::oneshot;

const PHOTOS: usize = 100;

fn photo_sources() -> (String, Vec<Vec<u8>>) {
    if let Ok(dir) = std::env::var("BENCH_PHOTOS_DIR") {
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading BENCH_PHOTOS_DIR={dir}: {e}"))
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                std::fs::read(path)
                    .ok()
                    .and_then(|bytes| proofsheet_media::make_rendition(&bytes, 1).ok())
                    .is_some()
                    && path
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("jpg"))
            })
            .collect();
        paths.sort();
        let photos: Vec<Vec<u8>> = paths
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter(|bytes| bytes.len() > 400_000)
            .collect();
        if !photos.is_empty() {
            return (
                format!("{} JPEGs over 400 KB from {dir}", photos.len()),
                photos,
            );
        }
    }
    let names = ["recurser-Landscape_6.jpg", "recurser-Landscape_8.jpg"];
    (
        "the 1800 x 1200 test photos (set BENCH_PHOTOS_DIR for camera files)".to_owned(),
        names.iter().map(|name| fixture(name)).collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measures throughput; run explicitly"]
async fn hundred_photos_throughput() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let (description, sources) = photo_sources();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    let started = Instant::now();
    let mut photos = Vec::with_capacity(PHOTOS);
    for index in 0..PHOTOS {
        let bytes = sources[index % sources.len()].clone();
        let photo = harness.upload(tenant, project.id, bytes).await;
        let job = GenerateThumbnails {
            tenant_id: tenant,
            photo_id: photo,
        };
        harness
            .ctx
            .queues
            .enqueue_thumbnails(job)
            .await
            .expect("enqueue");
        photos.push(photo);
    }
    let uploaded = started.elapsed();

    let mut config = harness.config.clone();
    config.thumbnail_concurrency = cores;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    config.worker_admin_addr = listener.local_addr().expect("address");
    drop(listener);
    let (stop, stopped) = oneshot::channel::<()>();
    let service = tokio::spawn(proofsheet_worker::run(config, async move {
        let _ = stopped.await;
    }));

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut pending = 0;
        for &photo in &photos {
            let status = harness.photo(tenant, photo).await.status;
            assert_ne!(status, PhotoStatus::Failed, "photo {photo} failed");
            if status == PhotoStatus::Processing {
                pending += 1;
            }
        }
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} photos still processing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed();

    println!("photos: {PHOTOS}, from {description}");
    println!("THUMBNAIL_CONCURRENCY: {cores} (one per core)");
    println!("stored and queued in {:.2} s", uploaded.as_secs_f64());
    println!(
        "all thumbnails ready after {:.2} s: {:.2} photos/s",
        total.as_secs_f64(),
        PHOTOS as f64 / total.as_secs_f64()
    );

    let _ = stop.send(());
    let _ = service.await;
    harness.finish().await;
}
