//! `POST /p/{token}/invoices/{invoice_id}/pay`: sends the client to Stripe
//! Checkout for an unpaid invoice, on the studio's connected account.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use proofsheet_domain::db::TenantTx;
use proofsheet_domain::db::stripe::{self as store, CheckoutSession};
use proofsheet_domain::db::{invoices, tenants};
use proofsheet_domain::{DomainError, InvoiceId, TenantId};
use proofsheet_jobs::ExpireCheckouts;
use proofsheet_stripe::StripeClient;
use proofsheet_stripe::client::InvoiceCheckout;

use crate::error::PortalError;
use crate::state::AppState;

/// Redirects to a Checkout Session for the invoice. A paid invoice sends the
/// client back to the page, and an invoice with an open session for its
/// current amount and currency reuses it, so paying twice cannot start a
/// second charge. An open session for another amount or currency, or one
/// marked for expiry, is expired at Stripe before a new session is created.
/// Concurrent requests for one invoice take turns on an advisory lock, which
/// leaves the invoice row free during Stripe calls, so the studio's edits
/// and payment webhooks do not wait on Stripe.
pub async fn pay(
    State(state): State<AppState>,
    Path((token, invoice_id)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let link = state.open_link(&token).await?;
    let invoice_id: InvoiceId = invoice_id
        .parse()
        .map_err(|_| PortalError::NotFound("invoice"))?;
    let Some(stripe) = state.stripe() else {
        return Err(PortalError::Conflict(
            "online payment is not available; pay the studio the usual way".into(),
        ));
    };
    let back = format!("{}/p/{token}#invoices", stripe.portal_base);

    let mut tx = state.begin(&link).await?;
    store::lock_checkout_creation(&mut tx, invoice_id).await?;
    let invoice = match invoices::get(&mut tx, invoice_id).await {
        Ok(invoice) if invoice.project_id == link.project => invoice,
        Ok(_) | Err(DomainError::NotFound(_)) => return Err(PortalError::NotFound("invoice")),
        Err(e) => return Err(e.into()),
    };
    if invoice.paid_at.is_some() {
        return Ok(Redirect::to(&back).into_response());
    }
    let account = store::account(&mut tx).await?;
    let Some(account_id) = account
        .stripe_account_id
        .filter(|_| account.charges_enabled)
    else {
        return Err(PortalError::Conflict(
            "this studio does not take card payments yet; pay the studio the usual way".into(),
        ));
    };
    if let Some(open) = store::open_checkout(&mut tx, invoice_id).await? {
        let current = !open.expire_requested
            && open.amount_minor == invoice.amount.amount_minor
            && open.currency == invoice.amount.currency.code();
        if current {
            tx.commit().await?;
            return Ok(Redirect::to(&open.url).into_response());
        }
        // The studio changed the invoice after this session was created.
        // The stale session must stop being payable before a new one exists,
        // or the client could pay both.
        // NOTE: the stale session's row stays locked from here until commit,
        // so a webhook that closes that same session waits on the create call.
        if !expire_stale_session(&stripe.client, &mut tx, &account_id, &open.session_id).await? {
            tx.commit().await?;
            let processing = format!(
                "{}/p/{token}?payment=processing#invoices",
                stripe.portal_base
            );
            return Ok(Redirect::to(&processing).into_response());
        }
    }

    // The Stripe call runs while this transaction keeps the advisory lock,
    // so a concurrent request waits and then finds this session.
    let studio = tenants::current(&mut tx).await?;
    let attempt = store::checkout_count(&mut tx, invoice_id).await?;
    let tenant_id = link.tenant.to_string();
    let invoice_text = invoice_id.to_string();
    let description = format!("{} · {}", invoice.kind.label(), studio.name);
    let idempotency_prefix = format!("checkout-{invoice_text}-{attempt}");
    let success_url = format!(
        "{}/p/{token}?payment=processing#invoices",
        stripe.portal_base
    );
    let session = stripe
        .client
        .create_invoice_checkout(&InvoiceCheckout {
            account: &account_id,
            tenant_id: &tenant_id,
            invoice_id: &invoice_text,
            description: &description,
            amount_minor: invoice.amount.amount_minor,
            currency: invoice.amount.currency.code(),
            success_url: &success_url,
            cancel_url: &back,
            idempotency_prefix: &idempotency_prefix,
        })
        .await
        .map_err(|e| PortalError::internal(e, "creating a Stripe Checkout Session failed"))?;
    let Some(url) = session.url.clone() else {
        return Err(PortalError::internal(
            anyhow::anyhow!("the Checkout Session has no url"),
            "creating a Stripe Checkout Session failed",
        ));
    };
    // Stripe's default lifetime of a Checkout Session is 24 hours.
    let expires_at = session
        .expires_at
        .and_then(|at| DateTime::<Utc>::from_timestamp(at, 0))
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(24));
    let mut stored = CheckoutSession {
        session_id: session.id,
        url: url.clone(),
        amount_minor: invoice.amount.amount_minor,
        currency: invoice.amount.currency.code().to_owned(),
        expire_requested: false,
        expires_at,
    };

    // The studio may have edited the invoice or marked it paid during the
    // Stripe call. Such a session is stored marked for expiry, and the client
    // sees the invoice as it is now instead of a checkout for the old terms.
    let Some(terms) = store::lock_invoice_terms(&mut tx, invoice_id).await? else {
        return Err(PortalError::NotFound("invoice"));
    };
    stored.expire_requested = terms.paid
        || terms.amount_minor != stored.amount_minor
        || terms.currency != stored.currency;
    store::insert_checkout(&mut tx, invoice_id, &stored).await?;
    tx.commit().await?;
    if stored.expire_requested {
        tracing::info!(
            tenant.id = %link.tenant,
            invoice.id = %invoice_id,
            checkout.session = %stored.session_id,
            "the invoice changed while its Checkout Session was created; the session is marked for expiry"
        );
        queue_checkout_expiry(&state, link.tenant).await;
        return Ok(Redirect::to(&back).into_response());
    }
    tracing::info!(
        tenant.id = %link.tenant,
        invoice.id = %invoice_id,
        "Checkout Session created for an invoice"
    );
    Ok(Redirect::to(&url).into_response())
}

