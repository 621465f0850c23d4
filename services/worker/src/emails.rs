//! The email job: portal links, overdue notices and password resets.

use std::time::Duration;

use proofsheet_domain::db::notices::{self, NoticeKind, OverdueNotice, Recipient};
use proofsheet_domain::db::tenants::{self, Tenant};
use proofsheet_domain::db::{auth, projects};
use proofsheet_domain::{InvoiceKind, NoticeId, ProjectId, TenantId, UserId};
use proofsheet_jobs::SendEmail;
use proofsheet_mail::{
    InvoiceOverdueClientEmail, InvoiceOverdueStudioEmail, Message, PasswordResetEmail,
    PaymentReceiptEmail, PlanPaymentFailedEmail, PortalLinkEmail, invoice_overdue_client,
    invoice_overdue_studio, password_reset, payment_receipt, plan_payment_failed, portal_link,
};

use crate::context::JobContext;
use crate::error::Error;

/// Result of an email job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailOutcome {
    /// The mailer accepted the message.
    Sent,
    /// The notice was sent by an earlier job, so nothing was sent.
    AlreadySent,
}

/// Sends the email that a job requests.
///
/// Each kind loads what it needs when it runs: a portal link email carries
/// the project's current link, so a rotated link is never sent. An overdue
/// notice is sent at most once while the database commits normally (see
/// [`send_notice`]).
///
/// # Errors
///
/// Database failures, and mail errors: a rejected address or link is
/// permanent, an unreachable server is worth retrying.
pub async fn send_email(ctx: &JobContext, job: &SendEmail) -> Result<EmailOutcome, Error> {
    match job {
        SendEmail::PortalLink {
            tenant_id,
            project_id,
        } => send_portal_link(ctx, *tenant_id, *project_id).await,
        SendEmail::Notice {
            tenant_id,
            notice_id,
        } => send_notice(ctx, *tenant_id, *notice_id).await,
        SendEmail::PasswordReset {
            tenant_id,
            user_id,
            reset_url,
        } => send_password_reset(ctx, *tenant_id, *user_id, reset_url).await,
    }
}

/// Sends a client the project's current portal link, with the studio's name
/// as the From display name and the studio owner as Reply-To.
async fn send_portal_link(
    ctx: &JobContext,
    tenant: TenantId,
    project: ProjectId,
) -> Result<EmailOutcome, Error> {
    let mut tx = ctx.db.tenant(tenant).await?;
    let project = projects::get(&mut tx, project).await?;
    let studio = tenants::current(&mut tx).await?;
    let studio_email = tenants::owner_email(&mut tx).await?;
    tx.commit().await?;

    let message = portal_link(&PortalLinkEmail {
        studio_name: studio.name,
        studio_email,
        sender_address: ctx.config.mail_from.clone(),
        client_name: project.client_name,
        client_email: project.client_email,
        project_title: project.title,
        portal_url: ctx.config.portal_link(project.portal_token.expose()),
        accent_colour: Some(studio.accent_colour),
        message: None,
    })?;
    ctx.mailer.send(message).await?;
    Ok(EmailOutcome::Sent)
}

/// Sends a notice unless it was sent already: an overdue invoice, a payment
/// receipt or a failed plan payment.
///
/// The notice row stays locked from loading until the commit, so two jobs
/// for the same notice run one after the other and the second finds it
/// marked sent.
///
/// The email goes out before the notice is marked sent: if the process dies
/// or the commit fails after the server accepted the message, the next
/// attempt sends it again. That window is at-least-once by design, because
/// marking first would lose the email whenever sending then fails.
pub async fn send_notice(
    ctx: &JobContext,
    tenant: TenantId,
    notice: NoticeId,
) -> Result<EmailOutcome, Error> {
    let mut tx = ctx.db.tenant(tenant).await?;
    let header = notices::lock(&mut tx, notice).await?;
    if header.already_sent {
        return Ok(EmailOutcome::AlreadySent);
    }
    let studio = tenants::current(&mut tx).await?;
    let studio_email = tenants::owner_email(&mut tx).await?;

    let message = match header.kind {
        NoticeKind::PlanPaymentFailed => plan_payment_failed(&PlanPaymentFailedEmail {
            studio_name: studio.name,
            studio_email,
            sender_address: ctx.config.mail_from.clone(),
            settings_url: settings_url(ctx),
        })?,
        NoticeKind::PaymentReceipt => {
            let invoice = notices::load_for_sending(&mut tx, notice).await?;
            let paid_on = notices::paid_on(&mut tx, notice).await?;
            receipt_message(ctx, &invoice, &paid_on, studio, studio_email)?
        }
        NoticeKind::InvoiceOverdue => {
            // NOTE: the invoice's payment state is not checked again here, so
            // a notice queued just before the invoice was paid is still sent.
            let invoice = notices::load_for_sending(&mut tx, notice).await?;
            overdue_message(ctx, &invoice, studio, studio_email)?
        }
    };
    ctx.mailer.send(message).await?;

    notices::mark_sent(&mut tx, notice).await?;
    tx.commit().await?;
    Ok(EmailOutcome::Sent)
}

