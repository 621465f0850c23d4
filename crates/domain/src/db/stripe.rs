//! Stripe state: a studio's connected account and plan subscription, client
//! payments of invoices, Checkout Sessions and the log of webhook events.
//!
//! Every write here is written to commute: applying the same set of events
//! in any order, any number of times, leaves the same rows. Event ids are
//! recorded with [`record_event`] in the same transaction as the effect.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, TenantTx};
use crate::{DomainError, InvoiceId, TenantId};

/// The studio's plan state, as `tenants.plan_status` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Trialing,
    Active,
    PastDue,
    Cancelled,
}

impl PlanStatus {
    /// Returns the database name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Trialing => "trialing",
            PlanStatus::Active => "active",
            PlanStatus::PastDue => "past_due",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    /// Maps a Stripe Billing subscription status to the plan state. Returns
    /// `None` for `incomplete`, a subscription whose first payment has not
    /// happened yet, which leaves the plan as it is.
    pub fn from_stripe(status: &str) -> Option<Self> {
        match status {
            "trialing" => Some(PlanStatus::Trialing),
            "active" => Some(PlanStatus::Active),
            "past_due" | "unpaid" | "paused" => Some(PlanStatus::PastDue),
            "canceled" | "incomplete_expired" => Some(PlanStatus::Cancelled),
            _ => None,
        }
    }
}

