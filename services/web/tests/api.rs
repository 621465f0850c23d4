//! The `/api/v1` contract and its errors, over HTTP against real PostgreSQL
//! and Redis.

mod common;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error body");
    (status, body["error"].clone())
}

#[tokio::test]
async fn signup_returns_tenant_and_key() {
    let app = common::spawn().await;
    let response = client()
        .post(app.url("/api/v1/signup"))
        .json(&json!({"studio_name": "North Light", "email": "owner@example.com", "password": "a long enough password", "time_zone": "Pacific/Auckland"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("body");
    assert!(body["tenant_id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(
        body["api_key"]
            .as_str()
            .is_some_and(|s| s.starts_with("ps_key_"))
    );
}

#[tokio::test]
async fn signup_errors_name_the_field() {
    let app = common::spawn().await;
    let cases = [
        (
            json!({"studio_name": "A", "email": "a@example.com", "password": "a long enough password"}),
            "time_zone",
        ),
        (
            json!({"studio_name": "A", "email": "a@example.com", "password": "short", "time_zone": "UTC"}),
            "password",
        ),
        (
            json!({"studio_name": "A", "email": "not-an-email", "password": "a long enough password", "time_zone": "UTC"}),
            "email",
        ),
        (
            json!({"studio_name": "A", "email": "a@example.com", "password": "a long enough password", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (
            json!({"studio_name": "  ", "email": "a@example.com", "password": "a long enough password", "time_zone": "UTC"}),
            "studio_name",
        ),
    ];
    for (body, field) in cases {
        let response = client()
            .post(app.url("/api/v1/signup"))
            .json(&body)
            .send()
            .await
            .expect("request");
        let (status, error) = error_of(response).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error["field"], field, "{body}");
    }
}

#[tokio::test]
async fn duplicate_signup_conflicts() {
    let app = common::spawn().await;
    app.sign_up("owner@example.com").await;
    let response = client()
        .post(app.url("/api/v1/signup"))
        .json(&json!({"studio_name": "B", "email": "OWNER@example.com", "password": "a long enough password", "time_zone": "UTC"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn project_detail_follows_contract() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    assert_eq!(project["stage"], "booked");
    let portal_url = project["portal_url"].as_str().expect("portal url");
    assert!(portal_url.starts_with("http://127.0.0.1:8081/p/pp_"));
    // 32 random bytes in base64: far more than 128 bits.
    assert!(portal_url.len() > "http://127.0.0.1:8081/p/pp_".len() + 40);

    let id = project["id"].as_str().expect("id");
    let detail: Value = client()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    for field in [
        "id",
        "title",
        "stage",
        "portal_url",
        "invoices",
        "photos",
        "favourites",
        "responses",
    ] {
        assert!(detail.get(field).is_some(), "missing {field} in {detail}");
    }
    assert_eq!(detail["portal_url"], project["portal_url"]);
}

#[tokio::test]
async fn missing_or_revoked_key_is_unauthorized() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;

    let response = client()
        .get(app.url("/api/v1/projects"))
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(response).await;
    assert_eq!(status, 401);
    assert_eq!(error["code"], "unauthorized");

    let created: Value = client()
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&key)
        .json(&json!({"name": "Lightroom"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    let second = created["api_key"].as_str().expect("key").to_owned();
    let id = created["id"].as_str().expect("id");
    let ok = client()
        .get(app.url("/api/v1/projects"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);

    let revoked = client()
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(revoked.status(), 204);
    let after = client()
        .get(app.url("/api/v1/projects"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("request");
    assert_eq!(after.status(), 401);
    let first_still_works = client()
        .get(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(first_still_works.status(), 200);
}

#[tokio::test]
async fn invalid_stage_changes_nothing() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let url = app.url(&format!("/api/v1/projects/{id}/stage"));

    for stage in ["shipped", "approved"] {
        let response = client()
            .put(&url)
            .bearer_auth(&key)
            .json(&json!({"stage": stage}))
            .send()
            .await
            .expect("request");
        let (status, error) = error_of(response).await;
        assert_eq!(status, 422, "{stage}");
        assert_eq!(error["field"], "stage");
    }
    let moved = client()
        .put(&url)
        .bearer_auth(&key)
        .json(&json!({"stage": "editing"}))
        .send()
        .await
        .expect("request");
    assert_eq!(moved.status(), 200);
    let detail: Value = client()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(detail["stage"], "editing");
}

#[tokio::test]
async fn invoices_are_added_edited_and_paid() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let url = app.url(&format!("/api/v1/projects/{id}/invoices"));

    let deposit: Value = client()
        .post(&url)
        .bearer_auth(&key)
        .json(&json!({"kind": "deposit", "amount_minor": 50_000, "currency": "EUR", "due_date": "2099-01-01"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(deposit["status"], "unpaid");
    assert_eq!(deposit["amount_display"], "€500.00");

    let edited: Value = client()
        .post(&url)
        .bearer_auth(&key)
        .json(&json!({"kind": "deposit", "amount_minor": 60_000, "currency": "EUR", "due_date": "2000-01-01"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(
        edited["id"], deposit["id"],
        "the deposit is edited, not duplicated"
    );
    assert_eq!(edited["status"], "overdue");

    let invoice_id = deposit["id"].as_str().expect("invoice id");
    let paid: Value = client()
        .post(app.url(&format!("/api/v1/projects/{id}/invoices/{invoice_id}/paid")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(paid["status"], "paid");
    assert!(paid["paid_at"].is_string());

    let after_paid = client()
        .post(&url)
        .bearer_auth(&key)
        .json(&json!({"kind": "deposit", "amount_minor": 1, "currency": "EUR", "due_date": "2099-01-01"}))
        .send()
        .await
        .expect("request");
    assert_eq!(after_paid.status(), 409);

    let bad = [
        (
            json!({"kind": "tip", "amount_minor": 5, "currency": "EUR", "due_date": "2099-01-01"}),
            "kind",
        ),
        (
            json!({"kind": "final", "amount_minor": 0, "currency": "EUR", "due_date": "2099-01-01"}),
            "amount_minor",
        ),
        (
            json!({"kind": "final", "amount_minor": 12.5, "currency": "EUR", "due_date": "2099-01-01"}),
            "amount_minor",
        ),
        (
            json!({"kind": "final", "amount_minor": 5, "currency": "EURO", "due_date": "2099-01-01"}),
            "currency",
        ),
        (
            json!({"kind": "final", "amount_minor": 5, "currency": "EUR", "due_date": "tomorrow"}),
            "due_date",
        ),
    ];
    for (body, field) in bad {
        let response = client()
            .post(&url)
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let (status, error) = error_of(response).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error["field"], field, "{body}");
    }
}

#[tokio::test]
async fn other_studio_cannot_reach_project() {
    let app = common::spawn().await;
    let key_a = app.sign_up("a@example.com").await;
    let key_b = app.sign_up("b@example.com").await;
    let project = app.create_project(&key_a).await;
    let id = project["id"].as_str().expect("id");

    let read = client()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key_b)
        .send()
        .await
        .expect("request");
    assert_eq!(read.status(), 404);
    let moved = client()
        .put(app.url(&format!("/api/v1/projects/{id}/stage")))
        .bearer_auth(&key_b)
        .json(&json!({"stage": "editing"}))
        .send()
        .await
        .expect("request");
    assert_eq!(moved.status(), 404);
    let malformed = client()
        .get(app.url("/api/v1/projects/not-a-uuid"))
        .bearer_auth(&key_a)
        .send()
        .await
        .expect("request");
    assert_eq!(malformed.status(), 404);
}

fn jpeg_part(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/jpeg")
        .expect("mime")
}

#[tokio::test]
async fn upload_accepts_many_real_photos() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let form = Form::new()
        .part("file", jpeg_part(common::orientation_6_jpeg(), "six.jpg"))
        .part("file", jpeg_part(common::orientation_8_jpeg(), "eight.jpg"));
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("body");
    let photos = body["photos"].as_array().expect("photos");
    assert_eq!(photos.len(), 2);
    assert!(photos.iter().all(|p| p["status"] == "processing"));
    assert_eq!(app.media_files(), 2);
}

#[tokio::test]
async fn non_image_upload_stores_nothing() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec();
    let form = Form::new()
        .part("file", jpeg_part(common::orientation_6_jpeg(), "good.jpg"))
        .part("file", jpeg_part(pdf, "contract.jpg"));
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(response).await;
    assert_eq!(status, 422);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("contract.jpg"))
    );
    assert_eq!(
        app.media_files(),
        0,
        "the good file of the failed upload is removed too"
    );

    let detail: Value = client()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(detail["photos"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn oversized_upload_is_413_with_limit() {
    let app = common::spawn_with(|config| config.max_upload_bytes = 200 * 1024).await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let form = Form::new().part("file", jpeg_part(common::orientation_6_jpeg(), "big.jpg"));
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(response).await;
    assert_eq!(status, 413);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("200 KiB") && m.contains("big.jpg")),
        "{error}"
    );
    assert_eq!(app.media_files(), 0);
}

#[tokio::test]
async fn upload_without_files_is_rejected() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let form = Form::new().text("note", "no files here");
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(response).await;
    assert_eq!(status, 422);
    assert_eq!(error["field"], "file");
}

#[tokio::test]
async fn rotated_link_replaces_old_one() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let rotated: Value = client()
        .post(app.url(&format!("/api/v1/projects/{id}/rotate-link")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_ne!(rotated["portal_url"], project["portal_url"]);

    let old_token = project["portal_url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("token");
    assert!(
        app.state
            .db
            .resolve_portal_token(old_token)
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn resend_link_is_accepted() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let response = client()
        .post(app.url(&format!("/api/v1/projects/{id}/resend-link")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let missing = client()
        .post(app.url("/api/v1/projects/00000000-0000-0000-0000-000000000000/resend-link"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn non_json_body_is_400() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let response = client()
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn every_api_error_is_json() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");

    let wrong_method = client()
        .patch(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(wrong_method).await;
    assert_eq!(status, 405);
    assert_eq!(error["code"], "method_not_allowed");

    let not_multipart = client()
        .post(app.url(&format!("/api/v1/projects/{id}/photos")))
        .bearer_auth(&key)
        .json(&json!({"file": "x"}))
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(not_multipart).await;
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("multipart/form-data"))
    );

    let repeated = client()
        .get(app.url("/api/v1/projects?stage=booked&stage=editing"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(repeated.status(), 200, "the first stage filter wins");

    let bad_filter = client()
        .get(app.url("/api/v1/projects?stage=nope"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(bad_filter).await;
    assert_eq!(status, 422);
    assert_eq!(error["field"], "stage");

    let not_json = client()
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .header("content-type", "application/jsonfoo")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), 400);

    let array = client()
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .json(&json!([1, 2]))
        .send()
        .await
        .expect("request");
    let (status, error) = error_of(array).await;
    assert_eq!(status, 422);
    assert!(
        !error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("struct"),
        "{error}"
    );
}

#[tokio::test]
async fn repeated_stage_move_succeeds() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let project = app.create_project(&key).await;
    let id = project["id"].as_str().expect("id");
    let url = app.url(&format!("/api/v1/projects/{id}/stage"));
    for _ in 0..2 {
        let response = client()
            .put(&url)
            .bearer_auth(&key)
            .json(&json!({"stage": "editing"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "a retried PUT is not an error");
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = common::spawn().await;
    let key = app.sign_up("owner@example.com").await;
    let response = client()
        .get(app.url("/api/v1/projects"))
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}
