//! Open Checkout Sessions of an invoice the studio marks paid by hand are
//! expired at Stripe, against a local server that serves Stripe's expire
//! call.

mod common;
mod stripe_support;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use proofsheet_domain::{InvoiceId, ProjectId, TenantId};
use serde_json::{Value, json};
use stripe_support::{INVOICE_PAID, PROJECT_A, STUDIO_A};

/// `(Stripe-Account, session id)` of every expire call, and whether the
/// mock answers them with 500.
#[derive(Clone, Default)]
struct MockStripe {
    expired: Arc<Mutex<Vec<(String, String)>>>,
    failing: Arc<Mutex<bool>>,
}

impl MockStripe {
    fn expired(&self) -> Vec<(String, String)> {
        self.expired.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

async fn expire_session(
    State(mock): State<MockStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if mock.failing.lock().map(|f| *f).unwrap_or(false) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"type": "api_error", "message": "try again"}})),
        );
    }
    let account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut expired) = mock.expired.lock() {
        expired.push((account, id.clone()));
    }
    (
        StatusCode::OK,
        Json(json!({"id": id, "object": "checkout.session", "status": "expired"})),
    )
}

async fn start_mock() -> (MockStripe, String) {
    let mock = MockStripe::default();
    let app = Router::new()
        .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
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

/// Connects studio A and gives its deposit invoice an open session for
/// its current amount.
async fn open_session(app: &common::TestApp) {
    let mut admin = stripe_support::admin(app).await;
    let statements = [
        format!(
            "UPDATE tenants SET stripe_account_id = 'acct_lumen', stripe_charges_enabled = true \
             WHERE id = '{STUDIO_A}'"
        ),
        format!(
            "INSERT INTO checkout_sessions \
               (id, tenant_id, invoice_id, session_id, url, amount_minor, currency, expires_at) \
             VALUES (gen_random_uuid(), '{STUDIO_A}', '{INVOICE_PAID}', 'cs_test_open', \
                     'https://checkout.stripe.test/c/pay/cs_test_open', 48500, 'EUR', \
                     now() + interval '23 hours')"
        ),
    ];
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .expect("seed session");
    }
}

/// Returns `(status, expire_requested)` of the seeded session.
async fn session_state(app: &common::TestApp) -> (String, bool) {
    let mut admin = stripe_support::admin(app).await;
    sqlx::query_as(
        "SELECT status, expire_requested FROM checkout_sessions WHERE session_id = 'cs_test_open'",
    )
    .fetch_one(&mut admin)
    .await
    .expect("session row")
}

fn ids() -> (TenantId, ProjectId, InvoiceId) {
    (
        STUDIO_A.parse().expect("studio id"),
        PROJECT_A.parse().expect("project id"),
        INVOICE_PAID.parse().expect("invoice id"),
    )
}

#[tokio::test]
async fn mark_paid_expires_open_session() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("mark paid");

    assert_eq!(
        mock.expired(),
        vec![("acct_lumen".to_owned(), "cs_test_open".to_owned())]
    );
    assert_eq!(session_state(&app).await, ("expired".to_owned(), true));
}

#[tokio::test]
async fn failed_expiry_keeps_mark_for_retry() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    if let Ok(mut failing) = mock.failing.lock() {
        *failing = true;
    }
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("marking paid succeeds while Stripe fails");

    assert!(mock.expired().is_empty());
    assert_eq!(session_state(&app).await, ("open".to_owned(), true));
}
