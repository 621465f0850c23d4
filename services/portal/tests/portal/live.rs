//! Live updates: events on the project's Redis channel reach `/events`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use proofsheet_domain::Stage;
use proofsheet_jobs::live::{self, ProjectEvent};
use tower::ServiceExt;

use crate::support::Portal;

/// Maximum wait for one SSE frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `/events` and returns its body as a stream of text chunks.
async fn open_events(portal: &Portal) -> axum::body::BodyDataStream {
    let request = Request::builder()
        .uri(format!("{}/events", portal.page()))
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty())
        .expect("valid request");
    let response = portal
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("the router never fails");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    assert_eq!(content_type, "text/event-stream");
    response.into_body().into_data_stream()
}

/// Reads frames until one carries data, and returns its data lines.
async fn next_data(stream: &mut axum::body::BodyDataStream) -> String {
    loop {
        let chunk = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
            .await
            .expect("a frame within the timeout")
            .expect("the stream stays open")
            .expect("a readable frame");
        let text = String::from_utf8_lossy(&chunk).into_owned();
        let data: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .collect();
        if !data.is_empty() {
            return data.join("\n");
        }
    }
}

#[tokio::test]
async fn published_event_reaches_events_stream() {
    let portal = Portal::new().await;
    let mut stream = open_events(&portal).await;

    live::publish(
        &portal.queues.connection(),
        portal.queues.namespace(),
        portal.project,
        ProjectEvent::Stage,
    )
    .await;
    assert_eq!(next_data(&mut stream).await, r#""stage""#);
}

#[tokio::test]
async fn events_of_other_projects_stay_out() {
    let portal = Portal::new().await;
    let mut stream = open_events(&portal).await;

    let other = proofsheet_domain::ProjectId::new();
    let connection = portal.queues.connection();
    let namespace = portal.queues.namespace();
    live::publish(&connection, namespace, other, ProjectEvent::Stage).await;
    live::publish(
        &connection,
        namespace,
        portal.project,
        ProjectEvent::Invoices,
    )
    .await;
    assert_eq!(next_data(&mut stream).await, r#""invoices""#);
}

#[tokio::test]
async fn approval_publishes_responses_and_stage() {
    let portal = Portal::new().await;
    portal.move_to(Stage::PhotosReady).await;
    let mut stream = open_events(&portal).await;

    let path = format!("{}/responses", portal.page());
    let approved = portal.post_form(&path, "kind=approve", true).await;
    assert_eq!(approved.status, StatusCode::OK);
    assert_eq!(next_data(&mut stream).await, r#""responses""#);
    assert_eq!(next_data(&mut stream).await, r#""stage""#);
}

#[tokio::test]
async fn events_with_bad_token_is_404() {
    let portal = Portal::new().await;
    let response = portal.get("/p/pp_wrong/events").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn closing_ends_open_streams() {
    let portal = Portal::new().await;
    let mut stream = open_events(&portal).await;
    portal.state.close_live_streams();
    let end = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
        .await
        .expect("the stream ends within the timeout");
    assert!(end.is_none(), "no more frames after closing");
}
