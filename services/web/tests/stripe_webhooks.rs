//! `POST /webhooks/stripe` against the recorded Stripe events: signature
//! checks, exactly-once effects, delivery order and unknown events.

mod common;
mod stripe_support;

use proofsheet_web::stripe::{UNKNOWN_EVENT_TYPE, WebhookOutcome};
use serde_json::{Value, json};
use stripe_support::*;

#[tokio::test]
async fn signatures_tsv_rows_are_accepted_or_rejected() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let table = String::from_utf8(fixture("signatures.tsv")).expect("utf-8");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("file\t"))
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 13, "every row of signatures.tsv is read");

    // Rejected rows first, so "nothing was processed" is visible.
    let (valid, rejected): (Vec<_>, Vec<_>) =
        rows.iter().partition(|row| row[3].starts_with("VALID"));
    assert_eq!(rejected.len(), 4);
    for row in &rejected {
        let now: i64 = row[2].parse().expect("verify_at_unix");
        app.state.stripe.set_fixed_now(Some(now));
        let (status, body) = deliver(&client, &app, &fixture(row[0]), Some(row[1])).await;
        assert_eq!(status, 400, "{}: {body}", row[3]);
        assert_eq!(body["error"]["code"], "bad_request", "{}", row[3]);
        assert_eq!(count(&app, "stripe_events").await, 0, "{}", row[3]);
        assert_eq!(count(&app, "payments").await, 0, "{}", row[3]);
    }
    for row in &valid {
        let now: i64 = row[2].parse().expect("verify_at_unix");
        app.state.stripe.set_fixed_now(Some(now));
        let (status, body) = deliver(&client, &app, &fixture(row[0]), Some(row[1])).await;
        assert_eq!(status, 200, "{}: {body}", row[0]);
        assert_eq!(body["received"], true, "{}", row[0]);
    }
    assert_eq!(count(&app, "stripe_events").await, 9);
    let metrics = &app.state.stripe.metrics;
    assert_eq!(
        metrics.count(UNKNOWN_EVENT_TYPE, WebhookOutcome::BadSignature),
        4
    );
}

