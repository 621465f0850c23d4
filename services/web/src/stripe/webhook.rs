//! `POST /webhooks/stripe`: verifies the signature over the raw body, then
//! applies the event in one short transaction and responds.
//!
//! Responses: 200 for an event applied, already applied, or acknowledged
//! without effect (unknown type, unknown studio); 400 for a missing, bad or
//! stale signature or a body that is not an event, before any database
//! access; 503 when webhooks are not configured or applying timed out, and
//! 500 on a database failure, so that Stripe delivers the event again.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proofsheet_config::Secret;
use proofsheet_stripe::{Event, signature};
use serde_json::json;

use super::WebhookCounters;
use super::apply::{self, Applied};
use crate::AppState;
use crate::error::ApiError;

/// Largest webhook body accepted. Stripe's event payloads are a few KiB.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// Time limit for applying one event. Stripe waits for a response for a
/// limited time and then counts the delivery as failed. Responding 503 before
/// that lets it retry sooner, and the rolled-back transaction leaves nothing.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles one webhook delivery.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let stripe = &state.stripe;
    let secrets = stripe.webhook_secrets();
    if secrets.is_empty() {
        return unavailable(
            "Stripe webhooks are not configured on this server; set STRIPE_WEBHOOK_SECRET \
             and STRIPE_CONNECT_WEBHOOK_SECRET",
        );
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    if let Err(e) = verify_any(header, &body, secrets, stripe.now()) {
        WebhookCounters::bump(&stripe.counters.rejected);
        tracing::warn!(reason = %e, "rejected a Stripe webhook request");
        return ApiError::BadRequest(e.to_string()).into_response();
    }
    let event = match Event::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            WebhookCounters::bump(&stripe.counters.rejected);
            tracing::warn!(error = %e, "a signed Stripe webhook body is not an event");
            return ApiError::BadRequest(format!("the body is not a Stripe event: {e}"))
                .into_response();
        }
    };

    let applied = tokio::time::timeout(APPLY_TIMEOUT, apply::apply(&state, &event)).await;
    let outcome = match applied {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            WebhookCounters::bump(&stripe.counters.failed);
            tracing::error!(
                event.id = %event.id,
                event.type = %event.event_type,
                error = format!("{e:#}"),
                "applying a Stripe event failed; Stripe will deliver it again"
            );
            return ApiError::Internal(e).into_response();
        }
        Err(_) => {
            WebhookCounters::bump(&stripe.counters.failed);
            tracing::error!(
                event.id = %event.id,
                event.type = %event.event_type,
                "applying a Stripe event timed out; Stripe will deliver it again"
            );
            return unavailable("applying the event timed out; deliver it again");
        }
    };

    let counter = match outcome {
        Applied::Applied(_) => &stripe.counters.applied,
        Applied::Ignored(_) => &stripe.counters.ignored,
        Applied::UnhandledType => &stripe.counters.unhandled_type,
        Applied::Duplicate => &stripe.counters.duplicate,
    };
    WebhookCounters::bump(counter);
    tracing::info!(
        event.id = %event.id,
        event.type = %event.event_type,
        outcome = outcome.as_str(),
        "Stripe event received"
    );
    (
        StatusCode::OK,
        Json(json!({ "received": true, "outcome": outcome.as_str() })),
    )
        .into_response()
}

fn unavailable(message: &str) -> Response {
    let body = json!({ "error": { "code": "unavailable", "field": null, "message": message } });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Verifies the signature against each configured endpoint secret, because
/// Stripe signs platform and Connect events with different secrets. Returns
/// the first secret's error when none matches, and
/// [`signature::SignatureError::Mismatch`] when no secret is configured.
fn verify_any(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Secret],
    now: i64,
) -> Result<(), signature::SignatureError> {
    let mut first_error = None;
    for secret in secrets {
        match signature::verify(header, body, secret.expose(), now) {
            Ok(_) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(signature::SignatureError::Mismatch))
}
