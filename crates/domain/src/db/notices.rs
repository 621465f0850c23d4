//! Email notices queued in the database and sent by the worker.

use chrono::NaiveDate;

use super::TenantTx;
use crate::ids::NoticeId;
use crate::{DomainError, InvoiceKind, Money, ProjectId};

/// Who a notice goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    Client,
    Studio,
}

/// Everything the worker needs to send an overdue-invoice notice.
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

/// Marks a notice sent.
pub async fn mark_sent(tx: &mut TenantTx, id: NoticeId) -> Result<(), DomainError> {
    sqlx::query("UPDATE notices SET sent_at = now() WHERE id = $1 AND sent_at IS NULL")
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
