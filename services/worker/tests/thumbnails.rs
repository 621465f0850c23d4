//! The thumbnail job on real camera files, called directly.

mod common;

use bytes::Bytes;
use common::{Harness, fixture};
use futures::StreamExt;
use proofsheet_domain::db::photos::PhotoStatus;
use proofsheet_domain::{PhotoId, ProjectId, TenantId};
use proofsheet_jobs::GenerateThumbnails;
use proofsheet_jobs::live::channel;
use proofsheet_media::{PhotoObject, photo_key};
use proofsheet_worker::{
    STALE_PHOTO_AFTER, ThumbnailOutcome, generate_thumbnails, requeue_stale_photos,
};

/// Decodes a stored JPEG and returns its size.
async fn stored_size(harness: &Harness, key: &str) -> (u32, u32) {
    let bytes = harness.ctx.store.get(key).await.expect("stored rendition");
    let image = image::load_from_memory(&bytes).expect("a decodable JPEG");
    (image.width(), image.height())
}

/// Stores a grid rendition as an earlier run of the job would have left it.
async fn put_stale_grid(harness: &Harness, tenant: TenantId, project: ProjectId, photo: PhotoId) {
    let grid = photo_key(tenant, project, photo, PhotoObject::Grid);
    harness
        .ctx
        .store
        .put(&grid, Bytes::from_static(b"stale"))
        .await
        .expect("stale grid");
}

/// Asserts that neither the original nor any rendition of `photo` is stored.
async fn assert_nothing_stored(
    harness: &Harness,
    tenant: TenantId,
    project: ProjectId,
    photo: PhotoId,
    name: &str,
) {
    for object in [
        PhotoObject::Original,
        PhotoObject::Grid,
        PhotoObject::Grid2x,
        PhotoObject::Lightbox,
        PhotoObject::Lightbox2x,
    ] {
        assert!(
            !harness.has_object(tenant, project, photo, object).await,
            "{name}: {object:?} is left"
        );
    }
}

#[tokio::test]
async fn rotated_photos_become_ready() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;

    for name in ["recurser-Landscape_6.jpg", "recurser-Landscape_8.jpg"] {
        let photo = harness.upload(tenant, project.id, fixture(name)).await;
        let job = GenerateThumbnails {
            tenant_id: tenant,
            photo_id: photo,
        };

        let outcome = generate_thumbnails(&harness.ctx, &job)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let expected = ThumbnailOutcome::Ready {
            width: 1800,
            height: 1200,
            grid_width: 480,
            grid_height: 320,
        };
        assert_eq!(outcome, expected, "{name}");
        let stored = harness.photo(tenant, photo).await;
        assert_eq!(stored.status, PhotoStatus::Ready, "{name}");
        assert_eq!(stored.width, Some(1800), "{name}");
        assert_eq!(stored.height, Some(1200), "{name}");
        assert_eq!(stored.grid_width, Some(480), "{name}");
        assert_eq!(stored.grid_height, Some(320), "{name}");
        assert_eq!(stored.error, None, "{name}");

        let expected_sizes = [
            (PhotoObject::Grid, (480, 320)),
            (PhotoObject::Grid2x, (960, 640)),
            (PhotoObject::Lightbox, (1024, 683)),
            (PhotoObject::Lightbox2x, (1800, 1200)),
        ];
        for (object, size) in expected_sizes {
            let key = photo_key(tenant, project.id, photo, object);
            assert_eq!(stored_size(&harness, &key).await, size, "{name} {object:?}");
        }
    }
    harness.finish().await;
}

#[tokio::test]
async fn thumbnail_job_is_idempotent() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_6.jpg"))
        .await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    let grid = photo_key(tenant, project.id, photo, PhotoObject::Grid);

    let first = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("first run");
    let first_grid = harness.ctx.store.get(&grid).await.expect("grid");
    let second = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("second run");
    let second_grid = harness.ctx.store.get(&grid).await.expect("grid");

    assert_eq!(first, second);
    assert_eq!(first_grid, second_grid);
    let stored = harness.photo(tenant, photo).await;
    assert_eq!(stored.status, PhotoStatus::Ready);
    assert_eq!(stored.width, Some(1800));
    harness.finish().await;
}

#[tokio::test]
async fn ready_photo_is_announced_to_portal_pages() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_8.jpg"))
        .await;
    let client = redis::Client::open(harness.config.redis_url.as_str()).expect("Redis URL");
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .expect("subscribe connection");
    pubsub
        .subscribe(channel(&harness.namespace, project.id))
        .await
        .expect("subscribe");

    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };
    generate_thumbnails(&harness.ctx, &job).await.expect("job");

    let message = tokio::time::timeout(common::WAIT, pubsub.on_message().next())
        .await
        .expect("an event in time")
        .expect("an event");
    let payload: String = message.get_payload().expect("text payload");
    assert_eq!(payload, "\"photos\"");
    harness.finish().await;
}