#[test]
fn signing_reproduces_the_recorded_headers() {
    let table = String::from_utf8(fixture("signatures.tsv")).expect("utf-8");
    let valid = table
        .lines()
        .filter(|line| line.ends_with("VALID: accept (2xx) and process"));
    let mut checked = 0;
    for line in valid {
        let columns: Vec<&str> = line.split('\t').collect();
        let header = columns[1];
        let t: i64 = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .and_then(|t| t.parse().ok())
            .expect("t= in header");
        let signed = proofsheet_stripe::sign(&fixture(columns[0]), FIXTURE_SECRET, t);
        assert_eq!(signed, header, "{}", columns[0]);
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[tokio::test]
async fn tampered_deliveries_are_rejected_without_effect() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let body = fixture("01_checkout.session.completed.json");
    let now = chrono::Utc::now().timestamp();
    let good = proofsheet_stripe::sign(&body, FIXTURE_SECRET, now);

    // One byte changed, at the start, in the amount and at the final newline.
    let amount_at = body
        .windows(5)
        .position(|w| w == b"48500")
        .expect("amount in body");
    for position in [0, amount_at, body.len() - 1] {
        let mut changed = body.clone();
        changed[position] ^= 0x01;
        let (status, _) = deliver(&client, &app, &changed, Some(&good)).await;
        assert_eq!(status, 400, "byte {position} changed");
    }
    let mut longer = body.clone();
    longer.push(b' ');
    assert_eq!(deliver(&client, &app, &longer, Some(&good)).await.0, 400);

    let wrong_secret = proofsheet_stripe::sign(&body, "whsec_another_secret", now);
    assert_eq!(
        deliver(&client, &app, &body, Some(&wrong_secret)).await.0,
        400
    );

    let old = proofsheet_stripe::sign(&body, FIXTURE_SECRET, now - 301);
    assert_eq!(deliver(&client, &app, &body, Some(&old)).await.0, 400);
    let future = proofsheet_stripe::sign(&body, FIXTURE_SECRET, now + 301);
    assert_eq!(deliver(&client, &app, &body, Some(&future)).await.0, 400);

    assert_eq!(deliver(&client, &app, &body, None).await.0, 400);
    assert_eq!(deliver(&client, &app, &body, Some("")).await.0, 400);
    let v0_only = good.replace("v1=", "v0=");
    assert_eq!(deliver(&client, &app, &body, Some(&v0_only)).await.0, 400);
    let no_t = good
        .split_once(',')
        .map(|(_, v1)| v1.to_owned())
        .unwrap_or_default();
    assert_eq!(deliver(&client, &app, &body, Some(&no_t)).await.0, 400);

    assert_eq!(count(&app, "stripe_events").await, 0);
    assert_eq!(count(&app, "payments").await, 0);

    // The untouched delivery is accepted, with a rotated-out signature next
    // to the current one.
    let rotated = format!("{good},v1={}", "0".repeat(64));
    let (status, body) = deliver(&client, &app, &body, Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "applied");
}

#[tokio::test]
async fn connect_secret_signature_is_accepted() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let body = fixture("01_checkout.session.completed.json");
    let now = chrono::Utc::now().timestamp();

    let neither = proofsheet_stripe::sign(&body, "whsec_neither_endpoint_secret", now);
    assert_eq!(deliver(&client, &app, &body, Some(&neither)).await.0, 400);
    assert_eq!(count(&app, "payments").await, 0);

    let connect = proofsheet_stripe::sign(&body, CONNECT_SECRET, now);
    let (status, answer) = deliver(&client, &app, &body, Some(&connect)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(count(&app, "payments").await, 1);
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let body = fixture("01_checkout.session.completed.json");

    let (status, first) = deliver_signed(&client, &app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(first["outcome"], "applied");
    let after_first = snapshot(&app).await;

    let (status, second) = deliver_signed(&client, &app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(second["outcome"], "duplicate");
    assert_eq!(snapshot(&app).await, after_first);
    assert_eq!(count(&app, "payments").await, 1);
}

#[tokio::test]
async fn checkout_and_payment_intent_record_one_payment() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let (_, intent) =
        deliver_signed(&client, &app, &fixture("02_payment_intent.succeeded.json")).await;
    assert_eq!(intent["outcome"], "applied");
    let (_, session) = deliver_signed(
        &client,
        &app,
        &fixture("01_checkout.session.completed.json"),
    )
    .await;
    assert_eq!(session["outcome"], "already_paid");

    let state = snapshot(&app).await;
    let payments = state["payments"].as_array().expect("payments");
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["amount_minor"], 48500);
    let invoice = find(&state["invoices"], INVOICE_PAID);
    assert_eq!(invoice["status"], "paid");
    // The earlier of the two reports, the PaymentIntent's event time.
    assert_eq!(invoice["paid_at"], "2026-11-18T14:22:06+00:00");
}

#[tokio::test]
async fn refund_without_refunds_list_is_recorded() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    deliver_signed(
        &client,
        &app,
        &fixture("01_checkout.session.completed.json"),
    )
    .await;
    let (status, body) = deliver_signed(&client, &app, &fixture("04_charge.refunded.json")).await;
    assert_eq!(status, 200, "{body}");

    let state = snapshot(&app).await;
    let invoice = find(&state["invoices"], INVOICE_PAID);
    assert_eq!(invoice["status"], "paid", "a partial refund keeps it paid");
    assert_eq!(invoice["amount_refunded_minor"], 15000);
    assert_eq!(state["payments"][0]["amount_refunded_minor"], 15000);
}

#[tokio::test]
async fn failed_payment_is_recorded_and_invoice_stays_unpaid() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let (status, _) = deliver_signed(
        &client,
        &app,
        &fixture("03_payment_intent.payment_failed.json"),
    )
    .await;
    assert_eq!(status, 200);
    let state = snapshot(&app).await;
    let invoice = find(&state["invoices"], INVOICE_FAILED);
    assert_eq!(invoice["status"], "unpaid");
    assert_eq!(invoice["payment_error_code"], "card_declined");
    assert_eq!(invoice["payment_error_decline_code"], "insufficient_funds");
}

#[tokio::test]
async fn older_subscription_update_is_ignored() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let (_, newer) = deliver_signed(
        &client,
        &app,
        &fixture("08_customer.subscription.updated.active_to_past_due.json"),
    )
    .await;
    assert_eq!(newer["outcome"], "applied");
    let (_, older) = deliver_signed(
        &client,
        &app,
        &fixture("06_customer.subscription.updated.trialing_to_active.json"),
    )
    .await;
    assert_eq!(older["outcome"], "ignored_older");

    let state = snapshot(&app).await;
    let studio = find(&state["tenants"], STUDIO_B);
    assert_eq!(studio["plan_status"], "past_due");
    assert_eq!(studio["plan_period_end"], "2026-11-15T08:15:00+00:00");
}

