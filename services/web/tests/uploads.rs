//! Photo uploads that must be rejected before anything is stored, and
//! duplicate uploads, over HTTP against the real PostgreSQL and Redis.

mod common;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn media_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../crates/media/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn part(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/jpeg")
        .expect("mime")
}

/// Uploads `files` to a new project and returns the status, the body and the
/// number of files in the media store afterwards.
async fn upload(files: Vec<(Vec<u8>, &str)>) -> (u16, Value, usize) {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id").to_owned();
    let mut form = Form::new();
    for (bytes, name) in files {
        form = form.part("file", part(bytes, name));
    }
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON body");
    (status, body, app.media_files())
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn truncated_jpeg_rejected_at_upload() {
    let (status, body, files) = upload(vec![(
        media_fixture("pillow-truncated-progressive.jpg"),
        "cut.jpg",
    )])
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("cut.jpg"), "{body}");
    assert!(message(&body).contains("damaged or incomplete"), "{body}");
    assert_eq!(files, 0, "nothing of the rejected file is stored");
}

fn worker_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../worker/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[tokio::test]
async fn truncated_png_rejected_at_upload() {
    let (status, body, files) =
        upload(vec![(worker_fixture("truncated-idat.png"), "cut.png")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("cut.png"), "{body}");
    assert!(message(&body).contains("damaged or incomplete"), "{body}");
    assert!(message(&body).contains("IEND"), "{body}");
    assert_eq!(files, 0, "nothing of the rejected file is stored");
}

#[tokio::test]
async fn png_with_bad_crc_rejected_at_upload() {
    let mut png = media_fixture("pillow-transparent-rgba.png");
    let middle = png.len() / 2;
    png[middle] ^= 0x01;
    let (status, body, files) = upload(vec![(png, "flipped.png")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("CRC"), "{body}");
    assert_eq!(files, 0, "nothing of the rejected file is stored");
}

#[tokio::test]
async fn heic_rejected_with_advice() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heicmore bytes of a HEIC file".to_vec();
    let (status, body, files) = upload(vec![(heic, "IMG_0001.HEIC")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("HEIC images are not supported"),
        "{body}"
    );
    assert!(
        message(&body).contains("Export the photo as JPEG"),
        "{body}"
    );
    assert_eq!(files, 0);
}

#[tokio::test]
async fn huge_header_rejected_at_upload() {
    // SOI, then a baseline frame header declaring 30000 x 30000, no pixels.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
    jpeg.extend_from_slice(&30_000u16.to_be_bytes());
    jpeg.extend_from_slice(&30_000u16.to_be_bytes());
    jpeg.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    let (status, body, files) = upload(vec![(jpeg, "huge.jpg")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("30000 x 30000 pixels"), "{body}");
    assert_eq!(files, 0);
}

#[tokio::test]
async fn sixteen_bit_png_at_pixel_limit_rejected() {
    // A PNG header for 10000 x 10000 pixels of 16-bit RGBA, 800 MB decoded.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&10_000u32.to_be_bytes());
    png.extend_from_slice(&10_000u32.to_be_bytes());
    png.extend_from_slice(&[16, 6, 0, 0, 0]);
    let (status, body, files) = upload(vec![(png, "deep.png")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("deep.png"), "{body}");
    assert!(message(&body).contains("10000 x 10000 pixels"), "{body}");
    assert!(message(&body).contains("16 bits per channel"), "{body}");
    assert!(
        message(&body).contains("Export it with 8 bits per channel"),
        "{body}"
    );
    assert_eq!(files, 0);
}

#[tokio::test]
async fn webp_and_tiff_are_accepted() {
    let (status, body, files) = upload(vec![
        (media_fixture("immich-denali-canon7d.webp"), "denali.webp"),
        (media_fixture("pillow-hopper.tif"), "hopper.tif"),
    ])
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["photos"].as_array().map(Vec::len), Some(2));
    assert_eq!(files, 2);
}

#[tokio::test]
async fn duplicate_upload_is_detected() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id").to_owned();
    let photo = common::orientation_6_jpeg();
    let send = |files: Vec<(&str, Vec<u8>)>| {
        let mut form = Form::new();
        for (name, bytes) in files {
            form = form.part("file", part(bytes, name));
        }
        client()
            .post(app.url(&format!("/api/v1/projects/{id}/photos")))
            .bearer_auth(&key)
            .multipart(form)
            .send()
    };

    // The same bytes twice in one upload: one photo, listed twice.
    let first: Value = send(vec![
        ("a.jpg", photo.clone()),
        ("a-copy.jpg", photo.clone()),
    ])
    .await
    .expect("request")
    .json()
    .await
    .expect("body");
    let photos = first["photos"].as_array().expect("photos");
    assert_eq!(photos.len(), 2, "{first}");
    assert_eq!(photos[0]["duplicate"], false);
    assert_eq!(photos[1]["duplicate"], true);
    assert_eq!(photos[0]["id"], photos[1]["id"]);
    assert_eq!(app.media_files(), 1);

    // Again in a later upload, next to a new file.
    let second: Value = send(vec![
        ("again.jpg", photo),
        ("eight.jpg", common::orientation_8_jpeg()),
    ])
    .await
    .expect("request")
    .json()
    .await
    .expect("body");
    let photos = second["photos"].as_array().expect("photos");
    assert_eq!(photos[0]["duplicate"], true, "{second}");
    assert_eq!(photos[0]["id"], first["photos"][0]["id"]);
    assert_eq!(photos[1]["duplicate"], false);
    assert_eq!(app.media_files(), 2);
}

#[tokio::test]
async fn parallel_duplicate_uploads_store_one() {
    const UPLOADS: usize = 6;
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id").to_owned();
    let photo = common::orientation_6_jpeg();

    let requests = (0..UPLOADS).map(|n| {
        let form = Form::new().part("file", part(photo.clone(), &format!("copy-{n}.jpg")));
        client()
            .post(app.url(&format!("/api/v1/projects/{id}/photos")))
            .bearer_auth(&key)
            .multipart(form)
            .send()
    });
    let responses = futures::future::join_all(requests).await;

    let mut new_ids = Vec::new();
    let mut duplicate_ids = Vec::new();
    for response in responses {
        let response = response.expect("request");
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.expect("JSON body");
        let entry = &body["photos"][0];
        let photo_id = entry["id"].as_str().expect("photo id").to_owned();
        if entry["duplicate"] == true {
            duplicate_ids.push(photo_id);
        } else {
            new_ids.push(photo_id);
        }
    }
    assert_eq!(new_ids.len(), 1, "new photos: {new_ids:?}");
    assert_eq!(duplicate_ids.len(), UPLOADS - 1);
    for duplicate in &duplicate_ids {
        assert_eq!(duplicate, &new_ids[0], "a duplicate names another photo");
    }
    assert_eq!(app.media_files(), 1, "originals in the media store");

    let detail: Value = client()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body");
    assert_eq!(
        detail["photos"].as_array().map(Vec::len),
        Some(1),
        "{detail}"
    );
}
