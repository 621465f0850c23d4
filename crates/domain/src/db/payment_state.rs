//! The Stripe payment state of a project's invoices, for the studio: paid
//! through Stripe, refunded, last payment failed, or paid with another
//! amount than the invoice's. It is derived from what the webhook handlers
//! store in `payments` and on `invoices`, so nothing else has to record it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::TenantTx;
use super::invoices::Invoice;
use crate::{Currency, DomainError, InvoiceId, ProjectId};

/// Stripe's reports on an invoice's payments. Several parts can be set
/// at once, such as a payment that was later partly refunded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StripePaymentState {
    /// When the first Stripe payment of the invoice's exact amount and
    /// currency was made; `None` when Stripe reported no such payment.
    pub paid_at: Option<DateTime<Utc>>,
    pub refund: Option<Refund>,
    /// The last failed payment attempt, kept only while the invoice is unpaid.
    pub payment_failed: Option<PaymentFailure>,
    /// A Stripe payment whose amount or currency differs from the invoice's.
    /// The invoice stays unpaid until the studio settles the difference.
    pub amount_mismatch: Option<AmountMismatch>,
}

impl StripePaymentState {
    /// Returns whether Stripe reported anything about the invoice.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The refunded total of an invoice's Stripe payments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refund {
    /// Whether everything that was paid through Stripe was refunded.
    pub full: bool,
    pub amount_minor: i64,
    /// ISO 4217 code of the payments.
    pub currency: String,
    /// The refunded amount formatted for people, such as `€100.00`.
    pub amount_display: String,
}

/// Stripe's reason for the last failed payment attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentFailure {
    /// Stripe's error code, such as `card_declined`.
    pub code: Option<String>,
    /// The card issuer's reason, such as `insufficient_funds`.
    pub decline_code: Option<String>,
    /// The codes described for people, such as "The card has insufficient
    /// funds."
    pub reason: String,
}

impl PaymentFailure {
    fn new(code: Option<String>, decline_code: Option<String>) -> Self {
        let reason = match (code.as_deref(), decline_code.as_deref()) {
            (_, Some("insufficient_funds")) => "The card has insufficient funds.".to_owned(),
            (_, Some("expired_card")) | (Some("expired_card"), _) => {
                "The card has expired.".to_owned()
            }
            (_, Some("lost_card" | "stolen_card")) => {
                "The card was reported lost or stolen.".to_owned()
            }
            (Some("incorrect_cvc"), _) => "The card's security code was wrong.".to_owned(),
            (Some("card_declined"), _) => "The card was declined.".to_owned(),
            (Some(code), _) => format!("Stripe reported '{code}'."),
            (None, Some(decline)) => format!("The card was declined ('{decline}')."),
            (None, None) => "Stripe gave no reason.".to_owned(),
        };
        Self {
            code,
            decline_code,
            reason,
        }
    }
}

/// A payment that does not match its invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AmountMismatch {
    pub paid_minor: i64,
    /// ISO 4217 code of the payment.
    pub paid_currency: String,
    pub paid_display: String,
    pub invoice_minor: i64,
    pub invoice_currency: String,
    pub invoice_display: String,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    invoice_id: InvoiceId,
    amount_minor: i64,
    currency: String,
    amount_refunded_minor: i64,
    paid_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct FailureRow {
    id: InvoiceId,
    payment_error_code: Option<String>,
    payment_error_decline_code: Option<String>,
}

/// Loads the Stripe payment state of each of `invoices`, which belong to
/// `project`. Invoices without any Stripe report get an empty state.
pub async fn for_project(
    tx: &mut TenantTx,
    project: ProjectId,
    invoices: &[Invoice],
) -> Result<HashMap<InvoiceId, StripePaymentState>, DomainError> {
    let payments: Vec<PaymentRow> = sqlx::query_as(
        "SELECT p.invoice_id, p.amount_minor, p.currency, p.amount_refunded_minor, p.paid_at \
         FROM payments p JOIN invoices i ON i.id = p.invoice_id \
         WHERE i.project_id = $1 ORDER BY p.paid_at, p.payment_intent_id",
    )
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    let failures: Vec<FailureRow> = sqlx::query_as(
        "SELECT id, payment_error_code, payment_error_decline_code FROM invoices \
         WHERE project_id = $1 AND status <> 'paid' \
           AND (payment_error_code IS NOT NULL OR payment_error_decline_code IS NOT NULL)",
    )
    .bind(project)
    .fetch_all(tx.conn())
    .await?;

    let mut states = HashMap::new();
    for invoice in invoices {
        let paid: Vec<&PaymentRow> = payments
            .iter()
            .filter(|p| p.invoice_id == invoice.id)
            .collect();
        let mut state = from_payments(invoice, &paid);
        state.payment_failed = failures
            .iter()
            .find(|f| f.id == invoice.id && invoice.paid_at.is_none())
            .map(|f| {
                PaymentFailure::new(
                    f.payment_error_code.clone(),
                    f.payment_error_decline_code.clone(),
                )
            });
        states.insert(invoice.id, state);
    }
    Ok(states)
}

/// Derives the paid, refund and mismatch parts from the invoice's payments,
/// which are ordered by `paid_at`.
fn from_payments(invoice: &Invoice, payments: &[&PaymentRow]) -> StripePaymentState {
    let matches = |p: &PaymentRow| {
        p.amount_minor == invoice.amount.amount_minor
            && p.currency == invoice.amount.currency.code()
    };
    let paid_at = payments.iter().find(|p| matches(p)).map(|p| p.paid_at);
    let amount_mismatch = payments
        .iter()
        .find(|p| !matches(p))
        .map(|p| AmountMismatch {
            paid_minor: p.amount_minor,
            paid_currency: p.currency.clone(),
            paid_display: display(p.amount_minor, &p.currency),
            invoice_minor: invoice.amount.amount_minor,
            invoice_currency: invoice.amount.currency.code().to_owned(),
            invoice_display: invoice.amount.display(),
        });
    let refund = payments.first().and_then(|first| {
        // Stripe refunds in the charge's currency; payments of one invoice
        // share the invoice's currency unless one of them is a mismatch.
        let same_currency = payments.iter().filter(|p| p.currency == first.currency);
        let (paid, refunded) = same_currency.fold((0_i64, 0_i64), |(paid, refunded), p| {
            (
                paid.saturating_add(p.amount_minor),
                refunded.saturating_add(p.amount_refunded_minor),
            )
        });
        (refunded > 0).then(|| Refund {
            full: refunded >= paid,
            amount_minor: refunded,
            currency: first.currency.clone(),
            amount_display: display(refunded, &first.currency),
        })
    });
    StripePaymentState {
        paid_at,
        refund,
        payment_failed: None,
        amount_mismatch,
    }
}

/// Formats an amount for people as the portal does, or as
/// `12345 XYZ (minor units)` when this build does not recognise the
/// currency code.
fn display(amount_minor: i64, currency: &str) -> String {
    currency.parse::<Currency>().map_or_else(
        |_| format!("{amount_minor} {currency} (minor units)"),
        |currency| currency.display_amount(amount_minor),
    )
}

#[cfg(test)]
mod tests {
    use super::display;

    #[test]
    fn display_beyond_invoice_bounds() {
        assert_eq!(display(i64::MAX, "eur"), "€92,233,720,368,547,758.07");
    }

    #[test]
    fn display_unknown_currency() {
        assert_eq!(display(500, "XYZ"), "500 XYZ (minor units)");
    }
}