#[tokio::test]
async fn subscription_story_ends_cancelled() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for name in &FIXTURES[4..] {
        deliver_signed(&client, &app, &fixture(name)).await;
        let state = snapshot(&app).await;
        seen.push(find(&state["tenants"], STUDIO_B)["plan_status"].clone());
    }
    assert_eq!(
        seen,
        vec![
            json!("trialing"),
            json!("active"),
            json!("active"),
            json!("past_due"),
            json!("cancelled")
        ]
    );
    let state = snapshot(&app).await;
    let studio = find(&state["tenants"], STUDIO_B);
    assert_eq!(studio["trial_ends_at"], "2026-09-15T08:15:00+00:00");
    assert_eq!(studio["stripe_customer_id"], "cus_j3zJ96YS3SoQrF");
}

#[tokio::test]
async fn unknown_event_type_and_fields_are_acknowledged() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let body = json!({
        "id": "evt_unknown_type_1", "object": "event", "type": "issuing_card.shipped",
        "created": 1_795_000_000, "brand_new_envelope_field": {"nested": [1, 2]},
        "data": {"object": {"id": "ic_1", "object": "issuing_card"}}
    });
    let (status, answer) = deliver_signed(&client, &app, body.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "unhandled_type");
    let metrics = &app.state.stripe.metrics;
    assert_eq!(
        metrics.count("issuing_card.shipped", WebhookOutcome::UnhandledType),
        1
    );

    // A known type whose object misses most fields and carries new ones.
    let sparse = json!({
        "id": "evt_sparse_1", "type": "payment_intent.succeeded", "created": 1_795_000_000,
        "data": {"object": {"id": "pi_sparse", "unheard_of": true}}
    });
    let (status, answer) = deliver_signed(&client, &app, sparse.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "tenant_not_found");
}

#[tokio::test]
async fn payment_with_wrong_amount_leaves_invoice_unpaid() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("02_payment_intent.succeeded.json")).expect("json");
    event["data"]["object"]["amount"] = json!(100);
    event["data"]["object"]["amount_received"] = json!(100);
    let (status, answer) = deliver_signed(&client, &app, event.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "amount_mismatch");
    let state = snapshot(&app).await;
    assert_eq!(find(&state["invoices"], INVOICE_PAID)["status"], "unpaid");
    assert_eq!(state["payments"][0]["amount_minor"], 100);
}

#[tokio::test]
async fn connected_account_cannot_pay_another_studios_invoice() {
    let app = spawn_with_fixtures().await;
    let mut admin = admin(&app).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE tenants SET stripe_account_id = 'acct_studio_b' WHERE id = '{STUDIO_B}'"
    )))
    .execute(&mut admin)
    .await
    .expect("connect studio B");
    let client = reqwest::Client::new();
    // Studio B's account reports a payment whose metadata names studio A.
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("02_payment_intent.succeeded.json")).expect("json");
    event["account"] = json!("acct_studio_b");
    let (status, answer) = deliver_signed(&client, &app, event.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "tenant_not_found");
    let state = snapshot(&app).await;
    assert_eq!(find(&state["invoices"], INVOICE_PAID)["status"], "unpaid");
}

#[tokio::test]
async fn webhooks_off_without_secret() {
    let app = common::spawn().await;
    let client = reqwest::Client::new();
    let (status, body) = deliver(&client, &app, b"{}", Some("t=1,v1=00")).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
}

fn find<'a>(rows: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|row| row["id"] == id))
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

