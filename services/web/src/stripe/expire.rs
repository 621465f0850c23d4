//! Expiring Checkout Sessions that no longer match their invoice, after the
//! studio edited the invoice's amount or currency or marked it paid by hand.

use proofsheet_domain::TenantId;
use proofsheet_domain::db::stripe as store;

use crate::AppState;

/// Expires at Stripe the studio's open Checkout Sessions marked for expiry,
/// and records each one's final state. Runs after the change that marked
/// them is committed. A failure is logged at warn and leaves the mark, so
/// the worker's reconciliation job retries the expiry.
pub async fn expire_stale_checkouts(state: &AppState, tenant: TenantId) {
    let Some(client) = state.stripe.client.as_ref() else {
        return;
    };
    if let Err(error) = try_expire(state, client, tenant).await {
        tracing::warn!(
            tenant.id = %tenant,
            error = %error,
            "could not expire stale Checkout Sessions; the reconciliation job retries"
        );
    }
}

async fn try_expire(
    state: &AppState,
    client: &proofsheet_stripe::StripeClient,
    tenant: TenantId,
) -> anyhow::Result<()> {
    let mut tx = state.db.tenant(tenant).await?;
    let sessions = store::checkouts_to_expire(&mut tx).await?;
    let account = store::account(&mut tx).await?.stripe_account_id;
    tx.commit().await?;
    let Some(account) = account.filter(|_| !sessions.is_empty()) else {
        return Ok(());
    };
    for session_id in sessions {
        let session = client
            .expire_checkout_session(&account, &session_id)
            .await?;
        let status = match session.status.as_deref() {
            Some("expired") => "expired",
            Some("complete") => "complete",
            other => anyhow::bail!("Checkout Session {session_id} is still {other:?}"),
        };
        let mut tx = state.db.tenant(tenant).await?;
        store::close_checkout(&mut tx, &session_id, status).await?;
        tx.commit().await?;
        tracing::info!(
            tenant.id = %tenant,
            checkout.session = %session_id,
            status,
            "closed a Checkout Session whose invoice changed"
        );
    }
    Ok(())
}
