//! Heals lost payment webhooks: on the `STRIPE_RECONCILE_SCHEDULE` cron
//! schedule, requests the recent Checkout Sessions on each connected
//! account that has unpaid invoices, and records every paid one that a lost
//! webhook left unrecorded, with the client's receipt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proofsheet_domain::db::stripe::{self as store, PaymentOutcome, PaymentReceived};
use proofsheet_domain::db::{invoices, notices};
use proofsheet_domain::{InvoiceId, TenantId};
use proofsheet_jobs::live::{self, ProjectEvent};
use proofsheet_stripe::StripeClient;
use proofsheet_stripe::event::CheckoutSession;

use crate::checkout_expiry::expire_marked_checkouts;
use crate::context::JobContext;
use crate::error::Error;

/// How far back each run looks. Stripe retries a failed webhook for up to
/// three days, so a payment older than this whose webhook was lost is
/// past every retry too.
pub const RECONCILE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Maximum number of Checkout Sessions read per account and run.
const MAX_SESSIONS_PER_ACCOUNT: usize = 1000;

/// Result of one reconciliation run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Number of connected accounts queried.
    pub accounts: usize,
    /// Invoices marked paid by this run, with their studio.
    pub healed: Vec<(TenantId, InvoiceId)>,
    /// Stale Checkout Sessions this run expired or found completed at Stripe.
    pub closed_stale: usize,
    /// Paid sessions whose amount or currency differs from their invoice's,
    /// recorded by this run. A mismatch already recorded is not listed again.
    pub mismatched: Vec<(TenantId, InvoiceId)>,
}

/// Builds the Stripe client from the configuration, or `None` when Stripe
/// is not configured.
///
/// # Errors
///
/// [`Error::Stripe`] when the HTTP client cannot be built.
pub fn client_from_config(ctx: &JobContext) -> Result<Option<StripeClient>, Error> {
    let Some(stripe) = &ctx.config.stripe else {
        return Ok(None);
    };
    Ok(Some(StripeClient::new(
        stripe.api_base.clone(),
        stripe.secret_key.expose().to_owned(),
    )?))
}