#[tokio::test]
async fn past_due_plan_blocks_new_projects() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let response = client
        .post(app.url("/api/v1/signup"))
        .json(&json!({
            "studio_name": "Harbour Light", "email": "owner@harbour.example",
            "password": "a long enough password", "time_zone": "Europe/Berlin",
        }))
        .send()
        .await
        .expect("sign-up");
    let signed_up: serde_json::Value = response.json().await.expect("sign-up body");
    let key = signed_up["api_key"].as_str().expect("api key").to_owned();
    let tenant = signed_up["tenant_id"]
        .as_str()
        .expect("tenant id")
        .to_owned();

    let mut event: serde_json::Value = serde_json::from_slice(&fixture(
        "08_customer.subscription.updated.active_to_past_due.json",
    ))
    .expect("json");
    event["data"]["object"]["metadata"]["studio_id"] = json!(tenant);
    event["data"]["object"]["customer"] = json!("cus_harbour");
    let (status, _) = deliver_signed(&client, &app, event.to_string().as_bytes()).await;
    assert_eq!(status, 200);

    let refused = client
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&key)
        .json(
            &json!({"title": "Regatta", "client_name": "Kim", "client_email": "kim@example.net",
                      "shoot_date": "2026-07-01"}),
        )
        .send()
        .await
        .expect("create project");
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.expect("error body");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("past due"), "{message}");
}

#[tokio::test]
async fn connected_account_subscription_leaves_plan_alone() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("09_customer.subscription.deleted.canceled.json"))
            .expect("json");
    event["account"] = json!("acct_some_studio");
    let (status, answer) = deliver_signed(&client, &app, event.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "not_ours");
    let state = snapshot(&app).await;
    assert_eq!(find(&state["tenants"], STUDIO_B)["plan_status"], "trialing");
}

/// Reads a fixture as JSON with a new event id.
fn event_from(name: &str, id: &str) -> Value {
    let mut event: Value = serde_json::from_slice(&fixture(name)).expect("fixture json");
    event["id"] = json!(id);
    event
}

#[tokio::test]
async fn malformed_events_are_acknowledged_once() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let checkout = "01_checkout.session.completed.json";
    let intent = "02_payment_intent.succeeded.json";
    let subscription = "08_customer.subscription.updated.active_to_past_due.json";
    let refund = "04_charge.refunded.json";
    // Fixture, change to the event, and the field the record must name.
    type Change = fn(&mut Value);
    let cases: [(&str, Change, &str); 12] = [
        (
            checkout,
            |e| e["data"]["object"] = json!({"mode": "payment"}),
            "data.object.id",
        ),
        (
            intent,
            |e| e["data"]["object"] = json!("pi_only_an_id"),
            "data.object",
        ),
        (
            intent,
            |e| e["data"]["object"] = json!([1, 2]),
            "data.object[0]",
        ),
        (
            subscription,
            |e| e["data"]["object"]["id"] = json!(123),
            "data.object.id",
        ),
        (
            intent,
            |e| e["data"]["object"]["amount_received"] = json!("48500"),
            "data.object.amount_received",
        ),
        (
            checkout,
            |e| e["data"]["object"]["amount_total"] = json!(1e20),
            "data.object.amount_total",
        ),
        (
            checkout,
            |e| e["data"]["object"]["amount_total"] = json!(-48500),
            "data.object.amount_total",
        ),
        (
            intent,
            |e| e["data"]["object"]["currency"] = json!("euro"),
            "data.object.currency",
        ),
        (
            intent,
            |e| e["data"]["object"]["metadata"] = Value::Null,
            "data.object.metadata",
        ),
        (
            subscription,
            |e| e["data"]["object"]["metadata"] = json!({"studio_id": 5}),
            "data.object.metadata.studio_id",
        ),
        (checkout, |e| e["data"] = json!({}), "data.object"),
        (
            refund,
            |e| {
                e["data"]["object"]["amount"] = json!(5000);
                e["data"]["object"]["amount_refunded"] = json!(i64::MAX);
            },
            "data.object.amount_refunded",
        ),
    ];

    for (i, (name, change, field)) in cases.iter().enumerate() {
        let id = format!("evt_malformed_{i}");
        let mut event = event_from(name, &id);
        change(&mut event);
        let body = event.to_string();

        let (status, answer) = deliver_signed(&client, &app, body.as_bytes()).await;
        assert_eq!(status, 200, "{field}: {answer}");
        assert_eq!(answer["outcome"], "malformed", "{field}");

        let (outcome, detail) = event_record(&app, &id).await;
        assert_eq!(outcome, "malformed", "{field}");
        let detail = detail.unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{field}: {detail}"
        );

        let (status, again) = deliver_signed(&client, &app, body.as_bytes()).await;
        assert_eq!(status, 200, "{field}: {again}");
        assert_eq!(again["outcome"], "duplicate", "{field}");
    }

    let metrics = &app.state.stripe.metrics;
    let malformed: u64 = [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "customer.subscription.updated",
        "charge.refunded",
    ]
    .iter()
    .map(|event_type| metrics.count(event_type, WebhookOutcome::Malformed))
    .sum();
    assert_eq!(malformed, 12);
    assert_eq!(count(&app, "payments").await, 0);
    let state = snapshot(&app).await;
    assert_eq!(find(&state["invoices"], INVOICE_PAID)["status"], "unpaid");
    assert_eq!(find(&state["tenants"], STUDIO_B)["plan_status"], "trialing");
}

