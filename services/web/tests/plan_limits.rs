//! What a studio's plan allows: the free trial ends by the clock, and a
//! studio whose trial ended or whose plan is past due cannot create
//! projects, on the pages or through the API, and gets a message with the
//! reason and the next step.

mod common;

use common::{as_owner, browser, csrf_of, page};
use serde_json::{Value, json};

const EMAIL: &str = "owner@example.com";

async fn create_by_api(app: &common::TestApp, key: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/projects"))
        .bearer_auth(key)
        .json(&json!({
            "title": "Regatta", "client_name": "Kim",
            "client_email": "kim@example.net", "shoot_date": "2026-07-01",
        }))
        .send()
        .await
        .expect("create project");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message_of(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn api_create_refused_after_trial_end() {
    let app = common::spawn().await;
    let key = app.sign_up(EMAIL).await;
    let existing = app.create_project(&key).await;

    // One minute before the end the trial still allows new projects.
    as_owner(
        &app,
        "UPDATE tenants SET trial_ends_at = now() + interval '1 minute'",
    )
    .await;
    let (status, _) = create_by_api(&app, &key).await;
    assert_eq!(status, 201);

    as_owner(
        &app,
        "UPDATE tenants SET trial_ends_at = now() - interval '1 second'",
    )
    .await;
    let (status, body) = create_by_api(&app, &key).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let message = message_of(&body);
    assert!(message.contains("free trial ended on"), "{message}");
    assert!(message.contains("Subscribe"), "{message}");
    assert!(message.contains("/settings#plan"), "{message}");
    assert!(message.contains("portals keep working"), "{message}");

    // Existing projects stay readable.
    let id = existing["id"].as_str().expect("project id");
    let detail = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/projects/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("project detail");
    assert_eq!(detail.status(), 200);
}

#[tokio::test]
async fn api_create_refused_when_past_due() {
    let app = common::spawn().await;
    let key = app.sign_up(EMAIL).await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'past_due', stripe_subscription_id = 'sub_1'",
    )
    .await;

    let (status, body) = create_by_api(&app, &key).await;
    assert_eq!(status, 403, "{body}");
    let message = message_of(&body);
    assert!(message.contains("past due"), "{message}");
    assert!(message.contains("Manage billing"), "{message}");
}

#[tokio::test]
async fn active_plan_outlives_trial_end() {
    let app = common::spawn().await;
    let key = app.sign_up(EMAIL).await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'active', stripe_subscription_id = 'sub_1', \
         trial_ends_at = now() - interval '30 days'",
    )
    .await;
    let (status, body) = create_by_api(&app, &key).await;
    assert_eq!(status, 201, "{body}");
}

async fn create_in_browser(
    app: &common::TestApp,
    client: &reqwest::Client,
    token: &str,
) -> (u16, String) {
    let response = client
        .post(app.url("/projects"))
        .form(&[
            ("csrf_token", token),
            ("title", "Regatta"),
            ("client_name", "Kim"),
            ("client_email", "kim@example.net"),
            ("shoot_date", "2026-07-01"),
        ])
        .send()
        .await
        .expect("create");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn pages_refuse_projects_after_trial_end() {
    let app = common::spawn().await;
    let client = browser();
    app.sign_up(EMAIL).await;
    common::log_in(&app, &client, EMAIL).await;
    as_owner(
        &app,
        "UPDATE tenants SET trial_ends_at = '2026-12-03T12:00:00Z'",
    )
    .await;

    let (status, list) = page(&client, &app.url("/projects")).await;
    assert_eq!(status, 200);
    assert!(
        list.contains("the free trial ended on 3 December 2026"),
        "{list}"
    );
    assert!(list.contains("href=\"/settings#plan\""), "{list}");
    assert!(!list.contains("Free trial until"), "{list}");

    let (status, form) = page(&client, &app.url("/projects/new")).await;
    assert_eq!(status, 200);
    assert!(form.contains("free trial ended"), "{form}");
    assert!(!form.contains("action=\"/projects\""), "{form}");

    let token = csrf_of(&list);
    let (status, refused) = create_in_browser(&app, &client, &token).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("free trial ended"), "{refused}");

    let settings = page(&client, &app.url("/settings")).await.1;
    assert!(
        settings.contains("Status: <strong>trial ended</strong>"),
        "{settings}"
    );
}

#[tokio::test]
async fn pages_allow_projects_before_trial_end() {
    let app = common::spawn().await;
    let client = browser();
    app.sign_up(EMAIL).await;
    common::log_in(&app, &client, EMAIL).await;
    as_owner(
        &app,
        "UPDATE tenants SET trial_ends_at = now() + interval '1 minute'",
    )
    .await;

    let (_, list) = page(&client, &app.url("/projects")).await;
    assert!(list.contains("Free trial until"), "{list}");
    assert!(!list.contains("cannot be created"), "{list}");
    let token = csrf_of(&list);
    let (status, body) = create_in_browser(&app, &client, &token).await;
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn past_due_banner_says_what_to_do() {
    let app = common::spawn().await;
    let client = browser();
    app.sign_up(EMAIL).await;
    common::log_in(&app, &client, EMAIL).await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'past_due', stripe_subscription_id = 'sub_1'",
    )
    .await;

    let (_, list) = page(&client, &app.url("/projects")).await;
    assert!(list.contains("the plan is past due"), "{list}");
    assert!(list.contains("Manage billing"), "{list}");
    assert!(list.contains("portals keep working"), "{list}");
}
