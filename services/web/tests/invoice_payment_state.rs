//! The studio's project page and `GET /api/v1/projects/{id}` show what
//! Stripe reported on each invoice: paid through Stripe, refunded, last
//! payment failed, amount mismatch. The reports are stored with the same
//! domain functions the webhook handlers call.

mod common;

use chrono::{DateTime, Utc};
use proofsheet_domain::db::stripe::{
    self as store, PaymentOutcome, PaymentReceived, RefundReported,
};
use proofsheet_domain::{InvoiceId, TenantId};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

const EMAIL: &str = "owner@example.com";

/// A studio with one project whose deposit (€485.00) and final (€120.00)
/// invoices exist, and the API key to read it.
struct Studio {
    key: String,
    tenant: TenantId,
    project: String,
    deposit: InvoiceId,
    final_invoice: InvoiceId,
}

async fn add_invoice(app: &common::TestApp, key: &str, project: &str, kind: &str, amount: i64) {
    let response = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/projects/{project}/invoices")))
        .bearer_auth(key)
        .json(
            &json!({"kind": kind, "amount_minor": amount, "currency": "EUR",
                      "due_date": "2099-01-31"}),
        )
        .send()
        .await
        .expect("add invoice");
    assert_eq!(response.status(), 201);
}

async fn studio(app: &common::TestApp) -> Studio {
    let key = app.sign_up(EMAIL).await;
    let project = app.create_project(&key).await["id"]
        .as_str()
        .expect("project id")
        .to_owned();
    add_invoice(app, &key, &project, "deposit", 48500).await;
    add_invoice(app, &key, &project, "final", 12000).await;
    let mut admin = PgConnection::connect(&app.db.admin_url())
        .await
        .expect("admin connection");
    let tenant: TenantId = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_one(&mut admin)
        .await
        .expect("tenant id");
    let invoice = |kind: &'static str| {
        sqlx::query_scalar::<_, InvoiceId>("SELECT id FROM invoices WHERE kind = $1").bind(kind)
    };
    let deposit = invoice("deposit")
        .fetch_one(&mut admin)
        .await
        .expect("deposit");
    let final_invoice = invoice("final").fetch_one(&mut admin).await.expect("final");
    Studio {
        key,
        tenant,
        project,
        deposit,
        final_invoice,
    }
}

fn paid_at() -> DateTime<Utc> {
    "2026-11-20T13:05:00Z".parse().expect("time")
}

/// Stores a Stripe payment of the whole deposit, later refunded in part,
/// and, on the final invoice, a declined attempt followed by a payment of
/// another amount.
async fn record_stripe_reports(app: &common::TestApp, studio: &Studio) {
    let mut tx = app.state.db.tenant(studio.tenant).await.expect("tx");
    let deposit = PaymentReceived {
        invoice_id: studio.deposit,
        payment_intent_id: "pi_deposit",
        amount_minor: 48500,
        currency: "eur",
        paid_at: paid_at(),
    };
    let refund = RefundReported {
        payment: deposit.clone(),
        amount_refunded_minor: 10000,
    };
    let outcome = store::record_refund(&mut tx, &refund)
        .await
        .expect("refund");
    assert_eq!(outcome.payment, PaymentOutcome::MarkedPaid);
    assert!(outcome.refund_grew);

    let failed = store::record_payment_failure(
        &mut tx,
        studio.final_invoice,
        Some("card_declined"),
        Some("insufficient_funds"),
        1_790_000_000,
    )
    .await
    .expect("failure");
    assert!(failed);
    let short = PaymentReceived {
        invoice_id: studio.final_invoice,
        payment_intent_id: "pi_short",
        amount_minor: 4000,
        currency: "eur",
        paid_at: paid_at(),
    };
    let outcome = store::record_payment(&mut tx, &short)
        .await
        .expect("payment");
    assert_eq!(
        outcome,
        PaymentOutcome::AmountMismatch { first_report: true }
    );
    tx.commit().await.expect("commit");
}

async fn api_invoices(app: &common::TestApp, studio: &Studio) -> Vec<Value> {
    let response = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/projects/{}", studio.project)))
        .bearer_auth(&studio.key)
        .send()
        .await
        .expect("project detail");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["invoices"].as_array().cloned().expect("invoices")
}

