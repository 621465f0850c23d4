//! Builders for every message Proofsheet sends.
//!
//! Each builder returns a `multipart/alternative` message with a plain-text
//! part and an HTML part. lettre 0.11 sends a part as 7bit only when it is
//! ASCII with lines under 76 characters, and otherwise as quoted-printable or
//! base64, never 8bit, so body lines stay short however long the user's text
//! is. Non-ASCII display names and subjects become RFC 2047 encoded words,
//! and user values in headers are capped in length so that header lines stay
//! under the 998-octet limit of RFC 5322.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use serde::{Deserialize, Serialize};
use tera::Context;
use url::{Host, Url};
use uuid::Uuid;

use crate::MailError;
use crate::render::{
    Rendered, accent_colour, duration_in_words, multi_line, render_pair, single_line,
    text_colour_on, truncate_chars,
};

/// Display name on messages that come from the platform rather than from a
/// studio.
const PLATFORM_NAME: &str = "Proofsheet";

/// Maximum characters kept of a display name. lettre does not split a long
/// ASCII word across header lines, so without a cap one unbroken name could
/// exceed the 998-octet line limit of RFC 5322.
const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// Maximum characters kept of each user value in a subject, for the same
/// line limit. The body always contains the full value.
const MAX_SUBJECT_VALUE_CHARS: usize = 150;

/// Input for [`portal_link`]: a studio sends a client the link to a project's
/// portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkEmail {
    /// Studio name, shown as the From display name.
    pub studio_name: String,
    /// Studio address that replies go to (Reply-To).
    pub studio_email: String,
    /// Platform address in From, such as `studios@proofsheet.localhost`.
    pub sender_address: String,
    /// Client name, shown in To and in the greeting. May be empty.
    pub client_name: String,
    /// Client address in To.
    pub client_email: String,
    /// Project title, shown in the subject and the body.
    pub project_title: String,
    /// Absolute http or https URL of the client's portal.
    pub portal_url: String,
    /// Studio colour as `#rgb` or `#rrggbb`. Other values fall back to the
    /// default colour.
    pub accent_colour: Option<String>,
    /// Optional note from the studio, shown above the link with its line
    /// breaks kept.
    pub message: Option<String>,
}

/// Kind of invoice named in overdue notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// Invoice for the deposit that books the shoot.
    Deposit,
    /// Invoice for the remaining balance.
    Final,
}

impl InvoiceKind {
    /// Lowercase English word used in message text: "deposit" or "final".
    pub fn label(self) -> &'static str {
        match self {
            InvoiceKind::Deposit => "deposit",
            InvoiceKind::Final => "final",
        }
    }
}

/// Input for [`invoice_overdue_client`]: notifies a client that one invoice
/// is overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceOverdueClientEmail {
    /// Studio name, shown as the From display name.
    pub studio_name: String,
    /// Studio address that replies go to (Reply-To).
    pub studio_email: String,
    /// Platform address in From.
    pub sender_address: String,
    /// Client name, shown in To and in the greeting. May be empty.
    pub client_name: String,
    /// Client address in To.
    pub client_email: String,
    /// Title of the project the invoice belongs to.
    pub project_title: String,
    /// Deposit or final invoice.
    pub invoice_kind: InvoiceKind,
    /// Amount due, already formatted with its currency, such as "€450.00".
    pub amount: String,
    /// Due date, already formatted for the reader.
    pub due_date: String,
    /// Absolute http or https URL of the client's portal.
    pub portal_url: String,
    /// Studio colour as `#rgb` or `#rrggbb`. Other values fall back to the
    /// default colour.
    pub accent_colour: Option<String>,
}

/// Input for [`invoice_overdue_studio`]: notifies a studio that one of its
/// invoices is overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceOverdueStudioEmail {
    /// Studio name, shown in To and in the greeting.
    pub studio_name: String,
    /// Studio address in To.
    pub studio_email: String,
    /// Platform address in From.
    pub sender_address: String,
    /// Client name, shown in the body.
    pub client_name: String,
    /// Client address, shown in the body. May be empty.
    pub client_email: String,
    /// Title of the project the invoice belongs to.
    pub project_title: String,
    /// Deposit or final invoice.
    pub invoice_kind: InvoiceKind,
    /// Amount due, already formatted with its currency.
    pub amount: String,
    /// Due date, already formatted for the reader.
    pub due_date: String,
}