impl Db {
    /// Finds the studio whose connected account is `account` (`acct_…`).
    pub async fn resolve_stripe_account(
        &self,
        account: &str,
    ) -> Result<Option<TenantId>, DomainError> {
        Ok(
            sqlx::query_scalar("SELECT tenant_id FROM app_resolve_stripe_account($1)")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Finds the studio whose Billing customer is `customer` (`cus_…`).
    pub async fn resolve_stripe_customer(
        &self,
        customer: &str,
    ) -> Result<Option<TenantId>, DomainError> {
        Ok(
            sqlx::query_scalar("SELECT tenant_id FROM app_resolve_stripe_customer($1)")
                .bind(customer)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Returns whether a studio with this id exists.
    pub async fn tenant_exists(&self, tenant: TenantId) -> Result<bool, DomainError> {
        Ok(sqlx::query_scalar("SELECT app_tenant_exists($1)")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Returns the connected accounts of studios that have invoices not yet
    /// paid, for the job that heals lost payment webhooks.
    pub async fn stripe_accounts_with_open_invoices(
        &self,
    ) -> Result<Vec<(TenantId, String)>, DomainError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, stripe_account_id FROM app_stripe_accounts_with_open_invoices()",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Returns the connected accounts of studios with open Checkout Sessions
    /// marked for expiry, for the job that retries expiring them at Stripe.
    pub async fn stripe_accounts_with_stale_checkouts(
        &self,
    ) -> Result<Vec<(TenantId, String)>, DomainError> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, stripe_account_id FROM app_stripe_accounts_with_stale_checkouts()",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an event that belongs to no studio (an unknown type, one
    /// whose studio cannot be found, or one too malformed to apply), with an
    /// optional `detail` that gives the reason. Returns `false` when the id was
    /// already recorded.
    pub async fn record_platform_event(
        &self,
        event_id: &str,
        event_type: &str,
        created: i64,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<bool, DomainError> {
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO stripe_events (id, type, created, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(event_id)
        .bind(event_type)
        .bind(created)
        .bind(outcome)
        .bind(detail)
        .fetch_optional(&self.pool)
        .await?;
        Ok(inserted.is_some())
    }

    /// Returns the number of recorded events per `(type, outcome)`.
    pub async fn stripe_event_counts(&self) -> Result<Vec<(String, String, i64)>, DomainError> {
        Ok(sqlx::query_as(
            "SELECT type, outcome, count(*) FROM stripe_events GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Records a webhook event id in the studio's transaction, before its effect.
/// Returns `false` when the id is already recorded: the caller then rolls
/// back, so a second delivery changes nothing. A concurrent delivery of the
/// same id waits here until the first one commits or rolls back.
pub async fn record_event(
    tx: &mut TenantTx,
    event_id: &str,
    event_type: &str,
    created: i64,
) -> Result<bool, DomainError> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO stripe_events (id, type, created, outcome) VALUES ($1, $2, $3, 'applied') \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(created)
    .fetch_optional(tx.conn())
    .await?;
    Ok(inserted.is_some())
}

/// Sets the outcome of an event recorded by [`record_event`] in this
/// transaction, such as `ignored_older` or `amount_mismatch`.
pub async fn set_event_outcome(
    tx: &mut TenantTx,
    event_id: &str,
    outcome: &str,
) -> Result<(), DomainError> {
    sqlx::query("UPDATE stripe_events SET outcome = $2 WHERE id = $1")
        .bind(event_id)
        .bind(outcome)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The studio's Stripe state, for the settings page and the portal.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct StripeAccount {
    pub stripe_account_id: Option<String>,
    pub charges_enabled: bool,
    pub details_submitted: bool,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub plan_period_end: Option<DateTime<Utc>>,
}

/// Loads the current studio's Stripe state.
pub async fn account(tx: &mut TenantTx) -> Result<StripeAccount, DomainError> {
    sqlx::query_as(
        "SELECT stripe_account_id, stripe_charges_enabled AS charges_enabled, \
         stripe_details_submitted AS details_submitted, stripe_customer_id, \
         stripe_subscription_id, plan_period_end FROM tenants",
    )
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DomainError::NotFound("studio"))
}

/// Stores the connected account created for the studio. A studio keeps its
/// first account: a second call with another id is a conflict.
pub async fn set_connected_account(tx: &mut TenantTx, account: &str) -> Result<(), DomainError> {
    let updated = sqlx::query(
        "UPDATE tenants SET stripe_account_id = $1 \
         WHERE stripe_account_id IS NULL OR stripe_account_id = $1",
    )
    .bind(account)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::Conflict(
            "the studio already has another connected Stripe account".into(),
        ));
    }
    Ok(())
}

/// Stores whether the connected account can take payments, from Stripe's
/// account object.
pub async fn set_account_state(
    tx: &mut TenantTx,
    account: &str,
    charges_enabled: bool,
    details_submitted: bool,
) -> Result<bool, DomainError> {
    let updated = sqlx::query(
        "UPDATE tenants SET stripe_charges_enabled = $2, stripe_details_submitted = $3 \
         WHERE stripe_account_id = $1",
    )
    .bind(account)
    .bind(charges_enabled)
    .bind(details_submitted)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Stores the studio's Billing customer, created before its first plan
/// Checkout Session.
pub async fn set_customer(tx: &mut TenantTx, customer: &str) -> Result<(), DomainError> {
    sqlx::query("UPDATE tenants SET stripe_customer_id = $1 WHERE stripe_customer_id IS NULL")
        .bind(customer)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A subscription state from a Stripe Billing event.
#[derive(Clone, Debug)]
pub struct SubscriptionChange<'a> {
    pub subscription_id: &'a str,
    pub customer_id: Option<&'a str>,
    pub status: PlanStatus,
    pub trial_end: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    /// The event's `created`, in Unix seconds.
    pub event_created: i64,
    /// The subscription object's `created`, in Unix seconds, when the event
    /// carries it.
    pub subscription_created: Option<i64>,
}

/// Applies a subscription change unless the studio already reflects a newer
/// event. Events of the same second are ordered by status, trialing before
/// active before past due before cancelled, so the result does not depend on
/// delivery order.
///
/// An event of a subscription other than the studio's current one applies
/// only when that subscription was created after the current one, and never
/// when its `created` is missing. So a replaced subscription's late or
/// continuing events never move the plan back, such as past due while its
/// dunning runs, then cancelled. Its cancellation is ignored in any case.
/// Returns whether the change was applied.
pub async fn apply_subscription(
    tx: &mut TenantTx,
    change: &SubscriptionChange<'_>,
) -> Result<bool, DomainError> {
    // The WHERE clause is re-checked under the row lock, so two concurrent
    // events cannot both pass it against the same old row.
    let updated = sqlx::query(
        "UPDATE tenants SET plan_status = $1, stripe_subscription_id = $2, \
           stripe_customer_id = coalesce(stripe_customer_id, $3), \
           trial_ends_at = coalesce($4, trial_ends_at), \
           plan_period_end = coalesce($5, plan_period_end), \
           plan_event_created = $6, \
           plan_subscription_created = CASE WHEN stripe_subscription_id IS DISTINCT FROM $2 \
             THEN $7 ELSE coalesce(plan_subscription_created, $7) END \
         WHERE (plan_event_created IS NULL OR plan_event_created < $6 \
                OR (plan_event_created = $6 AND app_plan_rank(plan_status) < app_plan_rank($1))) \
           AND ($1 <> 'cancelled' OR stripe_subscription_id IS NULL OR stripe_subscription_id = $2) \
           AND (stripe_subscription_id IS NULL OR stripe_subscription_id = $2 \
                OR $7::bigint > coalesce(plan_subscription_created, plan_event_created))",
    )
    .bind(change.status.as_str())
    .bind(change.subscription_id)
    .bind(change.customer_id)
    .bind(change.trial_end)
    .bind(change.period_end)
    .bind(change.event_created)
    .bind(change.subscription_created)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// A payment that Stripe reports as succeeded for one of our invoices.
#[derive(Clone, Debug)]
pub struct PaymentReceived<'a> {
    pub invoice_id: InvoiceId,
    pub payment_intent_id: &'a str,
    pub amount_minor: i64,
    /// ISO 4217 code in any case; Stripe sends lowercase.
    pub currency: &'a str,
    pub paid_at: DateTime<Utc>,
}

/// The result of recording a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The invoice moved to paid now.
    MarkedPaid,
    /// The invoice was already paid; the payment is recorded once.
    AlreadyPaid,
    /// The amount or currency differs from the invoice's. The payment is
    /// recorded and flagged, but the invoice is left unpaid for the studio
    /// to check. `first_report` is true only for the report that recorded
    /// the payment, so callers log the mismatch once.
    AmountMismatch { first_report: bool },
    /// No invoice with this id belongs to the studio.
    InvoiceNotFound,
}

impl PaymentOutcome {
    /// Returns the outcome name stored with the event.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::MarkedPaid => "applied",
            PaymentOutcome::AlreadyPaid => "already_paid",
            PaymentOutcome::AmountMismatch { .. } => "amount_mismatch",
            PaymentOutcome::InvoiceNotFound => "invoice_not_found",
        }
    }
}

/// Records a succeeded payment once per PaymentIntent and marks the invoice
/// paid when the amount and currency match the invoice's. `paid_at` becomes
/// the earliest time any report of the payment gives, so the result does not
/// depend on which report arrives first.
pub async fn record_payment(
    tx: &mut TenantTx,
    payment: &PaymentReceived<'_>,
) -> Result<PaymentOutcome, DomainError> {
    let currency = payment.currency.to_ascii_uppercase();
    // The row lock makes concurrent reports of one payment take turns, in the
    // same order (invoice, then payment) as every other writer here.
    let invoice: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT amount_minor, currency, status FROM invoices WHERE id = $1 FOR UPDATE",
    )
    .bind(payment.invoice_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((amount_minor, invoice_currency, status)) = invoice else {
        return Ok(PaymentOutcome::InvoiceNotFound);
    };

    let mismatch = amount_minor != payment.amount_minor || invoice_currency != currency;
    // xmax is 0 on a row version this statement inserted, and set on one
    // that ON CONFLICT updated.
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO payments \
           (id, tenant_id, invoice_id, payment_intent_id, amount_minor, currency, paid_at, amount_mismatch) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (payment_intent_id) DO UPDATE SET paid_at = least(payments.paid_at, EXCLUDED.paid_at) \
         RETURNING xmax = 0",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tx.tenant_id())
    .bind(payment.invoice_id)
    .bind(payment.payment_intent_id)
    .bind(payment.amount_minor)
    .bind(&currency)
    .bind(payment.paid_at)
    .bind(mismatch)
    .fetch_one(tx.conn())
    .await?;

    if mismatch {
        return Ok(PaymentOutcome::AmountMismatch {
            first_report: inserted,
        });
    }
    // least() skips NULL, so the first report sets paid_at and a later report
    // of an earlier time moves it back to that time.
    sqlx::query(
        "UPDATE invoices SET paid_at = least(paid_at, $2), updated_at = now(), \
           status = 'paid', payment_error_code = NULL, payment_error_decline_code = NULL \
         WHERE id = $1",
    )
    .bind(payment.invoice_id)
    .bind(payment.paid_at)
    .execute(tx.conn())
    .await?;
    if status == "paid" {
        Ok(PaymentOutcome::AlreadyPaid)
    } else {
        Ok(PaymentOutcome::MarkedPaid)
    }
}

/// A refund total that Stripe reports on a charge.
#[derive(Clone, Debug)]
pub struct RefundReported<'a> {
    pub payment: PaymentReceived<'a>,
    /// The total refunded so far on the charge, in minor units.
    pub amount_refunded_minor: i64,
}

/// The result of recording a refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The result of recording the payment that the refund proves.
    pub payment: PaymentOutcome,
    /// Whether the payment's refunded total grew.
    pub refund_grew: bool,
}

/// Records the refunded total of a payment. Totals only grow, so an older
/// refund event arriving after a newer one changes nothing. A refund proves
/// the payment happened, so a payment whose own webhook was lost is recorded
/// here too.
pub async fn record_refund(
    tx: &mut TenantTx,
    refund: &RefundReported<'_>,
) -> Result<RefundOutcome, DomainError> {
    let payment = record_payment(tx, &refund.payment).await?;
    if payment == PaymentOutcome::InvoiceNotFound {
        return Ok(RefundOutcome {
            payment,
            refund_grew: false,
        });
    }
    let grown = sqlx::query(
        "UPDATE payments SET amount_refunded_minor = $2 \
         WHERE payment_intent_id = $1 AND amount_refunded_minor < $2",
    )
    .bind(refund.payment.payment_intent_id)
    .bind(refund.amount_refunded_minor)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE invoices SET amount_refunded_minor = \
           (SELECT coalesce(sum(amount_refunded_minor), 0) FROM payments WHERE invoice_id = $1), \
           updated_at = now() \
         WHERE id = $1",
    )
    .bind(refund.payment.invoice_id)
    .execute(tx.conn())
    .await?;
    Ok(RefundOutcome {
        payment,
        refund_grew: grown.rows_affected() > 0,
    })
}

/// Records why the latest payment attempt on an unpaid invoice failed, such
/// as `card_declined` / `insufficient_funds`. An older failure never replaces
/// a newer one, and a paid invoice keeps no failure.
pub async fn record_payment_failure(
    tx: &mut TenantTx,
    invoice: InvoiceId,
    code: Option<&str>,
    decline_code: Option<&str>,
    event_created: i64,
) -> Result<bool, DomainError> {
    let updated = sqlx::query(
        "UPDATE invoices SET payment_error_code = $2, payment_error_decline_code = $3, \
           payment_error_event_created = $4, updated_at = now() \
         WHERE id = $1 AND status <> 'paid' \
           AND (payment_error_event_created IS NULL OR payment_error_event_created < $4)",
    )
    .bind(invoice)
    .bind(code)
    .bind(decline_code)
    .bind(event_created)
    .execute(tx.conn())
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Stripe payment details of an invoice, for the portal and the studio.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InvoicePayment {
    pub amount_refunded_minor: i64,
    pub payment_error_code: Option<String>,
    pub payment_error_decline_code: Option<String>,
    /// An open, unexpired Checkout Session exists: the client started paying.
    pub checkout_open: bool,
    /// A Stripe payment for this invoice has another amount or currency
    /// than the invoice, so it was not marked paid.
    pub amount_mismatch: bool,
}

#[derive(sqlx::FromRow)]
struct InvoicePaymentRow {
    id: InvoiceId,
    amount_refunded_minor: i64,
    payment_error_code: Option<String>,
    payment_error_decline_code: Option<String>,
    checkout_open: bool,
    amount_mismatch: bool,
}

/// Loads the Stripe payment details of every invoice of a project.
pub async fn invoice_payments(
    tx: &mut TenantTx,
    project: crate::ProjectId,
) -> Result<HashMap<InvoiceId, InvoicePayment>, DomainError> {
    let rows: Vec<InvoicePaymentRow> = sqlx::query_as(
        "SELECT i.id, i.amount_refunded_minor, i.payment_error_code, i.payment_error_decline_code, \
           EXISTS (SELECT 1 FROM checkout_sessions s WHERE s.invoice_id = i.id \
                   AND s.status = 'open' AND s.expires_at > now()) AS checkout_open, \
           EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id AND p.amount_mismatch) \
             AS amount_mismatch \
         FROM invoices i WHERE i.project_id = $1",
    )
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let payment = InvoicePayment {
                amount_refunded_minor: row.amount_refunded_minor,
                payment_error_code: row.payment_error_code,
                payment_error_decline_code: row.payment_error_decline_code,
                checkout_open: row.checkout_open,
                amount_mismatch: row.amount_mismatch,
            };
            (row.id, payment)
        })
        .collect())
}

/// A Checkout Session stored for an invoice.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CheckoutSession {
    pub session_id: String,
    pub url: String,
    /// The amount the session charges, in minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code, uppercase.
    pub currency: String,
    /// Set when the session must be expired at Stripe before the invoice
    /// can be paid again.
    pub expire_requested: bool,
    pub expires_at: DateTime<Utc>,
}

