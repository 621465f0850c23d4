//! Stripe on the web service: the webhook endpoint, studios connecting
//! their own Stripe account, and studios subscribing to their plan.
//!
//! Without `STRIPE_SECRET_KEY` every Stripe feature is off: the settings
//! page states it, invoices are marked paid by hand, and the webhook
//! endpoint responds 503.

pub mod apply;
pub mod billing;
pub mod expire;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

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
    /// Counts of webhook requests by what happened to them.
    pub counters: WebhookCounters,
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
            counters: WebhookCounters::default(),
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

/// Webhook request counts since start-up, by outcome.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    /// Requests rejected for a missing, bad or stale signature.
    pub rejected: AtomicU64,
    /// Events whose effect was applied.
    pub applied: AtomicU64,
    /// Events acknowledged without an effect: already reflected, older than
    /// the current state, or for a studio or invoice that does not exist.
    pub ignored: AtomicU64,
    /// Event types this service does not handle, acknowledged.
    pub unhandled_type: AtomicU64,
    /// Deliveries of an event id that was already recorded.
    pub duplicate: AtomicU64,
    /// Deliveries that failed on our side and were answered 5xx, so Stripe
    /// retries them.
    pub failed: AtomicU64,
}

impl WebhookCounters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
