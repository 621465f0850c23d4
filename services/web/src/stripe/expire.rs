//! Expiring Checkout Sessions that no longer match their invoice, after the
//! studio edited the invoice's amount or currency or marked it paid by hand.
//!
//! The Stripe calls run in the worker's checkout-expiry job, not in the
//! studio's request, because a slow Stripe could otherwise hold the request
//! for the Stripe client's whole 20 s timeout.

use proofsheet_domain::TenantId;
use proofsheet_jobs::ExpireCheckouts;

use crate::AppState;

/// Queues the job that expires the studio's marked Checkout Sessions at
/// Stripe. Call it after the commit that marked them. A failure to queue is
/// logged at warn and leaves the marks, so the worker's reconciliation run
/// expires the sessions instead.
pub async fn queue_checkout_expiry(state: &AppState, tenant: TenantId) {
    if state.stripe.client.is_none() {
        return;
    }
    let job = ExpireCheckouts { tenant_id: tenant };
    match state.queues.enqueue_checkout_expiry(job).await {
        Ok(()) => {
            tracing::info!(tenant.id = %tenant, "queued the expiry of stale Checkout Sessions")
        }
        Err(error) => tracing::warn!(
            tenant.id = %tenant,
            error = %error,
            "could not queue the expiry of stale Checkout Sessions; the reconciliation job expires them"
        ),
    }
}
