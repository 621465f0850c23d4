//! `POST /webhooks/stripe`: verifies the signature over the raw body, then
//! applies the event in one short transaction and responds.
//!
//! Responses: 200 for an event applied, already applied, or acknowledged
//! without effect. Acknowledged events include unknown types, unknown
//! studios, and signed bodies whose shape does not fit or whose strings
//! cannot be stored (a NUL character, an id over 255 bytes), which a retry
//! would not fix. A missing, bad or stale signature gets 400, before any database
//! access. Stripe delivers the event again after a 503, sent when webhooks
//! are not configured or applying timed out, and after a 500 on a database
//! failure.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proofsheet_config::Secret;
use proofsheet_stripe::{Event, signature};
use serde_json::json;

use super::apply::{self, Applied, Malformed};
use super::storable::{self, Unstorable};
use super::{StripeState, UNKNOWN_EVENT_TYPE, WebhookOutcome};
use crate::AppState;
use crate::error::ApiError;

/// Largest webhook body accepted. Stripe's event payloads are a few KiB.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// Time limit for applying one event. Stripe waits for a response for a
/// limited time and then counts the delivery as failed. Responding 503 before
/// that lets it retry sooner, and the rolled-back transaction leaves nothing.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles one webhook delivery.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let stripe = &state.stripe;
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejected_body(stripe, &rejection),
    };
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
        stripe
            .metrics
            .record(UNKNOWN_EVENT_TYPE, WebhookOutcome::BadSignature);
        tracing::warn!(reason = %e, "rejected a Stripe webhook request");
        return ApiError::BadRequest(e.to_string()).into_response();
    }
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match storable::check(&envelope) {
        None => {}
        Some(Unstorable::Field(malformed)) => {
            return unreadable_event(&state, &body, &malformed).await;
        }
        Some(Unstorable::Id { logged_id, reason }) => {
            stripe
                .metrics
                .record(UNKNOWN_EVENT_TYPE, WebhookOutcome::Malformed);
            tracing::warn!(
                event.id = %logged_id,
                reason,
                "a signed Stripe event has an id that cannot be stored; acknowledged, not recorded"
            );
            return acknowledged(Applied::Malformed.as_str());
        }
    }
    let event = match parse_event(&body) {
        Ok(event) => event,
        Err(malformed) => return unreadable_event(&state, &body, &malformed).await,
    };

    let applied = tokio::time::timeout(APPLY_TIMEOUT, apply::apply(&state, &event)).await;
    let outcome = match applied {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            if let Some(malformed) = data_rejected_by_database(&e) {
                return unreadable_event(&state, &body, &malformed).await;
            }
            stripe
                .metrics
                .record(&event.event_type, WebhookOutcome::Failed);
            tracing::error!(
                event.id = %event.id,
                event.type = %event.event_type,
                error = format!("{e:#}"),
                "applying a Stripe event failed; Stripe will deliver it again"
            );
            return ApiError::Internal(e).into_response();
        }
        Err(_) => {
            stripe
                .metrics
                .record(&event.event_type, WebhookOutcome::Failed);
            tracing::error!(
                event.id = %event.id,
                event.type = %event.event_type,
                "applying a Stripe event timed out; Stripe will deliver it again"
            );
            return unavailable("applying the event timed out; deliver it again");
        }
    };

    stripe.metrics.record(&event.event_type, outcome.metric());
    tracing::info!(
        event.id = %event.id,
        event.type = %event.event_type,
        outcome = outcome.as_str(),
        "Stripe event received"
    );
    acknowledged(outcome.as_str())
}

/// Responds to a body that could not be read, usually one over
/// [`MAX_WEBHOOK_BYTES`], in the JSON error shape of the other webhook
/// errors, and counts it.
fn rejected_body(stripe: &StripeState, rejection: &BytesRejection) -> Response {
    let status = rejection.status();
    let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE {
        WebhookOutcome::TooLarge
    } else {
        WebhookOutcome::Failed
    };
    stripe.metrics.record(UNKNOWN_EVENT_TYPE, outcome);
    tracing::warn!(
        status = status.as_u16(),
        reason = %rejection.body_text(),
        "rejected a Stripe webhook body that could not be read"
    );
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(format!(
            "the webhook body is larger than the limit of {MAX_WEBHOOK_BYTES} bytes"
        ))
        .into_response();
    }
    let body = json!({ "error": { "code": "bad_request", "field": null, "message": rejection.body_text() } });
    (status, Json(body)).into_response()
}

fn acknowledged(outcome: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({ "received": true, "outcome": outcome })),
    )
        .into_response()
}

/// Parses the event envelope, naming the field that does not fit.
fn parse_event(body: &[u8]) -> Result<Event, Malformed> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| Malformed::from_path_error("", &error))
}

/// Acknowledges a signed body that is not a readable event, because Stripe
/// would send the same bytes again on every retry. The event is recorded as
/// malformed when the body has an `id`. Without one there is nothing to
/// record it under, so it is only logged and counted.
async fn unreadable_event(state: &crate::AppState, body: &[u8], malformed: &Malformed) -> Response {
    let stripe: &StripeState = &state.stripe;
    let envelope: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let event_type = envelope["type"]
        .as_str()
        .filter(|event_type| storable::is_storable_id(event_type))
        .unwrap_or(UNKNOWN_EVENT_TYPE);
    let Some(event_id) = envelope["id"].as_str() else {
        stripe.metrics.record(event_type, WebhookOutcome::Malformed);
        tracing::warn!(
            event.type = event_type,
            field = %malformed.field,
            reason = %malformed.reason,
            "a signed Stripe webhook body is not an event and has no id; acknowledged, not recorded"
        );
        return acknowledged(Applied::Malformed.as_str());
    };
    let created = envelope["created"].as_i64().unwrap_or(0);
    match apply::record_malformed(state, event_id, event_type, created, malformed).await {
        Ok(outcome) => {
            stripe.metrics.record(event_type, outcome.metric());
            acknowledged(outcome.as_str())
        }
        Err(e) => {
            stripe.metrics.record(event_type, WebhookOutcome::Failed);
            tracing::error!(
                event.id = event_id,
                event.type = event_type,
                error = format!("{e:#}"),
                "recording a malformed Stripe event failed; Stripe will deliver it again"
            );
            ApiError::Internal(e).into_response()
        }
    }
}

/// SQLSTATEs that PostgreSQL returns because of the data itself, so every
/// delivery of the same event fails the same way. They cover row-level
/// security (another studio's row), a value too long for an index or a
/// column, a character PostgreSQL cannot store, a number out of range and a
/// failed CHECK. A unique violation is not among them, because a concurrent
/// delivery can cause it and a retry then succeeds.
const DATA_REJECTED_STATES: [&str; 7] = [
    "42501", "54000", "22001", "22021", "22P05", "22003", "23514",
];

/// Returns the event as malformed when applying it failed on one of
/// [`DATA_REJECTED_STATES`], because Stripe would otherwise deliver it again
/// for days with the same result.
fn data_rejected_by_database(error: &anyhow::Error) -> Option<Malformed> {
    let database = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<sqlx::Error>())?
        .as_database_error()?;
    let code = database.code()?;
    if !DATA_REJECTED_STATES.contains(&code.as_ref()) {
        return None;
    }
    Some(Malformed {
        field: "data.object".to_owned(),
        reason: format!(
            "the database rejected a value of this event (SQLSTATE {code}): {}",
            database.message()
        ),
    })
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
