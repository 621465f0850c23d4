//! Healing a lost payment webhook: the payment's webhook is dropped on
//! purpose, and the reconciliation job finds the paid Checkout Session on
//! the studio's connected account through a local server that serves
//! Stripe's list and expire calls.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::Harness;
use proofsheet_domain::db::stripe;
use proofsheet_domain::{InvoiceId, ProjectId, TenantId};
use proofsheet_worker::{RECONCILE_WINDOW, reconcile_stripe_payments};
use serde_json::{Value, json};

/// What the mock returns for `GET /v1/checkout/sessions`, per account.
#[derive(Clone, Default)]
struct MockStripe {
    sessions: Arc<Mutex<Vec<(String, Value)>>>,
    calls: Arc<Mutex<Vec<(String, String)>>>,
    /// `(Stripe-Account, session id)` of every expire call.
    expired: Arc<Mutex<Vec<(String, String)>>>,
}

async fn expire_session(
    State(mock): State<MockStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<Value> {
    let account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut expired) = mock.expired.lock() {
        expired.push((account, id.clone()));
    }
    Json(json!({"id": id, "object": "checkout.session", "status": "expired"}))
}

async fn list_sessions(
    State(mock): State<MockStripe>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Json<Value> {
    let account = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let created_gte = query
        .iter()
        .find(|(key, _)| key == "created[gte]")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let expand_charge = query
        .iter()
        .any(|(key, value)| key == "expand[]" && value == "data.payment_intent.latest_charge");
    if let Ok(mut calls) = mock.calls.lock() {
        calls.push((account.clone(), created_gte));
    }
    let data: Vec<Value> = mock
        .sessions
        .lock()
        .map(|sessions| {
            sessions
                .iter()
                .filter(|(on, _)| *on == account)
                .map(|(_, session)| {
                    if expand_charge {
                        expanded(session)
                    } else {
                        session.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({"object": "list", "data": data, "has_more": false}))
}

/// Seconds from a session's creation to its PaymentIntent's, and to the
/// charge's, as the mock reports them when the listing expands them.
const INTENT_AFTER_SESSION: i64 = 20;
const CHARGE_AFTER_SESSION: i64 = 45;

/// Replaces a session's PaymentIntent id with the expanded PaymentIntent and
/// its latest charge, as Stripe does for `expand[]=data.payment_intent.latest_charge`.
fn expanded(session: &Value) -> Value {
    let mut session = session.clone();
    let created = session["created"].as_i64().unwrap_or_default();
    let intent = session["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    session["payment_intent"] = json!({
        "id": intent, "object": "payment_intent", "created": created + INTENT_AFTER_SESSION,
        "latest_charge": {
            "id": format!("ch_{intent}"), "object": "charge",
            "created": created + CHARGE_AFTER_SESSION,
        },
    });
    session
}

async fn start_mock() -> (MockStripe, proofsheet_stripe::StripeClient) {
    let mock = MockStripe::default();
    let app = Router::new()
        .route("/v1/checkout/sessions", get(list_sessions))
        .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = proofsheet_stripe::StripeClient::new(
        base.parse().expect("mock URL"),
        "sk_test_local_only".to_owned(),
    )
    .expect("client");
    (mock, client)
}

fn session(id: &str, tenant: TenantId, invoice: InvoiceId, status: &str, amount: i64) -> Value {
    json!({
        "id": id, "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": status, "amount_total": amount, "currency": "eur",
        "payment_intent": format!("pi_{id}"), "created": chrono::Utc::now().timestamp() - 60,
        "metadata": {"studio_id": tenant.to_string(), "invoice_id": invoice.to_string()},
        "some_new_field": {"nested": true}
    })
}

async fn connect(harness: &Harness, tenant: TenantId, account: &str) {
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    stripe::set_connected_account(&mut tx, account)
        .await
        .expect("connect");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn lost_payment_webhook_is_healed() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;

    // The client paid, and the webhook that would have reported it was dropped.
    let amount: i64 = {
        let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
        let found = proofsheet_domain::db::invoices::get(&mut tx, invoice)
            .await
            .expect("invoice");
        found.amount.amount_minor
    };
    if let Ok(mut sessions) = mock.sessions.lock() {
        sessions.push((
            "acct_lichtblick".to_owned(),
            session("cs_paid", tenant, invoice, "paid", amount),
        ));
    }
    assert_eq!(harness.invoice_status(tenant, invoice).await, "unpaid");

    let run = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile");
    assert_eq!(run.accounts, 1);
    assert_eq!(run.healed, vec![(tenant, invoice)]);
    assert_eq!(harness.invoice_status(tenant, invoice).await, "paid");
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let receipts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notices WHERE invoice_id = $1 AND kind = 'payment_receipt'",
    )
    .bind(invoice)
    .fetch_one(tx.as_mut_connection())
    .await
    .expect("receipts");
    tx.commit().await.expect("commit");
    assert_eq!(
        receipts, 1,
        "the client gets a receipt for the healed payment"
    );

    // Nothing is left to ask about: the studio has no unpaid invoice now.
    let again = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile again");
    assert_eq!(again.accounts, 0);
    assert!(again.healed.is_empty());

    let calls = mock.calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "acct_lichtblick");
    let since: i64 = calls[0].1.parse().expect("created[gte]");
    let expected = chrono::Utc::now().timestamp() - RECONCILE_WINDOW.as_secs() as i64;
    assert!((since - expected).abs() < 60, "{since} vs {expected}");
    harness.finish().await;
}

#[tokio::test]
async fn unpaid_or_foreign_sessions_change_nothing() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let other = harness.studio("Nordlicht", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;
    if let Ok(mut sessions) = mock.sessions.lock() {
        sessions.push((
            "acct_lichtblick".to_owned(),
            session("cs_unpaid", tenant, invoice, "unpaid", 1),
        ));
        // A session on this account whose metadata names another studio.
        sessions.push((
            "acct_lichtblick".to_owned(),
            session("cs_foreign", other, invoice, "paid", 1),
        ));
    }
    let run = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile");
    assert!(run.healed.is_empty());
    assert_eq!(harness.invoice_status(tenant, invoice).await, "unpaid");
    harness.finish().await;
}

#[tokio::test]
async fn stale_session_expired_on_retry() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;

    // The studio marked the invoice paid by hand while a session was open,
    // and the web service could not reach Stripe to expire it.
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let open = stripe::CheckoutSession {
        session_id: "cs_stale".to_owned(),
        url: "https://checkout.stripe.test/c/pay/cs_stale".to_owned(),
        amount_minor: 45_000,
        currency: "EUR".to_owned(),
        expire_requested: false,
        expires_at: chrono::Utc::now() + chrono::Duration::hours(20),
    };
    stripe::insert_checkout(&mut tx, invoice, &open)
        .await
        .expect("session");
    proofsheet_domain::db::invoices::mark_paid(&mut tx, project.id, invoice)
        .await
        .expect("mark paid");
    tx.commit().await.expect("commit");

    let run = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile");
    assert_eq!(run.closed_stale, 1);
    let expired = mock.expired.lock().map(|e| e.clone()).unwrap_or_default();
    assert_eq!(
        expired,
        vec![("acct_lichtblick".to_owned(), "cs_stale".to_owned())]
    );
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let status: String =
        sqlx::query_scalar("SELECT status FROM checkout_sessions WHERE session_id = 'cs_stale'")
            .fetch_one(tx.as_mut_connection())
            .await
            .expect("session status");
    tx.commit().await.expect("commit");
    assert_eq!(status, "expired");

    let again = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile again");
    assert_eq!(again.closed_stale, 0);
    harness.finish().await;
}

/// Reads an invoice's `paid_at` and whether a mismatched payment is flagged.
async fn payment_state(
    harness: &Harness,
    tenant: TenantId,
    project: ProjectId,
    invoice: InvoiceId,
) -> (Option<chrono::DateTime<chrono::Utc>>, bool) {
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let paid_at = sqlx::query_scalar("SELECT paid_at FROM invoices WHERE id = $1")
        .bind(invoice)
        .fetch_one(tx.as_mut_connection())
        .await
        .expect("paid_at");
    let payments = stripe::invoice_payments(&mut tx, project)
        .await
        .expect("invoice payments");
    tx.commit().await.expect("commit");
    let mismatch = payments.get(&invoice).is_some_and(|p| p.amount_mismatch);
    (paid_at, mismatch)
}

#[tokio::test]
async fn healed_payment_keeps_charge_time() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;
    let amount = invoice_amount(&harness, tenant, invoice).await;
    let paid = session("cs_paid", tenant, invoice, "paid", amount);
    let session_created = paid["created"].as_i64().expect("created");
    if let Ok(mut sessions) = mock.sessions.lock() {
        sessions.push(("acct_lichtblick".to_owned(), paid));
    }

    let run = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile");
    assert_eq!(run.healed, vec![(tenant, invoice)]);
    let (paid_at, mismatch) = payment_state(&harness, tenant, project.id, invoice).await;
    let expected = chrono::DateTime::from_timestamp(session_created + CHARGE_AFTER_SESSION, 0);
    assert_eq!(paid_at, expected);
    assert!(!mismatch);
    harness.finish().await;
}