/// Input for [`payment_receipt`]: a client's receipt for their payment of
/// an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceiptEmail {
    /// Studio name, shown as the From display name.
    pub studio_name: String,
    /// Studio address that replies go to (Reply-To).
    pub studio_email: String,
    /// Platform address in From.
    pub sender_address: String,
    /// Client name, shown in To and in the greeting. May be empty.
    pub client_name: String,
    /// Client address in To.
    pub client_email: String,
    /// Title of the project the invoice belongs to.
    pub project_title: String,
    /// Deposit or final invoice.
    pub invoice_kind: InvoiceKind,
    /// Amount paid, already formatted with its currency, such as "€485.00".
    pub amount: String,
    /// Payment date, already formatted for the reader.
    pub paid_on: String,
    /// Absolute http or https URL of the client's portal.
    pub portal_url: String,
    /// Studio colour as `#rgb` or `#rrggbb`. Other values fall back to the
    /// default colour.
    pub accent_colour: Option<String>,
}

/// Input for [`plan_payment_failed`]: the notice to a studio owner that the
/// payment for their Proofsheet plan failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPaymentFailedEmail {
    /// Studio name, shown in To and in the greeting.
    pub studio_name: String,
    /// Studio owner's address in To.
    pub studio_email: String,
    /// Platform address in From.
    pub sender_address: String,
    /// Absolute http or https URL of the studio's settings page, where the
    /// card is updated.
    pub settings_url: String,
}

/// Input for [`password_reset`]: sends a studio user a single-use link to set
/// a new password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetEmail {
    /// User name, shown in To and in the greeting. May be empty.
    pub user_name: String,
    /// User address in To.
    pub user_email: String,
    /// Platform address in From.
    pub sender_address: String,
    /// Absolute http or https URL of the reset page, including its token.
    pub reset_url: String,
    /// How long the link stays valid, written out in words in the message.
    pub valid_for: Duration,
}

/// Builds the message that sends a client the permanent link to a project's
/// portal.
///
/// From is `studio_name <sender_address>`, Reply-To is
/// `studio_name <studio_email>` and To is `client_name <client_email>`. The
/// subject is "Your photos from {studio}: {project}", and both parts contain
/// the portal URL.
pub fn portal_link(email: &PortalLinkEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", &email.studio_name, &email.sender_address)?;
    let reply_to = mailbox("studio_email", &email.studio_name, &email.studio_email)?;
    let to = mailbox("client_email", &email.client_name, &email.client_email)?;
    let portal_url = link("portal_url", &email.portal_url)?;
    let subject = format!(
        "Your photos from {}: {}",
        subject_value(&email.studio_name),
        subject_value(&email.project_title)
    );

    let mut context = branded_context(&subject, email.accent_colour.as_deref());
    context.insert("studio_name", &single_line(&email.studio_name));
    context.insert("client_name", &single_line(&email.client_name));
    context.insert("project_title", &single_line(&email.project_title));
    context.insert("portal_url", &portal_url);
    context.insert(
        "message",
        &email.message.as_deref().map(multi_line).unwrap_or_default(),
    );
    let rendered = render_pair("portal_link", &context)?;

    assemble(from, Some(reply_to), to, subject, rendered)
}

