//! Hearts and responses, as plain forms and as JSON.

use axum::http::{StatusCode, header};
use proofsheet_domain::db::projects::Response;
use proofsheet_domain::{ResponseKind, Stage};

use crate::support::{PhotoState, Portal, add_photo, create_project, sign_up};

fn kinds(responses: &[Response]) -> Vec<ResponseKind> {
    responses.iter().map(|response| response.kind.0).collect()
}

#[tokio::test]
async fn heart_toggles_on_and_off() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/favourites/{photo}", portal.page());

    let on = portal.post_form(&path, "", false).await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    assert_eq!(
        on.header(header::LOCATION),
        format!("/p/{}#photo-{photo}", portal.token)
    );
    assert_eq!(portal.favourites().await, vec![photo]);
    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains(r#"aria-pressed="true""#), "{page}");
    assert!(page.contains("1 favourite<"), "{page}");

    let off = portal.post_form(&path, "", true).await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(off.json(), serde_json::json!({ "favourite": false }));
    assert!(portal.favourites().await.is_empty());

    let again = portal.post_form(&path, "", true).await;
    assert_eq!(again.json(), serde_json::json!({ "favourite": true }));
    assert_eq!(portal.favourites().await, vec![photo]);
}

#[tokio::test]
async fn heart_on_other_project_photo_is_404() {
    let portal = Portal::new().await;
    let own = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;

    let (other_project, _) =
        create_project(&portal.db, portal.tenant, "Other shoot", "Carla").await;
    let same_studio = add_photo(
        &portal.db,
        portal.tenant,
        other_project,
        &*portal.media,
        PhotoState::Ready,
    )
    .await;
    let other_tenant = sign_up(&portal.db, "Other Studio").await;
    let (foreign_project, _) =
        create_project(&portal.db, other_tenant, "Foreign shoot", "Dana").await;
    let other_studio = add_photo(
        &portal.db,
        other_tenant,
        foreign_project,
        &*portal.media,
        PhotoState::Ready,
    )
    .await;

    for photo in [same_studio.to_string(), other_studio.to_string()] {
        let path = format!("{}/favourites/{photo}", portal.page());
        let html = portal.post_form(&path, "", false).await;
        assert_eq!(html.status, StatusCode::NOT_FOUND, "{photo}");
        assert!(
            html.text()
                .contains("This photo is not part of your project.")
        );
        assert!(
            html.text()
                .contains(&format!(r#"href="&#x2F;p&#x2F;{}""#, portal.token))
        );
        let json = portal.post_form(&path, "", true).await;
        assert_eq!(json.status, StatusCode::NOT_FOUND);
        assert_eq!(
            json.json()["error"]["message"],
            "This photo is not part of your project."
        );
    }
    assert!(portal.favourites().await.is_empty());
    let mut tx = portal
        .db
        .tenant(portal.tenant)
        .await
        .expect("tenant transaction");
    let other = proofsheet_domain::db::projects::favourites(&mut tx, other_project)
        .await
        .expect("favourites");
    assert!(other.is_empty(), "the other project is unchanged");
    drop(tx);

    // The own photo still works, so the 404s above were about the photo.
    let path = format!("{}/favourites/{own}", portal.page());
    assert_eq!(
        portal.post_form(&path, "", true).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn heart_with_malformed_id_is_404() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/favourites/not-a-uuid", portal.page());
    let response = portal.post_form(&path, "", false).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .contains("This photo is not part of your project.")
    );
}

#[tokio::test]
async fn heart_with_bad_token_is_link_not_found() {
    let portal = Portal::new().await;
    let photo = portal.add_ready_photo().await;
    portal.move_to(Stage::PhotosReady).await;
    let response = portal
        .post_form(&format!("/p/pp_wrong/favourites/{photo}"), "", false)
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.text().contains("Link not found"));
    assert!(portal.favourites().await.is_empty());
}

#[tokio::test]
async fn empty_changes_text_is_422() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/responses", portal.page());

    let html = portal
        .post_form(&path, "kind=changes&text=+++", false)
        .await;
    assert_eq!(html.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = html.text();
    assert!(
        page.contains("Describe the changes you would like before sending."),
        "{page}"
    );
    assert!(page.contains("Back to your project"), "{page}");

    let json = portal.post_form(&path, "kind=changes", true).await;
    assert_eq!(json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json.json()["error"]["field"], "text");

    assert!(portal.responses().await.is_empty());
    assert_eq!(portal.stage().await, Stage::PhotosReady);
}

#[tokio::test]
async fn unknown_response_kind_is_422() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/responses", portal.page());

    for body in ["kind=maybe&text=hm", "text=no+kind", ""] {
        let response = portal.post_form(&path, body, true).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(response.json()["error"]["field"], "kind", "{body}");
    }
    assert!(portal.responses().await.is_empty());
}