#[tokio::test]
async fn amount_mismatch_is_recorded_once() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;
    let amount = invoice_amount(&harness, tenant, invoice).await;
    if let Ok(mut sessions) = mock.sessions.lock() {
        sessions.push((
            "acct_lichtblick".to_owned(),
            session("cs_short", tenant, invoice, "paid", amount - 1),
        ));
    }

    let first = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile");
    assert!(first.healed.is_empty());
    assert_eq!(first.mismatched, vec![(tenant, invoice)]);
    assert_eq!(harness.invoice_status(tenant, invoice).await, "unpaid");
    let (paid_at, mismatch) = payment_state(&harness, tenant, project.id, invoice).await;
    assert_eq!(paid_at, None);
    assert!(mismatch);

    // The invoice is still unpaid, so the next run lists the session again.
    let second = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("reconcile again");
    assert_eq!(second.accounts, 1);
    assert!(second.mismatched.is_empty());
    assert!(payment_state(&harness, tenant, project.id, invoice).await.1);
    harness.finish().await;
}

async fn invoice_amount(harness: &Harness, tenant: TenantId, invoice: InvoiceId) -> i64 {
    let mut tx = harness.db.tenant(tenant).await.expect("tenant tx");
    let found = proofsheet_domain::db::invoices::get(&mut tx, invoice)
        .await
        .expect("invoice");
    tx.commit().await.expect("commit");
    found.amount.amount_minor
}

