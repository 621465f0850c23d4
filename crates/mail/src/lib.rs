//! Outgoing email for Proofsheet: message builders and a [`Mailer`] that
//! delivers them.
//!
//! Builders such as [`portal_link`] render embedded Tera templates into a
//! `multipart/alternative` [`lettre::Message`] with a plain-text and an HTML
//! part. [`Mailer::smtp`] sends through an SMTP server, and
//! [`Mailer::outbox`] writes `.eml` files for development without one.

mod error;
mod mailer;
mod messages;
mod render;

pub use error::MailError;
pub use lettre::Message;
pub use mailer::Mailer;
pub use messages::{
    InvoiceKind, InvoiceOverdueClientEmail, InvoiceOverdueStudioEmail, PasswordResetEmail,
    PaymentReceiptEmail, PlanPaymentFailedEmail, PortalLinkEmail, invoice_overdue_client,
    invoice_overdue_studio, password_reset, payment_receipt, plan_payment_failed, portal_link,
};
