//! Support for the Stripe tests: the recorded event fixtures, the studios
//! and invoices they refer to, signed deliveries and a snapshot of every
//! row that Stripe events change.

#![allow(dead_code)]

use proofsheet_config::{Config, Secret, StripeConfig};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::common::{self, TestApp};

/// The invented signing secret of the fixtures' `signatures.tsv`.
pub const FIXTURE_SECRET: &str = "whsec_test_invented_for_fixtures_only_1";

/// Signing secret of the Connect endpoint in tests, invented like
/// [`FIXTURE_SECRET`].
pub const CONNECT_SECRET: &str = "whsec_test_invented_connect_endpoint_2";

/// The studio paid through Checkout in the fixtures.
pub const STUDIO_A: &str = "7c1e5f0a-3b7d-4e29-9a61-0d2f4b8c9e13";
/// The studio whose plan subscription the fixtures follow.
pub const STUDIO_B: &str = "2d9b7e43-c0f1-4a85-b6d2-8e5f13a7c906";
/// Studio A's €485.00 invoice, paid and then partly refunded.
pub const INVOICE_PAID: &str = "b3f09a6e-51c2-4d7e-8f14-6a2e9c0d7b55";
/// Studio A's €120.00 invoice, whose payment fails.
pub const INVOICE_FAILED: &str = "e8a4c2d1-9f37-4b60-a5e2-3c7d1f0b9a44";
/// Studio A's project holding both invoices.
pub const PROJECT_A: &str = "0b0e6f65-7d7c-4c1d-9a55-6f3a5b1c2d3e";

/// Names of the event fixtures, in the order Stripe created them.
pub const FIXTURES: [&str; 9] = [
    "01_checkout.session.completed.json",
    "02_payment_intent.succeeded.json",
    "03_payment_intent.payment_failed.json",
    "04_charge.refunded.json",
    "05_customer.subscription.created.trialing.json",
    "06_customer.subscription.updated.trialing_to_active.json",
    "07_invoice.payment_failed.json",
    "08_customer.subscription.updated.active_to_past_due.json",
    "09_customer.subscription.deleted.canceled.json",
];

/// Reads a fixture's exact bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Stripe settings for tests; `api_base` is a local mock or an unused port.
pub fn stripe_config(api_base: &str) -> StripeConfig {
    StripeConfig {
        secret_key: Secret::new("sk_test_local_only"),
        webhook_secret: Some(Secret::new(FIXTURE_SECRET)),
        connect_webhook_secret: Some(Secret::new(CONNECT_SECRET)),
        api_base: api_base.parse().expect("valid API base"),
        plan_price: Some("price_test_plan".to_owned()),
        reconcile_schedule: "0 */10 * * * *".to_owned(),
    }
}

/// Starts the web service with Stripe on, and the fixtures' studios and
/// invoices in its database.
pub async fn spawn_with_fixtures() -> TestApp {
    spawn_with_fixtures_and_api("http://127.0.0.1:9").await
}

/// As [`spawn_with_fixtures`], with the Stripe API at `api_base`.
pub async fn spawn_with_fixtures_and_api(api_base: &str) -> TestApp {
    let stripe = stripe_config(api_base);
    let app = common::spawn_with(move |config: &mut Config| config.stripe = Some(stripe)).await;
    seed_fixture_studios(&app).await;
    app
}

/// Inserts the studios, project and invoices the fixtures refer to, with
/// their fixed ids, as the database owner.
pub async fn seed_fixture_studios(app: &TestApp) {
    let mut admin = admin(app).await;
    let statements = [
        format!(
            "INSERT INTO tenants (id, name, time_zone, trial_ends_at) VALUES \
             ('{STUDIO_A}', 'Lumen Foto', 'Europe/Amsterdam', '2026-12-01T00:00:00Z'), \
             ('{STUDIO_B}', 'Nordlicht Portraits', 'Europe/Berlin', '2026-09-01T00:00:00Z')"
        ),
        format!(
            "INSERT INTO projects (id, tenant_id, title, client_name, client_email, shoot_date, portal_token) \
             VALUES ('{PROJECT_A}', '{STUDIO_A}', 'Wedding', 'Ilse', 'ilse@example.net', '2026-06-01', \
             'pp_fixture_portal_token_for_tests_only')"
        ),
        format!(
            "INSERT INTO invoices (id, tenant_id, project_id, kind, amount_minor, currency, due_date) VALUES \
             ('{INVOICE_PAID}', '{STUDIO_A}', '{PROJECT_A}', 'deposit', 48500, 'EUR', '2099-01-31'), \
             ('{INVOICE_FAILED}', '{STUDIO_A}', '{PROJECT_A}', 'final', 12000, 'EUR', '2099-02-28')"
        ),
    ];
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .expect("seed fixture rows");
    }
}

/// Opens a connection as the database owner, which RLS does not filter.
pub async fn admin(app: &TestApp) -> PgConnection {
    PgConnection::connect(&app.db.admin_url())
        .await
        .expect("admin connection")
}

/// Posts a webhook body with the given `Stripe-Signature` header, or none.
pub async fn deliver(
    client: &reqwest::Client,
    app: &TestApp,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, Value) {
    let mut request = client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.expect("webhook request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Posts a body signed now with the fixtures' secret.
pub async fn deliver_signed(client: &reqwest::Client, app: &TestApp, body: &[u8]) -> (u16, Value) {
    let now = chrono::Utc::now().timestamp();
    let header = proofsheet_stripe::sign(body, FIXTURE_SECRET, now);
    deliver(client, app, body, Some(&header)).await
}

/// Every row that Stripe events change, as JSON, in a fixed order. Event
/// outcomes are left out: which of two reports of one payment marks the
/// invoice paid depends on arrival order, the result does not.
pub async fn snapshot(app: &TestApp) -> Value {
    let mut admin = admin(app).await;
    let query = "SELECT jsonb_build_object( \
        'tenants', (SELECT jsonb_agg(to_jsonb(t) - 'created_at' ORDER BY t.id) FROM ( \
            SELECT id, plan_status, trial_ends_at, plan_period_end, stripe_subscription_id, \
                   stripe_customer_id, plan_event_created FROM tenants) t), \
        'invoices', (SELECT jsonb_agg(to_jsonb(i) ORDER BY i.id) FROM ( \
            SELECT id, status, paid_at, amount_refunded_minor, payment_error_code, \
                   payment_error_decline_code FROM invoices) i), \
        'payments', (SELECT jsonb_agg(to_jsonb(p) ORDER BY p.payment_intent_id) FROM ( \
            SELECT invoice_id, payment_intent_id, amount_minor, currency, amount_refunded_minor, paid_at \
            FROM payments) p), \
        'events', (SELECT jsonb_agg(e.id ORDER BY e.id) FROM stripe_events e))";
    sqlx::query_scalar(query)
        .fetch_one(&mut admin)
        .await
        .expect("snapshot")
}

/// Counts the rows of a table, as the owner.
pub async fn count(app: &TestApp, table: &str) -> i64 {
    let mut admin = admin(app).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut admin)
        .await
        .expect("count rows")
}

/// A small deterministic shuffle (xorshift64), so a failing order can be
/// replayed from the printed seed without a random-number crate.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