#[tokio::test]
async fn unusable_session_is_skipped() {
    let harness = Harness::start().await;
    let tenant = harness.studio("Lichtblick", "Europe/Berlin").await;
    let project = harness.project(tenant).await;
    let invoice = harness.invoice(tenant, project.id, "2099-01-31").await;
    connect(&harness, tenant, "acct_lichtblick").await;
    let (mock, client) = start_mock().await;
    let amount = invoice_amount(&harness, tenant, invoice).await;
    let mut no_currency = session("cs_no_currency", tenant, invoice, "paid", amount);
    no_currency["currency"] = Value::Null;
    let negative = session("cs_negative", tenant, invoice, "paid", -1);
    if let Ok(mut sessions) = mock.sessions.lock() {
        sessions.push(("acct_lichtblick".to_owned(), no_currency));
        sessions.push(("acct_lichtblick".to_owned(), negative));
        sessions.push((
            "acct_lichtblick".to_owned(),
            session("cs_good", tenant, invoice, "paid", amount),
        ));
    }

    let run = reconcile_stripe_payments(&harness.ctx, &client, RECONCILE_WINDOW)
        .await
        .expect("the run goes on past unusable sessions");
    assert_eq!(run.healed, vec![(tenant, invoice)]);
    assert!(run.mismatched.is_empty());
    assert_eq!(harness.invoice_status(tenant, invoice).await, "paid");
    harness.finish().await;
}