/// Returns the studio's settings page, where the plan's card is updated.
fn settings_url(ctx: &JobContext) -> String {
    format!(
        "{}/settings",
        ctx.config.public_web_url.as_str().trim_end_matches('/')
    )
}

fn receipt_message(
    ctx: &JobContext,
    notice: &OverdueNotice,
    paid_on: &str,
    studio: Tenant,
    studio_email: String,
) -> Result<Message, Error> {
    Ok(payment_receipt(&PaymentReceiptEmail {
        studio_name: studio.name,
        studio_email,
        sender_address: ctx.config.mail_from.clone(),
        client_name: notice.client_name.clone(),
        client_email: notice.client_email.clone(),
        project_title: notice.project_title.clone(),
        invoice_kind: mail_invoice_kind(notice.invoice_kind),
        amount: notice.amount.display(),
        paid_on: paid_on.to_owned(),
        portal_url: ctx.config.portal_link(&notice.portal_token),
        accent_colour: Some(studio.accent_colour),
    })?)
}

fn overdue_message(
    ctx: &JobContext,
    notice: &OverdueNotice,
    studio: Tenant,
    studio_email: String,
) -> Result<Message, Error> {
    let amount = notice.amount.display();
    let due_date = notice.due_date.format("%-d %B %Y").to_string();
    let invoice_kind = mail_invoice_kind(notice.invoice_kind);
    let message = match notice.recipient {
        Recipient::Client => invoice_overdue_client(&InvoiceOverdueClientEmail {
            studio_name: studio.name,
            studio_email,
            sender_address: ctx.config.mail_from.clone(),
            client_name: notice.client_name.clone(),
            client_email: notice.client_email.clone(),
            project_title: notice.project_title.clone(),
            invoice_kind,
            amount,
            due_date,
            portal_url: ctx.config.portal_link(&notice.portal_token),
            accent_colour: Some(studio.accent_colour),
        })?,
        Recipient::Studio => invoice_overdue_studio(&InvoiceOverdueStudioEmail {
            studio_name: studio.name,
            studio_email,
            sender_address: ctx.config.mail_from.clone(),
            client_name: notice.client_name.clone(),
            client_email: notice.client_email.clone(),
            project_title: notice.project_title.clone(),
            invoice_kind,
            amount,
            due_date,
        })?,
    };
    Ok(message)
}

fn mail_invoice_kind(kind: InvoiceKind) -> proofsheet_mail::InvoiceKind {
    match kind {
        InvoiceKind::Deposit => proofsheet_mail::InvoiceKind::Deposit,
        InvoiceKind::Final => proofsheet_mail::InvoiceKind::Final,
    }
}

/// Sends a studio user the reset link from the job. The link is not stored
/// anywhere else, because the database keeps only its hash.
async fn send_password_reset(
    ctx: &JobContext,
    tenant: TenantId,
    user: UserId,
    reset_url: &str,
) -> Result<EmailOutcome, Error> {
    let mut tx = ctx.db.tenant(tenant).await?;
    let user_email = auth::user_email(&mut tx, user).await?;
    tx.commit().await?;

    let message = password_reset(&PasswordResetEmail {
        user_name: String::new(),
        user_email,
        sender_address: ctx.config.mail_from.clone(),
        reset_url: reset_url.to_owned(),
        valid_for: Duration::from_secs(60 * auth::RESET_MINUTES.unsigned_abs()),
    })?;
    ctx.mailer.send(message).await?;
    Ok(EmailOutcome::Sent)
}