/// Takes a transaction-scoped advisory lock on creating Checkout Sessions
/// for the invoice. Concurrent pay requests for one invoice take turns on it,
/// so only one of them creates a session, while the invoice row stays free
/// for the studio's edits and for webhooks during the Stripe call. Distinct
/// invoices whose ids hash alike only wait for each other.
pub async fn lock_checkout_creation(
    tx: &mut TenantTx,
    invoice: InvoiceId,
) -> Result<(), DomainError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('checkout:' || $1::text, 0))")
        .bind(invoice)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Returns the invoice's newest open, unexpired Checkout Session, if any,
/// whatever its amount. The caller compares the session's amount and
/// currency with the invoice's before reusing it.
pub async fn open_checkout(
    tx: &mut TenantTx,
    invoice: InvoiceId,
) -> Result<Option<CheckoutSession>, DomainError> {
    Ok(sqlx::query_as(
        "SELECT session_id, url, amount_minor, currency, expire_requested, expires_at \
         FROM checkout_sessions \
         WHERE invoice_id = $1 AND status = 'open' AND expires_at > now() + interval '1 minute' \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(invoice)
    .fetch_optional(tx.conn())
    .await?)
}

/// An invoice's amount and payment state, read under its row lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceTerms {
    pub amount_minor: i64,
    /// ISO 4217 code, uppercase.
    pub currency: String,
    pub paid: bool,
}

