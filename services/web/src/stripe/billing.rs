//! The studio's side of Stripe on the settings page: connecting its own
//! Stripe account (Connect onboarding through an account link), subscribing
//! to its plan (a Billing Checkout Session) and managing that subscription
//! (a Billing customer portal session).
//!
//! Every action that creates something at Stripe or in the database is a
//! POST checked against the CSRF token. The GET pages that Stripe sends the
//! studio back to only show state and a button.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use proofsheet_domain::db::stripe as store;
use proofsheet_domain::db::tenants::{self, Tenant};
use proofsheet_domain::plan::{self, PlanStanding};
use proofsheet_stripe::StripeClient;

use crate::AppState;
use crate::auth::{StudioUser, csrf_token, verify_csrf};
use crate::error::PageError;
use crate::pages::render;

/// A form that carries only the CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

fn client(state: &AppState) -> Result<&StripeClient, PageError> {
    state.stripe.client.as_ref().ok_or_else(|| {
        PageError::new(
            StatusCode::CONFLICT,
            "Stripe is not set up",
            "Stripe is not configured on this server (STRIPE_SECRET_KEY is unset). \
             Invoices can still be marked paid by hand.",
        )
    })
}

fn stripe_failed(e: proofsheet_stripe::StripeError) -> PageError {
    tracing::error!(error = %e, "a Stripe API call failed");
    PageError::new(
        StatusCode::BAD_GATEWAY,
        "Stripe did not answer",
        "Stripe could not be reached or rejected the request. Try again in a moment.",
    )
}

fn web_url(state: &AppState, path: &str) -> String {
    let base = state.config.public_web_url.as_str().trim_end_matches('/');
    format!("{base}{path}")
}

/// `POST /settings/stripe/connect`: creates the studio's connected account
/// on first use, then sends the studio to Stripe's onboarding.
pub async fn connect(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    onboarding_redirect(&state, user).await
}

/// `GET /settings/stripe/refresh`: Stripe sends the studio here when an
/// onboarding link expired or was already used. The page changes nothing
/// and calls no Stripe API, because a cross-site link can make a browser
/// send this GET with the session cookie. Its button posts to
/// `/settings/stripe/connect` with the CSRF token for a fresh link.
pub async fn refresh(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let studio = tenants::current(&mut tx).await?;
    tx.commit().await?;
    let (jar, token) = csrf_token(jar, state.config.cookie_secure);
    let mut context = tera::Context::new();
    context.insert("csrf_token", &token);
    context.insert("studio_name", &studio.name);
    Ok((jar, render(&state, "stripe_refresh.html", &context)?).into_response())
}

async fn onboarding_redirect(state: &AppState, user: StudioUser) -> Result<Response, PageError> {
    let client = client(state)?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let existing = store::account(&mut tx).await?.stripe_account_id;
    tx.commit().await?;
    let account = match existing {
        Some(account) => account,
        None => {
            let created = client
                .create_account(&user.tenant_id.to_string())
                .await
                .map_err(stripe_failed)?;
            let mut tx = state.db.tenant(user.tenant_id).await?;
            store::set_connected_account(&mut tx, &created.id).await?;
            tx.commit().await?;
            tracing::info!(tenant.id = %user.tenant_id, "Stripe account created for the studio");
            created.id
        }
    };
    let link = client
        .create_account_link(
            &account,
            &web_url(state, "/settings/stripe/refresh"),
            &web_url(state, "/settings/stripe/return"),
        )
        .await
        .map_err(stripe_failed)?;
    Ok(Redirect::to(&link.url).into_response())
}