/// Queues the job that expires the studio's Checkout Sessions marked for
/// expiry. A failure is logged and not returned, because the worker's
/// reconciliation run and the next pay request expire them too.
async fn queue_checkout_expiry(state: &AppState, tenant: TenantId) {
    let job = ExpireCheckouts { tenant_id: tenant };
    if let Err(error) = state.queues().enqueue_checkout_expiry(job).await {
        tracing::warn!(
            tenant.id = %tenant,
            error = %error,
            "could not queue the expiry of stale Checkout Sessions; the reconciliation job expires them"
        );
    }
}

/// Expires a stale Checkout Session at Stripe and records its final state.
/// Returns `true` when the session is expired, so a new one may be created,
/// and `false` when the client completed it before it could be expired.
///
/// # Errors
///
/// When Stripe cannot be reached or leaves the session open: the caller
/// must not create a second session then.
async fn expire_stale_session(
    client: &StripeClient,
    tx: &mut TenantTx,
    account: &str,
    session_id: &str,
) -> Result<bool, PortalError> {
    let session = client
        .expire_checkout_session(account, session_id)
        .await
        .map_err(|e| PortalError::internal(e, "expiring a stale Stripe Checkout Session failed"))?;
    match session.status.as_deref() {
        Some("expired") => {
            store::close_checkout(tx, session_id, "expired").await?;
            tracing::info!(
                tenant.id = %tx.tenant_id(),
                checkout.session = %session_id,
                "expired a Checkout Session whose invoice changed"
            );
            Ok(true)
        }
        Some("complete") => {
            store::close_checkout(tx, session_id, "complete").await?;
            tracing::warn!(
                tenant.id = %tx.tenant_id(),
                checkout.session = %session_id,
                "a Checkout Session whose invoice changed was already paid"
            );
            Ok(false)
        }
        other => Err(PortalError::internal(
            anyhow::anyhow!("the Checkout Session is still {other:?} after expiring it"),
            "expiring a stale Stripe Checkout Session failed",
        )),
    }
}
