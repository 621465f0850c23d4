//! The settings page's Stripe part: connecting the studio's own account
//! through onboarding, subscribing to the plan and managing it, against a
//! local server that serves Stripe's calls, and a studio without Stripe.

mod common;
mod stripe_support;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{as_owner, browser, csrf_of};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// Paths of the calls the mock received, and whether the account is ready.
#[derive(Clone, Default)]
struct MockStripe {
    calls: Arc<Mutex<Vec<String>>>,
    ready: Arc<Mutex<bool>>,
}

impl MockStripe {
    fn record(&self, call: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call.to_owned());
        }
    }
}

async fn start_mock() -> (MockStripe, String) {
    let mock = MockStripe::default();
    let app = Router::new()
        .route(
            "/v1/accounts",
            post(|State(mock): State<MockStripe>| async move {
                mock.record("POST /v1/accounts");
                Json(json!({"id": "acct_mock_1", "object": "account",
                            "charges_enabled": false, "details_submitted": false}))
            }),
        )
        .route(
            "/v1/accounts/{id}",
            get(
                |State(mock): State<MockStripe>, Path(id): Path<String>| async move {
                    mock.record(&format!("GET /v1/accounts/{id}"));
                    let ready = mock.ready.lock().map(|r| *r).unwrap_or(false);
                    Json(json!({"id": id, "object": "account",
                            "charges_enabled": ready, "details_submitted": ready}))
                },
            ),
        )
        .route(
            "/v1/account_links",
            post(|State(mock): State<MockStripe>| async move {
                mock.record("POST /v1/account_links");
                Json(
                    json!({"object": "account_link", "expires_at": 2_000_000_000_i64,
                            "url": "https://connect.stripe.test/setup/s/mock"}),
                )
            }),
        )
        .route(
            "/v1/customers",
            post(|State(mock): State<MockStripe>| async move {
                mock.record("POST /v1/customers");
                Json(json!({"id": "cus_mock_1", "object": "customer"}))
            }),
        )
        .route(
            "/v1/billing_portal/sessions",
            post(|State(mock): State<MockStripe>, body: String| async move {
                mock.record(&format!("POST /v1/billing_portal/sessions {body}"));
                Json(
                    json!({"id": "bps_mock_1", "object": "billing_portal.session",
                            "url": "https://billing.stripe.test/p/session/mock"}),
                )
            }),
        )
        .route(
            "/v1/checkout/sessions",
            post(|State(mock): State<MockStripe>, body: String| async move {
                mock.record(&format!("POST /v1/checkout/sessions {body}"));
                Json(json!({"id": "cs_test_plan", "object": "checkout.session",
                                "mode": "subscription",
                                "url": "https://checkout.stripe.test/c/pay/cs_test_plan"}))
            }),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (mock, base)
}

async fn text(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body")
}

async fn sign_up(app: &common::TestApp, client: &reqwest::Client) {
    let token = csrf_of(&text(client, &app.url("/signup")).await);
    let response = client
        .post(app.url("/signup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("studio_name", "North Light"),
            ("email", "owner@example.com"),
            ("password", "a long enough password"),
            ("time_zone", "Europe/Berlin"),
        ])
        .send()
        .await
        .expect("sign-up");
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn settings_without_stripe_say_so() {
    let app = common::spawn().await;
    let client = browser();
    sign_up(&app, &client).await;
    let settings = text(&client, &app.url("/settings")).await;
    assert!(
        settings.contains("Stripe is not set up on this server"),
        "{settings}"
    );
    assert!(!settings.contains("/settings/stripe/connect"), "{settings}");
}

#[tokio::test]
async fn connect_onboards_and_shows_state() {
    let (mock, base) = start_mock().await;
    let stripe = stripe_support::stripe_config(&base);
    let app = common::spawn_with(move |config| config.stripe = Some(stripe)).await;
    let client = browser();
    sign_up(&app, &client).await;

    let settings = text(&client, &app.url("/settings")).await;
    assert!(settings.contains("Connect Stripe"), "{settings}");
    let token = csrf_of(&settings);
    let response = client
        .post(app.url("/settings/stripe/connect"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("connect");
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://connect.stripe.test/setup/s/mock"
    );

    let settings = text(&client, &app.url("/settings")).await;
    assert!(settings.contains("cannot take payments yet"), "{settings}");

    // Back from onboarding, with the account now able to take payments.
    if let Ok(mut ready) = mock.ready.lock() {
        *ready = true;
    }
    let response = client
        .get(app.url("/settings/stripe/return"))
        .send()
        .await
        .expect("return");
    assert_eq!(response.status(), 303);
    let settings = text(&client, &app.url("/settings")).await;
    assert!(
        settings.contains("Your Stripe account is connected"),
        "{settings}"
    );

    let calls: Vec<String> = mock.calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(
        calls,
        vec![
            "POST /v1/accounts",
            "POST /v1/account_links",
            "GET /v1/accounts/acct_mock_1"
        ]
    );
}

#[tokio::test]
async fn subscribe_opens_plan_checkout() {
    let (mock, base) = start_mock().await;
    let stripe = stripe_support::stripe_config(&base);
    let app = common::spawn_with(move |config| config.stripe = Some(stripe)).await;
    let client = browser();
    sign_up(&app, &client).await;

    let settings = text(&client, &app.url("/settings")).await;
    assert!(
        settings.contains("Status: <strong>trialing</strong>"),
        "{settings}"
    );
    assert!(settings.contains("/settings/plan/subscribe"), "{settings}");
    let token = csrf_of(&settings);
    let response = client
        .post(app.url("/settings/plan/subscribe"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://checkout.stripe.test/c/pay/cs_test_plan"
    );

    let calls: Vec<String> = mock.calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "POST /v1/customers");
    let session = &calls[1];
    assert!(session.contains("mode=subscription"), "{session}");
    assert!(session.contains("customer=cus_mock_1"), "{session}");
    assert!(session.contains("price_test_plan"), "{session}");
    assert!(
        session.contains("subscription_data%5Bmetadata%5D%5Bstudio_id%5D="),
        "{session}"
    );
}

impl MockStripe {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Starts the web service against a fresh mock and signs a studio up.
async fn studio_with_mock() -> (MockStripe, common::TestApp, reqwest::Client) {
    let (mock, base) = start_mock().await;
    let stripe = stripe_support::stripe_config(&base);
    let app = common::spawn_with(move |config| config.stripe = Some(stripe)).await;
    let client = browser();
    sign_up(&app, &client).await;
    (mock, app, client)
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let response = client.post(url).form(form).send().await.expect("request");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, response.text().await.expect("body"))
}

#[tokio::test]
async fn refresh_page_changes_nothing() {
    let (mock, app, client) = studio_with_mock().await;

    let response = client
        .get(app.url("/settings/stripe/refresh"))
        .send()
        .await
        .expect("refresh");
    assert_eq!(response.status(), 200);
    let page = response.text().await.expect("body");
    assert!(
        page.contains("method=\"post\" action=\"/settings/stripe/connect\""),
        "{page}"
    );
    assert!(page.contains("Continue Stripe set-up"), "{page}");
    assert!(!csrf_of(&page).is_empty());

    assert_eq!(mock.calls(), Vec::<String>::new());
    let mut admin = PgConnection::connect(&app.db.admin_url())
        .await
        .expect("admin connection");
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE stripe_account_id IS NOT NULL")
            .fetch_one(&mut admin)
            .await
            .expect("count accounts");
    assert_eq!(accounts, 0);
}

#[tokio::test]
async fn connect_without_token_is_rejected() {
    let (mock, app, client) = studio_with_mock().await;

    let (status, _, _) = post_form(&client, &app.url("/settings/stripe/connect"), &[]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &client,
        &app.url("/settings/stripe/connect"),
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(mock.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn refresh_button_continues_onboarding() {
    let (mock, app, client) = studio_with_mock().await;
    let page = text(&client, &app.url("/settings/stripe/refresh")).await;
    let token = csrf_of(&page);

    let (status, location, _) = post_form(
        &client,
        &app.url("/settings/stripe/connect"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location, "https://connect.stripe.test/setup/s/mock");
    assert_eq!(
        mock.calls(),
        vec!["POST /v1/accounts", "POST /v1/account_links"]
    );
}

#[tokio::test]
async fn active_studio_cannot_subscribe_again() {
    let (mock, app, client) = studio_with_mock().await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'active', stripe_subscription_id = 'sub_live', \
         stripe_customer_id = 'cus_mock_1'",
    )
    .await;

    let settings = text(&client, &app.url("/settings")).await;
    assert!(!settings.contains("/settings/plan/subscribe"), "{settings}");
    assert!(settings.contains("Manage billing"), "{settings}");
    let token = csrf_of(&settings);
    let (status, _, body) = post_form(
        &client,
        &app.url("/settings/plan/subscribe"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("the plan is already active"), "{body}");
    assert!(body.contains("Manage billing"), "{body}");
    assert_eq!(mock.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn cancelled_studio_may_subscribe_again() {
    let (mock, app, client) = studio_with_mock().await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'cancelled', stripe_subscription_id = 'sub_old', \
         stripe_customer_id = 'cus_mock_1'",
    )
    .await;

    let settings = text(&client, &app.url("/settings")).await;
    assert!(settings.contains("/settings/plan/subscribe"), "{settings}");
    assert!(!settings.contains("Manage billing"), "{settings}");
    let token = csrf_of(&settings);
    let (status, location, _) = post_form(
        &client,
        &app.url("/settings/plan/subscribe"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location, "https://checkout.stripe.test/c/pay/cs_test_plan");
    let calls = mock.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains("customer=cus_mock_1"), "{calls:?}");
}

#[tokio::test]
async fn past_due_studio_opens_billing_portal() {
    let (mock, app, client) = studio_with_mock().await;
    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'past_due', stripe_subscription_id = 'sub_live', \
         stripe_customer_id = 'cus_mock_1'",
    )
    .await;

    let settings = text(&client, &app.url("/settings")).await;
    assert!(!settings.contains("/settings/plan/subscribe"), "{settings}");
    assert!(settings.contains("/settings/plan/manage"), "{settings}");
    let token = csrf_of(&settings);
    let (status, location, _) = post_form(
        &client,
        &app.url("/settings/plan/manage"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location, "https://billing.stripe.test/p/session/mock");
    let calls = mock.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert!(
        call.starts_with("POST /v1/billing_portal/sessions "),
        "{call}"
    );
    assert!(call.contains("customer=cus_mock_1"), "{call}");
    assert!(
        call.contains("return_url=http%3A%2F%2F127.0.0.1%3A8080%2Fsettings%23plan"),
        "{call}"
    );
}

#[tokio::test]
async fn manage_billing_needs_subscription_and_token() {
    let (mock, app, client) = studio_with_mock().await;
    let settings = text(&client, &app.url("/settings")).await;
    assert!(!settings.contains("/settings/plan/manage"), "{settings}");
    let token = csrf_of(&settings);

    let (status, _, body) = post_form(
        &client,
        &app.url("/settings/plan/manage"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("no plan subscription yet"), "{body}");

    as_owner(
        &app,
        "UPDATE tenants SET plan_status = 'active', stripe_subscription_id = 'sub_live', \
         stripe_customer_id = 'cus_mock_1'",
    )
    .await;
    let (status, _, _) = post_form(&client, &app.url("/settings/plan/manage"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(mock.calls(), Vec::<String>::new());
}
