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
/// A session that fails is logged and keeps its mark, and the rest are still
/// tried, so one bad session does not hold up the others. Running it again
/// is harmless: it reads the marks anew, and Stripe returns a session that is
/// already expired or complete as it is.
///
/// # Errors
///
/// Database failures, or the first session that failed (a failed Stripe call
/// or a session that Stripe still reports as open), after every session has
/// been tried, so the job retries the ones left.
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
    let mut first_failure = None;
    for session_id in sessions {
        match expire_one(ctx, client, tenant, &account, session_id).await {
            Ok(()) => closed += 1,
            Err(error @ (Error::Stripe(_) | Error::CheckoutStillOpen { .. })) => {
                tracing::warn!(
                    tenant.id = %tenant,
                    error = %error,
                    "could not expire a Checkout Session; it keeps its mark for a retry"
                );
                first_failure.get_or_insert(error);
            }
            Err(error) => return Err(error),
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(closed),
    }
}

/// Expires one session at Stripe and records its final state.
async fn expire_one(
    ctx: &JobContext,
    client: &StripeClient,
    tenant: TenantId,
    account: &str,
    session_id: String,
) -> Result<(), Error> {
    let session = client.expire_checkout_session(account, &session_id).await?;
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
    Ok(())
}