#[tokio::test]
async fn changes_then_approve_reaches_approved() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/responses", portal.page());

    let changes = portal
        .post_form(&path, "kind=changes&text=Warmer+tones%2C+please", false)
        .await;
    assert_eq!(changes.status, StatusCode::SEE_OTHER);
    assert_eq!(
        changes.header(header::LOCATION),
        format!("/p/{}#responses", portal.token)
    );
    assert_eq!(portal.stage().await, Stage::PhotosReady);

    let approve = portal.post_form(&path, "kind=approve", false).await;
    assert_eq!(approve.status, StatusCode::SEE_OTHER);
    assert_eq!(portal.stage().await, Stage::Approved);

    let responses = portal.responses().await;
    assert_eq!(
        kinds(&responses),
        [ResponseKind::Changes, ResponseKind::Approve]
    );
    assert_eq!(responses[0].text, "Warmer tones, please");

    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains("Warmer tones, please"), "{page}");
    assert!(page.contains("You approved the photos on"), "{page}");
    assert!(
        page.contains("Current stage: <strong>Approved</strong>"),
        "{page}"
    );
}

#[tokio::test]
async fn changes_after_approval_reopen() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let path = format!("{}/responses", portal.page());

    let approve = portal.post_form(&path, "kind=approve", true).await;
    assert_eq!(approve.status, StatusCode::OK);
    assert_eq!(approve.json()["stage"], "approved");

    let changes = portal
        .post_form(&path, "kind=changes&text=One+more+crop", true)
        .await;
    assert_eq!(changes.json()["stage"], "photos_ready");
    assert_eq!(changes.json()["stage_label"], "Photos ready");
    assert_eq!(portal.stage().await, Stage::PhotosReady);
    assert_eq!(
        kinds(&portal.responses().await),
        [ResponseKind::Approve, ResponseKind::Changes]
    );
}

#[tokio::test]
async fn response_before_photos_ready_is_409() {
    let portal = Portal::new().await;
    portal.move_to(Stage::Editing).await;
    let path = format!("{}/responses", portal.page());

    let html = portal.post_form(&path, "kind=approve", false).await;
    assert_eq!(html.status, StatusCode::CONFLICT);
    let page = html.text();
    assert!(page.contains("The photos are not ready yet"), "{page}");
    assert!(page.contains("Back to your project"), "{page}");

    let json = portal.post_form(&path, "kind=changes&text=x", true).await;
    assert_eq!(json.status, StatusCode::CONFLICT);
    assert!(json.json()["error"]["field"].is_null());

    assert!(portal.responses().await.is_empty());
    assert_eq!(portal.stage().await, Stage::Editing);
}

#[tokio::test]
async fn response_with_wrong_content_type_is_422() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{}/responses", portal.page()))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(axum::body::Body::from("kind=approve"))
        .expect("valid request");
    let response = tower::ServiceExt::oneshot(portal.router.clone(), request)
        .await
        .expect("the router never fails");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(portal.responses().await.is_empty());
}
