//! Stripe on the web service: the webhook endpoint, studios connecting
//! their own Stripe account, and studios subscribing to their plan.
//!
//! Without `STRIPE_SECRET_KEY` every Stripe feature is off: the settings
//! page states it, invoices are marked paid by hand, and the webhook
//! endpoint responds 503.

pub mod apply;
pub mod billing;
pub mod expire;
pub mod storable;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use proofsheet_config::{Config, Secret};
use proofsheet_stripe::StripeClient;

/// Stripe handles of the web service.
#[derive(Debug)]
pub struct StripeState {
    /// The API client; `None` when Stripe is not configured.
    pub client: Option<StripeClient>,
    /// The plan's price, for plan subscriptions.
    pub plan_price: Option<String>,
    /// Signing secrets of the platform and Connect webhook endpoints, the
    /// ones configured; empty turns the webhook endpoint off.
    webhook_secrets: Vec<Secret>,
    /// Counts of webhook requests by event type and outcome.
    pub metrics: WebhookMetrics,
    /// Unix seconds that signature checks compare against; 0 means the
    /// system clock. Tests set it to replay recorded deliveries.
    fixed_now: AtomicI64,
}

impl StripeState {
    /// Builds the Stripe handles from the configuration.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let (client, webhook_secrets, plan_price) = match &config.stripe {
            Some(stripe) => (
                Some(StripeClient::new(
                    stripe.api_base.clone(),
                    stripe.secret_key.expose().to_owned(),
                )?),
                [&stripe.webhook_secret, &stripe.connect_webhook_secret]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                stripe.plan_price.clone(),
            ),
            None => (None, Vec::new(), None),
        };
        Ok(Self {
            client,
            plan_price,
            webhook_secrets,
            metrics: WebhookMetrics::default(),
            fixed_now: AtomicI64::new(0),
        })
    }

    /// Builds the Stripe handles for `config`, shared.
    pub fn shared(config: &Config) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self::from_config(config)?))
    }

    /// Makes signature checks compare against `unix_seconds` instead of the
    /// system clock; `None` returns to the system clock.
    pub fn set_fixed_now(&self, unix_seconds: Option<i64>) {
        self.fixed_now
            .store(unix_seconds.unwrap_or(0), Ordering::Relaxed);
    }

    pub(crate) fn now(&self) -> i64 {
        match self.fixed_now.load(Ordering::Relaxed) {
            0 => chrono::Utc::now().timestamp(),
            fixed => fixed,
        }
    }

    pub(crate) fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }
}

/// The outcome of a webhook request, as the `outcome` label of
/// [`WebhookMetrics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The event's effect was applied.
    Applied,
    /// Acknowledged without an effect: already reflected, older than the
    /// current state, or for a studio or invoice that does not exist.
    Ignored,
    /// An event type this service does not handle, acknowledged.
    UnhandledType,
    /// A delivery of an event id that was already recorded.
    Duplicate,
    /// A signed event whose shape does not fit its type, acknowledged and
    /// recorded with the reason.
    Malformed,
    /// A missing, bad or stale signature, rejected with 400.
    BadSignature,
    /// A body over the size limit, rejected with 413.
    TooLarge,
    /// A failure on our side, responded to with 5xx so that Stripe retries.
    Failed,
}

impl WebhookOutcome {
    /// Returns the label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::UnhandledType => "unhandled_type",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Malformed => "malformed",
            WebhookOutcome::BadSignature => "bad_signature",
            WebhookOutcome::TooLarge => "too_large",
            WebhookOutcome::Failed => "failed",
        }
    }
}

/// Event type label of requests whose type is not known: bad signatures,
/// whose body is not trusted, and bodies without a `type`.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

/// Event type label of signed events of a type not in
/// [`LABELLED_EVENT_TYPES`], so that senders cannot grow the set of labels.
pub const OTHER_EVENT_TYPE: &str = "other";

/// Event types that get their own label: the types the webhook handles.
pub const LABELLED_EVENT_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "account.updated",
    "invoice.payment_failed",
    "invoice.paid",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    event_type: String,
    outcome: &'static str,
}

/// Webhook requests since start-up, by event type and outcome, exported as
/// `proofsheet_stripe_webhook_events_total`.
#[derive(Clone, Debug, Default)]
pub struct WebhookMetrics {
    events: Family<WebhookLabels, Counter>,
}

impl WebhookMetrics {
    /// Adds the counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "stripe_webhook_events",
            "Stripe webhook requests, by event type and outcome",
            self.events.clone(),
        );
    }

    /// Adds one request of `event_type` with `outcome`.
    pub fn record(&self, event_type: &str, outcome: WebhookOutcome) {
        self.events
            .get_or_create(&labels(event_type, outcome))
            .inc();
    }

    /// Returns the count of one event type and outcome.
    pub fn count(&self, event_type: &str, outcome: WebhookOutcome) -> u64 {
        self.events
            .get_or_create(&labels(event_type, outcome))
            .get()
    }
}

fn labels(event_type: &str, outcome: WebhookOutcome) -> WebhookLabels {
    let known = event_type == UNKNOWN_EVENT_TYPE || LABELLED_EVENT_TYPES.contains(&event_type);
    let event_type = if known { event_type } else { OTHER_EVENT_TYPE };
    WebhookLabels {
        event_type: event_type.to_owned(),
        outcome: outcome.as_str(),
    }
}
