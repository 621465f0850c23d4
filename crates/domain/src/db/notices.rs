//! Email notices queued in the database and sent by the worker: overdue
//! invoices, receipts of invoices paid through Stripe, and failed plan
//! payments. Each is queued in the transaction of the change that causes it,
//! and unique keys make a notice exist once however often that runs.

use chrono::NaiveDate;

use super::TenantTx;
use crate::ids::NoticeId;
use crate::{DomainError, InvoiceId, InvoiceKind, Money, ProjectId};

/// Who a notice goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    Client,
    Studio,
}

/// The subject of a notice, as `notices.kind` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// An invoice became overdue; one notice to the client, one to the studio.
    InvoiceOverdue,
    /// The client paid an invoice through Stripe; a receipt to the client.
    PaymentReceipt,
    /// A renewal of the studio's plan could not be charged; a notice to the
    /// studio owner, per failed payment event.
    PlanPaymentFailed,
}

impl NoticeKind {
    fn parse(kind: &str) -> Result<Self, DomainError> {
        match kind {
            "invoice_overdue" => Ok(NoticeKind::InvoiceOverdue),
            "payment_receipt" => Ok(NoticeKind::PaymentReceipt),
            "plan_payment_failed" => Ok(NoticeKind::PlanPaymentFailed),
            other => Err(DomainError::Invalid {
                field: "notices.kind",
                message: format!("'{other}' is not a notice kind"),
            }),
        }
    }
}

/// A notice's kind and whether it was sent, read under its row lock.
#[derive(Clone, Copy, Debug)]
pub struct NoticeHeader {
    pub kind: NoticeKind,
    pub already_sent: bool,
}

/// Locks a notice until the transaction ends, so two workers cannot send it
/// at the same time, and returns its kind.
pub async fn lock(tx: &mut TenantTx, id: NoticeId) -> Result<NoticeHeader, DomainError> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT kind, sent_at IS NOT NULL FROM notices WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let (kind, already_sent) = row.ok_or(DomainError::NotFound("notice"))?;
    Ok(NoticeHeader {
        kind: NoticeKind::parse(&kind)?,
        already_sent,
    })
}

/// Queues the client's receipt for an invoice paid through Stripe. Returns
/// the new notice, or `None` when the invoice already has one.
pub async fn queue_payment_receipt(
    tx: &mut TenantTx,
    invoice: InvoiceId,
) -> Result<Option<NoticeId>, DomainError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notices (id, tenant_id, invoice_id, kind, recipient) \
         VALUES ($1, $2, $3, 'payment_receipt', 'client') \
         ON CONFLICT (invoice_id, kind, recipient) DO NOTHING RETURNING id",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tx.tenant_id())
    .bind(invoice)
    .fetch_optional(tx.conn())
    .await?)
}

/// Queues the studio owner's notice that a plan payment failed, once per
/// Stripe event. Returns the new notice, or `None` when the event already
/// has one.
pub async fn queue_plan_payment_failed(
    tx: &mut TenantTx,
    stripe_event_id: &str,
) -> Result<Option<NoticeId>, DomainError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notices (id, tenant_id, stripe_event_id, kind, recipient) \
         VALUES ($1, $2, $3, 'plan_payment_failed', 'studio') \
         ON CONFLICT (stripe_event_id, kind, recipient) WHERE stripe_event_id IS NOT NULL \
         DO NOTHING RETURNING id",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(tx.tenant_id())
    .bind(stripe_event_id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Everything the worker needs to send a notice about one invoice: an
/// overdue notice or a payment receipt.
#[derive(Clone, Debug)]
pub struct OverdueNotice {
    pub id: NoticeId,
    pub recipient: Recipient,
    pub already_sent: bool,
    pub project_id: ProjectId,
    pub project_title: String,
    pub client_name: String,
    pub client_email: String,
    pub portal_token: String,
    pub invoice_kind: InvoiceKind,
    pub amount: Money,
    pub due_date: NaiveDate,
}

#[derive(sqlx::FromRow)]
struct NoticeRow {
    id: NoticeId,
    recipient: String,
    sent: bool,
    project_id: ProjectId,
    title: String,
    client_name: String,
    client_email: String,
    portal_token: String,
    kind: String,
    amount_minor: i64,
    currency: String,
    due_date: NaiveDate,
}

/// Loads a notice with its invoice and project, locking it so two workers
/// cannot send it at the same time.
pub async fn load_for_sending(
    tx: &mut TenantTx,
    id: NoticeId,
) -> Result<OverdueNotice, DomainError> {
    let row: Option<NoticeRow> = sqlx::query_as(
        "SELECT n.id, n.recipient, n.sent_at IS NOT NULL AS sent, p.id AS project_id, p.title, \
                p.client_name, p.client_email, p.portal_token, i.kind, i.amount_minor, i.currency, i.due_date \
         FROM notices n JOIN invoices i ON i.id = n.invoice_id JOIN projects p ON p.id = i.project_id \
         WHERE n.id = $1 FOR UPDATE OF n",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let row = row.ok_or(DomainError::NotFound("notice"))?;
    Ok(OverdueNotice {
        id: row.id,
        recipient: if row.recipient == "studio" {
            Recipient::Studio
        } else {
            Recipient::Client
        },
        already_sent: row.sent,
        project_id: row.project_id,
        project_title: row.title,
        client_name: row.client_name,
        client_email: row.client_email,
        portal_token: row.portal_token,
        invoice_kind: row.kind.parse()?,
        amount: Money::new(row.amount_minor, row.currency.parse()?)?,
        due_date: row.due_date,
    })
}

/// Returns the payment date of a receipt's invoice, as `18 November 2026`
/// in the studio's time zone.
pub async fn paid_on(tx: &mut TenantTx, id: NoticeId) -> Result<String, DomainError> {
    let paid_on: Option<String> = sqlx::query_scalar(
        "SELECT to_char(i.paid_at AT TIME ZONE t.time_zone, 'FMDD FMMonth YYYY') \
         FROM notices n JOIN invoices i ON i.id = n.invoice_id JOIN tenants t ON t.id = n.tenant_id \
         WHERE n.id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .flatten();
    paid_on.ok_or(DomainError::NotFound("paid invoice of the notice"))
}

/// Marks a notice sent.
pub async fn mark_sent(tx: &mut TenantTx, id: NoticeId) -> Result<(), DomainError> {
    sqlx::query("UPDATE notices SET sent_at = now() WHERE id = $1 AND sent_at IS NULL")
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
