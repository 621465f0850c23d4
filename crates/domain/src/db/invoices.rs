//! The deposit and final invoices of a project.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::TenantTx;
use crate::{DomainError, InvoiceId, InvoiceKind, InvoiceStatus, Money, ProjectId, validate};

/// An invoice as stored, with its amount checked.
#[derive(Clone, Debug)]
pub struct Invoice {
    pub id: InvoiceId,
    pub project_id: ProjectId,
    pub kind: InvoiceKind,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub stored_status: InvoiceStatus,
    pub paid_at: Option<DateTime<Utc>>,
}

impl Invoice {
    /// The status the client sees now, in the studio's time zone.
    pub fn status(&self, studio_tz: Tz, now: DateTime<Utc>) -> InvoiceStatus {
        if self.stored_status == InvoiceStatus::Overdue && self.paid_at.is_none() {
            return InvoiceStatus::Overdue;
        }
        InvoiceStatus::effective(self.paid_at.is_some(), self.due_date, studio_tz, now)
    }
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: InvoiceId,
    project_id: ProjectId,
    kind: String,
    amount_minor: i64,
    currency: String,
    due_date: NaiveDate,
    status: String,
    paid_at: Option<DateTime<Utc>>,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = DomainError;

    fn try_from(row: InvoiceRow) -> Result<Self, Self::Error> {
        let stored_status = match row.status.as_str() {
            "paid" => InvoiceStatus::Paid,
            "overdue" => InvoiceStatus::Overdue,
            _ => InvoiceStatus::Unpaid,
        };
        Ok(Invoice {
            id: row.id,
            project_id: row.project_id,
            kind: row.kind.parse()?,
            amount: Money::new(row.amount_minor, row.currency.parse()?)?,
            due_date: row.due_date,
            stored_status,
            paid_at: row.paid_at,
        })
    }
}

macro_rules! invoice_columns {
    () => {
        "id, project_id, kind, amount_minor, currency, due_date, status, paid_at"
    };
}

/// Validated input for an invoice.
#[derive(Clone, Copy, Debug)]
pub struct InvoiceInput {
    pub kind: InvoiceKind,
    pub amount: Money,
    pub due_date: NaiveDate,
}

impl InvoiceInput {
    /// Validates the fields of an invoice.
    pub fn parse(
        kind: &str,
        amount_minor: i64,
        currency: &str,
        due_date: &str,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            kind: kind.parse()?,
            amount: Money::new(amount_minor, currency.parse()?)?,
            due_date: validate::date("due_date", due_date)?,
        })
    }
}

/// Adds the project's invoice of this kind, or edits it when it exists. A
/// paid invoice keeps its amount: it is a record of what was paid.
pub async fn upsert(
    tx: &mut TenantTx,
    project: ProjectId,
    input: InvoiceInput,
) -> Result<Invoice, DomainError> {
    super::projects::get(tx, project).await?;
    let tenant = tx.tenant_id();
    // The edited row leaves 'overdue' when its new due date is still ahead;
    // the scheduled job flags it again once that date passes.
    let row: Option<InvoiceRow> = sqlx::query_as(concat!("INSERT INTO invoices (id, tenant_id, project_id, kind, amount_minor, currency, due_date) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (project_id, kind) DO UPDATE \
           SET amount_minor = EXCLUDED.amount_minor, currency = EXCLUDED.currency, \
               due_date = EXCLUDED.due_date, \
               status = CASE WHEN invoices.status = 'overdue' THEN 'unpaid' ELSE invoices.status END, \
               updated_at = now() \
           WHERE invoices.status <> 'paid' \
         RETURNING ", invoice_columns!()))
    .bind(InvoiceId::new())
    .bind(tenant)
    .bind(project)
    .bind(input.kind.as_str())
    .bind(input.amount.amount_minor)
    .bind(input.amount.currency.code())
    .bind(input.due_date)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Err(DomainError::Conflict(format!(
            "the {} invoice is already paid and can no longer be edited",
            input.kind.as_str()
        )));
    };
    let invoice: Invoice = row.try_into()?;
    super::stripe::flag_stale_checkouts(tx, invoice.id).await?;
    Ok(invoice)
}

/// Marks an invoice of the project paid by hand. Paying a paid invoice again
/// changes nothing.
pub async fn mark_paid(
    tx: &mut TenantTx,
    project: ProjectId,
    id: InvoiceId,
) -> Result<Invoice, DomainError> {
    let row: Option<InvoiceRow> = sqlx::query_as(concat!("UPDATE invoices SET status = 'paid', paid_at = coalesce(paid_at, now()), updated_at = now() \
         WHERE id = $1 AND project_id = $2 RETURNING ", invoice_columns!()))
    .bind(id)
    .bind(project)
    .fetch_optional(tx.conn())
    .await?;
    let invoice: Invoice = row.ok_or(DomainError::NotFound("invoice"))?.try_into()?;
    super::stripe::flag_stale_checkouts(tx, invoice.id).await?;
    Ok(invoice)
}

/// The project's invoices, deposit first.
pub async fn for_project(
    tx: &mut TenantTx,
    project: ProjectId,
) -> Result<Vec<Invoice>, DomainError> {
    let rows: Vec<InvoiceRow> = sqlx::query_as(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE project_id = $1 ORDER BY kind = 'final', created_at"
    ))
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().map(Invoice::try_from).collect()
}

/// Loads one invoice.
pub async fn get(tx: &mut TenantTx, id: InvoiceId) -> Result<Invoice, DomainError> {
    let row: Option<InvoiceRow> = sqlx::query_as(concat!(
        "SELECT ",
        invoice_columns!(),
        " FROM invoices WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    row.ok_or(DomainError::NotFound("invoice"))?.try_into()
}

/// The JSON shape of an invoice in API responses.
#[derive(Clone, Debug, Serialize)]
pub struct InvoiceJson {
    pub id: InvoiceId,
    pub kind: InvoiceKind,
    pub amount_minor: i64,
    pub currency: String,
    pub amount_display: String,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub paid_at: Option<DateTime<Utc>>,
}

impl Invoice {
    /// Renders the invoice for an API response at `now`.
    pub fn to_json(&self, studio_tz: Tz, now: DateTime<Utc>) -> InvoiceJson {
        InvoiceJson {
            id: self.id,
            kind: self.kind,
            amount_minor: self.amount.amount_minor,
            currency: self.amount.currency.code().to_owned(),
            amount_display: self.amount.display(),
            due_date: self.due_date,
            status: self.status(studio_tz, now),
            paid_at: self.paid_at,
        }
    }
}
