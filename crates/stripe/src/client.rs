//! A small Stripe API client: the calls Proofsheet makes, form-encoded the
//! way Stripe's API expects (`a[b][c]=v`), over reqwest with rustls on ring.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::event::{Account, CheckoutSession, List};

/// Time limit of one API call, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A failed API call. Messages carry Stripe's error type and message, never
/// the secret key.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("the Stripe API request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the Stripe API answered {status}: {kind}: {message}")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("the Stripe API answer could not be read: {0}")]
    Decode(String),
}

/// A client for one platform account.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: Url,
    secret_key: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// An account onboarding link.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountLink {
    pub url: String,
    pub expires_at: i64,
}

/// A created Billing customer.
#[derive(Clone, Debug, Deserialize)]
pub struct Customer {
    pub id: String,
}

/// A Stripe Billing customer portal session, where a studio updates its
/// card or cancels its plan.
#[derive(Clone, Debug, Deserialize)]
pub struct BillingPortalSession {
    pub id: String,
    /// Short-lived URL of the portal page; send the studio there at once.
    pub url: String,
}

/// What a client pays for an invoice through Checkout.
#[derive(Clone, Debug)]
pub struct InvoiceCheckout<'a> {
    /// The studio's connected account; the charge is made on it.
    pub account: &'a str,
    pub tenant_id: &'a str,
    pub invoice_id: &'a str,
    pub description: &'a str,
    pub amount_minor: i64,
    /// ISO 4217 code; sent lowercase as Stripe expects.
    pub currency: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Start of the idempotency key. The client appends a hash of the
    /// account and the request parameters, because Stripe rejects a key
    /// reused with other parameters (400 `idempotency_error`) for 24 hours.
    /// The same prefix and parameters get the same session back.
    pub idempotency_prefix: &'a str,
}

/// What a studio subscribes to through Checkout.
#[derive(Clone, Debug)]
pub struct PlanCheckout<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    pub tenant_id: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub idempotency_key: &'a str,
}

