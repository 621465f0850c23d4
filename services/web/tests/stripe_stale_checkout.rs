//! Open Checkout Sessions of an invoice the studio marks paid by hand are
//! expired at Stripe by the worker's checkout-expiry job, against a local
//! server that serves Stripe's expire call. Marking paid only queues the
//! job, so a slow Stripe never holds up the studio's request.

mod common;
mod stripe_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use proofsheet_domain::{InvoiceId, ProjectId, TenantId};
use proofsheet_worker::{JobContext, RetrySettings, WorkerSettings, Workers};
use serde_json::{Value, json};
use stripe_support::{INVOICE_PAID, PROJECT_A, STUDIO_A};

/// `(Stripe-Account, session id)` of every expire call that succeeded, the
/// number of calls the mock still responds to with 500, a session id it
/// always responds to with 500, and whether it keeps calls open until the
/// flag is cleared.
#[derive(Clone, Default)]
struct MockStripe {
    expired: Arc<Mutex<Vec<(String, String)>>>,
    failures_left: Arc<AtomicUsize>,
    failing_session: Arc<Mutex<Option<String>>>,
    failed_calls: Arc<AtomicUsize>,
    stalling: Arc<AtomicBool>,
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
    while mock.stalling.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let always_failing = mock
        .failing_session
        .lock()
        .map(|failing| failing.as_deref() == Some(id.as_str()))
        .unwrap_or(false);
    let failing = always_failing
        || mock
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if failing {
        mock.failed_calls.fetch_add(1, Ordering::SeqCst);
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
    state_of(app, "cs_test_open").await
}

/// Returns `(status, expire_requested)` of the session with this Stripe id.
async fn state_of(app: &common::TestApp, session_id: &str) -> (String, bool) {
    let mut admin = stripe_support::admin(app).await;
    sqlx::query_as("SELECT status, expire_requested FROM checkout_sessions WHERE session_id = $1")
        .bind(session_id)
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

/// Workers running on the web app's database, queues and Stripe mock until
/// [`RunningWorkers::stop`].
struct RunningWorkers {
    ctx: JobContext,
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), proofsheet_worker::Error>>,
    _outbox: tempfile::TempDir,
}

impl RunningWorkers {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = self.run.await.expect("worker task");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Starts the worker with retries a few milliseconds apart and without the
/// reconciliation schedule, so only the checkout-expiry job expires sessions.
async fn start_workers(app: &common::TestApp) -> RunningWorkers {
    let outbox = tempfile::tempdir().expect("outbox");
    let mailer = proofsheet_mail::Mailer::outbox(outbox.path().to_path_buf()).expect("mailer");
    let ctx = JobContext::new(
        app.state.db.clone(),
        app.state.queues.clone(),
        app.state.media.clone(),
        mailer,
        app.state.config.clone(),
    );
    let mut settings = WorkerSettings::from_config(&app.state.config).expect("settings");
    settings.retry = RetrySettings {
        max_attempts: 6,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    settings.poll_interval = Duration::from_millis(100);
    settings.stripe_reconcile_schedule = None;
    settings.shutdown_grace = Duration::from_secs(2);
    let workers = Workers::new(ctx.clone(), &settings).expect("workers");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(workers.run_until(async move {
        let _ = stopped.await;
    }));
    RunningWorkers {
        ctx,
        stop,
        run,
        _outbox: outbox,
    }
}

/// Waits until the seeded session is expired, or fails after 20 s.
async fn wait_for_expired(app: &common::TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while session_state(app).await.0 != "expired" {
        assert!(Instant::now() < deadline, "the session was never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn worker_expires_session_after_mark_paid() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("mark paid");
    assert!(mock.expired().is_empty(), "expired inline");
    assert_eq!(session_state(&app).await, ("open".to_owned(), true));

    let workers = start_workers(&app).await;
    wait_for_expired(&app).await;
    assert_eq!(
        mock.expired(),
        vec![("acct_lumen".to_owned(), "cs_test_open".to_owned())]
    );
    assert_eq!(session_state(&app).await, ("expired".to_owned(), true));

    // A repeated job finds nothing left to expire and calls Stripe no more.
    let client = proofsheet_worker::client_from_config(&workers.ctx)
        .expect("client")
        .expect("Stripe is configured");
    let closed = proofsheet_worker::expire_marked_checkouts(&workers.ctx, &client, tenant)
        .await
        .expect("second run");
    assert_eq!(closed, 0);
    assert_eq!(mock.expired().len(), 1);
    workers.stop().await;
}

#[tokio::test]
async fn mark_paid_returns_while_stripe_stalls() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    mock.stalling.store(true, Ordering::SeqCst);
    let workers = start_workers(&app).await;
    let (tenant, project, invoice) = ids();

    let started = Instant::now();
    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("mark paid");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "marking paid took {elapsed:?} while Stripe stalled"
    );

    // The worker's call waits on the stalled Stripe; the session is still
    // open, and marked, until Stripe responds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(session_state(&app).await, ("open".to_owned(), true));
    mock.stalling.store(false, Ordering::SeqCst);

    wait_for_expired(&app).await;
    assert_eq!(
        mock.expired(),
        vec![("acct_lumen".to_owned(), "cs_test_open".to_owned())]
    );
    workers.stop().await;
}

#[tokio::test]
async fn failed_expiry_is_retried_with_backoff() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    mock.failures_left.store(2, Ordering::SeqCst);
    let workers = start_workers(&app).await;
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("marking paid succeeds while Stripe fails");

    wait_for_expired(&app).await;
    assert_eq!(mock.failed_calls.load(Ordering::SeqCst), 2);
    assert_eq!(mock.expired().len(), 1);
    workers.stop().await;
}

#[tokio::test]
async fn failed_expiry_keeps_mark_for_retry() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    mock.failures_left.store(usize::MAX, Ordering::SeqCst);
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("marking paid succeeds while Stripe fails");

    // Every attempt fails, and a failed attempt leaves the mark for the
    // next attempt and for the reconciliation run.
    let workers = start_workers(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mock.failed_calls.load(Ordering::SeqCst) >= 1);
    assert!(mock.expired().is_empty());
    assert_eq!(session_state(&app).await, ("open".to_owned(), true));
    workers.stop().await;
}

#[tokio::test]
async fn failing_session_leaves_others_expired() {
    let (mock, base) = start_mock().await;
    let app = stripe_support::spawn_with_fixtures_and_api(&base).await;
    open_session(&app).await;
    let mut admin = stripe_support::admin(&app).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO checkout_sessions \
           (id, tenant_id, invoice_id, session_id, url, amount_minor, currency, expires_at) \
         VALUES (gen_random_uuid(), '{STUDIO_A}', '{INVOICE_PAID}', 'cs_test_second', \
                 'https://checkout.stripe.test/c/pay/cs_test_second', 48500, 'EUR', \
                 now() + interval '23 hours')"
    )))
    .execute(&mut admin)
    .await
    .expect("seed second session");
    if let Ok(mut failing) = mock.failing_session.lock() {
        *failing = Some("cs_test_open".to_owned());
    }
    let (tenant, project, invoice) = ids();

    proofsheet_web::ops::mark_paid(&app.state, tenant, project, invoice)
        .await
        .expect("mark paid");

    // The session Stripe keeps failing on must not hold up the other one.
    let workers = start_workers(&app).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while state_of(&app, "cs_test_second").await.0 != "expired" {
        assert!(
            Instant::now() < deadline,
            "the second session was never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(session_state(&app).await, ("open".to_owned(), true));
    workers.stop().await;
}
