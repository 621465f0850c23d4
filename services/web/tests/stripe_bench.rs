//! Webhook throughput, printed as figures: `make bench-webhooks`.
//!
//! Delivers signed `payment_intent.succeeded` events over HTTP, each for
//! its own invoice, so every event is verified, recorded in `stripe_events`
//! and marks one invoice paid with one payment row. In the same run it
//! measures plain single-row inserts into `stripe_events` through the same
//! pool size and concurrency, and prints the ratio of the two rates.

mod common;
mod stripe_support;

use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use stripe_support::*;

/// Events delivered, one invoice each.
const EVENTS: usize = 4000;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run with `make bench-webhooks`"]
async fn bench_webhook_throughput() {
    let app = spawn_with_fixtures().await;
    let mut admin = admin(&app).await;
    let seed = format!(
        "WITH p AS ( \
           INSERT INTO projects (id, tenant_id, title, client_name, client_email, shoot_date, portal_token) \
           SELECT gen_random_uuid(), '{STUDIO_A}', 'Bench', 'Client', 'client@example.net', '2026-06-01', \
                  'pp_bench_' || g FROM generate_series(1, {EVENTS}) g RETURNING id) \
         INSERT INTO invoices (id, tenant_id, project_id, kind, amount_minor, currency, due_date) \
         SELECT gen_random_uuid(), '{STUDIO_A}', p.id, 'deposit', 48500, 'EUR', '2099-01-31' FROM p"
    );
    sqlx::query(sqlx::AssertSqlSafe(seed))
        .execute(&mut admin)
        .await
        .expect("seed invoices");
    let invoices: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM invoices WHERE tenant_id = '{STUDIO_A}' AND due_date = '2099-01-31' AND kind = 'deposit' \
         AND id <> '{INVOICE_PAID}'"
    )))
    .fetch_all(&mut admin)
    .await
    .expect("invoice ids");
    assert_eq!(invoices.len(), EVENTS);

    let now = chrono::Utc::now().timestamp();
    let bodies: Vec<(Vec<u8>, String)> = invoices
        .iter()
        .enumerate()
        .map(|(i, invoice)| {
            let body = json!({
                "id": format!("evt_bench_{i}"), "object": "event", "type": "payment_intent.succeeded",
                "created": now, "livemode": false,
                "data": {"object": {
                    "id": format!("pi_bench_{i}"), "object": "payment_intent", "amount": 48500,
                    "amount_received": 48500, "currency": "eur", "status": "succeeded",
                    "metadata": {"studio_id": STUDIO_A, "invoice_id": invoice.to_string()}
                }}
            })
            .to_string()
            .into_bytes();
            let header = proofsheet_stripe::sign(&body, FIXTURE_SECRET, now);
            (body, header)
        })
        .collect();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(bodies.iter())
        .map(|(body, header)| {
            let client = client.clone();
            let app = &app;
            async move { deliver(&client, app, body, Some(header)).await.0 }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let webhook_seconds = started.elapsed().as_secs_f64();
    assert!(
        statuses.iter().all(|status| *status == 200),
        "every event is accepted"
    );
    assert_eq!(count(&app, "payments").await, EVENTS as i64);

    // Plain inserts into the same table, one row per statement and
    // transaction, through the service's own pool.
    let pool = app.state.db.pool().clone();
    let started = Instant::now();
    let inserted: Vec<bool> = futures::stream::iter(0..EVENTS)
        .map(|i| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO stripe_events (id, type, created, outcome) VALUES ($1, 'bench.raw', 0, 'raw')",
                )
                .bind(format!("evt_raw_{i}"))
                .execute(&pool)
                .await
                .is_ok()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let raw_seconds = started.elapsed().as_secs_f64();
    assert!(inserted.iter().all(|ok| *ok));

    let webhook_rate = EVENTS as f64 / webhook_seconds;
    let raw_rate = EVENTS as f64 / raw_seconds;
    println!(
        "webhook events:        {EVENTS} in {webhook_seconds:.2} s = {webhook_rate:.0} events/s (HTTP, signature check, one transaction each)"
    );
    println!(
        "raw stripe_events insert: {EVENTS} in {raw_seconds:.2} s = {raw_rate:.0} rows/s (one INSERT per transaction)"
    );
    println!("ratio webhook / raw insert: {:.2}", webhook_rate / raw_rate);
    println!(
        "concurrency {CONCURRENCY}, pool {} connections",
        app.state.config.database_max_connections
    );
}