#[tokio::test]
async fn api_shows_stripe_payment_state() {
    let app = common::spawn().await;
    let studio = studio(&app).await;

    let before = api_invoices(&app, &studio).await;
    assert_eq!(before.len(), 2);
    assert_eq!(before[0]["stripe"], Value::Null);
    assert_eq!(before[1]["stripe"], Value::Null);

    record_stripe_reports(&app, &studio).await;
    let invoices = api_invoices(&app, &studio).await;

    let deposit = &invoices[0];
    assert_eq!(deposit["kind"], "deposit");
    assert_eq!(deposit["status"], "paid");
    assert_eq!(deposit["stripe"]["paid_at"], "2026-11-20T13:05:00Z");
    assert_eq!(deposit["stripe"]["refund"]["full"], false);
    assert_eq!(deposit["stripe"]["refund"]["amount_minor"], 10000);
    assert_eq!(deposit["stripe"]["refund"]["amount_display"], "€100.00");
    assert_eq!(deposit["stripe"]["payment_failed"], Value::Null);
    assert_eq!(deposit["stripe"]["amount_mismatch"], Value::Null);

    let final_invoice = &invoices[1];
    assert_eq!(final_invoice["kind"], "final");
    assert_eq!(final_invoice["status"], "unpaid");
    let stripe = &final_invoice["stripe"];
    assert_eq!(stripe["paid_at"], Value::Null);
    assert_eq!(stripe["payment_failed"]["code"], "card_declined");
    assert_eq!(
        stripe["payment_failed"]["decline_code"],
        "insufficient_funds"
    );
    assert_eq!(
        stripe["payment_failed"]["reason"],
        "The card has insufficient funds."
    );
    assert_eq!(stripe["amount_mismatch"]["paid_minor"], 4000);
    assert_eq!(stripe["amount_mismatch"]["paid_currency"], "EUR");
    assert_eq!(stripe["amount_mismatch"]["invoice_minor"], 12000);
    assert_eq!(stripe["amount_mismatch"]["invoice_display"], "€120.00");
    assert_eq!(stripe["refund"], Value::Null);
}

#[tokio::test]
async fn full_refund_is_reported_as_full() {
    let app = common::spawn().await;
    let studio = studio(&app).await;
    let mut tx = app.state.db.tenant(studio.tenant).await.expect("tx");
    let refund = RefundReported {
        payment: PaymentReceived {
            invoice_id: studio.deposit,
            payment_intent_id: "pi_deposit",
            amount_minor: 48500,
            currency: "eur",
            paid_at: paid_at(),
        },
        amount_refunded_minor: 48500,
    };
    store::record_refund(&mut tx, &refund)
        .await
        .expect("refund");
    tx.commit().await.expect("commit");

    let invoices = api_invoices(&app, &studio).await;
    assert_eq!(invoices[0]["stripe"]["refund"]["full"], true);
    assert_eq!(invoices[0]["stripe"]["refund"]["amount_display"], "€485.00");
}

#[tokio::test]
async fn project_page_shows_stripe_payment_state() {
    let app = common::spawn().await;
    let studio = studio(&app).await;
    let client = common::browser();
    common::log_in(&app, &client, EMAIL).await;
    let url = app.url(&format!("/projects/{}", studio.project));

    let (status, before) = common::page(&client, &url).await;
    assert_eq!(status, 200);
    assert!(!before.contains("stripe-state"), "{before}");

    record_stripe_reports(&app, &studio).await;
    let (status, page) = common::page(&client, &url).await;
    assert_eq!(status, 200);
    // The studio is in Europe/Berlin, one hour ahead of UTC in November.
    assert!(
        page.contains("Paid through Stripe on 20 November 2026, 14:05."),
        "{page}"
    );
    assert!(
        page.contains("Partially refunded through Stripe: €100.00."),
        "{page}"
    );
    assert!(
        page.contains("Last payment attempt failed. The card has insufficient funds."),
        "{page}"
    );
    assert!(
        page.contains("Amount mismatch: Stripe received €40.00 but the invoice is €120.00"),
        "{page}"
    );
}
