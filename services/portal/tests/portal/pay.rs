//! Paying an invoice from the portal through Stripe Checkout, against a
//! local server that serves Stripe's calls to create and expire Checkout
//! Sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Form, Json, Router};
use proofsheet_domain::db::invoices;
use proofsheet_domain::db::stripe::{self, PaymentReceived};
use proofsheet_portal::PortalStripe;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::Portal;

/// One `POST /v1/checkout/sessions` the mock received.
#[derive(Clone, Debug)]
struct Received {
    account: String,
    idempotency_key: String,
    form: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct MockStripe {
    received: Arc<Mutex<Vec<Received>>>,
    /// `(Stripe-Account, session id)` of every expire call received.
    expired: Arc<Mutex<Vec<(String, String)>>>,
    /// While set, a create call is recorded and then waits for `release`,
    /// like a Stripe that stalls.
    stall: Arc<AtomicBool>,
    release: Arc<Notify>,
    /// While set, a create call is recorded and then gets a 500 response,
    /// like a Stripe that created the session but whose response was lost.
    fail_after_create: Arc<AtomicBool>,
}

impl MockStripe {
    fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn expired(&self) -> Vec<(String, String)> {
        self.expired.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Responds like Stripe's `POST /v1/checkout/sessions/{id}/expire` for an
/// open session: the session, now expired.
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
    Json(json!({"id": id, "object": "checkout.session", "mode": "payment", "status": "expired"}))
}

/// Responds like Stripe: the same idempotency key returns the same session,
/// and the same key with other parameters gets 400 `idempotency_error`.
async fn create_session(
    State(mock): State<MockStripe>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("authorization") != "Bearer sk_test_local_only" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"type": "invalid_request_error", "message": "bad key"}})),
        );
    }
    let key = header("idempotency-key");
    let account = header("stripe-account");
    let number = {
        let mut received = mock.received.lock().expect("lock");
        let number = received
            .iter()
            .position(|r| r.idempotency_key == key)
            .unwrap_or(received.len());
        match received.get(number) {
            Some(first) if first.account != account || first.form != form => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."
                    }})),
                );
            }
            Some(_) => {}
            None => received.push(Received {
                account,
                idempotency_key: key,
                form,
            }),
        }
        number
    };
    if mock.fail_after_create.swap(false, Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"type": "api_error", "message": "try again"}})),
        );
    }
    if mock.stall.load(Ordering::SeqCst) {
        mock.release.notified().await;
    }
    let id = format!("cs_test_mock_{number}");
    let expires_at = chrono::Utc::now().timestamp() + 86_400;
    (
        StatusCode::OK,
        Json(json!({
            "id": id, "object": "checkout.session", "mode": "payment", "status": "open",
            "url": format!("https://checkout.stripe.test/c/pay/{id}"), "expires_at": expires_at
        })),
    )
}

async fn start_mock() -> (MockStripe, String) {
    let mock = MockStripe::default();
    let app = Router::new()
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("mock address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (mock, base)
}

/// Builds a portal whose studio has a connected account that takes payments, with
/// one unpaid invoice, talking to a fresh mock.
async fn connected_portal() -> (Portal, MockStripe, String) {
    let portal = Portal::new().await;
    let (mock, base) = start_mock().await;
    portal.state.set_stripe(PortalStripe {
        client: proofsheet_stripe::StripeClient::new(
            base.parse().expect("mock URL"),
            "sk_test_local_only".to_owned(),
        )
        .expect("client"),
        portal_base: "https://portal.example.test".to_owned(),
    });
    let mut tx = portal.tx().await;
    stripe::set_connected_account(&mut tx, "acct_studio_test")
        .await
        .expect("connect");
    stripe::set_account_state(&mut tx, "acct_studio_test", true, true)
        .await
        .expect("account state");
    tx.commit().await.expect("commit");
    portal
        .add_invoice("deposit", 48_500, "2099-01-31", false)
        .await;
    let mut tx = portal.tx().await;
    let invoice = invoices::for_project(&mut tx, portal.project)
        .await
        .expect("invoices")[0]
        .id
        .to_string();
    tx.commit().await.expect("commit");
    (portal, mock, invoice)
}

fn field<'a>(received: &'a Received, name: &str) -> &'a str {
    received
        .form
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn unpaid_invoice_shows_pay_button() {
    let (portal, _mock, invoice) = connected_portal().await;
    let page = portal.get(&portal.page()).await.text();
    assert!(page.contains(&format!("/invoices/{invoice}/pay")), "{page}");
    assert!(page.contains("Pay €485.00"), "{page}");
}