#[tokio::test]
async fn unreadable_signed_body_is_acknowledged() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();

    let no_id = json!({"type": "payment_intent.succeeded", "created": 1, "data": {"object": {}}});
    let (status, answer) = deliver_signed(&client, &app, no_id.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "malformed");

    let (status, answer) = deliver_signed(&client, &app, b"not json").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "malformed");
    assert_eq!(count(&app, "stripe_events").await, 0);
    let metrics = &app.state.stripe.metrics;
    assert_eq!(
        metrics.count("payment_intent.succeeded", WebhookOutcome::Malformed),
        1
    );
    assert_eq!(
        metrics.count(UNKNOWN_EVENT_TYPE, WebhookOutcome::Malformed),
        1
    );
}

#[tokio::test]
async fn database_down_answers_500() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    app.state.db.pool().close().await;

    let valid = fixture("01_checkout.session.completed.json");
    let (status, _) = deliver_signed(&client, &app, &valid).await;
    assert_eq!(status, 500);

    let mut malformed = event_from("02_payment_intent.succeeded.json", "evt_malformed_db_down");
    malformed["data"]["object"]["amount"] = json!("a lot");
    let (status, _) = deliver_signed(&client, &app, malformed.to_string().as_bytes()).await;
    assert_eq!(status, 500);
    assert_eq!(
        app.state
            .stripe
            .metrics
            .count("payment_intent.succeeded", WebhookOutcome::Failed),
        1
    );
}

/// Returns the stored outcome and detail of an event.
async fn event_record(app: &common::TestApp, id: &str) -> (String, Option<String>) {
    let mut admin = admin(app).await;
    sqlx::query_as("SELECT outcome, detail FROM stripe_events WHERE id = $1")
        .bind(id)
        .fetch_one(&mut admin)
        .await
        .expect("event record")
}

/// Builds a subscription event of studio B for `subscription`, created by
/// Stripe at `subscription_created`, with `status` at `event_created`.
fn subscription_event(
    id: &str,
    subscription: &str,
    subscription_created: i64,
    status: &str,
    event_created: i64,
) -> Vec<u8> {
    let mut event = event_from(
        "08_customer.subscription.updated.active_to_past_due.json",
        id,
    );
    event["created"] = json!(event_created);
    event["data"]["object"]["id"] = json!(subscription);
    event["data"]["object"]["created"] = json!(subscription_created);
    event["data"]["object"]["status"] = json!(status);
    event.to_string().into_bytes()
}