/// Locks the invoice row and returns its current amount, currency and
/// whether it is paid, or `None` when it no longer exists. Storing a new
/// Checkout Session under this lock keeps a concurrent edit or mark-paid
/// from committing between the check and the insert, so that edit's
/// `flag_stale_checkouts` marks the session.
pub async fn lock_invoice_terms(
    tx: &mut TenantTx,
    invoice: InvoiceId,
) -> Result<Option<InvoiceTerms>, DomainError> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT amount_minor, currency, status FROM invoices WHERE id = $1 FOR UPDATE",
    )
    .bind(invoice)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|(amount_minor, currency, status)| InvoiceTerms {
        amount_minor,
        currency,
        paid: status == "paid",
    }))
}

/// Stores a Checkout Session created for an invoice.
pub async fn insert_checkout(
    tx: &mut TenantTx,
    invoice: InvoiceId,
    session: &CheckoutSession,
) -> Result<(), DomainError> {
    sqlx::query(
        "INSERT INTO checkout_sessions \
           (id, tenant_id, invoice_id, session_id, url, amount_minor, currency, expire_requested, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tx.tenant_id())
    .bind(invoice)
    .bind(&session.session_id)
    .bind(&session.url)
    .bind(session.amount_minor)
    .bind(&session.currency)
    .bind(session.expire_requested)
    .bind(session.expires_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Marks for expiry at Stripe every open Checkout Session of the invoice
/// that no longer matches it: its amount or currency differs from the
/// invoice's, or the invoice is paid. Call it in the transaction that
/// changes the invoice, so no session stays payable without the mark once
/// the change is committed. Returns the number of sessions marked.
pub async fn flag_stale_checkouts(
    tx: &mut TenantTx,
    invoice: InvoiceId,
) -> Result<u64, DomainError> {
    let result = sqlx::query(
        "UPDATE checkout_sessions s SET expire_requested = true FROM invoices i \
         WHERE i.id = $1 AND s.invoice_id = i.id AND s.status = 'open' \
           AND NOT s.expire_requested \
           AND (i.status = 'paid' OR s.amount_minor <> i.amount_minor OR s.currency <> i.currency)",
    )
    .bind(invoice)
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected())
}

/// Returns the ids of the studio's open Checkout Sessions marked for
/// expiry. Sessions already past their Stripe expiry are marked expired
/// here instead, because Stripe has expired them.
pub async fn checkouts_to_expire(tx: &mut TenantTx) -> Result<Vec<String>, DomainError> {
    sqlx::query(
        "UPDATE checkout_sessions SET status = 'expired' \
         WHERE expire_requested AND status = 'open' AND expires_at <= now()",
    )
    .execute(tx.conn())
    .await?;
    Ok(sqlx::query_scalar(
        "SELECT session_id FROM checkout_sessions \
         WHERE expire_requested AND status = 'open' ORDER BY created_at",
    )
    .fetch_all(tx.conn())
    .await?)
}

/// Returns whether the studio has open Checkout Sessions marked for expiry,
/// so the caller knows to queue the job that expires them at Stripe.
pub async fn has_checkouts_to_expire(tx: &mut TenantTx) -> Result<bool, DomainError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM checkout_sessions WHERE expire_requested AND status = 'open')",
    )
    .fetch_one(tx.conn())
    .await?)
}

/// Marks a Checkout Session complete or expired. A complete session stays
/// complete.
pub async fn close_checkout(
    tx: &mut TenantTx,
    session_id: &str,
    status: &str,
) -> Result<(), DomainError> {
    sqlx::query(
        "UPDATE checkout_sessions SET status = $2 WHERE session_id = $1 AND status = 'open'",
    )
    .bind(session_id)
    .bind(status)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Returns the ids of the studio's invoices that are not paid.
pub async fn unpaid_invoices(tx: &mut TenantTx) -> Result<Vec<InvoiceId>, DomainError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM invoices WHERE status <> 'paid' ORDER BY created_at")
            .fetch_all(tx.conn())
            .await?,
    )
}

/// Counts the Checkout Sessions ever created for an invoice. The count goes
/// into the idempotency key of the next session, so a retried request
/// reuses Stripe's session and a request after an expiry gets a new one.
/// The key also carries a hash of the request parameters, so a retry after
/// an edit of the invoice gets a new session too.
pub async fn checkout_count(tx: &mut TenantTx, invoice: InvoiceId) -> Result<i64, DomainError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM checkout_sessions WHERE invoice_id = $1")
            .bind(invoice)
            .fetch_one(tx.conn())
            .await?,
    )
}