#[tokio::test]
async fn no_pay_button_without_connected_account() {
    let portal = Portal::new().await;
    portal
        .add_invoice("deposit", 48_500, "2099-01-31", false)
        .await;
    let page = portal.get(&portal.page()).await.text();
    assert!(!page.contains("/pay\""), "{page}");
    assert!(page.contains("Unpaid"), "{page}");
}

#[tokio::test]
async fn pay_creates_one_session_on_the_connected_account() {
    let (portal, mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());

    let first = portal.post_form(&path, "", false).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());
    assert_eq!(
        first.header(header::LOCATION),
        "https://checkout.stripe.test/c/pay/cs_test_mock_0"
    );
    let second = portal.post_form(&path, "", false).await;
    assert_eq!(
        second.header(header::LOCATION),
        first.header(header::LOCATION)
    );

    let received = mock.received();
    assert_eq!(received.len(), 1, "an open session is reused");
    let session = &received[0];
    assert_eq!(session.account, "acct_studio_test");
    assert!(
        session
            .idempotency_key
            .starts_with(&format!("checkout-{invoice}-0-")),
        "{session:?}"
    );
    assert_eq!(field(session, "mode"), "payment");
    assert_eq!(field(session, "metadata[invoice_id]"), invoice);
    assert_eq!(
        field(session, "metadata[studio_id]"),
        portal.tenant.to_string()
    );
    assert_eq!(
        field(session, "payment_intent_data[metadata][invoice_id]"),
        invoice
    );
    assert_eq!(
        field(session, "line_items[0][price_data][unit_amount]"),
        "48500"
    );
    assert_eq!(field(session, "line_items[0][price_data][currency]"), "eur");
    assert!(
        field(session, "success_url").ends_with("?payment=processing#invoices"),
        "{session:?}"
    );
}