#[tokio::test]
async fn replaced_subscription_leaves_plan_alone() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let plan = |state: &Value| {
        let studio = find(&state["tenants"], STUDIO_B);
        (
            studio["plan_status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            studio["stripe_subscription_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let active_on_b = ("active".to_owned(), "sub_B".to_owned());

    let a_active = subscription_event("evt_a_active", "sub_A", 1_000, "active", 2_000);
    let b_active = subscription_event("evt_b_active", "sub_B", 3_000, "active", 3_001);
    assert_eq!(
        deliver_signed(&client, &app, &a_active).await.1["outcome"],
        "applied"
    );
    assert_eq!(
        deliver_signed(&client, &app, &b_active).await.1["outcome"],
        "applied"
    );
    assert_eq!(plan(&snapshot(&app).await), active_on_b);

    // A's dunning goes on after B replaced it, and an old A event arrives late.
    // An A object without `created` gives no proof that A is newer than B.
    let mut a_without_created: Value = serde_json::from_slice(&subscription_event(
        "evt_a_without_created",
        "sub_A",
        1_000,
        "past_due",
        4_500,
    ))
    .expect("event JSON");
    if let Some(object) = a_without_created["data"]["object"].as_object_mut() {
        object.remove("created");
    }
    let late = [
        subscription_event("evt_a_past_due_after", "sub_A", 1_000, "past_due", 4_000),
        subscription_event("evt_a_past_due_before", "sub_A", 1_000, "past_due", 2_500),
        subscription_event("evt_a_same_second", "sub_A", 1_000, "past_due", 3_001),
        subscription_event("evt_a_unpaid", "sub_A", 1_000, "unpaid", 5_000),
        a_without_created.to_string().into_bytes(),
    ];
    for body in &late {
        let (status, answer) = deliver_signed(&client, &app, body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "ignored_older");
        assert_eq!(plan(&snapshot(&app).await), active_on_b);
    }

    // The current subscription still moves the plan.
    let b_past_due = subscription_event("evt_b_past_due", "sub_B", 3_000, "past_due", 6_000);
    assert_eq!(
        deliver_signed(&client, &app, &b_past_due).await.1["outcome"],
        "applied"
    );
    assert_eq!(
        plan(&snapshot(&app).await),
        ("past_due".to_owned(), "sub_B".to_owned())
    );
    // A newer subscription replaces it.
    let c_active = subscription_event("evt_c_active", "sub_C", 7_000, "active", 7_001);
    assert_eq!(
        deliver_signed(&client, &app, &c_active).await.1["outcome"],
        "applied"
    );
    assert_eq!(
        plan(&snapshot(&app).await),
        ("active".to_owned(), "sub_C".to_owned())
    );
}

#[tokio::test]
async fn metrics_count_webhook_outcomes() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let admin = proofsheet_web::admin_router(&app.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind admin");
    let admin_base = format!("http://{}", listener.local_addr().expect("admin address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, admin).await;
    });

    let checkout = fixture("01_checkout.session.completed.json");
    deliver_signed(&client, &app, &checkout).await;
    deliver_signed(&client, &app, &checkout).await;
    let unknown = json!({"id": "evt_metrics_unknown", "type": "issuing_card.shipped",
                         "created": 1, "data": {"object": {"id": "ic_1"}}});
    deliver_signed(&client, &app, unknown.to_string().as_bytes()).await;
    // Any signed type string becomes a label only when the webhook handles it.
    let invented = json!({"id": "evt_metrics_invented", "type": "x".repeat(200),
                          "created": 1, "data": {"object": {"id": "x_1"}}});
    deliver_signed(&client, &app, invented.to_string().as_bytes()).await;
    let mut malformed = event_from("02_payment_intent.succeeded.json", "evt_metrics_malformed");
    malformed["data"]["object"]["metadata"] = Value::Null;
    deliver_signed(&client, &app, malformed.to_string().as_bytes()).await;
    deliver(&client, &app, &checkout, Some("t=1,v1=00")).await;
    let oversized = vec![b' '; proofsheet_web::stripe::webhook::MAX_WEBHOOK_BYTES + 1];
    let (status, answer) = deliver(&client, &app, &oversized, Some("t=1,v1=00")).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "too_large", "{answer}");

    let response = client
        .get(format!("{admin_base}/metrics"))
        .send()
        .await
        .expect("metrics request");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("metrics body");
    let expected = [
        r#"proofsheet_stripe_webhook_events_total{event_type="checkout.session.completed",outcome="applied"} 1"#,
        r#"proofsheet_stripe_webhook_events_total{event_type="checkout.session.completed",outcome="duplicate"} 1"#,
        r#"proofsheet_stripe_webhook_events_total{event_type="other",outcome="unhandled_type"} 2"#,
        r#"proofsheet_stripe_webhook_events_total{event_type="payment_intent.succeeded",outcome="malformed"} 1"#,
        r#"proofsheet_stripe_webhook_events_total{event_type="unknown",outcome="bad_signature"} 1"#,
        r#"proofsheet_stripe_webhook_events_total{event_type="unknown",outcome="too_large"} 1"#,
        r#"proofsheet_http_requests_total{route="/webhooks/stripe",status_class="2xx"} 5"#,
        r#"proofsheet_http_requests_total{route="/webhooks/stripe",status_class="4xx"} 2"#,
    ];
    for line in expected {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line} in:\n{body}"
        );
    }
}