/// Builds the notice that one of a client's invoices is overdue.
///
/// Addresses are set as in [`portal_link`]. Both parts name the project, the
/// invoice kind, the amount and the due date, and contain the portal URL.
pub fn invoice_overdue_client(email: &InvoiceOverdueClientEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", &email.studio_name, &email.sender_address)?;
    let reply_to = mailbox("studio_email", &email.studio_name, &email.studio_email)?;
    let to = mailbox("client_email", &email.client_name, &email.client_email)?;
    let portal_url = link("portal_url", &email.portal_url)?;
    let subject = format!(
        "Payment reminder: {} invoice for {} is overdue",
        email.invoice_kind.label(),
        subject_value(&email.project_title)
    );

    let mut context = branded_context(&subject, email.accent_colour.as_deref());
    context.insert("studio_name", &single_line(&email.studio_name));
    context.insert("client_name", &single_line(&email.client_name));
    context.insert("project_title", &single_line(&email.project_title));
    context.insert("invoice_kind", email.invoice_kind.label());
    context.insert("amount", &single_line(&email.amount));
    context.insert("due_date", &single_line(&email.due_date));
    context.insert("portal_url", &portal_url);
    let rendered = render_pair("invoice_overdue_client", &context)?;

    assemble(from, Some(reply_to), to, subject, rendered)
}

/// Builds the notice to a studio that one of its invoices is overdue.
///
/// From is `Proofsheet <sender_address>` and To is
/// `studio_name <studio_email>`. Both parts name the project, the client, the
/// invoice kind, the amount and the due date. An invalid `client_email` is an
/// error, but an empty one is left out of the body.
pub fn invoice_overdue_studio(email: &InvoiceOverdueStudioEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", PLATFORM_NAME, &email.sender_address)?;
    let to = mailbox("studio_email", &email.studio_name, &email.studio_email)?;
    let client_email = if email.client_email.trim().is_empty() {
        String::new()
    } else {
        parse_address("client_email", &email.client_email)?.to_string()
    };
    let subject = format!(
        "Overdue {} invoice: {} ({})",
        email.invoice_kind.label(),
        subject_value(&email.project_title),
        subject_value(&email.client_name)
    );

    let mut context = branded_context(&subject, None);
    context.insert("studio_name", &single_line(&email.studio_name));
    context.insert("client_name", &single_line(&email.client_name));
    context.insert("client_email", &client_email);
    context.insert("project_title", &single_line(&email.project_title));
    context.insert("invoice_kind", email.invoice_kind.label());
    context.insert("amount", &single_line(&email.amount));
    context.insert("due_date", &single_line(&email.due_date));
    let rendered = render_pair("invoice_overdue_studio", &context)?;

    assemble(from, None, to, subject, rendered)
}

/// Builds a client's receipt for an invoice paid through Stripe.
///
/// Addresses are set as in [`portal_link`]. Both parts name the studio, the
/// project, the invoice kind, the amount and the payment date, and contain
/// the portal URL.
pub fn payment_receipt(email: &PaymentReceiptEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", &email.studio_name, &email.sender_address)?;
    let reply_to = mailbox("studio_email", &email.studio_name, &email.studio_email)?;
    let to = mailbox("client_email", &email.client_name, &email.client_email)?;
    let portal_url = link("portal_url", &email.portal_url)?;
    let subject = format!(
        "Payment received: {} invoice for {}",
        email.invoice_kind.label(),
        subject_value(&email.project_title)
    );

    let mut context = branded_context(&subject, email.accent_colour.as_deref());
    context.insert("studio_name", &single_line(&email.studio_name));
    context.insert("client_name", &single_line(&email.client_name));
    context.insert("project_title", &single_line(&email.project_title));
    context.insert("invoice_kind", email.invoice_kind.label());
    context.insert("amount", &single_line(&email.amount));
    context.insert("paid_on", &single_line(&email.paid_on));
    context.insert("portal_url", &portal_url);
    let rendered = render_pair("payment_receipt", &context)?;

    assemble(from, Some(reply_to), to, subject, rendered)
}