#[tokio::test]
async fn concurrent_pay_requests_create_one_session() {
    let (portal, mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    let answers =
        futures::future::join_all((0..6).map(|_| portal.post_form(&path, "", false))).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    }
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn paid_invoice_creates_no_session() {
    let (portal, mock, invoice) = connected_portal().await;
    let mut tx = portal.tx().await;
    let id = invoice.parse().expect("invoice id");
    invoices::mark_paid(&mut tx, portal.project, id)
        .await
        .expect("mark paid");
    tx.commit().await.expect("commit");

    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    let answer = portal.post_form(&path, "", false).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.header(header::LOCATION).ends_with("#invoices"));
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn return_from_checkout_shows_processing_then_paid() {
    let (portal, _mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    portal.post_form(&path, "", false).await;

    let returned = format!("{}?payment=processing", portal.page());
    let page = portal.get(&returned).await.text();
    assert!(page.contains("Payment processing"), "{page}");
    assert!(!page.contains("Pay €485.00"), "{page}");

    // The webhook lands.
    let mut tx = portal.tx().await;
    let payment = PaymentReceived {
        invoice_id: invoice.parse().expect("invoice id"),
        payment_intent_id: "pi_test_portal",
        amount_minor: 48_500,
        currency: "eur",
        paid_at: chrono::Utc::now(),
    };
    stripe::record_payment(&mut tx, &payment)
        .await
        .expect("record payment");
    tx.commit().await.expect("commit");

    let page = portal.get(&returned).await.text();
    assert!(!page.contains("Payment processing"), "{page}");
    assert!(page.contains("Paid on"), "{page}");
}

#[tokio::test]
async fn pay_for_another_projects_invoice_is_not_found() {
    let (portal, mock, _invoice) = connected_portal().await;
    let path = format!("{}/invoices/{}/pay", portal.page(), uuid::Uuid::new_v4());
    let answer = portal.post_form(&path, "", false).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn edited_amount_expires_open_session() {
    let (portal, mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    let first = portal.post_form(&path, "", false).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());

    // The studio raises the deposit while the old session is still open.
    portal
        .add_invoice("deposit", 60_000, "2099-01-31", false)
        .await;
    let second = portal.post_form(&path, "", false).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.text());
    assert_eq!(
        second.header(header::LOCATION),
        "https://checkout.stripe.test/c/pay/cs_test_mock_1"
    );

    assert_eq!(
        mock.expired(),
        vec![("acct_studio_test".to_owned(), "cs_test_mock_0".to_owned())]
    );
    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        field(&received[1], "line_items[0][price_data][unit_amount]"),
        "60000"
    );
    assert!(
        received[1]
            .idempotency_key
            .starts_with(&format!("checkout-{invoice}-1-")),
        "{received:?}"
    );

    // The new session is reused while the amount stays the same.
    let third = portal.post_form(&path, "", false).await;
    assert_eq!(
        third.header(header::LOCATION),
        second.header(header::LOCATION)
    );
    assert_eq!(mock.received().len(), 2);
    assert_eq!(mock.expired().len(), 1);
}

#[tokio::test]
async fn edited_due_date_keeps_open_session() {
    let (portal, mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    let first = portal.post_form(&path, "", false).await;
    portal
        .add_invoice("deposit", 48_500, "2099-02-28", false)
        .await;
    let second = portal.post_form(&path, "", false).await;
    assert_eq!(
        second.header(header::LOCATION),
        first.header(header::LOCATION)
    );
    assert!(mock.expired().is_empty());
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn mark_paid_during_stalled_checkout() {
    let (portal, mock, invoice) = connected_portal().await;
    mock.stall.store(true, Ordering::SeqCst);
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    let id = invoice.parse().expect("invoice id");

    let studio = async {
        let at_stripe = tokio::time::timeout(Duration::from_secs(10), async {
            while mock.received().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // The studio marks the invoice paid while the pay request waits on
        // Stripe.
        let marked = tokio::time::timeout(Duration::from_secs(2), async {
            let mut tx = portal.tx().await;
            invoices::mark_paid(&mut tx, portal.project, id)
                .await
                .expect("mark paid");
            tx.commit().await.expect("commit");
        })
        .await;
        mock.release.notify_one();
        (at_stripe.is_ok(), marked.is_ok())
    };
    let (answer, (at_stripe, marked)) = tokio::join!(portal.post_form(&path, "", false), studio);

    assert!(at_stripe, "the pay request never reached the mock");
    assert!(marked, "mark paid waited on the pay request's Stripe call");
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(
        answer.header(header::LOCATION),
        format!("https://portal.example.test{}#invoices", portal.page())
    );
    let mut tx = portal.tx().await;
    let marked_for_expiry = stripe::has_checkouts_to_expire(&mut tx)
        .await
        .expect("checkouts to expire");
    assert!(
        marked_for_expiry,
        "the session for the paid invoice stays payable"
    );
}

#[tokio::test]
async fn edit_after_lost_response_gets_new_key() {
    let (portal, mock, invoice) = connected_portal().await;
    let path = format!("{}/invoices/{invoice}/pay", portal.page());
    // Stripe creates the session, but its response never arrives, so no
    // session is stored and the next request uses the same count.
    mock.fail_after_create.store(true, Ordering::SeqCst);
    let lost = portal.post_form(&path, "", false).await;
    assert_eq!(lost.status, StatusCode::INTERNAL_SERVER_ERROR);

    portal
        .add_invoice("deposit", 60_000, "2099-01-31", false)
        .await;
    let retried = portal.post_form(&path, "", false).await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.text());
    assert_eq!(
        retried.header(header::LOCATION),
        "https://checkout.stripe.test/c/pay/cs_test_mock_1"
    );

    let received = mock.received();
    assert_eq!(received.len(), 2);
    assert_ne!(received[0].idempotency_key, received[1].idempotency_key);
    assert_eq!(
        field(&received[1], "line_items[0][price_data][unit_amount]"),
        "60000"
    );
}