/// Counts the notices of `kind`, as the owner.
async fn notices_of(app: &common::TestApp, kind: &str) -> Vec<(String, Option<String>)> {
    let mut admin = admin(app).await;
    sqlx::query_as(
        "SELECT tenant_id::text, coalesce(invoice_id::text, stripe_event_id) FROM notices \
         WHERE kind = $1 ORDER BY created_at",
    )
    .bind(kind)
    .fetch_all(&mut admin)
    .await
    .expect("notices")
}

/// Delivers `body` `times` times at once.
async fn deliver_concurrently(app: &common::TestApp, body: &[u8], times: usize) -> Vec<Value> {
    let client = reqwest::Client::new();
    let deliveries = (0..times).map(|_| deliver_signed(&client, app, body));
    futures::future::join_all(deliveries)
        .await
        .into_iter()
        .map(|(status, answer)| {
            assert_eq!(status, 200, "{answer}");
            answer
        })
        .collect()
}

#[tokio::test]
async fn plan_payment_failure_queues_one_notice() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    deliver_signed(
        &client,
        &app,
        &fixture("05_customer.subscription.created.trialing.json"),
    )
    .await;

    let failed = fixture("07_invoice.payment_failed.json");
    let answers = deliver_concurrently(&app, &failed, 4).await;
    let applied = answers.iter().filter(|a| a["outcome"] == "applied").count();
    assert_eq!(applied, 1, "{answers:?}");
    let (_, again) = deliver_signed(&client, &app, &failed).await;
    assert_eq!(again["outcome"], "duplicate");

    let event_id = serde_json::from_slice::<Value>(&failed).expect("json")["id"].clone();
    let queued = notices_of(&app, "plan_payment_failed").await;
    assert_eq!(
        queued,
        vec![(STUDIO_B.to_owned(), event_id.as_str().map(str::to_owned))]
    );

    // An invoice of another subscription than the studio's current one.
    let mut old = event_from(
        "07_invoice.payment_failed.json",
        "evt_old_subscription_invoice",
    );
    old["data"]["object"]["parent"]["subscription_details"]["subscription"] = json!("sub_old");
    let (_, answer) = deliver_signed(&client, &app, old.to_string().as_bytes()).await;
    assert_eq!(answer["outcome"], "not_current_subscription");
    assert_eq!(notices_of(&app, "plan_payment_failed").await.len(), 1);
}

#[tokio::test]
async fn checkout_payment_queues_one_receipt() {
    let app = spawn_with_fixtures().await;
    let checkout = fixture("01_checkout.session.completed.json");
    let intent = fixture("02_payment_intent.succeeded.json");
    let client = reqwest::Client::new();
    let both =
        [&checkout, &intent, &checkout, &intent].map(|body| deliver_signed(&client, &app, body));
    let answers = futures::future::join_all(both).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
    }
    let marked = answers
        .iter()
        .filter(|(_, answer)| answer["outcome"] == "applied")
        .count();
    assert_eq!(marked, 1, "{answers:?}");

    let queued = notices_of(&app, "payment_receipt").await;
    assert_eq!(
        queued,
        vec![(STUDIO_A.to_owned(), Some(INVOICE_PAID.to_owned()))]
    );
    // A refund reported afterwards counts as applied and sends nothing more.
    let (_, refunded) = deliver_signed(&client, &app, &fixture("04_charge.refunded.json")).await;
    assert_eq!(refunded["outcome"], "refund_recorded");
    let metrics = &app.state.stripe.metrics;
    assert_eq!(metrics.count("charge.refunded", WebhookOutcome::Applied), 1);
    assert_eq!(notices_of(&app, "payment_receipt").await.len(), 1);
}