/// Records every paid Checkout Session of the last `window` on the
/// connected accounts of studios with unpaid invoices. Recording is the
/// same idempotent write the webhook makes, so a session whose webhook did
/// arrive changes nothing.
///
/// First expires the Checkout Sessions marked for expiry that the web
/// service could not expire when the studio changed their invoice.
///
/// An account whose listing fails is logged and skipped, so one studio's
/// revoked access does not stop the others.
///
/// # Errors
///
/// Database failures.
pub async fn reconcile_stripe_payments(
    ctx: &JobContext,
    client: &StripeClient,
    window: Duration,
) -> Result<Reconciled, Error> {
    let since = chrono::Utc::now().timestamp() - i64::try_from(window.as_secs()).unwrap_or(0);
    let closed_stale = expire_stale_checkouts(ctx, client).await?;
    let accounts = ctx.db.stripe_accounts_with_open_invoices().await?;
    let mut result = Reconciled {
        accounts: accounts.len(),
        healed: Vec::new(),
        closed_stale,
        mismatched: Vec::new(),
    };
    for (tenant, account) in accounts {
        let sessions = match client
            .list_checkout_sessions(&account, since, MAX_SESSIONS_PER_ACCOUNT)
            .await
        {
            Ok(sessions) => sessions,
            Err(error) => {
                tracing::warn!(tenant.id = %tenant, error = %error, "could not list the studio's Checkout Sessions; skipped");
                continue;
            }
        };
        for session in sessions {
            let paid = session.mode.as_deref() == Some("payment")
                && session.payment_status.as_deref() == Some("paid");
            let claimed = session.metadata.get("studio_id").map(String::as_str);
            let invoice = session
                .metadata
                .get("invoice_id")
                .and_then(|id| id.parse::<InvoiceId>().ok());
            // Sessions on this account that name another studio are not ours
            // to apply, as in the webhook.
            let ours = claimed == Some(tenant.to_string().as_str());
            let (true, true, Some(invoice), Some(payment_intent)) =
                (paid, ours, invoice, session.payment_intent_id())
            else {
                continue;
            };
            let Some((amount_minor, currency)) = paid_amount(&session) else {
                tracing::warn!(
                    tenant.id = %tenant,
                    checkout.session = %session.id,
                    amount_total = ?session.amount_total,
                    currency = ?session.currency,
                    "a paid Checkout Session has no usable amount or currency; skipped"
                );
                continue;
            };
            let mut tx = ctx.db.tenant(tenant).await?;
            let payment = PaymentReceived {
                invoice_id: invoice,
                payment_intent_id: payment_intent,
                amount_minor,
                currency,
                paid_at: payment_time(&session),
            };
            let outcome = store::record_payment(&mut tx, &payment).await?;
            let receipt = match outcome {
                PaymentOutcome::MarkedPaid => {
                    notices::queue_payment_receipt(&mut tx, invoice).await?
                }
                _ => None,
            };
            store::close_checkout(&mut tx, &session.id, "complete").await?;
            let project = match invoices::get(&mut tx, invoice).await {
                Ok(invoice) => Some(invoice.project_id),
                Err(_) => None,
            };
            tx.commit().await?;
            match outcome {
                PaymentOutcome::MarkedPaid => {
                    tracing::warn!(
                        tenant.id = %tenant,
                        invoice.id = %invoice,
                        "marked an invoice paid whose payment webhook never arrived"
                    );
                    result.healed.push((tenant, invoice));
                    if let Some(notice) = receipt {
                        ctx.queues.enqueue_committed_notice(tenant, notice).await;
                    }
                    if let Some(project) = project {
                        live::publish(
                            &ctx.queues.connection(),
                            ctx.queues.namespace(),
                            project,
                            ProjectEvent::Invoices,
                        )
                        .await;
                    }
                }
                PaymentOutcome::AmountMismatch { first_report: true } => {
                    tracing::error!(
                        tenant.id = %tenant,
                        invoice.id = %invoice,
                        checkout.session = %session.id,
                        "a paid Checkout Session does not match its invoice's amount or currency; \
                         the payment is recorded and the invoice left unpaid"
                    );
                    result.mismatched.push((tenant, invoice));
                }
                PaymentOutcome::AmountMismatch {
                    first_report: false,
                }
                | PaymentOutcome::AlreadyPaid
                | PaymentOutcome::InvoiceNotFound => {}
            }
        }
    }
    Ok(result)
}

/// Returns a session's total and currency when the payments table can store
/// them: zero or more minor units, and a three-letter currency code.
fn paid_amount(session: &CheckoutSession) -> Option<(i64, &str)> {
    let amount = session.amount_total.filter(|amount| *amount >= 0)?;
    let currency = session
        .currency
        .as_deref()
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()))?;
    Some((amount, currency))
}

/// Returns when a paid session's payment succeeded: the charge's or the
/// PaymentIntent's `created`, which the listing expands. The session's own
/// `created` is when the client opened Checkout, possibly hours earlier, so
/// it is used only when Stripe returned neither.
fn payment_time(session: &CheckoutSession) -> DateTime<Utc> {
    session
        .payment_created()
        .or(session.created)
        .and_then(|at| DateTime::from_timestamp(at, 0))
        .unwrap_or_else(Utc::now)
}

/// Expires the Checkout Sessions still marked for expiry, of every studio,
/// for when the job queued by the web service could not do it. A session
/// whose expiry fails keeps its mark for the next run. Returns the number of
/// sessions closed.
///
/// # Errors
///
/// Database failures.
async fn expire_stale_checkouts(ctx: &JobContext, client: &StripeClient) -> Result<usize, Error> {
    let mut closed = 0;
    for (tenant, _account) in ctx.db.stripe_accounts_with_stale_checkouts().await? {
        match expire_marked_checkouts(ctx, client, tenant).await {
            Ok(count) => closed += count,
            // Each failed session was logged where it failed.
            Err(Error::Stripe(_) | Error::CheckoutStillOpen { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(closed)
}