/// Returns the first 128 bits of the SHA-256 of the account and form
/// parameters, in hex. Each part goes in after its length, so distinct
/// parameter lists never feed the hash the same bytes.
fn request_hash(account: &str, form: &[(String, String)]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let parts = form
        .iter()
        .flat_map(|(name, value)| [name.as_str(), value.as_str()]);
    for part in std::iter::once(account).chain(parts) {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    hex::encode(&context.finish().as_ref()[..16])
}

impl StripeClient {
    /// Builds a client for the API at `base` (normally
    /// `https://api.stripe.com`) with the platform's secret key.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(base: Url, secret_key: String) -> Result<Self, StripeError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent("proofsheet")
            .build()?;
        Ok(Self {
            http,
            base,
            secret_key,
        })
    }

    /// Creates a Standard connected account for a studio.
    pub async fn create_account(&self, tenant_id: &str) -> Result<Account, StripeError> {
        let form = vec![
            ("type".to_owned(), "standard".to_owned()),
            ("metadata[studio_id]".to_owned(), tenant_id.to_owned()),
        ];
        self.post(
            "/v1/accounts",
            None,
            Some(&format!("account-{tenant_id}")),
            &form,
        )
        .await
    }

    /// Creates an onboarding link for a connected account.
    pub async fn create_account_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<AccountLink, StripeError> {
        let form = vec![
            ("account".to_owned(), account.to_owned()),
            ("type".to_owned(), "account_onboarding".to_owned()),
            ("refresh_url".to_owned(), refresh_url.to_owned()),
            ("return_url".to_owned(), return_url.to_owned()),
        ];
        self.post("/v1/account_links", None, None, &form).await
    }

    /// Reads a connected account's state.
    pub async fn retrieve_account(&self, account: &str) -> Result<Account, StripeError> {
        self.get(&format!("/v1/accounts/{account}"), None, &[])
            .await
    }

    /// Creates a Checkout Session for an invoice on the studio's connected
    /// account. The invoice and studio ids go into the metadata of the
    /// session and of its PaymentIntent, so every event of the payment
    /// names them.
    pub async fn create_invoice_checkout(
        &self,
        checkout: &InvoiceCheckout<'_>,
    ) -> Result<CheckoutSession, StripeError> {
        let mut form = vec![
            ("mode".to_owned(), "payment".to_owned()),
            ("success_url".to_owned(), checkout.success_url.to_owned()),
            ("cancel_url".to_owned(), checkout.cancel_url.to_owned()),
            (
                "client_reference_id".to_owned(),
                checkout.invoice_id.to_owned(),
            ),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
            (
                "line_items[0][price_data][currency]".to_owned(),
                checkout.currency.to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]".to_owned(),
                checkout.amount_minor.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]".to_owned(),
                checkout.description.to_owned(),
            ),
        ];
        for prefix in ["metadata", "payment_intent_data[metadata]"] {
            form.push((
                format!("{prefix}[studio_id]"),
                checkout.tenant_id.to_owned(),
            ));
            form.push((
                format!("{prefix}[invoice_id]"),
                checkout.invoice_id.to_owned(),
            ));
        }
        let idempotency_key = format!(
            "{}-{}",
            checkout.idempotency_prefix,
            request_hash(checkout.account, &form)
        );
        self.post(
            "/v1/checkout/sessions",
            Some(checkout.account),
            Some(&idempotency_key),
            &form,
        )
        .await
    }

    /// Expires an open Checkout Session on a connected account, so it can no
    /// longer be paid, and returns the session. When Stripe rejects the call
    /// with 400 because the session is no longer open, returns the session
    /// as Stripe holds it, so its `status` tells whether it was completed
    /// (paid) or had already expired.
    pub async fn expire_checkout_session(
        &self,
        account: &str,
        session_id: &str,
    ) -> Result<CheckoutSession, StripeError> {
        let path = session_path(session_id)?;
        match self
            .post(&format!("{path}/expire"), Some(account), None, &[])
            .await
        {
            Err(StripeError::Api { status: 400, .. }) => self.get(&path, Some(account), &[]).await,
            other => other,
        }
    }

    /// Creates the Billing customer of a studio.
    pub async fn create_customer(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Customer, StripeError> {
        let form = vec![
            ("name".to_owned(), name.to_owned()),
            ("metadata[studio_id]".to_owned(), tenant_id.to_owned()),
        ];
        self.post(
            "/v1/customers",
            None,
            Some(&format!("customer-{tenant_id}")),
            &form,
        )
        .await
    }

    /// Creates a subscription Checkout Session for the studio's plan. The
    /// studio id goes into the subscription's metadata, so its events name it.
    pub async fn create_plan_checkout(
        &self,
        checkout: &PlanCheckout<'_>,
    ) -> Result<CheckoutSession, StripeError> {
        let form = vec![
            ("mode".to_owned(), "subscription".to_owned()),
            ("customer".to_owned(), checkout.customer.to_owned()),
            ("success_url".to_owned(), checkout.success_url.to_owned()),
            ("cancel_url".to_owned(), checkout.cancel_url.to_owned()),
            (
                "client_reference_id".to_owned(),
                checkout.tenant_id.to_owned(),
            ),
            ("line_items[0][price]".to_owned(), checkout.price.to_owned()),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
            (
                "subscription_data[metadata][studio_id]".to_owned(),
                checkout.tenant_id.to_owned(),
            ),
            (
                "metadata[studio_id]".to_owned(),
                checkout.tenant_id.to_owned(),
            ),
        ];
        self.post(
            "/v1/checkout/sessions",
            None,
            Some(checkout.idempotency_key),
            &form,
        )
        .await
    }

    /// Creates a Billing customer portal session for the studio's Billing
    /// customer; Stripe sends the studio back to `return_url` when it leaves.
    pub async fn create_billing_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<BillingPortalSession, StripeError> {
        let form = vec![
            ("customer".to_owned(), customer.to_owned()),
            ("return_url".to_owned(), return_url.to_owned()),
        ];
        self.post("/v1/billing_portal/sessions", None, None, &form)
            .await
    }

    /// Lists the Checkout Sessions of a connected account created at or
    /// after `created_gte` (Unix seconds), newest first, following pages up
    /// to `max_sessions`.
    pub async fn list_checkout_sessions(
        &self,
        account: &str,
        created_gte: i64,
        max_sessions: usize,
    ) -> Result<Vec<CheckoutSession>, StripeError> {
        let mut sessions: Vec<CheckoutSession> = Vec::new();
        loop {
            let mut query = vec![
                ("limit".to_owned(), "100".to_owned()),
                ("created[gte]".to_owned(), created_gte.to_string()),
                // The latest charge's `created` is when the payment
                // succeeded; the session's own `created` is earlier.
                (
                    "expand[]".to_owned(),
                    "data.payment_intent.latest_charge".to_owned(),
                ),
            ];
            if let Some(last) = sessions.last() {
                query.push(("starting_after".to_owned(), last.id.clone()));
            }
            let page: List<CheckoutSession> = self
                .get("/v1/checkout/sessions", Some(account), &query)
                .await?;
            let done = !page.has_more || page.data.is_empty();
            sessions.extend(page.data);
            if done || sessions.len() >= max_sessions {
                return Ok(sessions);
            }
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        account: Option<&str>,
        idempotency_key: Option<&str>,
        form: &[(String, String)],
    ) -> Result<T, StripeError> {
        let mut request = self
            .http
            .post(self.url(path)?)
            .bearer_auth(&self.secret_key)
            .form(form);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        decode(request.send().await?).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        account: Option<&str>,
        query: &[(String, String)],
    ) -> Result<T, StripeError> {
        let mut request = self
            .http
            .get(self.url(path)?)
            .bearer_auth(&self.secret_key)
            .query(query);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        decode(request.send().await?).await
    }

    fn url(&self, path: &str) -> Result<Url, StripeError> {
        self.base
            .join(path)
            .map_err(|e| StripeError::Decode(format!("invalid API path {path}: {e}")))
    }
}

/// Builds the API path of a Checkout Session, rejecting ids that are not a
/// single path segment of letters, digits and underscores as Stripe issues
/// them.
fn session_path(session_id: &str) -> Result<String, StripeError> {
    let valid = !session_id.is_empty()
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(StripeError::Decode(format!(
            "invalid Checkout Session id {session_id:?}"
        )));
    }
    Ok(format!("/v1/checkout/sessions/{session_id}"))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, StripeError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|body| body.error)
            .unwrap_or(ErrorDetail {
                kind: "unknown".to_owned(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            });
        return Err(StripeError::Api {
            status: status.as_u16(),
            kind: detail.kind,
            message: detail.message,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| StripeError::Decode(e.to_string()))
}