#[tokio::test]
async fn unstorable_events_are_acknowledged() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    // Studio A owns the customer, and studio B has none yet, so storing the
    // customer on B would break the one-studio-per-customer constraint.
    let mut admin = admin(&app).await;
    sqlx::query(
        "UPDATE tenants SET stripe_customer_id = CASE WHEN id = $1 THEN 'cus_of_studio_a' END",
    )
    .bind(uuid::Uuid::parse_str(STUDIO_A).expect("studio id"))
    .execute(&mut admin)
    .await
    .expect("set customers");

    let long_id = "evt_".to_owned() + &"x".repeat(20_000);
    let mut nul_in_id = event_from("02_payment_intent.succeeded.json", "evt_nul\u{0}id");
    nul_in_id["type"] = json!("payment_intent.succeeded");
    let long_id_event = event_from("02_payment_intent.succeeded.json", &long_id);
    let mut nul_in_type = event_from("02_payment_intent.succeeded.json", "evt_nul_type");
    nul_in_type["type"] = json!("payment_intent.succeeded\u{0}");
    let mut nul_in_code = event_from("03_payment_intent.payment_failed.json", "evt_nul_code");
    nul_in_code["data"]["object"]["last_payment_error"]["code"] = json!("card\u{0}declined");
    let mut nul_in_currency = event_from("02_payment_intent.succeeded.json", "evt_nul_currency");
    nul_in_currency["data"]["object"]["currency"] = json!("e\u{0}r");
    let mut other_customer = event_from(
        "08_customer.subscription.updated.active_to_past_due.json",
        "evt_other_customer",
    );
    other_customer["data"]["object"]["customer"] = json!("cus_of_studio_a");
    // Random hex does not compress, so an id this long is over PostgreSQL's
    // index row limit of about 8 KB.
    let long_object_id: String = std::iter::once("pi_".to_owned())
        .chain((0..300).map(|_| uuid::Uuid::new_v4().simple().to_string()))
        .collect();
    let mut long_payment_intent =
        event_from("01_checkout.session.completed.json", "evt_long_object_id");
    long_payment_intent["data"]["object"]["payment_intent"] = json!(long_object_id);

    // (event, id it is stored under or None, field named in the detail)
    let cases = [
        (nul_in_id, None, ""),
        (long_id_event, None, ""),
        (nul_in_type, Some("evt_nul_type"), "type"),
        (
            nul_in_code,
            Some("evt_nul_code"),
            "data.object.last_payment_error.code",
        ),
        (
            nul_in_currency,
            Some("evt_nul_currency"),
            "data.object.currency",
        ),
        (
            other_customer,
            Some("evt_other_customer"),
            "data.object.customer",
        ),
        (
            long_payment_intent,
            Some("evt_long_object_id"),
            "data.object",
        ),
    ];
    for (event, stored_id, field) in &cases {
        let (status, answer) = deliver_signed(&client, &app, event.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{field}: {answer}");
        assert_eq!(answer["outcome"], "malformed", "{field}");
        if let Some(id) = stored_id {
            let (outcome, detail) = event_record(&app, id).await;
            assert_eq!(outcome, "malformed", "{id}");
            let detail = detail.unwrap_or_default();
            assert!(detail.starts_with(&format!("{field}: ")), "{id}: {detail}");
        }
    }
    assert_eq!(count(&app, "stripe_events").await, 5);
    assert_eq!(count(&app, "payments").await, 0);
    let state = snapshot(&app).await;
    let studio_b = find(&state["tenants"], STUDIO_B);
    assert_eq!(studio_b["stripe_customer_id"], Value::Null);
    assert_eq!(studio_b["plan_status"], "trialing");
}

#[tokio::test]
async fn refund_first_queues_one_receipt() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    let order = [
        "04_charge.refunded.json",
        "01_checkout.session.completed.json",
        "02_payment_intent.succeeded.json",
    ];
    for name in order {
        let (status, answer) = deliver_signed(&client, &app, &fixture(name)).await;
        assert_eq!(status, 200, "{name}: {answer}");
    }
    let queued = notices_of(&app, "payment_receipt").await;
    assert_eq!(
        queued,
        vec![(STUDIO_A.to_owned(), Some(INVOICE_PAID.to_owned()))]
    );
}

#[tokio::test]
async fn cancelled_plan_gets_no_past_due_notice() {
    let app = spawn_with_fixtures().await;
    let client = reqwest::Client::new();
    for name in [
        "05_customer.subscription.created.trialing.json",
        "09_customer.subscription.deleted.canceled.json",
    ] {
        let (status, answer) = deliver_signed(&client, &app, &fixture(name)).await;
        assert_eq!(status, 200, "{name}: {answer}");
    }
    let state = snapshot(&app).await;
    assert_eq!(
        find(&state["tenants"], STUDIO_B)["plan_status"],
        "cancelled"
    );

    let failed = fixture("07_invoice.payment_failed.json");
    let (status, answer) = deliver_signed(&client, &app, &failed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "plan_cancelled");
    assert!(notices_of(&app, "plan_payment_failed").await.is_empty());
}