/// Builds the notice to a studio owner that their plan payment failed.
///
/// From is `Proofsheet <sender_address>`, as on the other messages to
/// studios, and To is `studio_name <studio_email>`. Both parts ask the
/// owner to update the card and contain the settings URL.
pub fn plan_payment_failed(email: &PlanPaymentFailedEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", PLATFORM_NAME, &email.sender_address)?;
    let to = mailbox("studio_email", &email.studio_name, &email.studio_email)?;
    let settings_url = link("settings_url", &email.settings_url)?;
    let subject = format!("Your {PLATFORM_NAME} plan payment failed: update your card");

    let mut context = branded_context(&subject, None);
    context.insert("studio_name", &single_line(&email.studio_name));
    context.insert("settings_url", &settings_url);
    let rendered = render_pair("plan_payment_failed", &context)?;

    assemble(from, None, to, subject, rendered)
}

/// Builds the message that sends a studio user a single-use password reset
/// link.
///
/// From is `Proofsheet <sender_address>` and To is
/// `user_name <user_email>`. Both parts contain the reset URL and the
/// validity period in words, such as "1 hour".
pub fn password_reset(email: &PasswordResetEmail) -> Result<Message, MailError> {
    let from = mailbox("sender_address", PLATFORM_NAME, &email.sender_address)?;
    let to = mailbox("user_email", &email.user_name, &email.user_email)?;
    let reset_url = link("reset_url", &email.reset_url)?;
    let subject = format!("Reset your {PLATFORM_NAME} password");

    let mut context = branded_context(&subject, None);
    context.insert("user_name", &single_line(&email.user_name));
    context.insert("user_email", &to.email.to_string());
    context.insert("reset_url", &reset_url);
    context.insert("valid_for", &duration_in_words(email.valid_for));
    let rendered = render_pair("password_reset", &context)?;

    assemble(from, None, to, subject, rendered)
}

/// Starts a template context with the subject and the button colours.
fn branded_context(subject: &str, accent: Option<&str>) -> Context {
    let accent = accent_colour(accent);
    let mut context = Context::new();
    context.insert("subject", subject);
    context.insert("accent_text_colour", text_colour_on(&accent));
    context.insert("accent_colour", &accent);
    context
}

fn assemble(
    from: Mailbox,
    reply_to: Option<Mailbox>,
    to: Mailbox,
    subject: String,
    rendered: Rendered,
) -> Result<Message, MailError> {
    // lettre would otherwise put the machine's host name into Message-ID,
    // which differs per server and is often not a public domain.
    let message_id = format!("<{}@{}>", Uuid::new_v4().simple(), from.email.domain());
    let mut builder = Message::builder()
        .message_id(Some(message_id))
        .from(from)
        .to(to)
        .subject(subject);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(reply_to);
    }
    let message = builder.multipart(MultiPart::alternative_plain_html(
        rendered.text,
        rendered.html,
    ))?;
    Ok(message)
}

/// Cleans a user value for a subject line and caps its length.
fn subject_value(value: &str) -> String {
    truncate_chars(&single_line(value), MAX_SUBJECT_VALUE_CHARS)
}

/// Builds a mailbox whose display name is `name` with control characters
/// removed and its length capped, or no display name if nothing is left.
fn mailbox(field: &'static str, name: &str, address: &str) -> Result<Mailbox, MailError> {
    let address = parse_address(field, address)?;
    let name = truncate_chars(&single_line(name), MAX_DISPLAY_NAME_CHARS);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), address))
}

/// Parses a bare address such as `anna@example.com`.
///
/// An internationalised domain is converted to its ASCII (punycode) form so
/// the headers stay 7-bit. A non-ASCII local part is rejected, because it can
/// only be delivered with SMTPUTF8, which this crate does not use.
fn parse_address(field: &'static str, value: &str) -> Result<Address, MailError> {
    let invalid = |reason: &str| MailError::InvalidAddress {
        field,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };

    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid("the address is empty"));
    }
    let Some((local_part, domain)) = trimmed.rsplit_once('@') else {
        return Err(invalid("expected a bare address such as name@example.com"));
    };
    if !local_part.is_ascii() {
        return Err(invalid(
            "non-ASCII characters before the @ need SMTPUTF8, which is not supported",
        ));
    }
    let domain = if domain.is_ascii() {
        domain.to_owned()
    } else {
        match Host::parse(domain) {
            Ok(Host::Domain(ascii)) => ascii,
            _ => return Err(invalid("the domain is not a valid internationalised name")),
        }
    };
    Address::new(local_part, domain).map_err(|error| {
        invalid(&format!(
            "expected a bare address such as name@example.com ({error})"
        ))
    })
}