/// `GET /settings/stripe/return`: the studio is back from onboarding; reads
/// the account's state from Stripe and shows the settings page.
pub async fn onboarding_return(
    State(state): State<AppState>,
    user: StudioUser,
) -> Result<Response, PageError> {
    let client = client(&state)?;
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let account = store::account(&mut tx).await?.stripe_account_id;
    tx.commit().await?;
    if let Some(account) = account {
        let found = client
            .retrieve_account(&account)
            .await
            .map_err(stripe_failed)?;
        let mut tx = state.db.tenant(user.tenant_id).await?;
        store::set_account_state(
            &mut tx,
            &account,
            found.charges_enabled,
            found.details_submitted,
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Redirect::to("/settings").into_response())
}

/// Loads the studio and its Billing customer id, if it has one.
async fn studio_and_customer(
    state: &AppState,
    user: StudioUser,
) -> Result<(Tenant, Option<String>), PageError> {
    let mut tx = state.db.tenant(user.tenant_id).await?;
    let studio = tenants::current(&mut tx).await?;
    let customer = store::account(&mut tx).await?.stripe_customer_id;
    tx.commit().await?;
    Ok((studio, customer))
}

/// `POST /settings/plan/subscribe`: sends the studio to a Stripe Checkout
/// Session for its plan. The plan state then follows the subscription's
/// webhooks.
pub async fn subscribe(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let client = client(&state)?;
    let price = state.stripe.plan_price.as_deref().ok_or_else(|| {
        PageError::new(
            StatusCode::CONFLICT,
            "Plan not available",
            "No plan price is configured on this server (STRIPE_PLAN_PRICE is unset).",
        )
    })?;
    let tenant = user.tenant_id.to_string();
    let (studio, customer) = studio_and_customer(&state, user).await?;
    // The hourly idempotency key below only merges double clicks, so this
    // check is what keeps a studio with a live subscription from starting
    // another.
    // NOTE: the check reads the plan state that webhooks store, so a
    // subscription whose webhook has not arrived yet is not seen here.
    plan::check_may_subscribe(&studio, chrono::Utc::now())?;
    let customer = match customer {
        Some(customer) => customer,
        None => {
            let created = client
                .create_customer(&tenant, &studio.name)
                .await
                .map_err(stripe_failed)?;
            let mut tx = state.db.tenant(user.tenant_id).await?;
            store::set_customer(&mut tx, &created.id).await?;
            tx.commit().await?;
            created.id
        }
    };
    // One session per studio and hour: a double click reuses the session.
    let hour = chrono::Utc::now().timestamp() / 3600;
    let key = format!("plan-{tenant}-{hour}");
    let session = client
        .create_plan_checkout(&proofsheet_stripe::client::PlanCheckout {
            customer: &customer,
            price,
            tenant_id: &tenant,
            success_url: &web_url(&state, "/settings?plan=processing"),
            cancel_url: &web_url(&state, "/settings"),
            idempotency_key: &key,
        })
        .await
        .map_err(stripe_failed)?;
    let url = session.url.ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "Stripe did not answer",
            "Stripe created no payment page. Try again in a moment.",
        )
    })?;
    Ok(Redirect::to(&url).into_response())
}

/// `POST /settings/plan/manage`: sends a studio with a live subscription to
/// Stripe's Billing customer portal, where it updates its card or cancels.
/// Stripe sends it back to the plan section of the settings page.
pub async fn manage_billing(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    verify_csrf(&jar, &form.csrf_token)?;
    let client = client(&state)?;
    let (studio, customer) = studio_and_customer(&state, user).await?;
    let customer = customer
        .filter(|_| plan::has_live_subscription(&studio))
        .ok_or_else(|| {
            PageError::new(
                StatusCode::CONFLICT,
                "No subscription to manage",
                "The studio has no plan subscription yet, so there is no billing to manage. \
                 Subscribe under Settings → Plan first.",
            )
        })?;
    let session = client
        .create_billing_portal_session(&customer, &web_url(&state, "/settings#plan"))
        .await
        .map_err(stripe_failed)?;
    tracing::info!(tenant.id = %user.tenant_id, "Billing portal session created for the studio");
    Ok(Redirect::to(&session.url).into_response())
}

/// The Stripe part of the settings page.
#[derive(Debug, serde::Serialize)]
pub struct SettingsView {
    /// Whether Stripe is configured on this server.
    pub enabled: bool,
    /// `not_connected`, `onboarding` (account created, cannot take payments
    /// yet) or `connected`.
    pub account_state: &'static str,
    pub details_submitted: bool,
    /// Whether a plan price is configured, so the studio can subscribe.
    pub plan_available: bool,
    /// End of the current billing period, as a date.
    pub plan_period_end: Option<String>,
    /// The plan with the trial's end applied, as [`PlanStanding::as_str`]
    /// names it.
    pub plan_standing: &'static str,
    /// Whether the page offers "Subscribe": a plan price is configured and
    /// the studio has no live subscription.
    pub may_subscribe: bool,
    /// Whether the page offers "Manage billing": the studio has a live
    /// subscription and a Billing customer.
    pub may_manage_billing: bool,
}

impl SettingsView {
    /// Loads the Stripe state of `studio` inside its transaction.
    pub async fn load(
        state: &AppState,
        tx: &mut proofsheet_domain::db::TenantTx,
        studio: &Tenant,
    ) -> Result<Self, PageError> {
        let now = chrono::Utc::now();
        let account = store::account(tx).await?;
        let account_state = match (&account.stripe_account_id, account.charges_enabled) {
            (None, _) => "not_connected",
            (Some(_), false) => "onboarding",
            (Some(_), true) => "connected",
        };
        let enabled = state.stripe.client.is_some();
        let plan_available = enabled && state.stripe.plan_price.is_some();
        Ok(Self {
            enabled,
            account_state,
            details_submitted: account.details_submitted,
            plan_available,
            plan_standing: PlanStanding::of(studio, now).as_str(),
            may_subscribe: plan_available && plan::check_may_subscribe(studio, now).is_ok(),
            may_manage_billing: enabled
                && account.stripe_customer_id.is_some()
                && plan::has_live_subscription(studio),
            plan_period_end: account
                .plan_period_end
                .map(|at| at.format("%-d %B %Y").to_string()),
        })
    }
}
