//! Photo renditions, served only through their own project's link.

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use proofsheet_domain::db::photos;
use proofsheet_domain::{PhotoId, Stage};
use proofsheet_media::{MediaStore, PhotoObject};

use crate::support::{PhotoState, Portal, READY_SIZES, add_photo, create_project, rendition_bytes};

#[tokio::test]
async fn photo_served_through_own_token() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;

    let sizes = [
        ("grid", "grid.jpg"),
        ("grid-2x", "grid-2x.jpg"),
        ("lightbox", "lightbox.jpg"),
        ("lightbox-2x", "lightbox-2x.jpg"),
    ];
    for (size, name) in sizes {
        let response = portal.get(&linked_url(&portal, photo, size).await).await;
        assert_eq!(response.status, StatusCode::OK, "{size}");
        assert_eq!(response.header(header::CONTENT_TYPE), "image/jpeg");
        let cache = response.header(header::CACHE_CONTROL);
        assert!(cache.contains("private"), "{cache}");
        assert!(cache.contains("immutable"), "{cache}");
        assert_eq!(
            response.body.as_ref(),
            rendition_bytes(photo, name).as_slice()
        );
    }
}

#[tokio::test]
async fn photo_revalidates_with_etag() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let url = format!("{}/photos/{photo}/grid", portal.page());

    let first = portal.get(&url).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header(header::ETAG);
    assert!(etag.starts_with('"'), "{etag}");
    assert!(etag.ends_with('"'), "{etag}");
    assert_eq!(
        etag,
        proofsheet_media::content_etag(&rendition_bytes(photo, "grid.jpg"))
    );

    let revalidated = portal
        .get_with_header(&url, header::IF_NONE_MATCH, etag)
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header(header::ETAG), etag);

    let changed = portal
        .get_with_header(&url, header::IF_NONE_MATCH, "\"something-else\"")
        .await;
    assert_eq!(changed.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_rendition_is_not_found() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    for size in ["original", "grid.jpg", "huge"] {
        let response = portal
            .get(&format!("{}/photos/{photo}/{size}", portal.page()))
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{size}");
    }
}

#[tokio::test]
async fn photo_not_served_through_other_token() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;

    // A second project of the same studio, with its own link and photo.
    let (other, other_token) = create_project(&portal.db, portal.tenant, "Other", "Carla").await;
    let photo = add_photo(
        &portal.db,
        portal.tenant,
        other,
        &*portal.media,
        PhotoState::Ready,
    )
    .await;
    let mut tx = portal.tx().await;
    proofsheet_domain::db::projects::move_stage(&mut tx, other, Stage::PhotosReady)
        .await
        .expect("move stage");
    tx.commit().await.expect("commit");

    let own = portal
        .get(&format!("/p/{other_token}/photos/{photo}/grid"))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let borrowed = portal
        .get(&format!("{}/photos/{photo}/grid", portal.page()))
        .await;
    assert_eq!(borrowed.status, StatusCode::NOT_FOUND);
    assert_ne!(borrowed.header(header::CONTENT_TYPE), "image/jpeg");
    let unknown = portal
        .get(&format!("/p/pp_wrong/photos/{photo}/grid"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn photo_requests_that_are_404() {
    let portal = Portal::new().await;
    let ready = portal.add_ready_photo().await;
    let processing = portal.add_processing_photo().await;
    let failed = portal.add_failed_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let page = portal.page();

    let cases = [
        format!("{page}/photos/{ready}/original"),
        format!("{page}/photos/{ready}/full"),
        format!("{page}/photos/not-a-uuid/grid"),
        format!("{page}/photos/{processing}/grid"),
        format!("{page}/photos/{failed}/grid"),
        format!("{page}/photos/0190a6c2-7d1e-7c3a-9f00-0123456789ab/grid"),
    ];
    for path in &cases {
        let response = portal.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn photo_hidden_before_photos_ready() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::Editing).await;
    let response = portal
        .get(&format!("{}/photos/{photo}/grid", portal.page()))
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

/// Returns the URL of `size` of `photo` that the portal page links to.
async fn linked_url(portal: &Portal, photo: PhotoId, size: &str) -> String {
    let page = portal.get(&portal.page()).await.text();
    let start = format!("/photos/{photo}/{size}?v=");
    let Some(position) = page.find(&start) else {
        panic!("the page has no versioned {size} URL of {photo}: {page}");
    };
    let rest = &page[position..];
    let end = rest.find(['"', ' ']).unwrap_or(rest.len());
    format!("{}{}", portal.page(), &rest[..end])
}

/// Writes new renditions of a ready photo and marks it ready again, as a
/// second run of the thumbnail job does.
async fn regenerate(portal: &Portal, photo: PhotoId) {
    let key = proofsheet_media::photo_key(portal.tenant, portal.project, photo, PhotoObject::Grid);
    portal
        .media
        .put(&key, Bytes::from_static(b"\xffjpeg regenerated grid"))
        .await
        .expect("store rendition");
    let mut tx = portal.tx().await;
    photos::mark_ready(&mut tx, photo, READY_SIZES)
        .await
        .expect("mark ready");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn rendition_url_changes_when_regenerated() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;

    let sizes = ["grid", "grid-2x", "lightbox", "lightbox-2x"];
    let mut before = Vec::new();
    for size in sizes {
        before.push(linked_url(&portal, photo, size).await);
    }
    regenerate(&portal, photo).await;

    for (size, old_url) in sizes.into_iter().zip(before) {
        let new_url = linked_url(&portal, photo, size).await;
        assert_ne!(new_url, old_url, "{size} URL kept its version");
    }
    let grid = portal.get(&linked_url(&portal, photo, "grid").await).await;
    assert_eq!(grid.status, StatusCode::OK);
    assert_eq!(grid.body.as_ref(), b"\xffjpeg regenerated grid");
}

#[tokio::test]
async fn unversioned_rendition_url_still_served() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let old_form = format!("{}/photos/{photo}/grid", portal.page());

    let response = portal.get(&old_form).await;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body.as_ref(),
        rendition_bytes(photo, "grid.jpg").as_slice()
    );
    // Without its version the URL may return other bytes later, so the
    // browser must revalidate it.
    assert_eq!(response.header(header::CACHE_CONTROL), "private, no-cache");
}

#[tokio::test]
async fn old_version_url_is_not_immutable() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let old_url = linked_url(&portal, photo, "grid").await;
    regenerate(&portal, photo).await;

    let response = portal.get(&old_url).await;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body.as_ref(), b"\xffjpeg regenerated grid");
    assert_eq!(response.header(header::CACHE_CONTROL), "private, no-cache");
}

#[tokio::test]
async fn versioned_url_revalidates_with_etag() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let url = linked_url(&portal, photo, "grid").await;

    let first = portal.get(&url).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header(header::ETAG).to_owned();
    let cache = first.header(header::CACHE_CONTROL);
    assert!(cache.contains("immutable"), "{cache}");

    let revalidated = portal
        .get_with_header(&url, header::IF_NONE_MATCH, &etag)
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());

    // After a regeneration the old ETag no longer matches the new content.
    regenerate(&portal, photo).await;
    let new_url = linked_url(&portal, photo, "grid").await;
    let changed = portal
        .get_with_header(&new_url, header::IF_NONE_MATCH, &etag)
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header(header::ETAG), etag);
}