/// Checks that `value` is an absolute http or https URL and returns it in
/// normalised form.
fn link(field: &'static str, value: &str) -> Result<String, MailError> {
    let invalid = |reason: String| MailError::InvalidUrl {
        field,
        value: value.to_owned(),
        reason,
    };
    let url = Url::parse(value.trim()).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "expected an http or https URL, found scheme {:?}",
            url.scheme()
        )));
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_address_converts_idn_domain() {
        let address = parse_address("client_email", "anna@müller.example").expect("valid IDN");

        assert_eq!(address.to_string(), "anna@xn--mller-kva.example");
    }

    #[test]
    fn parse_address_errors_name_value() {
        for value in [
            "",
            "not-an-address",
            "Anna <anna@example.com>",
            "a,b@example.com",
            "jürgen@example.com",
            "anna@exa mple.com",
        ] {
            let error = parse_address("client_email", value).expect_err(value);
            let message = error.to_string();
            assert!(
                message.contains(&format!("{value:?}")),
                "{message} does not name {value:?}"
            );
            assert!(message.contains("client_email"), "{message}");
        }
    }

    #[test]
    fn link_rejects_non_http_urls() {
        assert!(link("portal_url", "javascript:alert(1)").is_err());
        assert!(link("portal_url", "/p/relative").is_err());
        assert_eq!(
            link("portal_url", " https://portal.example.com/p/abc ").ok(),
            Some("https://portal.example.com/p/abc".to_owned())
        );
    }

    #[test]
    fn mailbox_without_name() {
        let mailbox = mailbox("client_email", " \r\n", "anna@example.com").expect("valid");

        assert_eq!(mailbox.name, None);
    }

    fn formatted(message: &Message) -> String {
        String::from_utf8_lossy(&message.formatted()).into_owned()
    }

    #[test]
    fn payment_receipt_is_from_the_studio() {
        let message = payment_receipt(&PaymentReceiptEmail {
            studio_name: "Lumen Foto".to_owned(),
            studio_email: "owner@lumen.example".to_owned(),
            sender_address: "studios@proofsheet.localhost".to_owned(),
            client_name: "Ilse".to_owned(),
            client_email: "ilse@example.net".to_owned(),
            project_title: "Wedding".to_owned(),
            invoice_kind: InvoiceKind::Deposit,
            amount: "€485.00".to_owned(),
            paid_on: "18 November 2026".to_owned(),
            portal_url: "https://portal.example/p/abc".to_owned(),
            accent_colour: None,
        })
        .expect("receipt builds");
        let from = message.headers().get_raw("From").unwrap_or_default();
        assert!(from.contains("Lumen Foto"), "{from}");
        let formatted = formatted(&message);
        assert!(formatted.contains("Payment received: deposit invoice for Wedding"));
        assert!(formatted.contains("text/html"));
    }

    #[test]
    fn plan_payment_failed_links_settings() {
        let message = plan_payment_failed(&PlanPaymentFailedEmail {
            studio_name: "Lumen Foto".to_owned(),
            studio_email: "owner@lumen.example".to_owned(),
            sender_address: "studios@proofsheet.localhost".to_owned(),
            settings_url: "https://app.example/settings".to_owned(),
        })
        .expect("notice builds");
        let formatted = formatted(&message);
        assert!(formatted.contains("update your card"));
        assert!(formatted.contains("https://app.example/settings"));
        assert!(formatted.contains("text/html"));
        let relative = PlanPaymentFailedEmail {
            studio_name: "Lumen Foto".to_owned(),
            studio_email: "owner@lumen.example".to_owned(),
            sender_address: "studios@proofsheet.localhost".to_owned(),
            settings_url: "/settings".to_owned(),
        };
        assert!(plan_payment_failed(&relative).is_err());
    }
}