#[tokio::test]
async fn pdf_named_jpg_is_rejected() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("notanimage-blankpage-pdf.jpg"))
        .await;
    // A rendition left by an earlier run must not survive the rejection.
    put_stale_grid(&harness, tenant, project.id, photo).await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };

    let outcome = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("a rejection is not an error");

    let ThumbnailOutcome::Rejected { reason } = outcome else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert!(
        reason.contains("not a JPEG, PNG, WebP or TIFF image"),
        "{reason}"
    );
    let stored = harness.photo(tenant, photo).await;
    assert_eq!(stored.status, PhotoStatus::Failed);
    assert_eq!(stored.error.as_deref(), Some(reason.as_str()));
    assert_eq!(stored.width, None);
    assert_nothing_stored(&harness, tenant, project.id, photo, "PDF").await;
    harness.finish().await;
}

#[tokio::test]
async fn deleted_photo_is_not_found() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: PhotoId::new(),
    };

    let error = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect_err("no such photo");

    assert!(error.is_not_found(), "{error}");
    harness.finish().await;
}

#[tokio::test]
async fn photo_of_another_studio_is_not_found() {
    let harness = Harness::start().await;
    let owner = harness.studio("Lichtblick", "Europe/Berlin").await;
    let other = harness.studio("Elsewhere", "Europe/Berlin").await;
    let project = harness.project(owner).await;
    let photo = harness
        .upload(owner, project.id, fixture("recurser-Landscape_6.jpg"))
        .await;
    let job = GenerateThumbnails {
        tenant_id: other,
        photo_id: photo,
    };

    let error = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect_err("row-level security hides the photo");

    assert!(error.is_not_found(), "{error}");
    let stored = harness.photo(owner, photo).await;
    assert_eq!(stored.status, PhotoStatus::Processing);
    harness.finish().await;
}

#[tokio::test]
async fn stuck_photos_are_queued_again() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let stuck = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_6.jpg"))
        .await;
    let fresh = harness
        .upload(tenant, project.id, fixture("recurser-Landscape_8.jpg"))
        .await;

    // Backdate one upload, as if its job had been lost an hour ago.
    let admin = sqlx::PgPool::connect(&harness.test_db.admin_url())
        .await
        .expect("admin pool");
    sqlx::query("UPDATE photos SET created_at = now() - interval '1 hour' WHERE id = $1")
        .bind(stuck.0)
        .execute(&admin)
        .await
        .expect("backdate photo");

    let requeued = requeue_stale_photos(&harness.ctx, STALE_PHOTO_AFTER)
        .await
        .expect("sweep");
    assert_eq!(requeued, 1, "only the old photo is queued again");

    // Running the queued job makes the stuck photo ready.
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: stuck,
    };
    generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("thumbnails");
    assert_eq!(
        harness.photo(tenant, stuck).await.status,
        PhotoStatus::Ready
    );
    assert_eq!(
        harness.photo(tenant, fresh).await.status,
        PhotoStatus::Processing
    );
    let again = requeue_stale_photos(&harness.ctx, STALE_PHOTO_AFTER)
        .await
        .expect("sweep");
    assert_eq!(again, 0, "a ready photo is not queued again");
    harness.finish().await;
}

/// Files that pass the upload's header check but whose pixels cannot be
/// decoded. `make_damaged.py` in the fixtures folder writes them.
const DAMAGED_FIXTURES: [&str; 5] = [
    "damaged-idat.png",
    "truncated-idat.png",
    "truncated-strip.tif",
    "truncated-denali.webp",
    "bad-huffman-table.jpg",
];

#[tokio::test]
async fn damaged_files_leave_nothing_stored() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;

    for name in DAMAGED_FIXTURES {
        let photo = harness.upload(tenant, project.id, fixture(name)).await;
        // A rendition left by an earlier run must go as well.
        put_stale_grid(&harness, tenant, project.id, photo).await;
        let job = GenerateThumbnails {
            tenant_id: tenant,
            photo_id: photo,
        };

        let outcome = generate_thumbnails(&harness.ctx, &job)
            .await
            .unwrap_or_else(|e| panic!("{name}: a damaged file is not a job error: {e}"));

        let ThumbnailOutcome::Rejected { reason } = outcome else {
            panic!("{name}: expected a rejection, got {outcome:?}");
        };
        assert!(reason.contains("damaged or incomplete"), "{name}: {reason}");
        let stored = harness.photo(tenant, photo).await;
        assert_eq!(stored.status, PhotoStatus::Failed, "{name}");
        assert_eq!(stored.error.as_deref(), Some(reason.as_str()), "{name}");
        assert_nothing_stored(&harness, tenant, project.id, photo, name).await;
    }
    // Nothing at all is left, not even an emptied folder.
    let left: Vec<_> = std::fs::read_dir(&harness.config.media_dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the media store: {left:?}");
    harness.finish().await;
}

#[tokio::test]
async fn rejected_photo_job_runs_again() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let photo = harness
        .upload(tenant, project.id, fixture("damaged-idat.png"))
        .await;
    let job = GenerateThumbnails {
        tenant_id: tenant,
        photo_id: photo,
    };

    let first = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("first run");
    // The original is gone now, and a repeated job must not turn that into
    // an error that the queue would retry.
    let second = generate_thumbnails(&harness.ctx, &job)
        .await
        .expect("second run");

    assert!(
        matches!(first, ThumbnailOutcome::Rejected { .. }),
        "{first:?}"
    );
    assert_eq!(first, second);
    assert_eq!(
        harness.photo(tenant, photo).await.status,
        PhotoStatus::Failed
    );
    harness.finish().await;
}
