//! Expires at Stripe the Checkout Sessions that no longer match their
//! invoice, after the studio edited the invoice's amount or currency or
//! marked it paid by hand. The web service queues one job per change after
//! its commit, so a slow Stripe never holds up the studio's request.

use proofsheet_domain::TenantId;
use proofsheet_domain::db::stripe as store;
use proofsheet_stripe::StripeClient;

use crate::context::JobContext;
use crate::error::Error;

/// Expires every open Checkout Session of `tenant` marked for expiry and
/// records each one's final state. Returns the number of sessions closed.
///
/// Running it again is harmless: it reads the marks anew, and Stripe returns
/// a session that is already expired or complete as it is.
///
/// # Errors
///
/// Database failures, a failed Stripe call, or a session that Stripe still
/// reports as open. Sessions closed before the failure stay closed, so a
/// retry continues with the rest.
pub async fn expire_marked_checkouts(
    ctx: &JobContext,
    client: &StripeClient,
    tenant: TenantId,
) -> Result<usize, Error> {
    let mut tx = ctx.db.tenant(tenant).await?;
    let sessions = store::checkouts_to_expire(&mut tx).await?;
    let account = store::account(&mut tx).await?.stripe_account_id;
    tx.commit().await?;
    let Some(account) = account.filter(|_| !sessions.is_empty()) else {
        return Ok(0);
    };
    let mut closed = 0;
    for session_id in sessions {
        let session = client
            .expire_checkout_session(&account, &session_id)
            .await?;
        let status = match session.status.as_deref() {
            Some("expired") => "expired",
            Some("complete") => "complete",
            _ => {
                return Err(Error::CheckoutStillOpen {
                    session_id,
                    status: session.status,
                });
            }
        };
        let mut tx = ctx.db.tenant(tenant).await?;
        store::close_checkout(&mut tx, &session_id, status).await?;
        tx.commit().await?;
        tracing::info!(
            checkout.session = %session_id,
            status,
            "closed a Checkout Session whose invoice changed"
        );
        closed += 1;
    }
    Ok(closed)
}
